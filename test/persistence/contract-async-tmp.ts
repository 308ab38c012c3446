/**
 * The Store contract (src/persistence/store.ts): what every backend must do, written once and run
 * against each of them (aedes-persistence `abstract.js` style). A backend's test file calls
 * `storeContract({ name, place })`, where `place(t)` makes a fresh, empty location and returns a
 * function that opens a NEW Store instance on it, as a restarted broker would.
 *
 * "Restart" here is deliberately the crash kind: the previous instance is not closed before the next
 * one loads, because a broker killed with SIGKILL never closes its store. What was committed must be
 * there; what was only buffered may or may not be (a backend may write through), so that is not tested.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import type { RecoveredState, Store, StoredMessage, StoredOutgoing, StoredSession, StoredSubscription } from '../../src/persistence/store.js'

export interface StoreBackend {
  name: string
  /** A fresh empty location; the returned function opens a new Store instance on it. */
  place(t: TestContext): () => any
}

/** Opens stores on one place and closes every instance when the test ends. */
class Places {
  private readonly open: () => any
  private readonly all: any[] = []

  constructor(t: TestContext, backend: StoreBackend) {
    this.open = backend.place(t)
    t.after(async () => {
      for (const s of this.all.reverse()) await s.close()
    })
  }

  /** A new instance, loaded. */
  async start(): Promise<{ store: any; state: RecoveredState }> {
    const store = this.open()
    this.all.push(store)
    return { store, state: await store.load() }
  }
}

const msg = (id: number, topic: string, over: Partial<StoredMessage> = {}): StoredMessage => ({
  id, topic, payload: Buffer.from(`payload-${id}`), qos: 1, retain: false, properties: undefined, expiresAt: 0, origin: 'pub', ...over,
})

const sub = (key: string, over: Partial<StoredSubscription> = {}): StoredSubscription => ({
  key, filter: key, group: '', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0, ...over,
})

const out = (oid: number, messageId: number, over: Partial<StoredOutgoing> = {}): StoredOutgoing => ({
  oid, messageId, qos: 1, retain: false, subscriptionIds: undefined, packetId: 0, released: false, ...over,
})

function session(state: RecoveredState, clientId: string): StoredSession {
  const s = state.sessions.find((x) => x.clientId === clientId)
  assert.ok(s !== undefined, `session ${clientId} was not recovered (sessions: ${state.sessions.map((x) => x.clientId).join(', ') || 'none'})`)
  return s
}

/** The parts of a message the broker uses, in a form deepEqual compares well. */
function plain(m: StoredMessage | undefined): unknown {
  if (m === undefined) return undefined
  return { ...m, payload: m.payload.toString('hex') }
}

