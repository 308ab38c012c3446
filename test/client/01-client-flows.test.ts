/**
 * MqttClient against a scripted server (mqtt-packet based): QoS 1/2 flows both ways, Receive Maximum, topic
 * aliases, keep alive, reconnect with re-sent in-flight messages, refusals, WebSockets.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { IPublishPacket, IPubrelPacket, ISubscribePacket, IUnsubscribePacket } from 'mqtt-packet'
import { MqttClient, ClientErrorCode } from '../../src/client/index.js'
import type { ClientError } from '../../src/client/index.js'
import type { PublishPacket } from '../../src/protocol/index.js'
import { FakeBroker } from './support/fake-broker.js'

async function setup (opts: Partial<ConstructorParameters<typeof MqttClient>[0]> = {}): Promise<{ broker: FakeBroker; client: MqttClient }> {
  const broker = await FakeBroker.tcp()
  const client = new MqttClient({ host: '127.0.0.1', port: broker.port, clientId: 'c1', ...opts })
  return { broker, client }
}

async function teardown (broker: FakeBroker, client: MqttClient): Promise<void> {
  client.end()
  await broker.close()
}

const pending = Symbol('pending')
/** The promise's state right now, without waiting for it. */
async function peek<T> (p: Promise<T>): Promise<T | typeof pending> {
  return Promise.race([p, new Promise<typeof pending>((resolve) => setImmediate(() => resolve(pending)))])
}

for (const version of [4, 5] as const) {
  test(`v${version}: QoS 1 publish resolves on PUBACK; QoS 2 on PUBCOMP after PUBREC/PUBREL`, async () => {
    const { broker, client } = await setup({ protocolVersion: version })
    await client.connect()
    const conn = await broker.conn()
    const p1 = client.publish('t/1', 'one', { qos: 1 })
    const pub1 = await conn.next('publish') as IPublishPacket
    assert.equal(pub1.qos, 1)
    assert.equal(pub1.payload.toString(), 'one')
    assert.equal(await peek(p1), pending)
    conn.send({ cmd: 'puback', messageId: pub1.messageId })
    await p1

    const p2 = client.publish('t/2', 'two', { qos: 2, retain: true })
    const at = conn.packets.length
    const pub2 = await conn.next('publish', at) as IPublishPacket
    assert.equal(pub2.retain, true)
    conn.send({ cmd: 'pubrec', messageId: pub2.messageId })
    const rel = await conn.next('pubrel') as IPubrelPacket
    assert.equal(rel.messageId, pub2.messageId)
    assert.equal(await peek(p2), pending, 'not done before PUBCOMP')
    conn.send({ cmd: 'pubcomp', messageId: pub2.messageId })
    await p2
    await teardown(broker, client)
  })

  test(`v${version}: incoming QoS 2 is acknowledged with PUBREC and delivered once, at PUBREL`, async () => {
    const { broker, client } = await setup({ protocolVersion: version })
    const got: PublishPacket[] = []
    client.on('message', (m: PublishPacket) => got.push(m))
    await client.connect()
    const conn = await broker.conn()
    conn.send({ cmd: 'publish', topic: 'in/2', payload: Buffer.from('x'), qos: 2, messageId: 7, retain: false, dup: false })
    assert.equal(((await conn.next('pubrec')) as { messageId: number }).messageId, 7)
    assert.equal(got.length, 0, 'held until PUBREL')
    conn.send({ cmd: 'publish', topic: 'in/2', payload: Buffer.from('x'), qos: 2, messageId: 7, retain: false, dup: true })
    await once(conn, 'packet')
    conn.send({ cmd: 'pubrel', messageId: 7 })
    assert.equal(((await conn.next('pubcomp')) as { messageId: number }).messageId, 7)
    assert.equal(got.length, 1)
    assert.equal(got[0]!.topic, 'in/2')

    conn.send({ cmd: 'publish', topic: 'in/1', payload: Buffer.from('y'), qos: 1, messageId: 9, retain: false, dup: false })
    assert.equal(((await conn.next('puback')) as { messageId: number }).messageId, 9)
    await teardown(broker, client)
  })
}

