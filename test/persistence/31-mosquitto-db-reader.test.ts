/**
 * The mosquitto.db reader and its conversion to Midge's state, on golden files the installed mosquitto
 * 2.0.11 wrote (test/fixtures/mosquitto-db/, made by make-mosquitto-golden.ts) and hand-damaged copies,
 * so these run without mosquitto. Versions 3-5 are built here byte by byte from the layouts in Mosquitto's
 * persist_read_v234.c / persist_read_v5.c, independently of the reader.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { describe, test } from 'node:test'
import { convertMosquittoDb } from '../../src/persistence/mosquitto-db/convert.js'
import { readMosquittoDb } from '../../src/persistence/mosquitto-db/reader.js'
import { chunkOffsets, mosquittoFixtures } from './make-mosquitto-golden.js'
import { BigPayload, LongExpiry, PropsMessage } from './mosquitto-scenario.js'

const fixture = (name: string): Buffer => fs.readFileSync(path.join(mosquittoFixtures, name))
const meta = JSON.parse(fs.readFileSync(path.join(mosquittoFixtures, 'v6-scenario.json'), 'utf8')) as { writtenAt: number; flight: { a: number; b: number; c: number } }
const golden = fixture('v6-scenario.db')

describe('mosquitto.db format 6 as mosquitto 2.0.11 writes it', () => {
  const db = readMosquittoDb(golden)

  test('every chunk is read and nothing is skipped', () => {
    assert.equal(db.version, 6)
    assert.deepEqual(db.skipped, [])
    assert.deepEqual(db.cfg, { lastDbId: 64n, shutdown: true, dbidSize: 8 })
    assert.equal(db.chunks, chunkOffsets(golden).length)
  })

  test('MSG_STORE: topics with an empty level and UTF-8, the 1 MiB payload, v5 properties, the publisher', () => {
    const byTopic = new Map(db.messages.map((m) => [m.topic, m]))
    assert.ok(byTopic.has('home//empty'))
    assert.equal(byTopic.get('home/bücher/😀')?.payload.toString(), 'utf-8 ✓')
    assert.ok(byTopic.get('big/blob')?.payload.equals(BigPayload))
    const props = byTopic.get('home/v5/props')!
    // Mosquitto keeps the Message Expiry Interval as an absolute time beside the other properties.
    assert.ok(props.expiryTime > meta.writtenAt / 1000 + LongExpiry - 100 && props.expiryTime <= meta.writtenAt / 1000 + LongExpiry + 1)
    const { messageExpiryInterval: _, ...rest } = PropsMessage
    assert.deepEqual(props.properties, rest)
    assert.equal(props.sourceId, 'publisher')
    assert.equal(props.retain, true)
    assert.equal(byTopic.get('home/q2')?.qos, 2)
    assert.deepEqual(byTopic.get('home/q2')?.properties, { userProperties: [['k', 'v']] })
  })

  test('CLIENT, SUB and CLIENT_MSG: expiry, options, identifiers and message states', () => {
    const sub5 = db.clients.find((c) => c.clientId === 'sub5')!
    assert.equal(sub5.sessionExpiryInterval, LongExpiry)
    assert.equal(db.clients.find((c) => c.clientId === 'sub311')?.sessionExpiryInterval, 0xffffffff)
    assert.deepEqual(db.subs.find((s) => s.clientId === 'sub5'), { clientId: 'sub5', topic: 'home/#', qos: 2, identifier: 42, options: 0x0c })
    const flight = db.clientMsgs.filter((c) => c.clientId === 'flight5').map((c) => [c.mid, c.state, c.dup, c.properties?.subscriptionIdentifiers])
    // wait_for_puback, wait_for_pubrec, wait_for_pubcomp
    assert.deepEqual(flight, [[meta.flight.a, 3, true, [9]], [meta.flight.b, 5, true, [9]], [meta.flight.c, 9, true, [9]]])
    const half = db.clientMsgs.find((c) => c.clientId === 'halfpub')!
    assert.deepEqual([half.direction, half.qos, half.state, half.mid], [0, 2, 7, 77])
    assert.equal(db.retains.length, 6)
  })
})

describe('conversion to Midge state', () => {
  const db = readMosquittoDb(golden)

  test('retained messages, sessions and subscription options', () => {
    const c = convertMosquittoDb(db, meta.writtenAt)
    assert.deepEqual(c.state.retained.map((m) => m.topic).sort(), ['big/blob', 'home//empty', 'home/bücher/😀', 'home/kitchen/light', 'home/v5/props', 'home/will'])
    assert.ok(c.state.retained.every((m) => m.retain))
    const sub5 = c.state.sessions.find((s) => s.clientId === 'sub5')!
    assert.equal(sub5.expiryInterval, LongExpiry)
    assert.ok(sub5.disconnectedAt > 0 && sub5.disconnectedAt <= meta.writtenAt, 'the expiry counts from the disconnect Mosquitto recorded')
    assert.deepEqual(sub5.subscriptions, [{ key: 'home/#', filter: 'home/#', group: '', qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 0, subscriptionId: 42 }])
    assert.equal(c.state.sessions.find((s) => s.clientId === 'sub311')?.expiryInterval, 0xffffffff)
  })

  test('[MQTT-4.4.0-1] in-flight messages keep their packet ids; the PUBREC\'d QoS 2 one continues with PUBREL', () => {
    const c = convertMosquittoDb(db, meta.writtenAt)
    const f = c.state.sessions.find((s) => s.clientId === 'flight5')!
    assert.deepEqual(f.outgoing.map((o) => [c.state.messages.get(o.messageId)?.topic, o.packetId, o.released, o.subscriptionIds]), [
      ['flight/a', meta.flight.a, false, [9]],
      ['flight/b', meta.flight.b, false, [9]],
      ['flight/c', meta.flight.c, true, [9]],
    ])
  })

  test('a QoS 2 message Mosquitto PUBREC\'d is routed to the matching sessions once and its packet id kept for the PUBREL', () => {
    const c = convertMosquittoDb(db, meta.writtenAt)
    assert.deepEqual(c.state.sessions.find((s) => s.clientId === 'halfpub')?.incomingQos2, [77])
    for (const id of ['sub311', 'sub5']) {
      const s = c.state.sessions.find((x) => x.clientId === id)!
      const half = s.outgoing.filter((o) => c.state.messages.get(o.messageId)?.topic === 'home/half')
      assert.equal(half.length, 1, id)
      assert.deepEqual([half[0]!.qos, half[0]!.packetId], [2, 0])
    }
    assert.deepEqual(c.state.sessions.find((s) => s.clientId === 'sub5')!.outgoing.at(-1)!.subscriptionIds, [42])
  })

  test('a session past its expiry and messages past theirs are left out, each with the reason', () => {
    const briefEnds = db.clients.find((x) => x.clientId === 'brief')!.sessionExpiryTime * 1000
    const before = convertMosquittoDb(db, briefEnds - 1)
    assert.ok(before.state.sessions.some((s) => s.clientId === 'brief'))
    const after = convertMosquittoDb(db, briefEnds)
    assert.equal(after.state.sessions.some((s) => s.clientId === 'brief'), false)
    assert.ok(after.skipped.some((l) => /^session 'brief': expired at .*, not imported$/.test(l)))
    const props = db.messages.find((m) => m.topic === 'home/v5/props')!
    const late = convertMosquittoDb(db, props.expiryTime * 1000)
    assert.equal(late.state.retained.some((m) => m.topic === 'home/v5/props'), false)
    assert.ok(late.skipped.includes('1 stored messages whose Message Expiry Interval had run out, not imported'))
    const sub311 = late.state.sessions.find((s) => s.clientId === 'sub311')!
    assert.equal(sub311.outgoing.some((o) => late.state.messages.get(o.messageId)?.topic === 'home/v5/props'), false)
  })
})

describe('damaged files: what is intact is read, the rest is listed, nothing throws', () => {
  test('truncated in the middle of a RETAIN chunk: everything before it is read', () => {
    const db = readMosquittoDb(fixture('v6-truncated.db'))
    assert.equal(db.retains.length, 2)
    assert.equal(db.clients.length, 5)
    assert.equal(db.skipped.length, 1)
    assert.match(db.skipped[0]!.reason, /chunk length 8 runs past the end of the file .*skipped 11 bytes up to the end of the file/)
    assert.equal(convertMosquittoDb(db, meta.writtenAt).state.retained.length, 2)
  })

  test('truncated inside the 1 MiB payload: the chunks before it, and the reason', () => {
    const db = readMosquittoDb(fixture('v6-truncated-in-payload.db'))
    const big = chunkOffsets(golden).find((c) => c.length > 1024 * 1024)!
    assert.notEqual(db.cfg, undefined)
    assert.equal(db.messages.length, chunkOffsets(golden).filter((c) => c.type === 2 && c.offset < big.offset).length)
    assert.equal(db.skipped.length, 1)
    assert.equal(db.skipped[0]!.what, 'MSG_STORE')
  })

  test('a damaged chunk length: the chunk is read by its own fields and nothing is lost', () => {
    const db = readMosquittoDb(fixture('v6-bad-chunk-length.db'))
    assert.equal(db.skipped.length, 1)
    assert.match(db.skipped[0]!.reason, /disagrees with its fields/)
    assert.ok(db.messages.find((m) => m.topic === 'big/blob')?.payload.equals(BigPayload))
    const ok = readMosquittoDb(golden)
    assert.deepEqual([db.messages.length, db.clients.length, db.clientMsgs.length, db.subs.length, db.retains.length], [ok.messages.length, ok.clients.length, ok.clientMsgs.length, ok.subs.length, ok.retains.length])
  })

  test('a chunk whose body is garbage is skipped and the reader finds the next chunk', () => {
    const chunks = chunkOffsets(golden)
    const sub = chunks.find((c) => c.type === 5)!
    const bad = Buffer.from(golden)
    bad.fill(0xee, sub.offset, sub.offset + 8 + sub.length)
    const db = readMosquittoDb(bad)
    assert.equal(db.subs.length, readMosquittoDb(golden).subs.length - 1)
    assert.equal(db.retains.length, 6)
    assert.equal(db.skipped.length, 1)
    assert.match(db.skipped[0]!.reason, /the next readable chunk at offset \d+/)
  })

  test('bad magic and an unknown format version: nothing read, the reason given', () => {
    const m = readMosquittoDb(fixture('v6-bad-magic.db'))
    assert.equal(m.version, undefined)
    assert.match(m.skipped[0]!.reason, /bad magic/)
    const v = readMosquittoDb(fixture('v6-bad-version.db'))
    assert.equal(v.version, 99)
    assert.match(v.skipped[0]!.reason, /format version 99 is not one Midge reads/)
    assert.match(readMosquittoDb(golden.subarray(0, 20)).skipped[0]!.reason, /truncated inside the header/)
  })

  test('cut at every offset and with random bytes flipped, reading and converting never throw', () => {
    // The scenario without the 1 MiB message, so every offset can be tried quickly.
    const big = chunkOffsets(golden).find((c) => c.length > 1024 * 1024)!
    const small = Buffer.concat([golden.subarray(0, big.offset), golden.subarray(big.offset + 8 + big.length)])
    assert.deepEqual(readMosquittoDb(small).skipped, [])
    for (let n = 0; n <= small.length; n++) convertMosquittoDb(readMosquittoDb(small.subarray(0, n)), meta.writtenAt)
    let seed = 12345
    const rand = (k: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % k }
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(small)
      for (let f = 1 + rand(4); f > 0; f--) b[23 + rand(b.length - 23)] = rand(256)
      convertMosquittoDb(readMosquittoDb(b), meta.writtenAt)
    }
  })
})

// ---- versions 3-5, built by hand --------------------------------------------------------------

const u16 = (v: number): Buffer => { const b = Buffer.alloc(2); b.writeUInt16BE(v); return b }
const u32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(v); return b }
let bigEndian = false
const u64le = (v: number): Buffer => { const b = Buffer.alloc(8); if (bigEndian) b.writeBigUInt64BE(BigInt(v)); else b.writeBigUInt64LE(BigInt(v)); return b }
const str = (s: string): Buffer => Buffer.concat([u16(Buffer.byteLength(s)), Buffer.from(s)])
const header = (version: number): Buffer => Buffer.concat([Buffer.from([0, 0xb5, 0]), Buffer.from('mosquitto db'), u32(0), u32(version)])
const chunk234 = (type: number, body: Buffer): Buffer => Buffer.concat([u16(type), u32(body.length), body])

function fileV234(version: 3 | 4): Buffer {
  const msg = (id: number, topic: string, payload: string, qos: number, retain: number): Buffer => chunk234(2, Buffer.concat([
    u64le(id), str('pub'), ...(version === 4 ? [str('alice'), u16(1883)] : []), u16(0), u16(0), str(topic), Buffer.from([qos, retain]), u32(payload.length), Buffer.from(payload),
  ]))
  return Buffer.concat([
    header(version),
    chunk234(1, Buffer.concat([Buffer.from([1, 8]), u64le(3)])),
    msg(1, 'old/retained', 'kept', 1, 1),
    msg(2, 'old/queued', 'waiting', 1, 0),
    chunk234(6, Buffer.concat([str('oldclient'), u16(5), u64le(1_500_000_000)])),
    chunk234(3, Buffer.concat([str('oldclient'), u64le(2), u16(4), Buffer.from([1, 0, 1, 3, 1])])),
    chunk234(5, Buffer.concat([str('oldclient'), str('old/#'), Buffer.from([1])])),
    chunk234(4, u64le(1)),
  ])
}

for (const version of [3, 4] as const) {
  test(`format ${version} (Mosquitto 1.x): retained, a v3 persistent session, its subscription and its in-flight message`, () => {
    const db = readMosquittoDb(fileV234(version))
    assert.deepEqual(db.skipped, [])
    assert.equal(db.version, version)
    assert.equal(db.messages[0]?.sourceUsername, version === 4 ? 'alice' : undefined)
    const c = convertMosquittoDb(db, Date.now())
    assert.deepEqual(c.state.retained.map((m) => [m.topic, m.payload.toString()]), [['old/retained', 'kept']])
    const s = c.state.sessions[0]!
    assert.deepEqual([s.clientId, s.expiryInterval], ['oldclient', 0xffffffff])
    assert.deepEqual(s.subscriptions.map((x) => [x.filter, x.qos]), [['old/#', 1]])
    assert.deepEqual(s.outgoing.map((o) => [c.state.messages.get(o.messageId)?.topic, o.qos, o.packetId]), [['old/queued', 1, 4]])
  })
}

test('a file from a big-endian machine (the 64-bit fields in its byte order) reads the same', () => {
  bigEndian = true
  const be = fileV234(4)
  bigEndian = false
  const le = fileV234(4)
  assert.notDeepEqual(be, le)
  const a = readMosquittoDb(be)
  const b = readMosquittoDb(le)
  assert.deepEqual(a.skipped, [])
  assert.deepEqual(a, b)
})

test('format 5 (Mosquitto 1.6): the 16-byte CLIENT chunk without username and listener port', () => {
  // Rewrite the golden file's CLIENT chunks to version 5's shorter layout.
  const parts: Buffer[] = [header(5)]
  for (const c of chunkOffsets(golden)) {
    const body = golden.subarray(c.offset + 8, c.offset + 8 + c.length)
    if (c.type !== 6) {
      parts.push(golden.subarray(c.offset, c.offset + 8 + c.length))
      continue
    }
    const idLen = body.readUInt16BE(14)
    const userLen = body.readUInt16BE(18)
    const v5 = Buffer.concat([body.subarray(0, 16), body.subarray(24, 24 + idLen)])
    assert.equal(userLen, 0)
    parts.push(Buffer.concat([u32(6), u32(v5.length), v5]))
  }
  const db = readMosquittoDb(Buffer.concat(parts))
  assert.deepEqual(db.skipped, [])
  assert.equal(db.version, 5)
  assert.deepEqual(db.clients.map((c) => [c.clientId, c.sessionExpiryInterval]), readMosquittoDb(golden).clients.map((c) => [c.clientId, c.sessionExpiryInterval]))
})