export function storeContract(backend: StoreBackend): void {
  const name = (s: string): string => `[store contract: ${backend.name}] ${s}`

  test(name('an empty place loads as an empty state'), async (t) => {
    const { state } = (await new Places(t, backend).start())
    assert.deepEqual(state.sessions, [])
    assert.deepEqual(state.retained, [])
    assert.equal(state.messages.size, 0)
    assert.ok(state.nextMessageId >= 1)
    assert.ok(state.nextOutgoingId >= 1)
  })

  test(name('dirty is set by a mutation and cleared by commit'), async (t) => {
    const { store } = (await new Places(t, backend).start())
    assert.equal(store.dirty, false)
    store.sessionSaved('c', 60, undefined, 0)
    assert.equal(store.dirty, true)
    await store.commit()
    assert.equal(store.dirty, false)
  })

  test(name('a committed session survives a crash: expiry, username, disconnect time; the last save wins'), async (t) => {
    const p = new Places(t, backend)
    const { store } = (await p.start())
    store.sessionSaved('a', 60, 'alice', 0)
    store.sessionSaved('b', 0xffffffff, undefined, 1_700_000_000_123)
    store.sessionSaved('a', 120, 'alice2', 1_700_000_000_456)
    await store.commit()
    const { state } = (await p.start())
    assert.equal(state.sessions.length, 2)
    const a = session(state, 'a')
    assert.deepEqual([a.expiryInterval, a.username, a.disconnectedAt], [120, 'alice2', 1_700_000_000_456])
    const b = session(state, 'b')
    assert.deepEqual([b.expiryInterval, b.username, b.disconnectedAt], [0xffffffff, undefined, 1_700_000_000_123])
    assert.deepEqual([b.subscriptions, b.outgoing, b.incomingQos2, b.will], [[], [], [], undefined])
  })

  test(name('subscriptions keep every v5 option; removal and replacement are applied'), async (t) => {
    const p = new Places(t, backend)
    const { store } = (await p.start())
    store.sessionSaved('c', 60, undefined, 0)
    const full = sub('$share/g1/a/+/c', { filter: 'a/+/c', group: 'g1', qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2, subscriptionId: 268_435_455 })
    store.subscriptionAdded('c', full)
    store.subscriptionAdded('c', sub('x/#', { qos: 0, retainHandling: 1, subscriptionId: 7 }))
    store.subscriptionAdded('c', sub('gone'))
    store.subscriptionRemoved('c', 'gone')
    store.subscriptionAdded('c', sub('x/#', { qos: 1, retainHandling: 0, subscriptionId: 8 }))
    await store.commit()
    const { state } = (await p.start())
    const subs = [...session(state, 'c').subscriptions].sort((x, y) => x.key.localeCompare(y.key))
    assert.deepEqual(subs, [full, sub('x/#', { qos: 1, retainHandling: 0, subscriptionId: 8 })])
  })

  test(name('retained messages keep topic, payload, QoS, properties, expiry and origin; clearing and replacing work'), async (t) => {
    const p = new Places(t, backend)
    const { store } = (await p.start())
    const props = {
      payloadFormatIndicator: 1, messageExpiryInterval: 3600, contentType: 'text/plain', responseTopic: 'r/t',
      correlationData: Buffer.from([0, 1, 2, 255]), userProperties: [['k', 'v'], ['k', 'v2']] as Array<[string, string]>,
    }
    const m1 = msg(10, 'r/1', { qos: 2, retain: true, properties: props, expiresAt: 1_800_000_000_000, payload: Buffer.from([0, 0xff, 0x80, 0x0a]) })
    const m2 = msg(11, 'r/2', { qos: 0, retain: true, origin: '' })
    const m3 = msg(12, 'r/3', { retain: true, payload: Buffer.alloc(0) })
    const m4 = msg(13, 'r/2', { qos: 1, retain: true, payload: Buffer.from('newer') })
    for (const m of [m1, m2, m3]) {
      store.messageSaved(m)
      store.retainedSet(m.topic, m.id)
    }
    store.retainedCleared('r/3')
    store.messageSaved(m4)
    store.retainedSet('r/2', 13)
    await store.commit()
    const { state } = (await p.start())
    const got = [...state.retained].sort((x, y) => x.topic.localeCompare(y.topic)).map(plain)
    assert.deepEqual(got, [plain(m1), plain(m4)])
    assert.ok(state.nextMessageId > 13, `nextMessageId ${state.nextMessageId} must be above every stored message id`)
  })

  test(name('outgoing deliveries: in-flight first in send order, then queued in queue order, with packet ids, PUBREL state and subscription ids'), async (t) => {
    const p = new Places(t, backend)
    const { store } = (await p.start())
    store.sessionSaved('c', 60, undefined, 1)
    for (let id = 1; id <= 6; id++) store.messageSaved(msg(id, `t/${id}`, { qos: 2 }))
    store.outgoingQueued('c', out(101, 1))
    store.outgoingQueued('c', out(102, 2, { qos: 2, subscriptionIds: [1, 268_435_455] }))
    store.outgoingQueued('c', out(103, 3, { retain: true }))
    store.outgoingQueued('c', out(104, 4))
    store.outgoingQueued('c', out(105, 5))
    store.outgoingQueued('c', out(106, 6, { qos: 2 }))
    // Sent out of queue order on purpose: 103 first, then 102, then 101 (acknowledged at once).
    store.outgoingSent('c', 103, 7)
    store.outgoingSent('c', 102, 65535)
    store.outgoingSent('c', 101, 1)
    store.outgoingDone('c', 101)
    store.outgoingReleased('c', 102)
    store.outgoingDone('c', 105)
    await store.commit()
    const { state } = (await p.start())
    assert.deepEqual(session(state, 'c').outgoing, [
      out(103, 3, { retain: true, packetId: 7 }),
      out(102, 2, { qos: 2, subscriptionIds: [1, 268_435_455], packetId: 65535, released: true }),
      out(104, 4),
      out(106, 6, { qos: 2 }),
    ])
    for (const id of [2, 3, 4, 6]) assert.deepEqual(plain(state.messages.get(id)), plain(msg(id, `t/${id}`, { qos: 2 })), `message ${id}`)
    assert.ok(state.nextOutgoingId > 106, `nextOutgoingId ${state.nextOutgoingId} must be above every stored delivery id`)
  })

  test(name('one message queued for many sessions is stored once and recovered for each'), async (t) => {
    const p = new Places(t, backend)
    const { store } = (await p.start())
    store.messageSaved(msg(5, 'fan/out'))
    for (let i = 0; i < 3; i++) {
      store.sessionSaved(`s${i}`, 60, undefined, 0)
      store.outgoingQueued(`s${i}`, out(10 + i, 5))
    }
    await store.commit()
    const { state } = (await p.start())
    for (let i = 0; i < 3; i++) assert.deepEqual(session(state, `s${i}`).outgoing, [out(10 + i, 5)])
    assert.deepEqual(plain(state.messages.get(5)), plain(msg(5, 'fan/out')))
  })

  test(name('QoS 2 packet ids received and not yet released are kept'), async (t) => {
    const p = new Places(t, backend)
    const { store } = (await p.start())
    store.sessionSaved('c', 60, undefined, 0)
    for (const id of [1, 2, 65535, 300]) store.incomingQos2Added('c', id)
    store.incomingQos2Released('c', 2)
    await store.commit()
    const { state } = (await p.start())
    assert.deepEqual([...session(state, 'c').incomingQos2].sort((x, y) => x - y), [1, 300, 65535])
  })

  test(name('wills: a delayed will keeps its due time and Will Delay Interval; a cleared will is gone'), async (t) => {
    const p = new Places(t, backend)
    const { store } = (await p.start())
    store.sessionSaved('w', 600, undefined, 5)
    store.sessionSaved('open', 600, undefined, 0)
    store.sessionSaved('cleared', 600, undefined, 0)
    const delayed = { topic: 'will/w', payload: Buffer.from('bye'), qos: 1 as const, retain: true, properties: { willDelayInterval: 30, contentType: 'text/plain', userProperties: [['a', 'b']] as Array<[string, string]> } }
    const plainWill = { topic: 'will/open', payload: Buffer.alloc(0), qos: 0 as const, retain: false, properties: undefined }
    store.willSaved('w', { will: delayed, dueAt: 1_700_000_030_000 })
    store.willSaved('open', { will: plainWill, dueAt: 0 })
    store.willSaved('cleared', { will: plainWill, dueAt: 0 })
    store.willSaved('cleared', undefined)
    await store.commit()
    const { state } = (await p.start())
    const w = session(state, 'w').will
    assert.ok(w !== undefined)
    assert.equal(w.dueAt, 1_700_000_030_000)
    assert.deepEqual({ ...w.will, payload: w.will.payload.toString() }, { ...delayed, payload: 'bye' })
    const o = session(state, 'open').will
    assert.ok(o !== undefined)
    assert.deepEqual([o.dueAt, o.will.topic, o.will.payload.length, o.will.qos, o.will.retain], [0, 'will/open', 0, 0, false])
    assert.equal(o.will.properties === undefined || Object.keys(o.will.properties).length === 0, true)
    assert.equal(session(state, 'cleared').will, undefined)
  })

  test(name('an ended session takes its subscriptions, deliveries, QoS 2 ids and will with it; a new one starts empty'), async (t) => {
    const p = new Places(t, backend)
    const { store } = (await p.start())
    store.sessionSaved('c', 60, undefined, 0)
    store.subscriptionAdded('c', sub('a'))
    store.messageSaved(msg(1, 'a'))
    store.outgoingQueued('c', out(1, 1))
    store.incomingQos2Added('c', 9)
    store.willSaved('c', { will: { topic: 'w', payload: Buffer.from('x'), qos: 0, retain: false, properties: undefined }, dueAt: 0 })
    store.sessionSaved('keep', 60, undefined, 0)
    store.sessionEnded('c')
    await store.commit()
    let { state } = (await p.start())
    assert.deepEqual(state.sessions.map((s) => s.clientId), ['keep'])
    const { store: s2 } = (await p.start())
    s2.sessionSaved('c', 30, 'u', 0)
    await s2.commit()
    ;({ state } = (await p.start()))
    const c = session(state, 'c')
    assert.deepEqual([c.expiryInterval, c.username, c.subscriptions, c.outgoing, c.incomingQos2, c.will], [30, 'u', [], [], [], undefined])
  })

  test(name('commit is cumulative across turns and close() keeps everything'), async (t) => {
    const p = new Places(t, backend)
    const { store } = (await p.start())
    for (let turn = 0; turn < 5; turn++) {
      store.sessionSaved(`c${turn}`, 60, undefined, 0)
      store.subscriptionAdded(`c${turn}`, sub(`t/${turn}`))
      await store.commit()
    }
    store.sessionSaved('last', 60, undefined, 0)
    await store.close()
    const { state } = (await p.start())
    assert.deepEqual(state.sessions.map((s) => s.clientId).sort(), ['c0', 'c1', 'c2', 'c3', 'c4', 'last'])
  })

  test(name('compact() replaces the contents with the given state; later mutations apply on top; the change count restarts'), async (t) => {
    const p = new Places(t, backend)
    const { store } = (await p.start())
    store.sessionSaved('old', 60, undefined, 0)
    store.messageSaved(msg(1, 'stale', { retain: true }))
    store.retainedSet('stale', 1)
    await store.commit()
    assert.ok(store.changesSinceCompaction >= 3)
    const m7 = msg(7, 'r', { retain: true })
    const m8 = msg(8, 'q', { qos: 2 })
    const snapshot: RecoveredState = {
      sessions: [{
        clientId: 'new', expiryInterval: 90, username: 'u', disconnectedAt: 42,
        subscriptions: [sub('q', { qos: 2, subscriptionId: 3 })],
        outgoing: [out(20, 8, { qos: 2, packetId: 5, released: true }), out(21, 8, { qos: 2 })],
        incomingQos2: [77],
        will: { will: { topic: 'w', payload: Buffer.from('x'), qos: 1, retain: false, properties: { willDelayInterval: 10 } }, dueAt: 99 },
      }],
      retained: [m7],
      messages: new Map([[8, m8]]),
      nextMessageId: 9,
      nextOutgoingId: 22,
      report: [],
    }
    store.compact(snapshot)
    assert.equal(store.changesSinceCompaction, 0)
    store.sessionSaved('after', 60, undefined, 0)
    store.outgoingDone('new', 21)
    assert.ok(store.changesSinceCompaction > 0)
    await store.commit()
    const { state } = (await p.start())
    assert.deepEqual(state.sessions.map((s) => s.clientId).sort(), ['after', 'new'])
    const n = session(state, 'new')
    assert.deepEqual([n.expiryInterval, n.username, n.disconnectedAt, n.subscriptions, n.outgoing, n.incomingQos2],
      [90, 'u', 42, [sub('q', { qos: 2, subscriptionId: 3 })], [out(20, 8, { qos: 2, packetId: 5, released: true })], [77]])
    assert.deepEqual(n.will?.dueAt, 99)
    assert.deepEqual(n.will?.will.properties, { willDelayInterval: 10 })
    assert.deepEqual(state.retained.map(plain), [plain(m7)])
    assert.deepEqual(plain(state.messages.get(8)), plain(m8))
    assert.ok(state.nextMessageId >= 9)
    assert.ok(state.nextOutgoingId >= 22)
  })

  test(name('a load after a load (two restarts in a row) recovers the same state'), async (t) => {
    const p = new Places(t, backend)
    const { store } = (await p.start())
    store.sessionSaved('c', 60, undefined, 3)
    store.subscriptionAdded('c', sub('a/#', { qos: 2 }))
    store.messageSaved(msg(1, 'a/b', { qos: 2 }))
    store.outgoingQueued('c', out(1, 1, { qos: 2 }))
    store.outgoingSent('c', 1, 17)
    store.messageSaved(msg(2, 'r', { retain: true }))
    store.retainedSet('r', 2)
    await store.commit()
    const first = (await p.start()).state
    const second = (await p.start()).state
    const view = (s: RecoveredState): unknown => ({ sessions: s.sessions, retained: s.retained.map(plain), messages: [...s.messages.values()].map(plain) })
    assert.deepEqual(view(second), view(first))
    assert.deepEqual(session(second, 'c').outgoing, [out(1, 1, { qos: 2, packetId: 17 })])
  })

  test(name('many records: 2,000 sessions with a subscription and queued messages each'), async (t) => {
    const p = new Places(t, backend)
    const { store } = (await p.start())
    let oid = 1
    for (let i = 0; i < 2000; i++) {
      const id = `client-${i}`
      store.sessionSaved(id, 3600, undefined, 0)
      store.subscriptionAdded(id, sub(`dev/${i}/#`))
      store.messageSaved(msg(i + 1, `dev/${i}/x`, { payload: Buffer.alloc(i % 300, i & 0xff) }))
      store.outgoingQueued(id, out(oid++, i + 1))
      store.outgoingQueued(id, out(oid++, i + 1))
      if (i % 100 === 99) await store.commit()
    }
    await store.commit()
    const { state } = (await p.start())
    assert.equal(state.sessions.length, 2000)
    const s = session(state, 'client-1234')
    assert.deepEqual(s.outgoing.map((o) => o.messageId), [1235, 1235])
    assert.equal(state.messages.get(1235)?.payload.length, 1234 % 300)
  })
}
