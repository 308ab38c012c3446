/**
 * The young-generation trim (src/observability/young-generation-trim.ts): after a burst that grew V8's new space,
 * an idle process gets it back to its start size; the same burst without the trim keeps it. Both run in child
 * processes of their own, side by side, so neither the test runner's allocations nor another test's decide.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'
import { pathToFileURL } from 'node:url'

const MODULE = pathToFileURL(join(import.meta.dirname, '../../src/observability/young-generation-trim.js')).href

/**
 * Grows the new space with a burst of surviving objects, keeps them, then idles; prints the new space's committed
 * MiB every 500 ms for `seconds` as JSON lines, with `trim` started or not.
 */
const child = (trim: boolean, seconds: number): string => `
import v8 from 'node:v8'
import { startYoungGenerationTrim } from ${JSON.stringify(MODULE)}
const ns = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1048576
const keep = []
for (let i = 0; i < 40000; i++) { keep.push({ a: new Array(16).fill(i), b: 'k' + i }); for (let j = 0; j < 20; j++) ({ j }) }
const stop = ${trim} ? startYoungGenerationTrim() : () => {}
console.log(JSON.stringify({ grown: ns() }))
let n = 0
const t = setInterval(() => {
  console.log(JSON.stringify({ t: ++n / 2, ns: ns(), kept: keep.length }))
  if (n >= ${seconds * 2}) { clearInterval(t); stop() }
}, 500)
`

function run(trim: boolean, seconds: number): Promise<Array<Record<string, number>>> {
  return new Promise((resolve, reject) => {
    // --no-memory-reducer in both: V8's memory reducer runs a memory-reducing collection ~8 s after a mark-compact
    // if the process has gone idle, and whether the burst happens to end in a mark-compact varies by machine (it did
    // in CI on a faster one: the control shrank at 8.5 s). The trim is for a process where no collection comes (the
    // broker after a connection storm: still grown after 20 s without it), so the control must be that process.
    const p = spawn(process.execPath, ['--no-memory-reducer', '--input-type=module', '-e', child(trim, seconds)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.on('data', (d: Buffer) => { out += d.toString() })
    p.stderr.on('data', (d: Buffer) => { err += d.toString() })
    p.on('error', reject)
    p.on('close', (code) => {
      if (code !== 0) reject(new Error(`child exited ${String(code)}: ${err}`))
      else resolve(out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>))
    })
  })
}

test('an idle process gets back the new space a burst grew; without the trim it keeps it', async () => {
  // V8 shrinks at a collection that finds its allocation rate low over its last 5 s; the trim looks every 2 s.
  const seconds = 16
  const [withTrim, without] = await Promise.all([run(true, seconds), run(false, seconds)])
  const grownWith = withTrim[0]!.grown!
  const grownWithout = without[0]!.grown!
  assert.ok(grownWith > 2 && grownWithout > 2, `the burst grew the new space above 2 MiB (${grownWith}, ${grownWithout} MiB)`)
  const lastWith = withTrim.at(-1)!
  const lastWithout = without.at(-1)!
  assert.ok(lastWith.ns! <= 2, `with the trim the new space is back to ≤ 2 MiB (${JSON.stringify(withTrim.map((s) => s.ns ?? s.grown))})`)
  assert.ok(lastWithout.ns! > 2, `without it, it stays grown (${JSON.stringify(without.map((s) => s.ns ?? s.grown))})`)
  assert.equal(lastWith.kept, 40000, 'the survivors are still there: only free space was given back')
})
