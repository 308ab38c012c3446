/**
 * Malformed packets and protocol errors after CONNECT (MQTT 3.1.1 sections 1.5.3, 2.2, 4.8; MQTT 5.0
 * section 4.13): every case is raw bytes written by hand. A 3.1.1 client is simply disconnected; a v5
 * client first gets DISCONNECT with 0x81 Malformed Packet or 0x82 Protocol Error [MQTT-4.13.1-1].
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType, ReasonCode } from '../../src/protocol/constants.js'
import { setup } from '../helpers/broker-harness.js'
import { bytes, packet, utf8, u16, props, prop, vbi, raw } from '../helpers/wire.js'

const M = ReasonCode.MalformedPacket
const P = ReasonCode.ProtocolError

interface Case {
  name: string
  /** Bytes for a 3.1.1 connection, or null when the case is v5-only. */
  v4: Buffer | null
  /** Bytes for a v5 connection, or null when the case is 3.1.1-only. */
  v5: Buffer | null
  /** Acceptable v5 DISCONNECT reason codes. */
  codes: number[]
}

/** A string field with its length prefix but arbitrary (possibly invalid) bytes. */
const rawString = (b: number[]): number[] => [...u16(b.length), ...b]

const cases: Case[] = [
  {
    name: '[MQTT-1.5.5-1] Remaining Length longer than 4 bytes',
    v4: Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]),
    v5: Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]),
    codes: [M],
  },
  {
    name: '[MQTT-2.2.2-2] SUBSCRIBE with reserved flags 0000 instead of 0010',
    v4: packet(0x80, u16(1), utf8('a'), 0),
    v5: packet(0x80, u16(1), props(), utf8('a'), 0),
    codes: [M],
  },
  {
    name: '[MQTT-3.6.1-1] PUBREL with reserved flags 0000',
    v4: packet(0x60, u16(1)),
    v5: packet(0x60, u16(1)),
    codes: [M],
  },
  {
    name: '[MQTT-3.10.1-1] UNSUBSCRIBE with reserved flags 0000',
    v4: packet(0xa0, u16(1), utf8('a')),
    v5: packet(0xa0, u16(1), props(), utf8('a')),
    codes: [M],
  },
  {
    name: '[MQTT-2.2.2-2] PINGREQ with a flag set',
    v4: packet(0xc1),
    v5: packet(0xc1),
    codes: [M],
  },
  {
    name: '[MQTT-2.2.2-2] PUBACK with a flag set',
    v4: packet(0x41, u16(1)),
    v5: packet(0x41, u16(1)),
    codes: [M],
  },
  {
    name: '[MQTT-3.14.1-1] DISCONNECT with a flag set',
    v4: packet(0xe2),
    v5: packet(0xe2),
    codes: [M],
  },
  {
    name: 'reserved packet type 0',
    v4: packet(0x00),
    v5: packet(0x00),
    codes: [M, P],
  },
  {
    name: '[MQTT-3.3.1-4] PUBLISH with QoS 3',
    v4: packet(0x36, utf8('a/b'), u16(1), 0x78),
    v5: packet(0x36, utf8('a/b'), u16(1), props(), 0x78),
    codes: [M],
  },
  {
    name: '[MQTT-3.3.1-2] PUBLISH with QoS 0 and DUP 1 (v5)',
    v4: null,
    v5: packet(0x38, utf8('a/b'), props(), 0x78),
    codes: [M, P],
  },
  {
    name: '[MQTT-1.5.3-1] PUBLISH topic that is not well-formed UTF-8 (0xC0 0x80 overlong NUL)',
    v4: packet(0x30, rawString([0x61, 0xc0, 0x80]), 0x78),
    v5: packet(0x30, rawString([0x61, 0xc0, 0x80]), props(), 0x78),
    codes: [M],
  },
  {
    name: '[MQTT-1.5.3-1] PUBLISH topic with a lone 0xFF byte',
    v4: packet(0x30, rawString([0x61, 0xff]), 0x78),
    v5: packet(0x30, rawString([0x61, 0xff]), props(), 0x78),
    codes: [M],
  },
  {
    name: '[MQTT-1.5.3-1] PUBLISH topic with a UTF-16 surrogate encoded in UTF-8 (ED A0 80)',
    v4: packet(0x30, rawString([0x61, 0xed, 0xa0, 0x80]), 0x78),
    v5: packet(0x30, rawString([0x61, 0xed, 0xa0, 0x80]), props(), 0x78),
    codes: [M],
  },
  {
    name: '[MQTT-1.5.3-2] PUBLISH topic containing U+0000',
    v4: packet(0x30, rawString([0x61, 0x00, 0x62]), 0x78),
    v5: packet(0x30, rawString([0x61, 0x00, 0x62]), props(), 0x78),
    codes: [M],
  },
  {
    name: '[MQTT-3.3.2-2] PUBLISH topic name with a \'+\' wildcard',
    v4: packet(0x30, utf8('a/+/b'), 0x78),
    v5: packet(0x30, utf8('a/+/b'), props(), 0x78),
    codes: [M, P, ReasonCode.TopicNameInvalid],
  },
  {
    name: '[MQTT-3.3.2-2] PUBLISH topic name with a \'#\' wildcard',
    v4: packet(0x32, utf8('a/#'), u16(1), 0x78),
    v5: packet(0x32, utf8('a/#'), u16(1), props(), 0x78),
    codes: [M, P, ReasonCode.TopicNameInvalid],
  },
  {
    name: '[MQTT-4.7.3-1] PUBLISH with an empty topic name (3.1.1)',
    v4: packet(0x30, utf8(''), 0x78),
    v5: null,
    codes: [M, P],
  },
  {
    name: '[MQTT-2.3.1-1] PUBLISH QoS 1 with packet identifier 0',
    v4: packet(0x32, utf8('a'), u16(0), 0x78),
    v5: packet(0x32, utf8('a'), u16(0), props(), 0x78),
    codes: [M, P],
  },
  {
    name: 'PUBLISH whose topic length overruns the packet',
    v4: packet(0x30, u16(50), raw('abc')),
    v5: packet(0x30, u16(50), raw('abc')),
    codes: [M],
  },
  {
    name: '[MQTT-3.8.3-3] (3.1.1) [MQTT-3.8.3-2] (5.0) SUBSCRIBE with no topic filter',
    v4: packet(0x82, u16(1)),
    v5: packet(0x82, u16(1), props()),
    codes: [M, P],
  },
  {
    name: '[MQTT-3.10.3-2] UNSUBSCRIBE with no topic filter',
    v4: packet(0xa2, u16(1)),
    v5: packet(0xa2, u16(1), props()),
    codes: [M, P],
  },
  {
    name: '[MQTT-2.3.1-1] SUBSCRIBE with packet identifier 0',
    v4: packet(0x82, u16(0), utf8('a'), 0),
    v5: packet(0x82, u16(0), props(), utf8('a'), 0),
    codes: [M, P],
  },
  {
    name: '[MQTT-3.8.3-4] (3.1.1) SUBSCRIBE requesting QoS 3',
    v4: packet(0x82, u16(1), utf8('a'), 3),
    v5: packet(0x82, u16(1), props(), utf8('a'), 3),
    codes: [M, P],
  },
  {
    name: '[MQTT-3-8.3-4] (3.1.1) [MQTT-3.8.3-5] (5.0) SUBSCRIBE options with reserved bits set',
    v4: packet(0x82, u16(1), utf8('a'), 0x04),
    v5: packet(0x82, u16(1), props(), utf8('a'), 0xc0),
    codes: [M, P],
  },
  {
    name: 'MQTT 5.0 §3.8.3.1 SUBSCRIBE with Retain Handling 3',
    v4: null,
    v5: packet(0x82, u16(1), props(), utf8('a'), 0x30),
    codes: [M, P],
  },
  {
    name: '[MQTT-1.5.3-1] SUBSCRIBE filter that is not well-formed UTF-8',
    v4: packet(0x82, u16(1), rawString([0xc3]), 0),
    v5: packet(0x82, u16(1), props(), rawString([0xc3]), 0),
    codes: [M],
  },
  {
    name: 'SUBSCRIBE whose last filter lacks its options byte',
    v4: packet(0x82, u16(1), utf8('a'), 0, utf8('b')),
    v5: packet(0x82, u16(1), props(), utf8('a'), 0, utf8('b')),
    codes: [M],
  },
  {
    name: 'PINGREQ with a body',
    v4: packet(0xc0, 0x00),
    v5: packet(0xc0, 0x00),
    codes: [M],
  },
  {
    name: 'CONNACK sent by a client',
    v4: packet(0x20, 0x00, 0x00),
    v5: packet(0x20, 0x00, 0x00, props()),
    codes: [M, P],
  },
  {
    name: 'SUBACK sent by a client',
    v4: packet(0x90, u16(1), 0x00),
    v5: packet(0x90, u16(1), props(), 0x00),
    codes: [M, P],
  },
  {
    name: 'PINGRESP sent by a client',
    v4: packet(0xd0),
    v5: packet(0xd0),
    codes: [M, P],
  },
  {
    name: 'AUTH on a 3.1.1 connection',
    v4: packet(0xf0),
    v5: null,
    codes: [M],
  },
  {
    name: 'MQTT 5.0 §2.2.2.2 PUBLISH with an unknown property identifier',
    v4: null,
    v5: packet(0x30, utf8('a'), props([0x7f, 0x00]), 0x78),
    codes: [M],
  },
  {
    name: 'MQTT 5.0 §2.2.2.2 PUBLISH with a property not allowed in PUBLISH (Session Expiry Interval)',
    v4: null,
    v5: packet(0x30, utf8('a'), props(prop.u32(0x11, 1)), 0x78),
    codes: [M, P],
  },
  {
    name: 'MQTT 5.0 §2.2.2.2 PUBLISH with Topic Alias twice',
    v4: null,
    v5: packet(0x30, utf8('a'), props(prop.u16(0x23, 1), prop.u16(0x23, 2)), 0x78),
    codes: [M, P],
  },
  {
    name: 'MQTT 5.0 §2.2.2 PUBLISH whose property length overruns the packet',
    v4: null,
    v5: packet(0x30, utf8('a'), vbi(40), prop.u16(0x23, 1)),
    codes: [M],
  },
  {
    name: 'MQTT 5.0 §2.2.2.2 PUBLISH with Payload Format Indicator 2',
    v4: null,
    v5: packet(0x30, utf8('a'), props(prop.byte(0x01, 2)), 0x78),
    codes: [M, P],
  },
  {
    name: 'MQTT 5.0 §3.14.2.1 DISCONNECT with a property not allowed there (Topic Alias)',
    v4: null,
    v5: packet(0xe0, 0x00, props(prop.u16(0x23, 1))),
    codes: [M, P],
  },
]

