/**
 * In-process crash simulation for restart tests. A CrashableStore passes a broker's mutations to a
 * real LogStore only when the broker commits; crash() then freezes it, so the file holds exactly what
 * was committed up to that instant, as after a kill -9 (the real kill -9 is in 20-crash-kill9).
 * Its commit is pipelined (Store.commit returns a Promise): the records reach the file only when the
 * Promise resolves, on a later turn, so a crash while one is under way loses it, and every restart test
 * checks that nothing was acknowledged before the commit it depends on had landed.
 * After the crash the old broker is closed only to stop its timers and sockets: nothing it does from
 * then on reaches the disk.
 *
 * Life:  const life = new BrokerLife(t, dir)   b1 = life.start()   ...   life.crash()   b2 = life.start()
 */
import type { TestContext } from 'node:test'
import { Broker } from '../../src/broker/broker.js'
import type { BrokerOptions } from '../../src/broker/options.js'
import { LogStore } from '../../src/persistence/log-store.js'
import type { RecoveredState, Store, StoredOutgoing, StoredSubscription, StoredMessage, StoredWill } from '../../src/persistence/store.js'
import { silentLogger } from '../../src/observability/logger.js'
import { attach, FakeClock, type TestClient } from '../helpers/broker-harness.js'
import type { ProtocolVersion } from '../../src/protocol/constants.js'

export class CrashableStore implements Store {
  readonly inner: LogStore
  private pending: Array<(s: Store) => void> = []
  crashed = false

  constructor(inner: LogStore) {
    this.inner = inner
  }

  private add(f: (s: Store) => void): void {
    if (!this.crashed) this.pending.push(f)
  }

  load(): RecoveredState { return this.inner.load() }
  sessionSaved(c: string, e: number, u: string | undefined, d: number): void { this.add((s) => s.sessionSaved(c, e, u, d)) }
  sessionEnded(c: string): void { this.add((s) => s.sessionEnded(c)) }
  subscriptionAdded(c: string, sub: StoredSubscription): void { const copy = { ...sub }; this.add((s) => s.subscriptionAdded(c, copy)) }
  subscriptionRemoved(c: string, key: string): void { this.add((s) => s.subscriptionRemoved(c, key)) }
  messageSaved(m: StoredMessage): void { this.add((s) => s.messageSaved(m)) }
  retainedSet(topic: string, id: number): void { this.add((s) => s.retainedSet(topic, id)) }
  retainedCleared(topic: string): void { this.add((s) => s.retainedCleared(topic)) }
  outgoingQueued(c: string, o: StoredOutgoing): void { const copy = { ...o }; this.add((s) => s.outgoingQueued(c, copy)) }
  outgoingSent(c: string, oid: number, pid: number): void { this.add((s) => s.outgoingSent(c, oid, pid)) }
  outgoingReleased(c: string, oid: number): void { this.add((s) => s.outgoingReleased(c, oid)) }
  outgoingDone(c: string, oid: number): void { this.add((s) => s.outgoingDone(c, oid)) }
  incomingQos2Added(c: string, id: number): void { this.add((s) => s.incomingQos2Added(c, id)) }
  incomingQos2Released(c: string, id: number): void { this.add((s) => s.incomingQos2Released(c, id)) }
  willSaved(c: string, w: StoredWill | undefined): void { this.add((s) => s.willSaved(c, w)) }

  get dirty(): boolean { return this.pending.length > 0 }
  get changesSinceCompaction(): number { return this.crashed ? 0 : this.inner.changesSinceCompaction + this.pending.length }
  get recordsAtCompaction(): number { return this.inner.recordsAtCompaction }

  /** Commits under way (at most one: the broker serializes them). */
  inFlight = 0

