/**
 * Interop with MQTT.js (the `mqtt` npm package), the most used Node client, over TCP against Midge
 * started with startServer on a loopback port: MQTT 3.1.1 and 5.0 publish/subscribe at QoS 0/1/2,
 * retained messages, wills, persistent sessions, shared subscriptions, v5 topic aliases, user
 * properties, request/response properties and subscription identifiers. MQTT 3.1 once.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import mqtt from 'mqtt'
import type { IClientOptions, IConnackPacket, IPublishPacket, MqttClient } from 'mqtt'
import { startTcpBroker, type TcpBroker } from '../helpers/broker-harness.js'

interface Received {
  topic: string
  payload: string
  packet: IPublishPacket
}

/** An MQTT.js client plus a queue of the messages it received, and its CONNACK. */
class Peer {
  readonly client: MqttClient
  readonly connack: IConnackPacket
  readonly inbox: Received[] = []
  private waiters: Array<{ topic: string; resolve: (r: Received) => void }> = []

  constructor (client: MqttClient, connack: IConnackPacket) {
    this.client = client
    this.connack = connack
    client.on('message', (topic, payload, packet) => {
      const r: Received = { topic, payload: payload.toString(), packet }
      const i = this.waiters.findIndex((w) => w.topic === topic)
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(r)
      else this.inbox.push(r)
    })
  }

  /** The next message on `topic` (fails after timeoutMs). */
  message (topic: string, timeoutMs = 5000): Promise<Received> {
    const i = this.inbox.findIndex((r) => r.topic === topic)
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]!)
    return new Promise((resolve, reject) => {
      const w = {
        topic,
        resolve: (r: Received) => {
          clearTimeout(timer)
          resolve(r)
        },
      }
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w)
        reject(new Error(`no message on ${topic} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiters.push(w)
    })
  }
}

async function start (t: TestContext): Promise<TcpBroker> {
  const b = await startTcpBroker()
  t.after(() => b.close())
  return b
}

/** Connects (no automatic reconnect) and resolves with the client and its CONNACK; closed at test end. */
function open (t: TestContext, b: TcpBroker, opts: IClientOptions): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(`mqtt://127.0.0.1:${b.port}`, { reconnectPeriod: 0, connectTimeout: 5000, ...opts })
    t.after(() => client.endAsync(true))
    client.once('connect', (connack) => resolve(new Peer(client, connack)))
    client.once('error', reject)
  })
}

for (const protocolVersion of [4, 5] as const) {
  const v = `v${protocolVersion === 4 ? '3.1.1' : '5'}`

  test(`MQTT.js ${v}: publish/subscribe at QoS 0, 1 and 2 (delivered at min QoS)`, async (t) => {
    const b = await start(t)
    const sub2 = await open(t, b, { protocolVersion, clientId: 'sub2' })
    const sub1 = await open(t, b, { protocolVersion, clientId: 'sub1' })
    const grants = await sub2.client.subscribeAsync('js/qos', { qos: 2 })
    assert.equal(grants[0]!.qos, 2)
    await sub1.client.subscribeAsync('js/qos', { qos: 1 })
    const pub = await open(t, b, { protocolVersion, clientId: 'pub' })
    for (const qos of [0, 1, 2] as const) {
      await pub.client.publishAsync('js/qos', `q${qos}`, { qos })
      const m2 = await sub2.message('js/qos')
      const m1 = await sub1.message('js/qos')
      assert.equal(m2.payload, `q${qos}`)
      assert.equal(m2.packet.qos, qos)
      assert.equal(m1.packet.qos, Math.min(qos, 1))
    }
  })

  test(`MQTT.js ${v}: a retained message reaches a later subscriber with retain=true`, async (t) => {
    const b = await start(t)
    const pub = await open(t, b, { protocolVersion, clientId: 'pub' })
    await pub.client.publishAsync('js/ret', 'kept', { qos: 1, retain: true })
    const sub = await open(t, b, { protocolVersion, clientId: 'sub' })
    await sub.client.subscribeAsync('js/#', { qos: 1 })
    const m = await sub.message('js/ret')
    assert.equal(m.payload, 'kept')
    assert.equal(m.packet.retain, true)
  })

  test(`MQTT.js ${v}: the will of a client whose socket dies is published`, async (t) => {
    const b = await start(t)
    const watch = await open(t, b, { protocolVersion, clientId: 'watch' })
    await watch.client.subscribeAsync('js/will', { qos: 1 })
    const dying = await open(t, b, { protocolVersion, clientId: 'dying', will: { topic: 'js/will', payload: Buffer.from('gone'), qos: 1, retain: false } })
    dying.client.stream.destroy()
    const m = await watch.message('js/will')
    assert.equal(m.payload, 'gone')
  })

  test(`MQTT.js ${v}: a persistent session keeps subscriptions and queues QoS 1 messages while offline`, async (t) => {
    const b = await start(t)
    const persistent: IClientOptions = protocolVersion === 5
      ? { protocolVersion, clientId: 'keeper', clean: false, properties: { sessionExpiryInterval: 300 } }
      : { protocolVersion, clientId: 'keeper', clean: false }
    const first = await open(t, b, persistent)
    assert.equal(first.connack.sessionPresent, false)
    await first.client.subscribeAsync('js/offline', { qos: 1 })
    await first.client.endAsync()
    const pub = await open(t, b, { protocolVersion, clientId: 'pub' })
    for (const m of ['a', 'b', 'c']) await pub.client.publishAsync('js/offline', m, { qos: 1 })
    const again = await open(t, b, persistent)
    assert.equal(again.connack.sessionPresent, true)
    const got = []
    for (let i = 0; i < 3; i++) got.push((await again.message('js/offline')).payload)
    assert.deepEqual(got, ['a', 'b', 'c'])
  })

  test(`MQTT.js ${v}: a shared subscription splits messages between two clients`, async (t) => {
    const b = await start(t)
    const a = await open(t, b, { protocolVersion, clientId: 'a' })
    const c = await open(t, b, { protocolVersion, clientId: 'c' })
    await a.client.subscribeAsync('$share/grp/js/shared', { qos: 1 })
    await c.client.subscribeAsync('$share/grp/js/shared', { qos: 1 })
    const pub = await open(t, b, { protocolVersion, clientId: 'pub' })
    for (let i = 0; i < 6; i++) await pub.client.publishAsync('js/shared', String(i), { qos: 1 })
    const seen: string[] = []
    for (let i = 0; i < 3; i++) {
      seen.push((await a.message('js/shared')).payload)
      seen.push((await c.message('js/shared')).payload)
    }
    assert.deepEqual(seen.sort(), ['0', '1', '2', '3', '4', '5'])
  })
}

