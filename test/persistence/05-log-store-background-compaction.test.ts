/**
 * The background compaction (LogStore.beginCompaction / compactStep) interleaved with writes: a model
 * of retained messages and sessions is changed at random between the steps, every change is written
 * to the store as the broker would write it, and after every step (and while the fsync and the rename
 * run off-thread, and at the end) the file under the store's name is read by a fresh LogStore, as after
 * a kill -9 at that moment: it must restore exactly the model as committed.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { LogStore } from '../../src/persistence/log-store.js'
import type { LiveSession, LiveSnapshot, RecoveredState, StoredMessage, StoredOutgoing, StoredSubscription } from '../../src/persistence/store.js'
import { tempDir } from './tmp-dir.js'
import { prng } from './crash-child.js'

const File = 'midge.db'

interface ModelSession {
  clientId: string
  expiryInterval: number
  subs: Map<string, StoredSubscription>
  /** In order: what is sent first, then what is queued (as the broker's inflight + queue). */
  out: Array<{ o: StoredOutgoing; m: StoredMessage }>
}

/** The broker's side: live state, changed at random, with every change written to the store. */
class World {
  readonly retained = new Map<string, StoredMessage>()
  readonly sessions = new Map<string, ModelSession>()
  private readonly persisted = new Set<number>()
  private nextId = 1
  private nextOid = 1
  private nextClient = 0

  constructor(readonly store: LogStore, readonly random: () => number) {}

  private message(topic: string, retain: boolean): StoredMessage {
    const id = this.nextId++
    return { id, topic, payload: Buffer.from(`payload ${id}`), qos: 1, retain, properties: undefined, expiresAt: 0, origin: 'pub' }
  }

  /** As Broker.persistMessage: once, and again for every reference while a compaction runs. */
  private save(m: StoredMessage): void {
    if (this.persisted.has(m.id) && !this.store.compacting) return
    this.persisted.add(m.id)
    this.store.messageSaved(m)
  }

  setRetained(topic: string): void {
    const m = this.message(topic, true)
    this.retained.set(topic, m)
    this.save(m)
    this.store.retainedSet(topic, m.id)
  }

  addSession(): ModelSession {
    const s: ModelSession = { clientId: `c${this.nextClient++}`, expiryInterval: 3600, subs: new Map(), out: [] }
    this.sessions.set(s.clientId, s)
    this.store.sessionSaved(s.clientId, s.expiryInterval, undefined, 1000)
    const sub: StoredSubscription = { key: `t/${s.clientId}`, filter: `t/${s.clientId}`, group: '', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0 }
    s.subs.set(sub.key, sub)
    this.store.subscriptionAdded(s.clientId, sub)
    return s
  }

  queue(s: ModelSession, m: StoredMessage): void {
    const o: StoredOutgoing = { oid: this.nextOid++, messageId: m.id, qos: 1, retain: false, subscriptionIds: undefined, packetId: 0, released: false }
    s.out.push({ o, m })
    this.save(m)
    this.store.outgoingQueued(s.clientId, o)
  }

