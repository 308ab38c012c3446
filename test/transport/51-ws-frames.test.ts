/**
 * MQTT 5.0 section 6 on the wire, with a raw WebSocket peer and packets built by test/helpers/wire.ts:
 * packets need not line up with WebSocket messages or frames [MQTT-6.0.0-2], only binary frames carry
 * MQTT [MQTT-6.0.0-1], the broker answers in binary frames, the message size cap, and how connections
 * end (close codes).
 */
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import {
  Connack311Accepted, Disconnect, Pingreq, Pingresp, RawPeer, connect311, connect311WithWill, publish0, startWsBroker,
  suback0, subscribe0, type WsBroker,
} from '../helpers/ws-harness.js'
import { waitUntil } from '../helpers/broker-harness.js'

async function broker (t: TestContext, maxPacketSize = 0): Promise<WsBroker> {
  const b = await startWsBroker({ broker: { maxPacketSize } })
  t.after(() => b.close())
  return b
}

function peer (t: TestContext, b: WsBroker, protocols?: string[]): RawPeer {
  const p = new RawPeer(b.url, protocols)
  t.after(() => p.terminate())
  return p
}

test('[MQTT-6.0.0-2] several MQTT packets in one WebSocket message are all handled, in order', async (t) => {
  const b = await broker(t)
  const p = peer(t, b)
  await p.open()
  await p.send(Buffer.concat([connect311('many'), subscribe0(1, 'm/t'), publish0('m/t', 'own'), Pingreq]))
  const expected = Buffer.concat([Connack311Accepted, suback0(1), publish0('m/t', 'own'), Pingresp])
  const got = await p.waitForBytes(expected.length)
  assert.deepEqual(got.toString('hex'), expected.toString('hex'))
  assert.equal(p.textMessages, 0, 'the broker answers in binary frames only')
})

test('[MQTT-6.0.0-2] one MQTT packet split across WebSocket messages, one byte per message', async (t) => {
  const b = await broker(t)
  const p = peer(t, b)
  await p.open()
  const bytes = connect311('bytewise')
  for (let i = 0; i < bytes.length; i++) await p.send(bytes.subarray(i, i + 1))
  assert.deepEqual(await p.waitForBytes(4), Connack311Accepted)
})

test('[MQTT-6.0.0-2] one message fragmented into WebSocket continuation frames, split inside packets', async (t) => {
  const b = await broker(t)
  const p = peer(t, b)
  await p.open()
  const all = Buffer.concat([connect311('fragments'), Pingreq])
  // Frames: first (binary, FIN=0), continuation (FIN=0), last continuation (FIN=1).
  await p.send(all.subarray(0, 5), { fin: false })
  await p.send(all.subarray(5, all.length - 1), { fin: false })
  await p.send(all.subarray(all.length - 1), { fin: true })
  const expected = Buffer.concat([Connack311Accepted, Pingresp])
  assert.deepEqual(await p.waitForBytes(expected.length), expected)
})

test('[MQTT-6.0.0-1] a text frame before CONNECT closes the connection with 1003 (unsupported data)', async (t) => {
  const b = await broker(t)
  const p = peer(t, b)
  await p.open()
  await p.send('hello', { binary: false })
  const closed = await p.closed
  assert.equal(closed.code, 1003)
  assert.equal(p.bytesReceived(), 0, 'no CONNACK')
  await waitUntil(() => b.broker.connections.size === 0, 'the broker dropped the connection')
})

test('[MQTT-6.0.0-1] a text frame after CONNECT closes the connection; the will is published, as for any abnormal close', async (t) => {
  const b = await broker(t)
  const watcher = await mqtt.connectAsync(b.url, { reconnectPeriod: 0, clientId: 'watcher' })
  t.after(() => watcher.endAsync(true))
  await watcher.subscribeAsync('wills/#')
  const will = new Promise<string>((resolve) => watcher.once('message', (topic, payload) => resolve(`${topic} ${payload.toString()}`)))
  const p = peer(t, b)
  await p.open()
  await p.send(connect311WithWill('texter', 'wills/texter', 'gone'))
  assert.deepEqual(await p.waitForBytes(4), Connack311Accepted)
  // Even text that holds valid MQTT bytes is refused.
  await p.send(Pingreq.toString('latin1'), { binary: false })
  assert.equal((await p.closed).code, 1003)
  assert.equal(await will, 'wills/texter gone')
  assert.equal(p.bytesReceived(), 4, 'no PINGRESP to the text frame')
})

