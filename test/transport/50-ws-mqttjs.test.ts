/**
 * MQTT.js (the `mqtt` package) over ws:// against Midge's WebSocket listener: MQTT 3.1.1 and 5.0
 * publish/subscribe at QoS 0, 1 and 2, MQTT 3.1 (subprotocol mqttv3.1), a payload larger than a
 * socket read, and a message crossing from a WebSocket client to a TCP one on the same broker.
 * MQTT.js writes each packet in several stream writes, so every packet it sends already reaches
 * Midge split across WebSocket messages [MQTT-6.0.0-2].
 */
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { IClientOptions, IDisconnectPacket, IPublishPacket, MqttClient } from 'mqtt'
import { startServer } from '../../src/server/index.js'
import { silentLogger } from '../../src/observability/logger.js'
import { startTcpListener } from '../../src/transport/tcp.js'
import { startWsBroker, wsInfo, type WsBroker } from '../helpers/ws-harness.js'

async function client (t: TestContext, url: string, opts: IClientOptions): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts })
  t.after(() => c.endAsync(true))
  return c
}

async function broker (t: TestContext): Promise<WsBroker> {
  const b = await startWsBroker()
  t.after(() => b.close())
  return b
}

/** The next message `c` receives, failing after a guard timeout. */
function nextMessage (c: MqttClient): Promise<{ topic: string; payload: Buffer; packet: IPublishPacket }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message within 5 s')), 5000)
    c.once('message', (topic, payload, packet) => {
      clearTimeout(timer)
      resolve({ topic, payload, packet })
    })
  })
}

for (const protocolVersion of [4, 5] as const) {
  for (const qos of [0, 1, 2] as const) {
    test(`MQTT.js v${protocolVersion === 4 ? '3.1.1' : '5'} over ws://: publish and subscribe at QoS ${qos}`, async (t) => {
      const b = await broker(t)
      const sub = await client(t, b.url, { protocolVersion, clientId: `ws-sub-${protocolVersion}-${qos}` })
      const pub = await client(t, b.url, { protocolVersion, clientId: `ws-pub-${protocolVersion}-${qos}` })
      const granted = await sub.subscribeAsync('ws/test/+', { qos })
      assert.equal(granted[0]?.qos, qos)
      const got = nextMessage(sub)
      await pub.publishAsync('ws/test/a', `hello at qos ${qos}`, { qos })
      const m = await got
      assert.equal(m.topic, 'ws/test/a')
      assert.equal(m.payload.toString(), `hello at qos ${qos}`)
      assert.equal(m.packet.qos, qos)
    })
  }
}

test('MQTT.js MQTT 3.1 (protocolId MQIsdp, subprotocol mqttv3.1) connects and exchanges a message', async (t) => {
  const b = await broker(t)
  const opts: IClientOptions = { protocolId: 'MQIsdp', protocolVersion: 3 }
  const sub = await client(t, b.url, { ...opts, clientId: 'ws-31-sub' })
  const pub = await client(t, b.url, { ...opts, clientId: 'ws-31-pub' })
  await sub.subscribeAsync('v31', { qos: 1 })
  const got = nextMessage(sub)
  await pub.publishAsync('v31', 'old but fine', { qos: 1 })
  assert.equal((await got).payload.toString(), 'old but fine')
})

test('MQTT.js over ws:// with a path (/mqtt, as browsers use) and a 300 KB payload into and out of the broker', async (t) => {
  const b = await broker(t)
  const url = `${b.url}/mqtt`
  const sub = await client(t, url, { protocolVersion: 5, clientId: 'big-sub' })
  const pub = await client(t, url, { protocolVersion: 5, clientId: 'big-pub' })
  await sub.subscribeAsync('big', { qos: 1 })
  const payload = Buffer.alloc(300 * 1024)
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff
  const got = nextMessage(sub)
  await pub.publishAsync('big', payload, { qos: 1 })
  assert.ok((await got).payload.equals(payload), 'payload arrives unchanged')
})

test('a WebSocket publisher reaches a TCP subscriber of the same broker, and back', async (t) => {
  const b = await broker(t)
  const tcp = await startTcpListener(b.broker, { host: '127.0.0.1', port: 0, noDelay: true, maxConnections: -1, info: { ...wsInfo, name: 'tcp', protocol: 'mqtt' } })
  t.after(() => tcp.close())
  const overTcp = await client(t, `mqtt://127.0.0.1:${tcp.address().port}`, { protocolVersion: 5, clientId: 'tcp-side' })
  const overWs = await client(t, b.url, { protocolVersion: 4, clientId: 'ws-side' })
  await overTcp.subscribeAsync('to/tcp', { qos: 2 })
  await overWs.subscribeAsync('to/ws', { qos: 2 })
  const atTcp = nextMessage(overTcp)
  await overWs.publishAsync('to/tcp', 'from ws', { qos: 2 })
  assert.equal((await atTcp).payload.toString(), 'from ws')
  const atWs = nextMessage(overWs)
  await overTcp.publishAsync('to/ws', 'from tcp', { qos: 2 })
  assert.equal((await atWs).payload.toString(), 'from tcp')
})

test('a v5 MQTT.js client is told 0x8B Server shutting down when the broker closes, then the WebSocket closes', async (t) => {
  const b = await startWsBroker()
  const c = await mqtt.connectAsync(b.url, { protocolVersion: 5, reconnectPeriod: 0, clientId: 'shutdown' })
  t.after(() => c.endAsync(true))
  const disconnect = new Promise<IDisconnectPacket>((resolve) => c.once('disconnect', resolve))
  const closed = new Promise<void>((resolve) => c.once('close', () => resolve()))
  await b.close()
  assert.equal((await disconnect).reasonCode, 0x8b)
  await closed
})

test('startServer starts a listener planned with protocol websockets beside a TCP one (as `listener N` + `protocol websockets`)', async (t) => {
  const server = await startServer({
    broker: { logger: silentLogger(), sysInterval: 0 },
    noDelay: true,
    listeners: [
      { host: '127.0.0.1', port: 0, protocol: 'mqtt', maxConnections: -1, info: { ...wsInfo, name: 'tcp', protocol: 'mqtt' } },
      { host: '127.0.0.1', port: 0, protocol: 'websockets', maxConnections: -1, info: wsInfo },
    ],
  })
  t.after(() => server.close())
  const [tcpPort, wsPort] = server.listeners.map((l) => l.address().port)
  const overWs = await client(t, `ws://127.0.0.1:${wsPort}`, { protocolVersion: 5, clientId: 'planned-ws' })
  const overTcp = await client(t, `mqtt://127.0.0.1:${tcpPort}`, { protocolVersion: 5, clientId: 'planned-tcp' })
  await overWs.subscribeAsync('planned', { qos: 1 })
  const got = nextMessage(overWs)
  await overTcp.publishAsync('planned', 'via startServer', { qos: 1 })
  assert.equal((await got).payload.toString(), 'via startServer')
})
