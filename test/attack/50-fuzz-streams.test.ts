/**
 * Network fuzzing against a real Midge process: many clients at once send a valid CONNECT followed by
 * valid packets of every type, mutated (bytes flipped, cut, duplicated, garbage spliced in) and cut into
 * random chunks. Whatever arrives, the broker must stay up, keep serving a bystander, keep its RSS bounded
 * and never hit an internal error (an exception in a packet handler).
 *
 * CI runs it for a few seconds; `npm run fuzz` (MIDGE_FUZZ_SECONDS) runs it for as long as you like. A failure
 * prints the seed: MIDGE_FUZZ_SEED=<seed> replays the same streams.
 */
import assert from 'node:assert/strict'
import type net from 'node:net'
import { test } from 'node:test'
import fc from 'fast-check'
import { encode } from '../../src/protocol/index.js'
import type { ConnectPacket, Packet, ProtocolVersion } from '../../src/protocol/index.js'
import { packetArb } from '../protocol/arbitraries.js'
import { AttackTarget, sleep } from './harness.js'

const seconds = Number(process.env.MIDGE_FUZZ_SECONDS ?? '6')
const seed = Number(process.env.MIDGE_FUZZ_SEED ?? String(Date.now() % 2 ** 31))
/** Clients sending at the same time in one round. */
const Parallel = 16
/** RSS the broker may reach under fuzzing; it idles at ~60 MB and limits pre-auth packets to 512 KiB. */
const RssBound = 400 * 1024 * 1024

/** Mulberry32: small, seedable, good enough to pick mutations. */
function prng(s: number): () => number {
  let a = s >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Packets a client may send (the server-only ones are in too: the broker must refuse them cleanly). */
const clientTypes = [3, 4, 5, 6, 7, 8, 10, 12, 14, 1, 2, 9, 11, 13, 15]

function samplePackets(version: ProtocolVersion, n: number, s: number): Packet[] {
  const types = version === 5 ? clientTypes : clientTypes.filter((t) => t !== 15)
  return fc.sample(fc.oneof(...types.map((t) => packetArb(t, version))), { numRuns: n, seed: s })
}

function mutate(b: Buffer, rnd: () => number): Buffer {
  const r = rnd()
  if (b.length === 0) return b
  if (r < 0.55) return b // most packets stay valid so the session gets somewhere
  const out = Buffer.from(b)
  if (r < 0.75) {
    for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) out[Math.floor(rnd() * out.length)] = Math.floor(rnd() * 256)
    return out
  }
  if (r < 0.85) return out.subarray(0, Math.floor(rnd() * out.length))
  if (r < 0.95) {
    const junk = Buffer.alloc(1 + Math.floor(rnd() * 8))
    for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(rnd() * 256)
    const at = Math.floor(rnd() * out.length)
    return Buffer.concat([out.subarray(0, at), junk, out.subarray(at)])
  }
  return Buffer.concat([out, out])
}

function stream(version: ProtocolVersion, rnd: () => number, s: number): Buffer {
  const clientId = `fz${Math.floor(rnd() * 1e6)}`
  const connect: ConnectPacket = {
    type: 1,
    protocolName: version === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion: version,
    bridge: false,
    cleanStart: rnd() < 0.8,
    keepAlive: 1 + Math.floor(rnd() * 30),
    clientId,
  }
  if (rnd() < 0.2) connect.will = { topic: `fz/will/${clientId}`, payload: Buffer.from('w'), qos: Math.floor(rnd() * 3) as 0 | 1 | 2, retain: rnd() < 0.3 }
  const parts: Buffer[] = [mutate(encode(connect, version), () => (rnd() < 0.8 ? 0 : rnd()))]
  for (const p of samplePackets(version, 1 + Math.floor(rnd() * 12), s)) {
    try {
      parts.push(mutate(encode(p, version), rnd))
    } catch {
      // An arbitrary the encoder refuses is simply not sent.
    }
  }
  return Buffer.concat(parts)
}

async function send(t: AttackTarget, bytes: Buffer, rnd: () => number): Promise<void> {
  let sock: net.Socket
  try {
    sock = await t.socket()
  } catch {
    return
  }
  sock.on('error', () => {})
  sock.on('data', () => {})
  let at = 0
  while (at < bytes.length && !sock.destroyed) {
    const n = 1 + Math.floor(rnd() * Math.min(bytes.length - at, 200))
    sock.write(bytes.subarray(at, at + n))
    at += n
    if (rnd() < 0.2) await sleep(1)
  }
  await sleep(5 + Math.floor(rnd() * 20))
  sock.destroy()
}

test(`fuzz: mutated packet streams from ${Parallel} clients at once for ${seconds} s (seed ${seed}) never crash, stall or bloat Midge`, { timeout: (seconds + 60) * 1000 }, async () => {
  const t = await AttackTarget.start('fuzz', 'allow_anonymous true\nmax_keepalive 60\n')
  const rnd = prng(seed)
  const deadline = Date.now() + seconds * 1000
  let streams = 0
  let maxRss = 0
  try {
    while (Date.now() < deadline) {
      const round: Promise<void>[] = []
      for (let i = 0; i < Parallel; i++) {
        const version = ([3, 4, 5] as const)[Math.floor(rnd() * 3)]!
        round.push(send(t, stream(version, rnd, Math.floor(rnd() * 2 ** 31)), rnd))
        streams++
      }
      await Promise.all(round)
      maxRss = Math.max(maxRss, t.rss())
      const internal = t.midge.lines.find((l) => /internal error/i.test(l))
      assert.equal(internal, undefined, `seed ${seed}: an internal error after ${streams} streams: ${internal}`)
      assert.ok(t.alive, `seed ${seed}: midge died after ${streams} streams; log:\n${t.midge.lines.slice(-30).join('\n')}`)
    }
    await t.assertServes(5000, `seed ${seed}: a bystander after ${streams} streams`)
    assert.ok(maxRss < RssBound, `seed ${seed}: RSS reached ${maxRss} bytes`)
    assert.ok(streams >= Parallel, 'at least one round ran')
  } finally {
    await t.stop()
  }
})