for (const c of cases) {
  for (const v of [4, 5] as const) {
    const bytesFor = v === 4 ? c.v4 : c.v5
    if (bytesFor === null) continue
    test(`${c.name}: v${v} ${v === 5 ? `gets DISCONNECT ${c.codes.map((x) => `0x${x.toString(16)}`).join('/')} and ` : ''}is disconnected`, async (t) => {
      const h = setup(t)
      const watch = await h.client(v, { clientId: 'watch' })
      await watch.subscribe('#')
      const client = await h.client(v, { clientId: 'bad', will: { topic: 'will/bad', payload: Buffer.from('w'), qos: 0, retain: false } })
      client.sendRaw(bytesFor)
      await client.expectProtocolClose(c.codes)
      // the broker keeps serving others, and the bad client's will is published [MQTT-3.1.2-8]
      const will = await watch.publishOn('will/bad')
      assert.equal(will.payload.toString(), 'w')
      const other = await h.client(v, { clientId: 'other' })
      other.publish('still/alive', 'ok')
      assert.equal((await watch.publishOn('still/alive')).payload.toString(), 'ok')
    })
  }
}

test('a malformed packet fed in one-byte pieces is detected just the same', async (t) => {
  const h = setup(t)
  const c = await h.client(5, { clientId: 'bytes' })
  for (const b of packet(0x36, utf8('a/b'), u16(1), props(), 0x78)) c.sendRaw(Buffer.from([b]))
  await c.expectProtocolClose([M])
})