test('MQTT.js v5: topic aliases set and used by the client arrive with the full topic name', async (t) => {
  const b = await start(t)
  const sub = await open(t, b, { protocolVersion: 5, clientId: 'sub', properties: { topicAliasMaximum: 10 } })
  await sub.client.subscribeAsync('js/alias/#')
  const pub = await open(t, b, { protocolVersion: 5, clientId: 'pub' })
  assert.ok((pub.connack.properties?.topicAliasMaximum ?? 0) > 0, 'Midge announces a Topic Alias Maximum')
  await pub.client.publishAsync('js/alias/long/topic/name', 'first', { properties: { topicAlias: 1 } })
  await pub.client.publishAsync('', 'second', { properties: { topicAlias: 1 } })
  const m1 = await sub.message('js/alias/long/topic/name')
  const m2 = await sub.message('js/alias/long/topic/name')
  assert.deepEqual([m1.payload, m2.payload], ['first', 'second'])
})

test('MQTT.js v5: autoUseTopicAlias works against Midge', async (t) => {
  const b = await start(t)
  const sub = await open(t, b, { protocolVersion: 5, clientId: 'sub' })
  await sub.client.subscribeAsync('js/auto')
  const pub = await open(t, b, { protocolVersion: 5, clientId: 'pub', autoAssignTopicAlias: true })
  for (const p of ['1', '2', '3']) await pub.client.publishAsync('js/auto', p, { qos: 1 })
  const got = []
  for (let i = 0; i < 3; i++) got.push((await sub.message('js/auto')).payload)
  assert.deepEqual(got, ['1', '2', '3'])
})

test('MQTT.js v5: user properties, response topic, correlation data and content type pass through unchanged', async (t) => {
  const b = await start(t)
  const sub = await open(t, b, { protocolVersion: 5, clientId: 'sub' })
  await sub.client.subscribeAsync('js/req', { qos: 1 })
  const pub = await open(t, b, { protocolVersion: 5, clientId: 'pub' })
  await pub.client.publishAsync('js/req', '{"q":1}', {
    qos: 1,
    properties: {
      userProperties: { trace: 'abc', tags: ['x', 'y'] },
      responseTopic: 'js/resp',
      correlationData: Buffer.from([9, 8, 7]),
      contentType: 'application/json',
      payloadFormatIndicator: true,
    },
  })
  const m = await sub.message('js/req')
  const p = m.packet.properties!
  assert.deepEqual({ ...p.userProperties }, { trace: 'abc', tags: ['x', 'y'] })
  assert.equal(p.responseTopic, 'js/resp')
  assert.deepEqual([...(p.correlationData ?? [])], [9, 8, 7])
  assert.equal(p.contentType, 'application/json')
  assert.equal(p.payloadFormatIndicator, true)
})

test('MQTT.js v5: subscription identifiers come back on matching messages', async (t) => {
  const b = await start(t)
  const sub = await open(t, b, { protocolVersion: 5, clientId: 'sub' })
  await sub.client.subscribeAsync('js/sid/#', { qos: 1, properties: { subscriptionIdentifier: 42 } })
  const pub = await open(t, b, { protocolVersion: 5, clientId: 'pub' })
  await pub.client.publishAsync('js/sid/x', 'y', { qos: 1 })
  const m = await sub.message('js/sid/x')
  const ids = m.packet.properties?.subscriptionIdentifier
  assert.deepEqual(Array.isArray(ids) ? ids : [ids], [42])
})

test('MQTT.js v5: No Local keeps a client\'s own messages from coming back', async (t) => {
  const b = await start(t)
  const c = await open(t, b, { protocolVersion: 5, clientId: 'self' })
  await c.client.subscribeAsync('js/nl', { qos: 1, nl: true })
  await c.client.publishAsync('js/nl', 'mine', { qos: 1 })
  const other = await open(t, b, { protocolVersion: 5, clientId: 'other' })
  await other.client.publishAsync('js/nl', 'theirs', { qos: 1 })
  const m = await c.message('js/nl')
  assert.equal(m.payload, 'theirs')
})

test('MQTT.js v3.1 (MQIsdp): connect, subscribe and receive', async (t) => {
  const b = await start(t)
  const c = await open(t, b, { protocolVersion: 3, protocolId: 'MQIsdp', clientId: 'old' })
  await c.client.subscribeAsync('js/v31', { qos: 1 })
  await c.client.publishAsync('js/v31', 'hi', { qos: 1 })
  assert.equal((await c.message('js/v31')).payload, 'hi')
})