  commit(): Promise<void> {
    if (this.inFlight !== 0) throw new Error('CrashableStore: commit() called while a commit is under way')
    const ops = this.pending
    this.pending = []
    this.inFlight++
    return new Promise((resolve, reject) => {
      // The write lands on a later turn; a crash meanwhile loses it, like a kill -9 during the write.
      setImmediate(() => {
        if (this.crashed) {
          this.inFlight--
          resolve()
          return
        }
        for (const f of ops) f(this.inner)
        // The real store's own (pipelined) write: this commit is done when it is.
        Promise.resolve(this.inner.commit()).then(() => {
          this.inFlight--
          resolve()
        }, reject)
      })
    })
  }

  /** Called between commits only (the broker never compacts while one is under way). */
  private assertIdle(what: string): void {
    if (this.inFlight !== 0) throw new Error(`CrashableStore: ${what} while a commit is under way`)
  }

  compact(state: RecoveredState): void {
    this.assertIdle('compact()')
    if (this.crashed) return
    this.pending = []
    this.inner.compact(state)
  }

  close(): void | Promise<void> {
    if (!this.crashed) {
      this.assertIdle('close()')
      for (const f of this.pending) f(this.inner)
      this.pending = []
    }
    // After a crash the inner store may still be writing the commit it was given: it closes after it.
    return this.inner.close()
  }

  /** From now on nothing reaches the file: what was committed is all that survives. */
  crash(): void {
    this.crashed = true
    this.pending = []
  }
}

export interface Life {
  broker: Broker
  store: CrashableStore
  clock: FakeClock
  /** A raw in-memory client on this broker (closed with it). */
  raw(version: ProtocolVersion): TestClient
  /** A connected client; throws unless CONNACK says success. Returns it and Session Present. */
  connect(version: ProtocolVersion, fields: Parameters<TestClient['connect']>[0]): Promise<{ c: TestClient; present: boolean }>
}

/** Successive brokers on one store directory: start(), crash() or stop(), start() again. */
export class BrokerLife {
  private readonly t: TestContext
  readonly dir: string
  private readonly opts: Partial<BrokerOptions>
  private current: { life: Life; clients: TestClient[] } | undefined = undefined
  /** Report lines of the last restore. */
  report: string[] = []

  constructor(t: TestContext, dir: string, opts: Partial<BrokerOptions> = {}) {
    this.t = t
    this.dir = dir
    this.opts = opts
    t.after(() => this.crash())
  }

  /** A new broker restored from the directory; its clock starts at `now` (default: real time). */
  async start(now?: number): Promise<Life> {
    if (this.current !== undefined) throw new Error('BrokerLife.start: crash() or stop() the running broker first')
    const store = new CrashableStore(new LogStore({ dir: this.dir, file: 'midge.db', fsync: false }))
    const broker = new Broker({ logger: silentLogger(), sysInterval: 0, connectTimeoutMs: 100, ...this.opts, store })
    broker.storeFailed = (err) => { throw err }
    const clock = new FakeClock(broker)
    if (now !== undefined) clock.now = now
    this.report = await broker.restore()
    const clients: TestClient[] = []
    const life: Life = {
      broker, store, clock,
      raw: (version) => {
        const c = attach(broker, version)
        clients.push(c)
        return c
      },
      connect: async (version, fields) => {
        const c = life.raw(version)
        const ack = await c.connect(fields)
        if (ack.reasonCode !== 0) throw new Error(`CONNECT refused with 0x${ack.reasonCode.toString(16)}`)
        return { c, present: ack.sessionPresent }
      },
    }
    this.current = { life, clients }
    return life
  }

  /** kill -9: the store freezes at its last commit, then the old broker's timers and sockets go. */
  crash(): void {
    const cur = this.current
    if (cur === undefined) return
    this.current = undefined
    cur.life.store.crash()
    for (const c of cur.clients) c.destroy()
    void cur.life.broker.close()
  }

  /** A clean shutdown: broker.close() waits for the last commit, compacts and closes the store. */
  async stop(): Promise<void> {
    const cur = this.current
    if (cur === undefined) return
    this.current = undefined
    const closed = cur.life.broker.close()
    for (const c of cur.clients) c.destroy()
    await closed
  }
}