test('a malformed packet after valid ones in the same chunk: the valid ones are processed first', async (t) => {
  const h = setup(t)
  const watch = await h.client(4, { clientId: 'watch' })
  await watch.subscribe('chunk/#')
  const c = await h.client(4, { clientId: 'c' })
  c.sendRaw(Buffer.concat([
    packet(0x30, utf8('chunk/1'), raw('one')),
    packet(0x30, utf8('chunk/2'), raw('two')),
    packet(0x36, utf8('chunk/3'), u16(1), raw('bad')),
    packet(0x30, utf8('chunk/4'), raw('never')),
  ]))
  await c.waitClosed()
  assert.equal((await watch.publishOn('chunk/1')).payload.toString(), 'one')
  assert.equal((await watch.publishOn('chunk/2')).payload.toString(), 'two')
  await watch.expectNothing(PacketType.Publish, 'nothing after the malformed packet')
})

test('[MQTT-4.8.0-1] v3.1.1: a SUBSCRIBE with a malformed filter string in the middle closes the connection, no SUBACK', async (t) => {
  const h = setup(t)
  const c = await h.client(4, { clientId: 'c' })
  c.sendRaw(packet(0x82, u16(1), utf8('ok'), 0, rawString([0xff, 0xfe]), 0))
  await c.waitClosed()
  assert.equal(c.history.some((f) => f.type === PacketType.Suback), false)
})

