/**
 * The Redis store against the log store as a model: one random stream of broker-like mutations goes to
 * both, with commits and now and then a compaction in between; each Redis commit succeeds, is refused before sending (Redis down), is
 * sent and lost unapplied, or is applied and its answer lost. After a last successful commit, a fresh
 * Redis store must load exactly what a fresh log store loads: every failed commit was repaired by a later
 * one, whatever Redis did with it. The failures are injected by a wrapper around a real client on a real
 * Redis (what it returns is what Redis did). Seeds are printed; MIDGE_REDIS_SEED=<n> replays one.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Redis } from 'ioredis'
import { LogStore } from '../../src/persistence/log-store.js'
import { RedisStore } from '../../src/persistence/redis-store.js'
import type { RecoveredState, Store, StoredMessage } from '../../src/persistence/store.js'
import { redisForFile } from '../helpers/redis-server.js'
import { prng } from './crash-child.js'
import { tempDir } from './tmp-dir.js'

const testRedis = redisForFile()

type Outcome = 'ok' | 'down' | 'unapplied' | 'applied-lost'

/** A real client whose next commit can be made to fail in one of the ways a network and a restart can. */
function flaky(real: Redis): { redis: Redis; next: (o: Outcome) => void } {
  let mode: Outcome = 'ok'
  const redis = new Proxy(real, {
    get(target, prop) {
      if (prop === 'status' && mode === 'down') return 'reconnecting'
      if (prop === 'multi' && (mode === 'unapplied' || mode === 'applied-lost')) {
        const how = mode
        return (commands: unknown[][]) => ({
          exec: async () => {
            if (how === 'applied-lost') await target.multi(commands).exec()
            throw new Error(`connection lost (${how})`)
          },
        })
      }
      const v = Reflect.get(target, prop, target) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
  return { redis, next: (o) => { mode = o } }
}

function view(s: RecoveredState): unknown {
  const plain = (m: StoredMessage | undefined): unknown => m === undefined ? undefined : { ...m, payload: m.payload.toString('hex') }
  return {
    sessions: [...s.sessions].sort((a, b) => a.clientId.localeCompare(b.clientId)).map((x) => ({
      ...x,
      subscriptions: [...x.subscriptions].sort((a, b) => a.key.localeCompare(b.key)),
      incomingQos2: [...x.incomingQos2].sort((a, b) => a - b),
      outgoing: x.outgoing.map((o) => ({ ...o, message: plain(s.messages.get(o.messageId)) })),
    })),
    retained: [...s.retained].sort((a, b) => a.topic.localeCompare(b.topic)).map(plain),
  }
}

interface Delivery { oid: number; qos: 1 | 2; sent: boolean; released: boolean }

async function run(seed: number, dir: string): Promise<void> {
  const rnd = prng(seed)
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const real = new Redis(testRedis.server.url)
  testRedis.track(real)
  const f = flaky(real)
  const prefix = `random${seed}:`
  const redisStore = new RedisStore({ redis: f.redis, prefix, nodeId: 'n' })
  const model = new LogStore({ dir, file: 'model.db', fsync: false })
  await redisStore.load()
  model.load()
  const both: Store[] = [redisStore, model]
  const all = (op: (s: Store) => void): void => { for (const s of both) op(s) }

  const sessions = new Map<string, { deliveries: Map<number, Delivery>; subs: Set<string>; incoming: Set<number> }>()
  const retained = new Set<string>()
  let nextId = 1
  let nextOid = 1
  const outcomes: Record<Outcome, number> = { ok: 0, down: 0, unapplied: 0, 'applied-lost': 0 }

  for (let step = 0; step < 3000; step++) {
    const r = rnd()
    const ids = [...sessions.keys()]
    const c = ids.length > 0 ? pick(ids) : undefined
    const s = c === undefined ? undefined : sessions.get(c)
    if (r < 0.08 || c === undefined || s === undefined) {
      const id = `c${Math.floor(rnd() * 12)}`
      const expiry = 1 + Math.floor(rnd() * 7200)
      const user = rnd() < 0.5 ? undefined : `u${Math.floor(rnd() * 3)}`
      const at = rnd() < 0.5 ? 0 : 1_700_000_000_000 + step
      all((x) => x.sessionSaved(id, expiry, user, at))
      if (!sessions.has(id)) sessions.set(id, { deliveries: new Map(), subs: new Set(), incoming: new Set() })
    } else if (r < 0.11) {
      all((x) => x.sessionEnded(c))
      sessions.delete(c)
    } else if (r < 0.17) {
      const key = `f/${Math.floor(rnd() * 5)}/#`
      if (s.subs.has(key) && rnd() < 0.5) {
        all((x) => x.subscriptionRemoved(c, key))
        s.subs.delete(key)
      } else {
        const sub = { key, filter: key, group: '', qos: pick([0, 1, 2] as const), noLocal: rnd() < 0.5, retainAsPublished: rnd() < 0.5, retainHandling: pick([0, 1, 2] as const), subscriptionId: Math.floor(rnd() * 10) }
        all((x) => x.subscriptionAdded(c, sub))
        s.subs.add(key)
      }
    } else if (r < 0.40) {
      // A publish: one message saved once, queued for one to three sessions, sometimes retained too.
      const id = nextId++
      const qos = pick([1, 2] as const)
      const m: StoredMessage = { id, topic: `t/${id % 7}`, payload: Buffer.from(`m${id}`), qos, retain: false, properties: rnd() < 0.3 ? { contentType: 'x', userProperties: [['k', String(id)]] } : undefined, expiresAt: rnd() < 0.2 ? 1_800_000_000_000 : 0, origin: 'p' }
      all((x) => x.messageSaved(m))
      const targets = new Set([c, pick(ids), pick(ids)].slice(0, 1 + Math.floor(rnd() * 3)))
      for (const t of targets) {
        const oid = nextOid++
        const subscriptionIds = rnd() < 0.3 ? [1 + Math.floor(rnd() * 9)] : undefined
        all((x) => x.outgoingQueued(t, { oid, messageId: id, qos, retain: false, subscriptionIds, packetId: 0, released: false }))
        sessions.get(t)!.deliveries.set(oid, { oid, qos, sent: false, released: false })
      }
      if (rnd() < 0.2) {
        all((x) => x.retainedSet(m.topic, id))
        retained.add(m.topic)
      }
    } else if (r < 0.55) {
      const d = [...s.deliveries.values()].find((x) => !x.sent)
      if (d !== undefined) {
        d.sent = true
        const pid = 1 + Math.floor(rnd() * 65535)
        all((x) => x.outgoingSent(c, d.oid, pid))
      }
    } else if (r < 0.60) {
      const d = [...s.deliveries.values()].find((x) => x.sent && x.qos === 2 && !x.released)
      if (d !== undefined) {
        d.released = true
        all((x) => x.outgoingReleased(c, d.oid))
      }
    } else if (r < 0.75) {
      const d = [...s.deliveries.values()].find((x) => x.sent || rnd() < 0.2)
      if (d !== undefined) {
        s.deliveries.delete(d.oid)
        all((x) => x.outgoingDone(c, d.oid))
      }
    } else if (r < 0.80) {
      const pid = 1 + Math.floor(rnd() * 20)
      if (s.incoming.has(pid)) {
        s.incoming.delete(pid)
        all((x) => x.incomingQos2Released(c, pid))
      } else {
        s.incoming.add(pid)
        all((x) => x.incomingQos2Added(c, pid))
      }
    } else if (r < 0.84) {
      const will = rnd() < 0.3 ? undefined : { will: { topic: `w/${c}`, payload: Buffer.from(`bye ${step}`), qos: pick([0, 1, 2] as const), retain: rnd() < 0.5, properties: rnd() < 0.5 ? { willDelayInterval: 5 } : undefined }, dueAt: rnd() < 0.5 ? 0 : 1_700_000_000_000 + step }
      all((x) => x.willSaved(c, will))
    } else if (r < 0.85) {
      // A compaction (shutdown, autosave_on_changes): the live state as a snapshot, which the model
      // yields by loading what it has committed so far.
      await model.commit()
      const snapshot = new LogStore({ dir, file: 'model.db', fsync: false }).load()
      all((x) => x.compact(snapshot))
    } else if (r < 0.87 && retained.size > 0) {
      const topic = pick([...retained])
      retained.delete(topic)
      all((x) => x.retainedCleared(topic))
    } else {
      // A commit: the model's always lands; Redis's may fail in any of four ways.
      const o: Outcome = redisStore.dirty ? pick(['ok', 'ok', 'down', 'unapplied', 'applied-lost', 'applied-lost']) : 'ok'
      outcomes[o]++
      await model.commit()
      f.next(o)
      if (o === 'ok') await redisStore.commit()
      else await assert.rejects(redisStore.commit())
      f.next('ok')
    }
  }
  await model.commit()
  await redisStore.commit()
  assert.equal(redisStore.dirty, false)
  assert.equal(redisStore.missingMessages, 0)
  model.close()

  const expected = new LogStore({ dir, file: 'model.db', fsync: false }).load()
  const got = await new RedisStore({ redis: real, prefix, nodeId: 'n' }).load()
  assert.ok(outcomes.down > 0 && outcomes.unapplied > 0 && outcomes['applied-lost'] > 0, `every kind of failure happened (${JSON.stringify(outcomes)})`)
  assert.ok(expected.sessions.length > 0 && expected.sessions.some((x) => x.outgoing.length > 0), 'the stream left sessions with deliveries to compare')
  assert.deepEqual(view(got), view(expected))
}

const seeds = process.env.MIDGE_REDIS_SEED !== undefined ? [Number(process.env.MIDGE_REDIS_SEED)] : [1, 2, 3, 4, 5].map(() => Math.floor(Math.random() * 2 ** 31))
for (const seed of seeds) {
  test(`random mutations with failing commits end in the same state as the log store (seed ${seed}; MIDGE_REDIS_SEED=${seed} replays it)`, async (t) => {
    await run(seed, tempDir(t))
  })
}
