/**
 * The host application's hooks (src/broker/hooks.ts, docs/embedding.md): authenticate, authorizePublish,
 * authorizeSubscribe, authorizeDeliver. Each allows, refuses (with its own reason code), answers late, throws,
 * rejects and never answers; each runs after the broker's own rules (password file / ACL), and the
 * authenticate hook runs behind the same AuthThrottle bounds as the password check.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import type { Authenticator, Authorizer } from '../../src/auth/types.js'
import { AuthThrottle } from '../../src/auth/throttle.js'
import type { BrokerHooks } from '../../src/broker/hooks.js'
import { Logger } from '../../src/observability/logger.js'
import { PacketType, ReasonCode } from '../../src/protocol/constants.js'
import type { BrokerOptions } from '../../src/broker/options.js'
import { setup, type Harness } from '../helpers/broker-harness.js'

/** A broker with these hooks whose log lines are kept. */
function hooked (t: TestContext, hooks: BrokerHooks, opts: Partial<BrokerOptions> = {}): { h: Harness; log: string[] } {
  const log: string[] = []
  const logger = new Logger({ sinks: [{ write: (line) => { log.push(line) } }], timestamp: false })
  return { h: setup(t, { hooks, logger, ...opts }), log }
}

/** A promise the test settles by hand: a hook answering "later", with no timer involved. */
function deferred<T> (): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((r) => { resolve = r })
  return { promise, resolve }
}

// ---- authenticate -------------------------------------------------------------------------------

test('authenticate receives clientId, username, password, address and listener; true lets the client in', async (t) => {
  const seen: unknown[] = []
  const { h } = hooked(t, { authenticate: (req) => { seen.push(req); return true } })
  const c = h.raw(5)
  const ack = await c.connect({ clientId: 'dev1', username: 'alice', password: Buffer.from('pw') })
  assert.equal(ack.reasonCode, 0)
  assert.deepEqual(seen, [{ clientId: 'dev1', username: 'alice', password: Buffer.from('pw'), address: 'memory', listener: 'test' }])
})

for (const v of [4, 5] as const) {
  test(`v${v}: authenticate false refuses with Bad User Name or Password; { reasonCode } sends that code (nearest 3.1.1 code)`, async (t) => {
    const { h } = hooked(t, { authenticate: ({ username }) => username === 'banned' ? { reasonCode: ReasonCode.Banned } : username === 'ok' })
    const no = await h.raw(v).connect({ clientId: 'a', username: 'bob' })
    assert.equal(no.reasonCode, v === 5 ? ReasonCode.BadUserNameOrPassword : 4)
    const banned = await h.raw(v).connect({ clientId: 'b', username: 'banned' })
    assert.equal(banned.reasonCode, v === 5 ? ReasonCode.Banned : 5)
    const ok = await h.raw(v).connect({ clientId: 'c', username: 'ok' })
    assert.equal(ok.reasonCode, 0)
  })
}