test('v5: a CONNECT whose properties are malformed gets CONNACK 0x81 (or a plain close)', async (t) => {
  const h = setup(t)
  const c = h.raw(5)
  c.sendRaw(packet(0x10, utf8('MQTT'), 5, 0x02, u16(0), props([0x7f, 0x01]), utf8('c')))
  await c.waitClosed()
  for (const f of c.history) {
    assert.equal(f.type, PacketType.Connack)
    assert.equal(f.raw[3], M)
  }
})

test('[MQTT-3.1.2-11] [MQTT-3.1.2-13] v3.1.1: CONNECT with Will QoS or Will Retain but no Will Flag is refused', async (t) => {
  const h = setup(t)
  for (const flags of [0x02 | 0x08, 0x02 | 0x20, 0x02 | 0x04 | 0x18]) {
    const c = h.raw(4)
    const willFields = (flags & 0x04) !== 0 ? bytes(utf8('w'), utf8('x')) : []
    c.sendRaw(packet(0x10, utf8('MQTT'), 4, flags, u16(0), utf8('c'), willFields))
    await c.waitClosed()
    assert.equal(c.history.some((f) => f.type === PacketType.Connack && f.raw[3] === 0), false, `flags 0x${flags.toString(16)}`)
  }
})

test('[MQTT-3.1.2-22] v3.1.1: CONNECT with the Password Flag but no User Name Flag is refused', async (t) => {
  const h = setup(t)
  const c = h.raw(4)
  c.sendRaw(packet(0x10, utf8('MQTT'), 4, 0x42, u16(0), utf8('c'), utf8('secret')))
  await c.waitClosed()
  assert.equal(c.history.some((f) => f.type === PacketType.Connack && f.raw[3] === 0), false)
})

test('[MQTT-3.1.3-4] CONNECT with a client id that is not well-formed UTF-8 is refused', async (t) => {
  const h = setup(t)
  const c = h.raw(4)
  c.sendRaw(packet(0x10, utf8('MQTT'), 4, 0x02, u16(0), rawString([0x61, 0xc0, 0xaf])))
  await c.waitClosed()
  assert.equal(c.history.some((f) => f.type === PacketType.Connack && f.raw[3] === 0), false)
})

test('a CONNECT truncated by the Remaining Length is refused', async (t) => {
  const h = setup(t)
  const c = h.raw(4)
  // Remaining Length says 8: the protocol name and level fit, the rest is missing
  c.sendRaw(Buffer.from([0x10, 0x08, ...utf8('MQTT'), 4, 0x02]))
  await c.waitClosed()
  assert.equal(c.history.some((f) => f.type === PacketType.Connack && f.raw[3] === 0), false)
})

test('a peer that has not authenticated cannot make the broker buffer a huge packet: over 512 KiB before CONNECT completes closes it', async (t) => {
  const h = setup(t)
  const c = h.raw(4)
  // A PUBLISH header announcing 200 MB, sent as the first packet: refused from its fixed header alone.
  c.sendRaw(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x60]))
  await c.waitClosed()
})
