/**
 * A damaged store (a write cut short by a crash, junk appended, a bit flipped on disk): everything
 * before the damage is recovered, the damaged part is moved aside as <file>.damaged-<time>, the broker
 * starts anyway and its log says what was dropped. Property tests cut and flip at random positions.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import fc from 'fast-check'
import { LogStore } from '../../src/persistence/log-store.js'
import type { RecoveredState } from '../../src/persistence/store.js'
import { Logger } from '../../src/observability/logger.js'
import { startServer, localOnlyPlan } from '../../src/server/index.js'
import { TestClient } from '../helpers/broker-harness.js'
import { encodeV1, goldenOpsV1 } from './golden-v1.js'
import { tempDir } from './tmp-dir.js'

const File = 'midge.db'

/** Ten retained messages r/0..r/9, each committed in its own turn; returns the record start offsets. */
async function writeRetained(dir: string): Promise<number[]> {
  const store = new LogStore({ dir, file: File, fsync: false })
  store.load()
  const starts: number[] = []
  for (let i = 0; i < 10; i++) {
    starts.push(fs.statSync(path.join(dir, File)).size)
    store.messageSaved({ id: i + 1, topic: `r/${i}`, payload: Buffer.from(`value ${i}`), qos: 1, retain: true, properties: undefined, expiresAt: 0, origin: 'p' })
    store.retainedSet(`r/${i}`, i + 1)
    await store.commit()
  }
  store.close()
  return starts
}

/** Midge on 127.0.0.1:0 with persistence in `dir`, logging into `lines`. */
async function startOn(t: TestContext, dir: string, lines: string[]): Promise<number> {
  const plan = localOnlyPlan(0)
  plan.listeners = plan.listeners.slice(0, 1)
  plan.broker = { sysInterval: 0, logger: new Logger({ timestamp: false, sinks: [{ write: (l) => { lines.push(l) } }] }) }
  plan.persistence = { dir, file: File, fsync: false }
  const server = await startServer(plan)
  t.after(() => server.close())
  return server.listeners[0]!.address().port
}

async function tcpClient(t: TestContext, port: number): Promise<TestClient> {
  const socket = net.connect({ host: '127.0.0.1', port })
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const c = new TestClient(socket, 4)
  t.after(() => c.destroy())
  return c
}

/** The retained topics a fresh subscriber to r/# gets. */
async function retainedTopics(t: TestContext, port: number): Promise<string[]> {
  const c = await tcpClient(t, port)
  assert.equal((await c.connect({ clientId: 'reader' })).reasonCode, 0)
  await c.subscribe('r/#', { qos: 0 })
  await c.sync()
  return c.pending(3).map((p) => `${p.topic}=${p.payload.toString()}`).sort()
}

const expectedUpTo = (n: number): string[] => Array.from({ length: n }, (_, i) => `r/${i}=value ${i}`).sort()

function damagedFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.startsWith(`${File}.damaged-`))
}

test('a store truncated in the middle of a record: the broker starts with every earlier record, logs the loss and sets the tail aside', async (t) => {
  const dir = tempDir(t)
  const starts = await writeRetained(dir)
  const file = path.join(dir, File)
  const cut = starts[7]! + 20 // inside the Message record of r/7
  const original = fs.readFileSync(file)
  fs.truncateSync(file, cut)
  const lines: string[] = []
  const port = await startOn(t, dir, lines)
  assert.deepEqual(await retainedTopics(t, port), expectedUpTo(7))
  const aside = damagedFiles(dir)
  assert.equal(aside.length, 1)
  assert.ok(fs.readFileSync(path.join(dir, aside[0]!)).equals(original.subarray(starts[7]!, cut)), 'the torn record was set aside')
  const log = lines.find((l) => l.includes('torn record') && l.includes(aside[0]!))
  assert.ok(log !== undefined, `the log names the damage and where it went:\n${lines.join('\n')}`)
  assert.match(log, new RegExp(`byte ${starts[7]}`))
})

test('garbage appended to a store: every record is kept, the garbage is set aside and logged', async (t) => {
  const dir = tempDir(t)
  await writeRetained(dir)
  const file = path.join(dir, File)
  const junk = Buffer.from('\x00\x00\x00\x05garbage written by someone else\n', 'latin1')
  fs.appendFileSync(file, junk)
  const lines: string[] = []
  const port = await startOn(t, dir, lines)
  assert.deepEqual(await retainedTopics(t, port), expectedUpTo(10))
  const aside = damagedFiles(dir)
  assert.equal(aside.length, 1)
  assert.ok(fs.readFileSync(path.join(dir, aside[0]!)).equals(junk), 'exactly the garbage was set aside')
  assert.ok(lines.some((l) => l.includes(aside[0]!) && l.includes(`${junk.length} bytes`)), `log:\n${lines.join('\n')}`)
})

