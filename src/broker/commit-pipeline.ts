/**
 * The pipelined group commit (issue #18; docs/persistence.md, *The guarantee, precisely*). Connections
 * with bytes to send are flushed once per read, after the commit of the records those bytes depend on:
 * the store's and any other participant's (a cluster's hand-over). A commit that returns a Promise is
 * pipelined: the turn's connections are sealed until it resolves, the event loop goes on reading and
 * routing, and the next commit starts as soon as it resolves with everything buffered meanwhile. Commits
 * never overlap. Bytes that depend on no commit (Connection.write's `free`) leave without waiting.
 */
import type { CommitParticipant } from '../persistence/store.js'
import type { BrokerOptions } from './options.js'
import type { Connection } from './connection.js'
import { appended } from './append.js'

/** What the pipeline needs of the broker. */
export interface CommitHost {
  readonly options: BrokerOptions
  /** A commit failed: the broker stops (it must not acknowledge what is not stored). */
  storeFailed(err: Error): void
  /** Runs between two commits, never during one: compaction steps, the autosave check. */
  betweenCommits(): void
}

/**
 * Records (bytes) the store may buffer while a commit runs before the broker stops reading from clients:
 * far above what a commit carries at full speed (~10 KB per ms of fsync), low enough to bound memory.
 */
const MaxPendingCommitBytes = 16 * 1024 * 1024

export class CommitPipeline {
  private readonly host: CommitHost
  /** Connections with bytes to send since the last flush. */
  private dirty: Connection[] = []
  private flushScheduled = false
  /** The store (first) and what addParticipant added: each commit covers them all. */
  private readonly participants: CommitParticipant[] = []
  /** The pipelined commit under way, undefined when none is: the next one starts once it has settled. */
  private committing: Promise<void> | undefined = undefined
  /** Connections whose bytes were sealed for `committing`: they leave when it resolves. */
  private sealed: Connection[] = []
  /** Connections closed while their last bytes wait for a commit: their streams end when it resolves. */
  private ending: Connection[] = []
  /** commit() callers waiting for the last commit. */
  private idleWaiters: Array<() => void> = []
  /** Set once a commit has failed: nothing it covered is ever sent. */
  private failed = false
  /** Connections that stopped reading while the store's buffer was over its bound (backlogged). */
  private readersWaiting: Connection[] = []
  private readonly runFlush = (): void => this.flushTurn()
  /** When the commit under way (or the last) started, performance.now(). */
  private lastCommitAt = Number.NEGATIVE_INFINITY
  /** The next commit, waiting out the gap (commitAfterGap); undefined when none waits. */
  private nextCommit: NodeJS.Timeout | undefined = undefined
  private readonly runNextCommit = (): void => {
    this.nextCommit = undefined
    this.flushAll()
  }

  constructor(host: CommitHost) {
    this.host = host
    if (host.options.store !== undefined) this.participants.push(host.options.store)
  }

  /** Whether a pipelined commit is under way (a compaction waits for it to settle). */
  get busy(): boolean {
    return this.committing !== undefined
  }

  /** Whether a commit failed (the broker is stopping: nothing more is committed or sent). */
  get hasFailed(): boolean {
    return this.failed
  }

  /** conn has bytes to send: they leave at the end of this read, or with the commit they depend on. */
  schedule(conn: Connection): void {
    this.dirty = appended(this.dirty, conn)
    if (!this.flushScheduled) {
      this.flushScheduled = true
      // On a microtask, so what a read causes leaves at the end of that read's callback, in one write per
      // connection, rather than after every other socket's read of the poll phase (at fan-in that made
      // the subscriber's turn pile up to the congestion bound: 3x slower, see docs/performance.md).
      // A settled Promise's then() rather than queueMicrotask, which wraps every callback in an AsyncResource
      // and a bound function (twice per connection's CONNECT + SUBSCRIBE: ~350 B of garbage and its GC).
      resolved.then(this.runFlushOrCommitLater)
    }
  }

  /**
   * Adds work that must be durable before the acknowledgements of the same turn leave: its commit joins
   * the others', and the turn's bytes wait for all of them. Returns the function that removes it.
   */
  addParticipant(p: CommitParticipant): () => void {
    this.participants.push(p)
    return () => {
      const i = this.participants.indexOf(p)
      if (i >= 0) this.participants.splice(i, 1)
    }
  }