test('a message over the cap (max_packet_size 1000, so the 64 KiB floor) is refused with 1009 (message too big)', async (t) => {
  const b = await broker(t, 1000)
  const p = peer(t, b)
  await p.open()
  await p.send(connect311('big'))
  await p.waitForBytes(4)
  await p.send(Buffer.alloc(64 * 1024 + 1))
  assert.equal((await p.closed).code, 1009)
})

test('several small packets in one message are accepted although together they exceed max_packet_size', async (t) => {
  const b = await broker(t, 100)
  const p = peer(t, b)
  await p.open()
  const pings = Buffer.concat(Array.from({ length: 100 }, () => Pingreq))
  await p.send(Buffer.concat([connect311('batched'), pings]))
  const got = await p.waitForBytes(4 + 200)
  assert.deepEqual(got, Buffer.concat([Connack311Accepted, ...Array.from({ length: 100 }, () => Pingresp)]))
})

test('a packet over max_packet_size inside an accepted message is still refused by the broker', async (t) => {
  const b = await broker(t, 100)
  const p = peer(t, b)
  await p.open()
  await p.send(connect311('oversize'))
  await p.waitForBytes(4)
  await p.send(publish0('t', 'x'.repeat(200)))
  // The WebSocket layer let it through (64 KiB floor); the broker's decoder refused it and closed normally.
  assert.equal((await p.closed).code, 1000)
  await waitUntil(() => b.broker.connections.size === 0, 'the broker dropped the connection')
})

test('DISCONNECT ends the WebSocket with a close handshake, code 1000', async (t) => {
  const b = await broker(t)
  const p = peer(t, b)
  await p.open()
  await p.send(connect311('bye'))
  await p.waitForBytes(4)
  await p.send(Disconnect)
  assert.equal((await p.closed).code, 1000)
  await waitUntil(() => b.broker.connections.size === 0, 'the broker dropped the connection')
})

test('a client that drops the TCP connection without a close frame is cleaned up', async (t) => {
  const b = await broker(t)
  const p = peer(t, b)
  await p.open()
  await p.send(connect311('dropper'))
  await p.waitForBytes(4)
  await p.terminate()
  await waitUntil(() => b.broker.connections.size === 0, 'the broker dropped the connection')
})

test('closing the listener ends open WebSockets with 1001 (going away) and resolves', async (t) => {
  const b = await broker(t)
  const p = peer(t, b)
  await p.open()
  await p.send(connect311('listener-close'))
  await p.waitForBytes(4)
  await b.listener.close()
  assert.equal((await p.closed).code, 1001)
})

test('a subscriber that stops reading: backpressure reaches the broker (QoS 0 dropped past its queue), and drain resumes delivery', async (t) => {
  const b = await startWsBroker({ broker: { maxQueuedMessages: 10 } })
  t.after(() => b.close())
  const sub = peer(t, b)
  await sub.open()
  await sub.send(Buffer.concat([connect311('slow-reader'), subscribe0(1, 'flood')]))
  await sub.waitForBytes(4 + 5)
  sub.ws.pause()
  const pub = peer(t, b)
  await pub.open()
  await pub.send(connect311('flooder'))
  await pub.waitForBytes(4)
  const message = publish0('flood', 'x'.repeat(100 * 1024))
  for (let sent = 0; b.broker.stats.messagesDropped === 0; sent++) {
    assert.ok(sent < 500, 'nothing dropped after 50 MB: backpressure does not reach the broker')
    await pub.send(message)
  }
  const conn = [...b.broker.connections].find((c) => c.clientId === 'slow-reader')
  assert.ok(conn !== undefined && conn.unsentBytes > 0, 'unsent bytes are visible to the broker')

  sub.ws.resume()
  await waitUntil(() => conn.stream.writableLength === 0 && conn.session?.queueLength === 0, 'the queue drained after the reader resumed', 20_000)
  const marker = publish0('flood', 'done')
  await pub.send(marker)
  await waitUntil(() => sub.stream().subarray(-marker.length).equals(marker), 'the marker arrived last', 20_000)
})