test('a flipped byte in a middle record: the records before it are kept, that record and the rest are set aside and logged', async (t) => {
  const dir = tempDir(t)
  const starts = await writeRetained(dir)
  const file = path.join(dir, File)
  const bytes = fs.readFileSync(file)
  bytes[starts[4]! + 30]! ^= 0x40 // in the Message record of r/4
  fs.writeFileSync(file, bytes)
  const lines: string[] = []
  const port = await startOn(t, dir, lines)
  assert.deepEqual(await retainedTopics(t, port), expectedUpTo(4))
  const aside = damagedFiles(dir)
  assert.equal(aside.length, 1)
  assert.ok(fs.readFileSync(path.join(dir, aside[0]!)).equals(bytes.subarray(starts[4]!)), 'the damaged record and everything after it were set aside')
  assert.ok(lines.some((l) => l.includes('bad checksum') && l.includes(aside[0]!)), `log:\n${lines.join('\n')}`)
})

test('after a damaged load the store is clean: the next start reports no damage and sets nothing else aside', async (t) => {
  const dir = tempDir(t)
  const starts = await writeRetained(dir)
  fs.truncateSync(path.join(dir, File), starts[5]! + 3)
  const first = new LogStore({ dir, file: File, fsync: false })
  assert.ok(first.load().report.some((l) => l.includes('torn')))
  first.close()
  const second = new LogStore({ dir, file: File, fsync: false })
  t.after(() => second.close())
  const state = second.load()
  assert.deepEqual(state.report.filter((l) => /torn|checksum|damaged|unreadable/.test(l)), [])
  assert.deepEqual(state.retained.map((m) => m.topic).sort(), ['r/0', 'r/1', 'r/2', 'r/3', 'r/4'])
  assert.equal(damagedFiles(dir).length, 1)
})

// ---- properties: any cut, any flipped byte ------------------------------------------------------

const golden = encodeV1(goldenOpsV1)
const boundaries = [...golden.offsets, golden.file.length]

function loadBytes(t: TestContext, bytes: Buffer): RecoveredState {
  const dir = tempDir(t, 'midge-prop-')
  fs.writeFileSync(path.join(dir, File), bytes)
  const store = new LogStore({ dir, file: File, fsync: false })
  const state = store.load()
  store.close()
  fs.rmSync(dir, { recursive: true, force: true })
  return state
}

const stateView = (s: RecoveredState): string => JSON.stringify({ sessions: s.sessions, retained: s.retained, messages: [...s.messages], n: [s.nextMessageId, s.nextOutgoingId] })

test('property: a file cut at any byte loads as the file cut at the last whole record before that byte', (t) => {
  const prefixes = new Map<number, string>()
  for (const b of boundaries) prefixes.set(b, stateView(loadBytes(t, golden.file.subarray(0, b))))
  fc.assert(fc.property(fc.integer({ min: 12, max: golden.file.length }), (cut) => {
    const state = loadBytes(t, golden.file.subarray(0, cut))
    const whole = boundaries.filter((b) => b <= cut).at(-1)!
    assert.equal(stateView(state), prefixes.get(whole))
    assert.equal(state.report.length > 1, cut !== whole, 'damage is reported exactly when the cut is inside a record')
  }), { numRuns: 60 })
})

test('property: a byte flipped anywhere after the header never crashes the load, and loses only the damaged record and those after it', (t) => {
  const prefixes = new Map<number, string>()
  for (const b of boundaries) prefixes.set(b, stateView(loadBytes(t, golden.file.subarray(0, b))))
  fc.assert(fc.property(fc.integer({ min: 12, max: golden.file.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, mask) => {
    const bytes = Buffer.from(golden.file)
    bytes[at]! ^= mask
    const state = loadBytes(t, bytes)
    const recordStart = boundaries.filter((b) => b <= at).at(-1)!
    assert.equal(stateView(state), prefixes.get(recordStart), `flip at ${at} (record at ${recordStart})`)
    assert.ok(state.report.length > 1, 'the damage is reported')
  }), { numRuns: 60 })
})