  /** True when some participant has buffered work for the next commit. */
  get due(): boolean {
    const list = this.participants
    for (let i = 0; i < list.length; i++) if (list[i]!.dirty) return true
    return false
  }

  /**
   * With records pending, the bytes wait for the end of the poll phase (setImmediate), so one commit
   * per turn covers everything the turn's acknowledgements depend on (group commit). Without (no store,
   * or nothing persistent touched: clean sessions), they leave now.
   */
  private readonly runFlushOrCommitLater = (): void => {
    if (this.committing === undefined && this.due && this.nextCommit === undefined) {
      // Deliveries that need no commit leave at the end of the read, as without a store.
      this.flushFree()
      setImmediate(this.runFlush)
    } else {
      this.flushTurn()
    }
  }

  /** Flushes the dirty connections whose bytes depend on no commit (Connection.write); the others stay dirty. */
  private flushFree(): void {
    const list = this.dirty
    this.dirty = []
    for (let i = 0; i < list.length; i++) {
      const conn = list[i]!
      // A reentrant write (an in-memory peer answering) may have made it dirty again: it is in this.dirty then.
      if (conn.dependsOnCommit) this.dirty.push(conn)
      else conn.flush()
    }
    this.endClosed()
  }

  /**
   * Commits, then lets the turn's bytes out. A synchronous commit: at once. A pipelined one (a Promise):
   * the turn's connections are sealed, their bytes leave when it resolves, and the loop goes on; what
   * happens meanwhile (new records, new bytes, for these connections too) waits for the next commit,
   * started when this one resolves: under load each commit takes everything since the last (group
   * commit), and bytes never leave before the commit of the turn that made them.
   */
  flushAll(): void {
    this.flushScheduled = false
    if (this.nextCommit !== undefined) {
      // Asked for now (a close, commit()): no waiting out the gap.
      clearTimeout(this.nextCommit)
      this.nextCommit = undefined
    }
    if (this.committing !== undefined) {
      // The rest waits for the commit under way to resolve (onCommitted starts the next one).
      this.flushFree()
      return
    }
    if (this.failed) {
      // Nothing is committed or sent any more: storeFailed is stopping the broker.
      this.dirty = []
      return
    }
    const result = this.commitAll()
    const list = this.dirty
    this.dirty = []
    if (this.failed) return
    if (result === undefined) {
      for (let i = 0; i < list.length; i++) list[i]!.flush()
      this.endClosed()
      this.host.betweenCommits()
      // Nothing is under way: commit() callers are done, also those that waited for the gap's commit, cleared
      // above and found with nothing to do (a participant, the cluster, committed itself meanwhile). Without
      // this they waited for the next commit that ran, however late: docs/performance.md, fifth round.
      if (this.committing === undefined) this.settled()
      return
    }
    // Set before any byte is written: a write can close a connection (in-memory peers), whose flush must
    // then wait for this commit rather than start another.
    this.committing = result
    this.lastCommitAt = performance.now()
    const sealed = this.sealed
    const free: Connection[] = []
    for (let i = 0; i < list.length; i++) {
      const conn = list[i]!
      if (conn.dependsOnCommit) {
        conn.seal()
        sealed.push(conn)
      } else {
        free.push(conn)
      }
    }
    result.then(this.onCommitted, this.onCommitFailed)
    for (let i = 0; i < free.length; i++) {
      const conn = free[i]!
      // An in-memory peer answering a flush may have written bytes that depend on the next commit.
      if (conn.dependsOnCommit) this.dirty.push(conn)
      else conn.flush()
    }
  }

  private readonly onCommitted = (): void => {
    this.committing = undefined
    const list = this.sealed
    this.sealed = []
    for (let i = 0; i < list.length; i++) list[i]!.releaseSealed()
    this.endClosed()
    this.host.betweenCommits()
    // Everything that happened while it ran: the next commit, once the gap since this one began has passed.
    if (this.dirty.length > 0 || this.due) this.commitAfterGap()
    if (this.committing === undefined && this.nextCommit === undefined) this.settled()
    const readers = this.readersWaiting
    if (readers.length > 0) {
      // On a later turn, as a yielded read resumes: the next commit has taken the backlog by then.
      this.readersWaiting = []
      for (const conn of readers) setImmediate(resumeRead, conn)
    }
  }

