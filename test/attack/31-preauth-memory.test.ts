/**
 * Attack: memory before authentication (issue #12, item 5). A CONNECT whose password takes long to check
 * (here a user whose hash has 10,000,000 iterations (the most a password file may hold), so that no check finishes, and no refused connection is
 * drained, during the flood) is followed by a stream of 500 KB PUBLISH packets. Before
 * the fix, up to 1,000 packets were buffered per connection while the hash ran (6 connections: RSS 308 MB to
 * 2,990 MB). Now the socket is not read until CONNACK: what the broker takes is one chunk, and the rest
 * stays in the kernel's socket buffers, so the sender is stopped by TCP backpressure.
 * Also: the queue of password checks is bounded (auth_max_queued_hashes); beyond it, Server busy at once.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type net from 'node:net'
import { AttackTarget, sleep } from './harness.js'

const MB = 1024 * 1024

/** A `$7$` entry with a huge iteration count that no password matches: each check of it takes seconds. */
const slowEntry = `$7$10000000$${randomBytes(12).toString('base64')}$${randomBytes(64).toString('base64')}`

function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8')
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b])
}

function remainingLength(n: number): Buffer {
  const out: number[] = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    out.push(byte)
  } while (n > 0)
  return Buffer.from(out)
}

/** CONNECT (3.1.1 or 5) with username and password, built by hand. */
function connect(version: 4 | 5, clientId: string, user: string, password: string): Buffer {
  const body = Buffer.concat([str('MQTT'), Buffer.from([version, 0xc2, 0, 60]), version === 5 ? Buffer.from([0]) : Buffer.alloc(0), str(clientId), str(user), str(password)])
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body])
}

/** QoS 0 PUBLISH of `size` payload bytes on topic "x". */
function publish(size: number): Buffer {
  const body = Buffer.concat([str('x'), Buffer.alloc(size, 0x61)])
  return Buffer.concat([Buffer.from([0x30]), remainingLength(body.length), body])
}

/** Writes `packet` while the kernel takes it, for `ms`; stops early past `cap` bytes. Returns the bytes the broker side took. */
async function flood(s: net.Socket, packet: Buffer, ms: number, cap: number): Promise<number> {
  const until = Date.now() + ms
  while (Date.now() < until && s.bytesWritten < cap && !s.destroyed) {
    if (s.writableLength < 4 * MB) s.write(packet)
    else await new Promise<void>((r) => { const t = setTimeout(r, 50); s.once('drain', () => { clearTimeout(t); r() }) })
    if (s.writableLength >= 4 * MB) await sleep(0)
  }
  // bytesWritten counts what reached the kernel, which may itself buffer tens of MB per socket (tcp_rmem autotuning).
  return s.bytesWritten - s.writableLength
}

test('PUBLISH packets sent while a CONNECT is authenticated are not read: RSS stays bounded, the sender is held by TCP', { timeout: 60_000 }, async (tc) => {
  const t = await AttackTarget.start('preauth-memory', 'allow_anonymous true\npassword_file passwd\n', { passwd: `slow:${slowEntry}\n` })
  try {
    await t.assertServes()
    const before = t.rss()
    const sockets = await Promise.all(Array.from({ length: 4 }, () => t.socket()))
    const packet = publish(500 * 1024)
    const taken = await Promise.all(sockets.map((s, i) => {
      s.on('error', () => {})
      s.write(connect(4, `flood-${i}`, 'slow', `pw-${i}`))
      return flood(s, packet, 2500, 160 * MB)
    }))
    const grown = t.rss() - before
    const report = `bytes taken per socket: ${taken.map((b) => `${(b / MB).toFixed(1)} MB`).join(', ')}; RSS +${(grown / MB).toFixed(0)} MB`
    tc.diagnostic(report)
    for (const b of taken) assert.ok(b < 64 * MB, `the broker kept reading before CONNACK: ${report}`)
    assert.ok(grown < 100 * MB, report)
    // Others are served meanwhile (the bystander is anonymous: no hash).
    await t.assertServes(5000)
    for (const s of sockets) s.destroy()
  } finally {
    await t.stop()
  }
})

test('the queue of password checks is bounded: CONNECTs beyond auth_max_queued_hashes get Server busy at once (v5 0x89, v3 3)', { timeout: 60_000 }, async () => {
  // Two checks hashing (maxConcurrentHashes) and two waiting; loopback is exempt from the per-address bound.
  const t = await AttackTarget.start('hash-queue', 'allow_anonymous true\npassword_file passwd\nauth_max_queued_hashes 2\n', { passwd: `slow:${slowEntry}\n` })
  try {
    const sockets = await Promise.all(Array.from({ length: 12 }, () => t.socket()))
    const versions = sockets.map((_, i) => (i % 2 === 0 ? 4 : 5) as 4 | 5)
    const answers = sockets.map((s) => new Promise<number>((resolve) => {
      let got = Buffer.alloc(0)
      s.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d])
        // CONNACK: 0x20, length, flags, code
        if (got.length >= 4) resolve(got[0] === 0x20 ? got[3]! : -1)
      })
      s.on('close', () => resolve(-1))
    }))
    sockets.forEach((s, i) => s.write(connect(versions[i]!, `q-${i}`, 'slow', `pw-${i}`)))
    // The refused ones answer at once; the four held ones would take seconds each. Wait for the eight refusals.
    const first: string[] = []
    await t.midge.guard(new Promise<void>((resolve) => {
      answers.forEach((a, i) => void a.then((code) => {
        first.push(`v${versions[i]}:${code}`)
        if (first.length === 8) resolve()
      }))
    }), 'eight busy refusals', 10_000)
    assert.deepEqual(first.filter((a) => a !== 'v4:3' && a !== `v5:${0x89}`), [], `the first eight answers: ${first.join(', ')}`)
    await t.midge.waitFor(/refused: the queue of password checks is full \(auth_max_queued_hashes 2\)/)
    await t.assertServes(5000)
    for (const s of sockets) s.destroy()
    // SIGTERM does not first work through the queued checks (each takes seconds here).
    const stopping = Date.now()
    await t.midge.stop()
    assert.ok(Date.now() - stopping < 8000, `SIGTERM took ${Date.now() - stopping} ms with password checks queued`)
  } finally {
    await t.stop()
  }
})
