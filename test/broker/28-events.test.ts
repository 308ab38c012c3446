/**
 * The broker's events for the host application (src/broker/events.ts): connected, disconnected, subscribed,
 * unsubscribed, published, delivered, dropped. Listeners run after the step that caused the event, a listener
 * that throws is logged and harms nothing, and with no listener the emitting code is skipped entirely.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { BrokerEventMap, BrokerEventName } from '../../src/broker/events.js'
import { Logger } from '../../src/observability/logger.js'
import { PacketType } from '../../src/protocol/constants.js'
import { setup } from '../helpers/broker-harness.js'

type Seen = Array<[BrokerEventName, string]>

/** Records every event as one line: name and the facts a host application would look at. */
function record (events: { on: <K extends BrokerEventName>(e: K, fn: (...a: BrokerEventMap[K]) => void) => void }): Seen {
  const seen: Seen = []
  events.on('connected', (c) => seen.push(['connected', c.clientId]))
  events.on('disconnected', (c, why) => seen.push(['disconnected', `${c.clientId} ${why}`]))
  events.on('subscribed', (c, subs) => seen.push(['subscribed', `${c.clientId} ${subs.map((s) => `${s.topic}@${s.qos}`).join(',')}`]))
  events.on('unsubscribed', (c, topics) => seen.push(['unsubscribed', `${c.clientId} ${topics.join(',')}`]))
  events.on('published', (m, c) => seen.push(['published', `${m.topic} ${m.payload.toString()} q${m.qos}${m.retain ? ' r' : ''} from ${c?.clientId ?? '(broker)'}`]))
  events.on('delivered', (m, c) => seen.push(['delivered', `${m.topic} to ${c.clientId}`]))
  events.on('dropped', (m, c, why) => seen.push(['dropped', `${m.topic} for ${c.clientId}: ${why}`]))
  return seen
}

/** Lets queued event listeners run (they run on a microtask after the broker's step). */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r))

test('connected, subscribed, published, delivered, unsubscribed and disconnected, in order, with who and what', async (t) => {
  const h = setup(t)
  const seen = record(h.broker.events)
  const sub = await h.client(5, { clientId: 'sub' })
  await sub.subscribe(['a/#', 'b'], { qos: 1 })
  const pub = await h.client(4, { clientId: 'pub' })
  await pub.publishAcked('a/1', 'hello', { qos: 1, retain: true })
  await sub.publishOn('a/1')
  await sub.unsubscribe(['b', 'never'])
  h.broker.publish('a/app', Buffer.from('from app'), 0, false, undefined)
  await sub.publishOn('a/app')
  sub.send({ type: PacketType.Disconnect, reasonCode: 0 })
  await sub.waitClosed()
  await settle()
  assert.deepEqual(seen, [
    ['connected', 'sub'],
    ['subscribed', 'sub a/#@1,b@1'],
    ['connected', 'pub'],
    ['published', 'a/1 hello q1 r from pub'],
    ['delivered', 'a/1 to sub'],
    ['unsubscribed', 'sub b'],
    ['published', 'a/app from app q0 from (broker)'],
    ['delivered', 'a/app to sub'],
    ['disconnected', 'sub disconnected'],
  ])
})

test('dropped: a full queue and an expired message, each for the subscriber concerned', async (t) => {
  const h = setup(t, { maxQueuedMessages: 1 })
  const seen = record(h.broker.events)
  const sub = await h.client(5, { clientId: 'sub', cleanStart: true, properties: { sessionExpiryInterval: 60 } })
  await sub.subscribe('q', { qos: 1 })
  sub.send({ type: PacketType.Disconnect, reasonCode: 0 })
  await sub.waitClosed()
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('q', 'kept', { qos: 1, properties: { messageExpiryInterval: 1 } })
  await pub.publishAcked('q', 'over', { qos: 1 })
  await settle()
  assert.deepEqual(seen.filter(([e]) => e === 'dropped'), [['dropped', 'q for sub: its queue is full (max_queued_messages 1)']])
  // The one queued expires before its client is back.
  const realNow = h.broker.now.bind(h.broker)
  h.broker.now = () => realNow() + 5000
  const back = await h.client(5, { clientId: 'sub', cleanStart: false, properties: { sessionExpiryInterval: 60 } })
  await back.expectNothing(PacketType.Publish, 'an expired message')
  await settle()
  assert.deepEqual(seen.filter(([e]) => e === 'dropped'), [
    ['dropped', 'q for sub: its queue is full (max_queued_messages 1)'],
    ['dropped', 'q for sub: it expired while queued'],
  ])
})