test('authenticate answering later holds the client\'s next packets until CONNACK, then handles them in order', async (t) => {
  const answer = deferred<boolean>()
  const { h } = hooked(t, { authenticate: () => answer.promise })
  const c = h.raw(5)
  c.send(c.connectPacket({ clientId: 'late' }))
  c.send({ type: PacketType.Subscribe, packetId: 7, subscriptions: [{ topicFilter: 'x', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] })
  answer.resolve(true)
  assert.equal((await c.next(PacketType.Connack)).reasonCode, 0)
  assert.deepEqual((await c.next(PacketType.Suback)).reasonCodes, [1])
})

test('authenticate that throws, rejects or never answers refuses the client (0x87) and is logged; the broker runs on', async (t) => {
  const { h, log } = hooked(t, {
    authenticate: ({ clientId }) => {
      if (clientId === 'throws') throw new Error('boom')
      if (clientId === 'rejects') return Promise.reject(new Error('db down'))
      if (clientId === 'silent') return new Promise<boolean>(() => {})
      return true
    },
  }, { hookTimeoutMs: 50 })
  for (const id of ['throws', 'rejects', 'silent']) {
    const ack = await h.raw(5).connect({ clientId: id })
    assert.equal(ack.reasonCode, ReasonCode.NotAuthorized, id)
  }
  assert.ok(log.some((l) => l.includes('authenticate hook threw boom')), log.join('\n'))
  assert.ok(log.some((l) => l.includes('authenticate hook rejected: db down')), log.join('\n'))
  assert.ok(log.some((l) => l.includes('authenticate hook gave no answer within 50 ms')), log.join('\n'))
  assert.equal((await h.raw(5).connect({ clientId: 'fine' })).reasonCode, 0)
})

test('the password file decides first: a client it refuses never reaches the hook; one it accepts may still be refused by the hook', async (t) => {
  const files: Authenticator = { authenticate: (req) => req.username === 'mallory' ? { ok: false, reason: 'bad-credentials' } : { ok: true, username: req.username } }
  const asked: string[] = []
  const { h } = hooked(t, { authenticate: ({ username }) => { asked.push(username ?? ''); return username !== 'eve' } }, { authenticator: files })
  assert.equal((await h.raw(5).connect({ clientId: 'm', username: 'mallory' })).reasonCode, ReasonCode.BadUserNameOrPassword)
  assert.equal((await h.raw(5).connect({ clientId: 'e', username: 'eve' })).reasonCode, ReasonCode.BadUserNameOrPassword)
  assert.equal((await h.raw(5).connect({ clientId: 'a', username: 'alice' })).reasonCode, 0)
  assert.deepEqual(asked, ['eve', 'alice'])
})

test('auth_max_pending_per_address bounds hooks in progress per address: one more is refused as busy at once', async (t) => {
  const answer = deferred<boolean>()
  const throttle = new AuthThrottle({ maxPendingPerAddress: 2 })
  let calls = 0
  const { h } = hooked(t, { authenticate: () => { calls++; return answer.promise } }, { authThrottle: throttle })
  const waiting = [h.raw(5), h.raw(5)]
  for (const [i, c] of waiting.entries()) c.send(c.connectPacket({ clientId: `w${i}` }))
  const third = await h.raw(5).connect({ clientId: 'third' })
  assert.equal(third.reasonCode, ReasonCode.ServerBusy)
  assert.equal(calls, 2)
  answer.resolve(true)
  for (const c of waiting) assert.equal((await c.next(PacketType.Connack)).reasonCode, 0)
})

test('hook refusals count towards a ban: a banned address is refused without asking the hook', async (t) => {
  const throttle = new AuthThrottle({ failLimit: 2, refusalDelayMs: 0 })
  let calls = 0
  const { h } = hooked(t, { authenticate: () => { calls++; return false } }, { authThrottle: throttle })
  for (const id of ['g1', 'g2']) assert.equal((await h.raw(5).connect({ clientId: id })).reasonCode, ReasonCode.BadUserNameOrPassword)
  assert.equal((await h.raw(5).connect({ clientId: 'g3' })).reasonCode, ReasonCode.Banned)
  assert.equal(calls, 2)
})

// ---- authorizePublish ---------------------------------------------------------------------------

for (const v of [4, 5] as const) {
  test(`v${v}: authorizePublish false stops the message (v5 PUBACK/PUBREC 0x87, 3.1.1 acknowledged and dropped); true routes it`, async (t) => {
    const seen: unknown[] = []
    const { h } = hooked(t, { authorizePublish: (client, m) => { seen.push([client.clientId, m.topic, m.payload.toString(), m.qos, m.retain]); return !m.topic.startsWith('secret/') } })
    const sub = await h.client(v, { clientId: 'sub' })
    await sub.subscribe('#', { qos: 2 })
    const pub = await h.client(v, { clientId: 'pub' })
    const denied1 = await pub.publishAcked('secret/a', 'x', { qos: 1 })
    assert.equal(denied1?.reasonCode ?? 0, v === 5 ? ReasonCode.NotAuthorized : 0)
    pub.publish('secret/b', 'y', { qos: 2 })
    const rec = await pub.next(PacketType.Pubrec)
    assert.equal(rec.reasonCode, v === 5 ? ReasonCode.NotAuthorized : 0)
    await pub.publishAcked('open/a', 'z', { qos: 1, retain: true })
    const got = await sub.publishOn('open/a')
    assert.equal(got.payload.toString(), 'z')
    await sub.expectNothing(PacketType.Publish, 'refused messages')
    assert.deepEqual(seen, [['pub', 'secret/a', 'x', 1, false], ['pub', 'secret/b', 'y', 2, false], ['pub', 'open/a', 'z', 1, true]])
  })
}

test('authorizePublish decides on the will at CONNECT: a refused will refuses the CONNECT and is never published; an allowed one (late answer) is', async (t) => {
  const seen: string[] = []
  const late = deferred<boolean>()
  const { h, log } = hooked(t, {
    authorizePublish: (client, m) => {
      seen.push(`${client.clientId} ${m.topic} ${m.payload.toString()} q${m.qos}`)
      if (m.topic === 'ok/late') return late.promise
      return !m.topic.startsWith('secret/')
    },
  })
  const watch = await h.client(5, { clientId: 'watch' })
  await watch.subscribe('#', { qos: 1 })
  for (const v of [4, 5] as const) {
    const c = h.raw(v)
    const ack = await c.connect({ clientId: `sneaky${v}`, will: { topic: 'secret/w', payload: Buffer.from('leak'), qos: 1, retain: false } })
    assert.equal(ack.reasonCode, v === 5 ? ReasonCode.NotAuthorized : 5)
    await c.waitClosed()
  }
  const pending = h.raw(5)
  const connecting = pending.connect({ clientId: 'fine', will: { topic: 'ok/late', payload: Buffer.from('bye'), qos: 1, retain: false } })
  while (!seen.some((l) => l.startsWith('fine '))) await new Promise((r) => setImmediate(r))
  late.resolve(true)
  assert.equal((await connecting).reasonCode, 0)
  pending.destroy()
  const m = await watch.publishOn('ok/late')
  assert.equal(m.payload.toString(), 'bye')
  await watch.expectNothing(PacketType.Publish, 'secret/w')
  assert.deepEqual(seen, ['sneaky4 secret/w leak q1', 'sneaky5 secret/w leak q1', 'fine ok/late bye q1'])
  assert.ok(log.some((l) => l.includes('sneaky5') && l.includes('refused by the authorizePublish hook')), log.join('\n'))
})

test('authorizePublish { reasonCode } is the v5 PUBACK code', async (t) => {
  const { h } = hooked(t, { authorizePublish: () => ({ reasonCode: ReasonCode.QuotaExceeded }) })
  const pub = await h.client(5, { clientId: 'pub' })
  assert.equal((await pub.publishAcked('a', 'x', { qos: 1 }))?.reasonCode, ReasonCode.QuotaExceeded)
})

test('authorizePublish answering later: the client\'s next packets wait, so messages and acks keep their order', async (t) => {
  const first = deferred<boolean>()
  let n = 0
  const { h } = hooked(t, { authorizePublish: () => (++n === 1 ? first.promise : true) })
  const sub = await h.client(5, { clientId: 'sub' })
  await sub.subscribe('t/#')
  const pub = await h.client(5, { clientId: 'pub' })
  const id1 = pub.publish('t/1', 'one', { qos: 1 })
  const id2 = pub.publish('t/2', 'two', { qos: 1 })
  pub.send({ type: PacketType.Pingreq })
  first.resolve(true)
  const frames = [await pub.nextFrame(), await pub.nextFrame(), await pub.nextFrame()]
  assert.deepEqual(frames.map((f) => f.type), [PacketType.Puback, PacketType.Puback, PacketType.Pingresp])
  assert.deepEqual(frames.slice(0, 2).map((f) => (f.packet as { packetId: number }).packetId), [id1, id2])
  assert.equal((await sub.next(PacketType.Publish)).topic, 't/1')
  assert.equal((await sub.next(PacketType.Publish)).topic, 't/2')
})

test('authorizePublish that throws, rejects or never answers refuses (0x87) and is logged; the connection stays', async (t) => {
  const { h, log } = hooked(t, {
    authorizePublish: (_c, m) => {
      if (m.topic === 'throws') throw new Error('bad rule')
      if (m.topic === 'rejects') return Promise.reject(new Error('no db'))
      if (m.topic === 'silent') return new Promise<boolean>(() => {})
      return true
    },
  }, { hookTimeoutMs: 50 })
  const pub = await h.client(5, { clientId: 'pub' })
  for (const topic of ['throws', 'rejects', 'silent']) assert.equal((await pub.publishAcked(topic, 'x', { qos: 1 }))?.reasonCode, ReasonCode.NotAuthorized, topic)
  assert.equal((await pub.publishAcked('fine', 'x', { qos: 1 }))?.reasonCode, ReasonCode.NoMatchingSubscribers)
  assert.ok(log.some((l) => l.includes('authorizePublish hook threw bad rule')), log.join('\n'))
  assert.ok(log.some((l) => l.includes('authorizePublish hook rejected: no db')), log.join('\n'))
  assert.ok(log.some((l) => l.includes('authorizePublish hook gave no answer within 50 ms')), log.join('\n'))
})

test('the ACL decides first: a PUBLISH it denies never reaches authorizePublish', async (t) => {
  const acl: Authorizer = { canPublish: (_c, topic) => topic !== 'acl/denied', canSubscribe: () => true, canRead: () => true }
  const asked: string[] = []
  const { h } = hooked(t, { authorizePublish: (_c, m) => { asked.push(m.topic); return true } }, { authorizer: acl })
  const pub = await h.client(5, { clientId: 'pub' })
  assert.equal((await pub.publishAcked('acl/denied', 'x', { qos: 1 }))?.reasonCode, ReasonCode.NotAuthorized)
  await pub.publishAcked('acl/allowed', 'x', { qos: 1 })
  assert.deepEqual(asked, ['acl/allowed'])
})

test('a connection the broker closes while authorizePublish decides (session taken over): the late answer is ignored', async (t) => {
  const answer = deferred<boolean>()
  const asked = deferred<void>()
  const { h } = hooked(t, { authorizePublish: () => { asked.resolve(); return answer.promise } })
  const sub = await h.client(5, { clientId: 'sub' })
  await sub.subscribe('#')
  const pub = await h.client(5, { clientId: 'pub' })
  pub.publish('t', 'x', { qos: 1 })
  await asked.promise
  await h.client(5, { clientId: 'pub' })
  await pub.waitClosed()
  answer.resolve(true)
  await sub.expectNothing(PacketType.Publish, 'the message of a connection closed before its hook answered')
  assert.equal(pub.history.filter((f) => f.type === PacketType.Puback).length, 0)
})

// ---- authorizeSubscribe -------------------------------------------------------------------------

for (const v of [4, 5] as const) {
  test(`v${v}: authorizeSubscribe refuses a filter (0x87 / 0x80), lowers a QoS with { qos }, and never raises one`, async (t) => {
    const seen: unknown[] = []
    const { h } = hooked(t, {
      authorizeSubscribe: (client, s) => {
        seen.push([client.clientId, s.topic, s.qos, s.group])
        if (s.topic === 'no') return false
        if (s.topic === 'low') return { qos: 0 }
        if (s.topic === 'high') return { qos: 2 }
        return true
      },
    })
    const c = await h.client(v, { clientId: 'c' })
    const ack = await c.subscribe(['no', 'low', 'high', 'yes'], { qos: 1 })
    assert.deepEqual(ack.reasonCodes, [v === 5 ? ReasonCode.NotAuthorized : 0x80, 0, 1, 1])
    assert.deepEqual(seen, [['c', 'no', 1, undefined], ['c', 'low', 1, undefined], ['c', 'high', 1, undefined], ['c', 'yes', 1, undefined]])
    const pub = await h.client(v, { clientId: 'p' })
    await pub.publishAcked('no', 'x', { qos: 1 })
    await pub.publishAcked('low', 'x', { qos: 1 })
    const got = await c.publishOn('low')
    assert.equal(got.qos, 0)
    await c.expectNothing(PacketType.Publish, 'a refused filter')
  })
}

test('authorizeSubscribe: sync and late answers in one SUBSCRIBE keep the order of its codes; $share group is passed apart', async (t) => {
  const late = deferred<boolean>()
  const asked: Array<[string, string | undefined]> = []
  const { h } = hooked(t, { authorizeSubscribe: (_c, s) => { asked.push([s.topic, s.group]); return s.topic === 'late' ? late.promise : s.topic !== 'denied' } })
  const c = await h.client(5, { clientId: 'c' })
  const packetId = c.packetId()
  const sub = (topicFilter: string) => ({ topicFilter, qos: 1 as const, noLocal: false, retainAsPublished: false, retainHandling: 0 as const })
  c.send({ type: PacketType.Subscribe, packetId, subscriptions: [sub('late'), sub('denied'), sub('$share/g/shared')] })
  c.send({ type: PacketType.Pingreq })
  late.resolve(true)
  const first = await c.nextFrame()
  assert.equal(first.type, PacketType.Suback)
  assert.deepEqual((first.packet as { reasonCodes: number[] }).reasonCodes, [1, ReasonCode.NotAuthorized, 1])
  assert.equal((await c.nextFrame()).type, PacketType.Pingresp)
  assert.deepEqual(asked, [['late', undefined], ['denied', undefined], ['shared', 'g']])
})

test('authorizeSubscribe { reasonCode }, throws, rejects, never answers: refused with 0x87 (or the code), logged', async (t) => {
  const { h, log } = hooked(t, {
    authorizeSubscribe: (_c, s) => {
      if (s.topic === 'coded') return { reasonCode: ReasonCode.WildcardSubscriptionsNotSupported }
      if (s.topic === 'throws') throw new Error('oops')
      if (s.topic === 'rejects') return Promise.reject(new Error('nope'))
      if (s.topic === 'silent') return new Promise<boolean>(() => {})
      return true
    },
  }, { hookTimeoutMs: 50 })
  const c = await h.client(5, { clientId: 'c' })
  const ack = await c.subscribe(['coded', 'throws', 'rejects', 'silent', 'fine'])
  assert.deepEqual(ack.reasonCodes, [ReasonCode.WildcardSubscriptionsNotSupported, ReasonCode.NotAuthorized, ReasonCode.NotAuthorized, ReasonCode.NotAuthorized, 0])
  for (const why of ['threw oops', 'rejected: nope', 'gave no answer within 50 ms']) assert.ok(log.some((l) => l.includes(`authorizeSubscribe hook ${why}`)), log.join('\n'))
})

test('the ACL decides first: a filter it denies never reaches authorizeSubscribe', async (t) => {
  const acl: Authorizer = { canPublish: () => true, canSubscribe: (_c, f) => f !== 'acl/denied', canRead: () => true }
  const asked: string[] = []
  const { h } = hooked(t, { authorizeSubscribe: (_c, s) => { asked.push(s.topic); return true } }, { authorizer: acl })
  const c = await h.client(5, { clientId: 'c' })
  assert.deepEqual((await c.subscribe(['acl/denied', 'ok'])).reasonCodes, [ReasonCode.NotAuthorized, 0])
  assert.deepEqual(asked, ['ok'])
})

// ---- authorizeDeliver ---------------------------------------------------------------------------

test('authorizeDeliver throwing null drops that delivery only: routing finishes and later publishes route', async (t) => {
  const { h, log } = hooked(t, {
    authorizeDeliver: (client) => {
      // eslint-disable-next-line no-throw-literal
      if (client.clientId === 'a') throw null
      return true
    },
  })
  const a = await h.client(5, { clientId: 'a' })
  const b = await h.client(5, { clientId: 'b' })
  for (const c of [a, b]) await c.subscribe('t')
  const pub = await h.client(5, { clientId: 'pub' })
  assert.equal((await pub.publishAcked('t', 'x', { qos: 1 }))?.reasonCode, 0)
  assert.equal((await b.publishOn('t')).payload.toString(), 'x')
  assert.equal(h.broker.routingBusy, false)
  h.broker.publish('t', Buffer.from('app'), 0, false, undefined)
  assert.equal((await b.publishOn('t')).payload.toString(), 'app')
  await a.expectNothing(PacketType.Publish, 't')
  assert.ok(log.some((l) => l.includes('authorizeDeliver hook threw for client a') && l.includes('null')), log.join('\n'))
})

test('authorizeDeliver drops a message for one subscriber only: routed, retained and shared deliveries', async (t) => {
  const { h, log } = hooked(t, {
    authorizeDeliver: (client, m) => {
      if (m.topic === 'explode') throw new Error('kaboom')
      return !(client.clientId === 'blocked' && m.topic.startsWith('private/'))
    },
  })
  const blocked = await h.client(5, { clientId: 'blocked' })
  const open = await h.client(5, { clientId: 'open' })
  for (const c of [blocked, open]) await c.subscribe('#')
  const pub = await h.client(5, { clientId: 'pub' })
  await pub.publishAcked('private/a', 'x', { qos: 1 })
  assert.equal((await open.publishOn('private/a')).payload.toString(), 'x')
  await pub.publishAcked('public/a', 'y', { qos: 1 })
  assert.equal((await blocked.publishOn('public/a')).payload.toString(), 'y')
  await pub.publishAcked('explode', 'z', { qos: 1 })
  await blocked.expectNothing(PacketType.Publish, 'private/a and explode')
  assert.ok(log.some((l) => l.includes('authorizeDeliver hook threw for client blocked') && l.includes('kaboom')), log.join('\n'))
  // Retained: checked when a new subscription gets it.
  await pub.publishAcked('private/r', 'kept', { qos: 1, retain: true })
  const fresh = await h.client(5, { clientId: 'open2' })
  await fresh.subscribe('private/r')
  assert.equal((await fresh.publishOn('private/r')).retain, true)
  await blocked.unsubscribe('#')
  await blocked.subscribe('private/r')
  await blocked.expectNothing(PacketType.Publish, 'a retained message the hook refuses')
  // Shared: the member the group chose is asked too.
  await blocked.subscribe('$share/g/private/s')
  await pub.publishAcked('private/s', 'shared', { qos: 1 })
  await blocked.expectNothing(PacketType.Publish, 'a shared delivery the hook refuses')
})

test('an internal error while finishing a CONNECT after an async authentication refuses that client and nothing else (no unhandled rejection)', async (t) => {
  // An answer that throws once the broker reads it: the only way to make the code after the await fail.
  const poisoned = { get ok (): boolean { throw new Error('poisoned answer') } }
  const authenticator = { authenticate: async (req: { username?: string }) => req.username === 'bad' ? poisoned : { ok: true, username: req.username } } as unknown as Authenticator
  const unhandled: unknown[] = []
  const onUnhandled = (err: unknown): void => { unhandled.push(err) }
  process.on('unhandledRejection', onUnhandled)
  t.after(() => process.off('unhandledRejection', onUnhandled))
  const { h, log } = hooked(t, {}, { authenticator })
  const bad = await h.raw(5).connect({ clientId: 'bad', username: 'bad' })
  assert.equal(bad.reasonCode, ReasonCode.UnspecifiedError)
  assert.ok(log.some((l) => l.includes('Authentication of client bad') && l.includes('poisoned answer')), log.join('\n'))
  const good = await h.raw(5).connect({ clientId: 'good', username: 'good' })
  assert.equal(good.reasonCode, 0)
  await new Promise((r) => setImmediate(r))
  assert.deepEqual(unhandled, [])
})