test('[MQTT-4.9.0-2] the client sends no more QoS 1/2 PUBLISH than the server\'s Receive Maximum', async () => {
  const { broker, client } = await setup({ protocolVersion: 5 })
  broker.connack = () => ({ cmd: 'connack', sessionPresent: false, reasonCode: 0, properties: { receiveMaximum: 2 } })
  await client.connect()
  const conn = await broker.conn()
  const all = [1, 2, 3, 4, 5].map((n) => client.publish('rm', String(n), { qos: 1 }))
  await conn.next('publish')
  const sub = client.subscribe('after') // not counted against the quota, but queued behind the waiting publishes
  await new Promise((resolve) => setTimeout(resolve, 50)) // a window for a wrong third PUBLISH to show up
  assert.equal(conn.count('publish'), 2)
  // From now on acknowledge every PUBLISH, those already received and those to come.
  const acked = new Set<number>()
  const ack = (p: IPublishPacket): void => {
    if (acked.has(p.messageId!)) return
    acked.add(p.messageId!)
    conn.send({ cmd: 'puback', messageId: p.messageId })
  }
  const published = (): IPublishPacket[] => conn.packets.filter((x) => x.cmd === 'publish') as IPublishPacket[]
  ack(published()[0]!)
  while (conn.count('publish') < 3) await once(conn, 'packet')
  assert.equal(conn.count('publish'), 3)
  conn.on('packet', (x: { cmd: string }) => { if (x.cmd === 'publish') ack(x as IPublishPacket) })
  for (const x of published()) ack(x)
  await Promise.all(all)
  const s = await conn.next('subscribe') as ISubscribePacket
  conn.send({ cmd: 'suback', messageId: s.messageId, granted: [0] })
  await sub
  await teardown(broker, client)
})

test('incoming topic aliases (v5) are resolved; an unknown alias closes with DISCONNECT', async () => {
  const { broker, client } = await setup({ protocolVersion: 5, properties: { topicAliasMaximum: 5 } })
  const got: string[] = []
  client.on('message', (m: PublishPacket) => got.push(`${m.topic}=${m.payload.toString()}`))
  await client.connect()
  const conn = await broker.conn()
  conn.send({ cmd: 'publish', topic: 'long/topic/name', payload: Buffer.from('1'), qos: 0, retain: false, dup: false, properties: { topicAlias: 3 } })
  conn.send({ cmd: 'publish', topic: '', payload: Buffer.from('2'), qos: 0, retain: false, dup: false, properties: { topicAlias: 3 } })
  while (got.length < 2) await once(client, 'message')
  assert.deepEqual(got, ['long/topic/name=1', 'long/topic/name=2'])
  conn.send({ cmd: 'publish', topic: '', payload: Buffer.from('3'), qos: 0, retain: false, dup: false, properties: { topicAlias: 4 } })
  const d = await conn.next('disconnect') as { reasonCode: number }
  assert.equal(d.reasonCode, 0x82)
  await teardown(broker, client)
})

test('keep alive: PINGREQ when idle; no PINGRESP closes the connection', async () => {
  const { broker, client } = await setup({ keepalive: 1 })
  await client.connect()
  const conn = await broker.conn()
  await conn.next('pingreq')
  conn.send({ cmd: 'pingresp' })
  const at = conn.packets.length
  await conn.next('pingreq', at) // the next one, left unanswered
  await once(client, 'close')
  assert.equal(client.connected, false)
  await teardown(broker, client)
})

test('reconnect: an unacknowledged QoS 1 PUBLISH is re-sent with DUP and the same id', async () => {
  const { broker, client } = await setup({ reconnectPeriod: 20, clean: false })
  broker.connack = (c) => ({ cmd: 'connack', sessionPresent: broker.conns.indexOf(c) > 0, returnCode: 0 })
  await client.connect()
  const first = await broker.conn(0)
  const p = client.publish('r', 'again', { qos: 1 })
  const pub = await first.next('publish') as IPublishPacket
  first.destroy()
  const second = await broker.conn(1)
  const again = await second.next('publish') as IPublishPacket
  assert.equal(again.dup, true)
  assert.equal(again.messageId, pub.messageId)
  assert.equal(again.payload.toString(), 'again')
  second.send({ cmd: 'puback', messageId: again.messageId })
  await p
  await teardown(broker, client)
})