  /** One random change. */
  change(): void {
    const r = this.random()
    const sessions = [...this.sessions.values()]
    const any = (): ModelSession => sessions[Math.floor(this.random() * sessions.length)]!
    if (r < 0.2) {
      this.setRetained(`r/${Math.floor(this.random() * 3000)}`)
    } else if (r < 0.25) {
      const topic = `r/${Math.floor(this.random() * 3000)}`
      if (this.retained.delete(topic)) this.store.retainedCleared(topic)
    } else if (r < 0.3) {
      this.addSession()
    } else if (r < 0.35 && sessions.length > 0) {
      const s = any()
      this.sessions.delete(s.clientId)
      this.store.sessionEnded(s.clientId)
    } else if (r < 0.45 && sessions.length > 0) {
      // A retained message queued for a session (a new subscriber gets the retained messages).
      const ret = [...this.retained.values()]
      if (ret.length > 0) this.queue(any(), ret[Math.floor(this.random() * ret.length)]!)
    } else if (r < 0.7 && sessions.length > 0) {
      // A message published to several sessions: one body, several queue entries.
      const m = this.message('t/x', false)
      for (let i = 0; i < 3; i++) this.queue(any(), m)
    } else if (r < 0.85 && sessions.length > 0) {
      // The first queued entry is sent.
      const s = any()
      const e = s.out.find((x) => x.o.packetId === 0)
      if (e !== undefined) {
        e.o.packetId = 1 + (e.o.oid % 65535)
        this.store.outgoingSent(s.clientId, e.o.oid, e.o.packetId)
      }
    } else if (sessions.length > 0) {
      // The first sent entry is acknowledged.
      const s = any()
      const i = s.out.findIndex((x) => x.o.packetId !== 0)
      if (i >= 0) {
        const [e] = s.out.splice(i, 1)
        this.store.outgoingDone(s.clientId, e!.o.oid)
      }
    }
  }

  live(): LiveSnapshot {
    const world = this
    return {
      retained: world.retained.values(),
      sessions: (function * (): Generator<LiveSession> {
        for (const s of world.sessions.values()) {
          // The broker keeps in-flight entries before queued ones.
          const out = [...s.out.filter((x) => x.o.packetId !== 0), ...s.out.filter((x) => x.o.packetId === 0)]
          yield {
            session: { clientId: s.clientId, expiryInterval: s.expiryInterval, username: undefined, disconnectedAt: 1000, subscriptions: [...s.subs.values()], outgoing: out.map((x) => ({ ...x.o })), incomingQos2: [], will: undefined },
            messages: out.map((x) => x.m),
          }
        }
      })(),
    }
  }

  /** What a restore of the model must give, in comparable form. */
  expected(): unknown {
    const sessions = [...this.sessions.values()].map((s) => ({
      clientId: s.clientId,
      subs: [...s.subs.keys()].sort(),
      // Sent entries in the order they were sent (here: queue order), then queued ones.
      out: [...s.out.filter((x) => x.o.packetId !== 0), ...s.out.filter((x) => x.o.packetId === 0)].map((x) => `${x.o.oid}:${x.o.packetId}:${x.m.payload.toString()}`),
    })).sort((a, b) => a.clientId.localeCompare(b.clientId))
    const retained = [...this.retained.values()].map((m) => `${m.topic}=${m.payload.toString()}`).sort()
    return { sessions, retained }
  }
}

function restored(state: RecoveredState): unknown {
  const sessions = state.sessions.map((s) => ({
    clientId: s.clientId,
    subs: s.subscriptions.map((x) => x.key).sort(),
    out: s.outgoing.map((o) => `${o.oid}:${o.packetId}:${state.messages.get(o.messageId)!.payload.toString()}`),
  })).sort((a, b) => a.clientId.localeCompare(b.clientId))
  const retained = state.retained.map((m) => `${m.topic}=${m.payload.toString()}`).sort()
  return { sessions, retained }
}

