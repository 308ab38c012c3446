/**
 * Attack: a client floods PUBLISHes while the application's authorizePublish hook is slow to answer (here it
 * never does). The broker must not read, buffer or ask about what follows the packet being decided: the hook is
 * asked once, the socket is not read meanwhile (TCP stops the sender), the broker's RSS stays bounded, and other
 * clients are served. The broker is an embedded one (createBroker from dist/src/index.js) in its own process,
 * so its RSS is its own.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'
import { packet, utf8 } from '../helpers/wire.js'
import { MB } from './rss-bound.js'

const INDEX = pathToFileURL(resolve(import.meta.dirname, '../../src/index.js')).href

const app = `
import { createBroker } from '${INDEX}'
let calls = 0
const broker = await createBroker({ port: 0, hookTimeoutMs: 600000, authorizePublish: () => { calls++; return new Promise(() => {}) } })
console.log('port', broker.port)
process.stdin.on('data', () => console.log('calls', calls, 'rss', process.memoryUsage().rss))
`

const connectPacket = (id: string): Buffer => packet(0x10, utf8('MQTT'), [4, 0x02, 0, 0], utf8(id))

/** Connects and resolves once CONNACK 0 is in. */
function connected(port: number, id: string): Promise<net.Socket> {
  return new Promise((done, fail) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(connectPacket(id)))
    s.once('data', (d) => (d[0] === 0x20 && d[3] === 0 ? done(s) : fail(new Error(`no CONNACK for ${id}: ${d.toString('hex')}`))))
    s.once('error', fail)
  })
}

test('a PUBLISH flood behind a slow authorizePublish: one hook call, the socket unread, RSS bounded, others served', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-attack-hook-'))
  writeFileSync(join(dir, 'app.mjs'), app)
  const child = spawn(process.execPath, [join(dir, 'app.mjs')], { stdio: ['pipe', 'pipe', 'inherit'] })
  const sockets: net.Socket[] = []
  t.after(() => {
    for (const s of sockets) s.destroy()
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  const next = async (): Promise<string[]> => ((await lines.next()).value as string).split(' ')
  const port = Number((await next())[1])
  const sample = async (): Promise<{ calls: number; rss: number }> => {
    child.stdin.write('\n')
    const w = await next()
    return { calls: Number(w[1]), rss: Number(w[3]) }
  }
  const before = await sample()

  const flooder = await connected(port, 'flooder')
  sockets.push(flooder)
  const publish = packet(0x30, utf8('x'), Buffer.alloc(500 * 1024, 0x61))
  // Write until the kernel stops taking bytes (the broker does not read) or 256 MB have gone.
  let stalled = 0
  while (flooder.bytesWritten < 256 * MB && stalled < 20) {
    const was = flooder.bytesWritten - flooder.writableLength
    if (flooder.writableLength < 4 * MB) flooder.write(publish)
    await new Promise((r) => setTimeout(r, 10))
    stalled = flooder.bytesWritten - flooder.writableLength === was ? stalled + 1 : 0
  }
  const taken = flooder.bytesWritten - flooder.writableLength
  assert.ok(taken < 128 * MB, `the kernel took ${Math.round(taken / MB)} MB: the broker kept reading`)

  const after = await sample()
  assert.equal(after.calls, 1, 'the hook was asked about more than the first PUBLISH')
  assert.ok(after.rss - before.rss < 48 * MB, `the broker's RSS grew by ${Math.round((after.rss - before.rss) / MB)} MB`)
  // Everyone else is served meanwhile.
  sockets.push(await connected(port, 'bystander'))
})