test('subscribe and unsubscribe resolve with SUBACK/UNSUBACK; identifiers are unique while in use', async () => {
  const { broker, client } = await setup({ protocolVersion: 5 })
  await client.connect()
  const conn = await broker.conn()
  const s1 = client.subscribe([{ topicFilter: 'a/#', qos: 1, noLocal: true, retainHandling: 2 }, { topicFilter: 'b', qos: 2 }])
  const s2 = client.subscribe('c')
  const u = client.unsubscribe(['a/#'])
  while (conn.count('unsubscribe') < 1) await once(conn, 'packet')
  const subs = conn.packets.filter((x) => x.cmd === 'subscribe') as ISubscribePacket[]
  const unsub = conn.packets.find((x) => x.cmd === 'unsubscribe') as IUnsubscribePacket
  assert.equal(new Set([...subs.map((x) => x.messageId), unsub.messageId]).size, 3)
  assert.deepEqual(subs[0]!.subscriptions.map((x) => [x.topic, x.qos, x.nl, x.rh]), [['a/#', 1, true, 2], ['b', 2, false, 0]])
  conn.send({ cmd: 'suback', messageId: subs[0]!.messageId, granted: [1, 0x87] })
  conn.send({ cmd: 'suback', messageId: subs[1]!.messageId, granted: [0] })
  conn.send({ cmd: 'unsuback', messageId: unsub.messageId, granted: [0] } as never)
  assert.deepEqual((await s1).reasonCodes, [1, 0x87])
  assert.deepEqual((await s2).reasonCodes, [0])
  await u
  await teardown(broker, client)
})

test('a refused CONNACK rejects connect() with the code, and nothing reconnects', async () => {
  for (const [version, code] of [[4, 5], [5, 0x87]] as const) {
    const { broker, client } = await setup({ protocolVersion: version, reconnectPeriod: 10 })
    broker.connack = () => (version === 5 ? { cmd: 'connack', sessionPresent: false, reasonCode: code } : { cmd: 'connack', sessionPresent: false, returnCode: code })
    const err = await client.connect().then(() => null, (e: ClientError) => e)
    assert.equal(err?.code, ClientErrorCode.ConnectionRefused)
    assert.equal(err?.reasonCode, code)
    assert.equal(broker.conns.length, 1)
    await teardown(broker, client)
  }
})

test('publish before connect() and after end() is refused with CLIENT_ERR_NOT_CONNECTED', async () => {
  const { broker, client } = await setup()
  await assert.rejects(client.publish('x', 'y'), { code: ClientErrorCode.NotConnected })
  await client.connect()
  await client.disconnect()
  await assert.rejects(client.publish('x', 'y'), { code: ClientErrorCode.NotConnected })
  const conn = await broker.conn()
  assert.equal(conn.packets[conn.packets.length - 1]!.cmd, 'disconnect')
  await teardown(broker, client)
})

test('WebSocket transport: CONNECT, PUBLISH and SUBACK over ws:// with the mqtt subprotocol', async () => {
  const broker = await FakeBroker.ws()
  const client = new MqttClient({ host: '127.0.0.1', port: broker.port, transport: 'ws', protocolVersion: 5 })
  await client.connect()
  const conn = await broker.conn()
  const p = client.publish('ws/t', Buffer.from([0, 1, 2]), { qos: 1 })
  const pub = await conn.next('publish') as IPublishPacket
  assert.deepEqual([...pub.payload as Buffer], [0, 1, 2])
  conn.send({ cmd: 'puback', messageId: pub.messageId })
  await p
  await client.disconnect()
  await broker.close()
})