  /**
   * Whether reading should stop until the commit under way resolves: the records buffered meanwhile have
   * passed MaxPendingCommitBytes (a disk slower than the clients), and would grow without end otherwise.
   */
  get backlogged(): boolean {
    return this.committing !== undefined && (this.host.options.store?.pendingBytes ?? 0) > MaxPendingCommitBytes
  }

  /** A connection stopped reading (Connection.waitForCommit): it reads on once the commit under way resolves. */
  resumeAfter(conn: Connection): void {
    if (this.committing === undefined) setImmediate(resumeRead, conn)
    else this.readersWaiting.push(conn)
  }

  /** The turn's flush: while the next commit waits out its gap, only what depends on no commit leaves. */
  private flushTurn(): void {
    if (this.nextCommit === undefined) {
      this.flushAll()
      return
    }
    this.flushScheduled = false
    this.flushFree()
  }

  /**
   * Back to back, a commit starts BrokerOptions.commitGapMs (1 ms) after the one before it began. Under sustained
   * QoS 1 load without fsync a commit's write takes tens of microseconds, so commits followed each other with ~12
   * messages each, each paying the thread pool's hand-over and a PUBACK write per publisher: 1 ms took 1.5 µs of
   * CPU off each message (docs/performance.md, fourth round). At low load the last commit is long past and
   * nothing waits; under load an acknowledgement waits at most that long more. commit() and a close do not wait.
   */
  private commitAfterGap(): void {
    const wait = this.host.options.commitGapMs - (performance.now() - this.lastCommitAt)
    if (wait <= 0) {
      this.flushAll()
      return
    }
    this.flushFree()
    this.nextCommit ??= setTimeout(this.runNextCommit, wait)
  }

  private readonly onCommitFailed = (err: unknown): void => {
    this.committing = undefined
    this.sealed = []
    this.failCommit(err)
  }

  /** A commit that failed: nothing it covered may be acknowledged, so the broker stops (storeFailed). */
  private failCommit(err: unknown): void {
    this.failed = true
    const e = err instanceof Error ? err : new Error(String(err))
    // A store that can't be written must not let acknowledgements out as if it had been: stop accepting.
    this.host.options.logger.error(`Persistence failed: ${e.message}. Shutting down to avoid acknowledging messages that are not stored.`)
    for (const conn of this.ending) conn.stream.destroy()
    this.ending = []
    this.settled()
    this.host.storeFailed(e)
  }

  /**
   * Starts the commit of every dirty participant: undefined when all of them committed synchronously
   * (or none was dirty, or one threw: storeFailed), else the Promise of the pipelined ones.
   */
  private commitAll(): Promise<void> | undefined {
    const list = this.participants
    let pending: Promise<void>[] | undefined
    try {
      for (let i = 0; i < list.length; i++) {
        const p = list[i]!
        if (!p.dirty) continue
        const r = p.commit()
        if (r !== undefined) (pending ??= []).push(r)
      }
    } catch (err) {
      this.failCommit(err)
      return undefined
    }
    if (pending === undefined) return undefined
    return pending.length === 1 ? pending[0] : Promise.all(pending).then(noop)
  }

  private settled(): void {
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const w of waiters) w()
  }

  /** The closed connections whose last bytes have left: their streams end now. */
  private endClosed(): void {
    if (this.ending.length === 0) return
    const list = this.ending
    this.ending = []
    for (const conn of list) {
      if (conn.holdsBytes) this.ending.push(conn)
      else conn.endStream()
    }
  }

  /**
   * A connection closed: what it was told (and the session and will records of the close) leave after
   * the commit that covers them, then its stream ends. At once when nothing is pipelined.
   */
  closeAfterCommit(conn: Connection): void {
    if (this.failed) {
      conn.stream.destroy()
      return
    }
    // Its unsent bytes, if any, are in this.dirty (or sealed): a closed connection gets no more.
    this.ending = appended(this.ending, conn)
    if (this.committing === undefined) this.flushAll()
  }

  /**
   * Makes what changed outside a read (timers: wills, expiries; the dashboard's actions) durable, pipelined
   * like a turn's; resolves once everything changed so far is committed and its bytes have left (or the
   * commit failed: storeFailed). At once with a synchronous store.
   */
  commit(): Promise<void> {
    if (this.committing === undefined) this.flushAll()
    if (this.committing === undefined) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }
}

function noop(): void {}
/** Its then() runs the callback on a microtask (schedule). */
const resolved = Promise.resolve()
function resumeRead(conn: Connection): void { conn.resumeRead() }