test('dropped: a message larger than the client\'s Maximum Packet Size', async (t) => {
  const h = setup(t)
  const seen = record(h.broker.events)
  const sub = await h.client(5, { clientId: 'small', properties: { maximumPacketSize: 64 } })
  await sub.subscribe('big', { qos: 1 })
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('big', 'x'.repeat(200), { qos: 1 })
  await pub.publishAcked('big', 'y'.repeat(200), { qos: 0 })
  await sub.expectNothing(PacketType.Publish)
  await settle()
  assert.deepEqual(seen.filter(([e]) => e === 'dropped'), [
    ['dropped', 'big for small: larger than the client\'s Maximum Packet Size 64'],
    ['dropped', 'big for small: larger than the client\'s Maximum Packet Size 64'],
  ])
})

test('a listener that throws is logged; other listeners and the broker carry on; a listener may publish', async (t) => {
  const log: string[] = []
  const h = setup(t, { logger: new Logger({ sinks: [{ write: (l) => { log.push(l) } }], timestamp: false }) })
  h.broker.events.on('published', () => { throw new Error('listener bug') })
  const echoed: string[] = []
  h.broker.events.on('published', (m) => {
    echoed.push(m.topic)
    if (m.topic === 'in') h.broker.publish('out', m.payload, 0, false, undefined)
  })
  const sub = await h.client(5, { clientId: 'sub' })
  await sub.subscribe('out')
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('in', 'ping', { qos: 1 })
  assert.equal((await sub.publishOn('out')).payload.toString(), 'ping')
  assert.deepEqual(echoed, ['in', 'out'])
  assert.ok(log.some((l) => l.includes("A 'published' listener threw") && l.includes('listener bug')), log.join('\n'))
})

test('a listener that throws null or a string is logged too, and the listeners after it still run', async (t) => {
  const log: string[] = []
  const h = setup(t, { logger: new Logger({ sinks: [{ write: (l) => { log.push(l) } }], timestamp: false }) })
  // eslint-disable-next-line no-throw-literal
  h.broker.events.on('published', () => { throw null })
  h.broker.events.on('published', () => { throw 'a string' })
  const seen: string[] = []
  h.broker.events.on('published', (m) => { seen.push(m.topic) })
  h.broker.publish('one', Buffer.from('1'), 0, false, undefined)
  h.broker.publish('two', Buffer.from('2'), 0, false, undefined)
  await settle()
  assert.deepEqual(seen, ['one', 'two'])
  assert.ok(log.some((l) => l.includes("A 'published' listener threw: null")), log.join('\n'))
  assert.ok(log.some((l) => l.includes("A 'published' listener threw: a string")), log.join('\n'))
})

test('no listener, no cost: the per-event list is undefined until on(), and again after the last off()', (t) => {
  const h = setup(t)
  const ev = h.broker.events
  for (const name of Object.keys(ev.listeners)) assert.equal(ev.listeners[name as BrokerEventName], undefined, name)
  const fn = (): void => {}
  ev.on('delivered', fn)
  assert.equal(ev.listeners.delivered?.length, 1)
  ev.off('delivered', fn)
  assert.equal(ev.listeners.delivered, undefined)
  assert.throws(() => ev.on('publish' as BrokerEventName, fn), /unknown broker event 'publish'/)
})