/** The store as a kill -9 right now would leave it, read by a new broker. */
function crashCopy(t: TestContext, dir: string): RecoveredState {
  const copy = fs.mkdtempSync(path.join(dir, 'crash-'))
  fs.copyFileSync(path.join(dir, File), path.join(copy, File))
  const store = new LogStore({ dir: copy, file: File, fsync: false })
  t.after(() => store.close())
  const state = store.load()
  fs.rmSync(copy, { recursive: true, force: true })
  return state
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

for (const fsync of [false, true]) {
  test(`background compaction with writes between its steps${fsync ? ' (fsync)' : ''}: a crash after any step restores exactly what was committed, and the compacted file holds it all`, { timeout: 120_000 }, async (t) => {
    const seed = Number(process.env.MIDGE_COMPACT_SEED ?? Date.now() % 1_000_000)
    t.diagnostic(`seed ${seed} (MIDGE_COMPACT_SEED=${seed} replays it)`)
    const dir = tempDir(t)
    const errors: string[] = []
    const store = new LogStore({ dir, file: File, fsync, onError: (m) => errors.push(m) })
    t.after(() => store.close())
    store.load()
    const world = new World(store, prng(seed))
    // A state large enough for many steps: 12,000 retained messages (set twice: history to drop),
    // 1,500 sessions with 3 queued each.
    for (let i = 0; i < 24_000; i++) world.setRetained(`r/${i % 12_000}`)
    for (let i = 0; i < 1500; i++) {
      const s = world.addSession()
      for (let q = 0; q < 3; q++) world.queue(s, { id: 1e9 + i * 3 + q, topic: 't/q', payload: Buffer.from(`queued ${i}.${q}`), qos: 1, retain: false, properties: undefined, expiresAt: 0, origin: 'pub' })
    }
    for (let i = 0; i < 500; i++) world.change()
    await store.commit()
    const sizeBefore = fs.statSync(path.join(dir, File)).size

    assert.equal(store.beginCompaction(world.live()), true)
    assert.equal(store.compacting, true)
    assert.equal(store.beginCompaction(world.live()), false, 'one at a time')
    let steps = 0
    let checks = 0 // crash copies checked
    let longest = 0
    while (store.compacting) {
      for (let i = 0; i < 40; i++) world.change()
      await store.commit()
      const started = performance.now()
      store.compactStep()
      longest = Math.max(longest, performance.now() - started)
      steps++
      // After every step, and on while the fsync and the rename run off-thread.
      assert.deepEqual(restored(crashCopy(t, dir)), world.expected(), `a crash after step ${steps} (seed ${seed})`)
      checks++
      await turn()
      assert.ok(steps < 100_000, 'the compaction ends')
    }
    assert.deepEqual(errors, [])
    t.diagnostic(`${steps} steps (${checks} crash copies checked), longest step ${longest.toFixed(1)} ms`)
    // Each step serializes for 4 ms (the event-loop delay is measured by bench/persist/compaction.bench).
    assert.ok(steps >= 2, `the compaction took several steps (${steps})`)
    assert.ok(!fs.existsSync(path.join(dir, `${File}.new`)), 'no <file>.new left behind')

    // After the swap, writes go to the new file and restore the same.
    for (let i = 0; i < 200; i++) world.change()
    await store.commit()
    assert.deepEqual(restored(crashCopy(t, dir)), world.expected(), 'after the compaction')
    assert.ok(fs.statSync(path.join(dir, File)).size < sizeBefore, 'the history is gone')
    assert.equal(store.recordsAtCompaction > 12_000, true)
  })
}

test('a background compaction is dropped (the old file stays the store) by a synchronous one and by close()', async (t) => {
  const dir = tempDir(t)
  const store = new LogStore({ dir, file: File, fsync: false })
  store.load()
  const world = new World(store, prng(1))
  for (let i = 0; i < 20_000; i++) world.setRetained(`r/${i}`)
  await store.commit()
  assert.equal(store.beginCompaction(world.live()), true)
  store.compactStep()
  assert.equal(store.compacting, true)
  const state = crashCopy(t, dir)
  store.compact({ ...state, report: [] })
  assert.equal(store.compacting, false)
  assert.ok(!fs.existsSync(path.join(dir, `${File}.new`)))
  world.setRetained('after')
  await store.commit()
  assert.deepEqual(restored(crashCopy(t, dir)), world.expected())

  assert.equal(store.beginCompaction(world.live()), true)
  store.compactStep()
  store.close()
  assert.equal(store.compacting, false)
  assert.ok(!fs.existsSync(path.join(dir, `${File}.new`)))
  await turn()
  assert.deepEqual(restored(crashCopy(t, dir)), world.expected())
})
