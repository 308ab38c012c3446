/**
 * Issue #12 item 12: the client's Maximum Packet Size binds every packet the server sends [MQTT-3.1.2-24],
 * not only PUBLISH. CONNACK and DISCONNECT drop their Reason String (and other optional properties) to fit
 * [MQTT-3.2.2-19] [MQTT-3.14.2-3]; a CONNACK that cannot fit even so (an Assigned Client Identifier is
 * mandatory) is not sent, and the connection is closed.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketType, ReasonCode } from '../../src/protocol/constants.js'
import type { ConnackPacket, DisconnectPacket } from '../../src/protocol/packets.js'
import { setup } from '../helpers/broker-harness.js'
import { bin, packet, prop, props, u16, utf8 } from '../helpers/wire.js'

describe('the client\'s Maximum Packet Size binds CONNACK and DISCONNECT', { concurrency: true }, () => {
  test('[MQTT-3.14.2-3] [MQTT-3.1.2-24] v5: a DISCONNECT whose Reason String would exceed the client\'s maximum goes without it', async (t) => {
    const h = setup(t)
    const c = await h.client(5, { clientId: 'small', properties: { maximumPacketSize: 64 } })
    c.publish(`bad/${'x'.repeat(100)}/+`, 'p')
    await c.waitClosed()
    const f = c.history.find((fr) => fr.type === PacketType.Disconnect)
    assert.ok(f !== undefined, 'a DISCONNECT was sent')
    assert.ok(f.raw.length <= 64, `DISCONNECT of ${f.raw.length} bytes`)
    const d = f.packet as DisconnectPacket
    assert.equal(d.reasonCode, ReasonCode.TopicNameInvalid)
    assert.equal(d.properties?.reasonString, undefined)
  })

  test('v5: without a Maximum Packet Size the same DISCONNECT keeps its Reason String', async (t) => {
    const h = setup(t)
    const c = await h.client(5, { clientId: 'big' })
    c.publish(`bad/${'x'.repeat(100)}/+`, 'p')
    const d = await c.expectProtocolClose([ReasonCode.TopicNameInvalid])
    assert.match(d?.properties?.reasonString ?? '', /invalid topic name/)
  })

  test('[MQTT-3.2.2-19] [MQTT-3.1.2-24] v5: a refusing CONNACK drops its Reason String to fit', async (t) => {
    const h = setup(t)
    const c = h.raw(5)
    const ack = await c.connect({ clientId: 'rs', properties: { maximumPacketSize: 10 }, will: { topic: '', payload: Buffer.from('x'), qos: 0, retain: false } })
    assert.equal(ack.reasonCode, ReasonCode.ProtocolError)
    assert.ok(c.history[0]!.raw.length <= 10, `CONNACK of ${c.history[0]!.raw.length} bytes`)
    await c.waitClosed()
  })

  test('[MQTT-3.2.2-19] v5: a CONNECT that fails to decode after its Maximum Packet Size gets a CONNACK within it', async (t) => {
    const h = setup(t)
    const c = h.raw(5)
    // Will topic with invalid UTF-8 (0xFF): malformed, after the properties were read.
    c.sendRaw(packet(0x10, utf8('MQTT'), 5, 0x06, u16(0), props(prop.u32(0x27, 10)), utf8('bad-utf8'), [0], u16(1), 0xff, bin(0x70)))
    await c.waitClosed()
    assert.deepEqual(c.history.map((f) => f.type), [PacketType.Connack])
    assert.ok(c.history[0]!.raw.length <= 10, `CONNACK of ${c.history[0]!.raw.length} bytes`)
    assert.equal((c.history[0]!.packet as ConnackPacket).reasonCode, ReasonCode.MalformedPacket)
  })

  test('[MQTT-3.2.2-19] v5: a CONNECT whose properties fail to decode (limit unknown) gets a CONNACK without Reason String', async (t) => {
    const h = setup(t)
    const c = h.raw(5)
    // Maximum Packet Size 10, then Receive Maximum 0: a Protocol Error inside the property block.
    c.sendRaw(packet(0x10, utf8('MQTT'), 5, 0x02, u16(0), props(prop.u32(0x27, 10), prop.u16(0x21, 0)), utf8('rm0')))
    await c.waitClosed()
    assert.deepEqual(c.history.map((f) => f.type), [PacketType.Connack])
    const ack = c.history[0]!.packet as ConnackPacket
    assert.ok(ack.reasonCode >= 0x80)
    assert.equal(ack.properties?.reasonString, undefined)
    assert.ok(c.history[0]!.raw.length <= 10)
  })

  test('[MQTT-3.1.2-24] [MQTT-3.2.2-16] v5: a CONNACK with an Assigned Client Identifier sheds what it may to fit', async (t) => {
    const h = setup(t)
    const full = await h.raw(5).connect({ clientId: '' })
    const fullSize = 2 + 2 + 1 + 3 * 2 + 3 + full.properties!.assignedClientIdentifier!.length // receive max, topic alias max, assigned id
    const limit = fullSize - 1
    const c = h.raw(5)
    const ack = await c.connect({ clientId: '', properties: { maximumPacketSize: limit } })
    assert.equal(ack.reasonCode, 0)
    assert.ok(c.history[0]!.raw.length <= limit, `CONNACK of ${c.history[0]!.raw.length} bytes > ${limit}`)
    assert.ok((ack.properties?.assignedClientIdentifier ?? '') !== '', 'the Assigned Client Identifier is kept')
    assert.equal(ack.properties?.receiveMaximum, 20, 'a limit the client must respect is kept')
    await c.sync()
  })

  test('[MQTT-3.1.2-24] v5: a CONNACK that cannot fit at all is not sent; the connection is closed and no session kept', async (t) => {
    const h = setup(t)
    const c = h.raw(5)
    c.send(c.connectPacket({ clientId: '', properties: { maximumPacketSize: 16 } }))
    await c.waitClosed()
    assert.deepEqual(c.history.map((f) => f.raw.length), [], 'nothing was sent')
    assert.equal(h.broker.sessions.size, 0)
  })
})
