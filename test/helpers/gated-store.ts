/**
 * A Store whose commits are pipelined and finish only when the test says so: commit() returns a Promise
 * the test resolves (release) or rejects (fail). It keeps no state (load() gives an empty one, on a later
 * turn, as a store over the network would) and counts the records each commit covered, so a test can see
 * what the broker buffered while a commit was under way and what the next one took.
 */
import type { CommitParticipant, RecoveredState, Store } from '../../src/persistence/store.js'

interface PendingCommit {
  /** Mutations (and their names) this commit covers. */
  records: string[]
  resolve: () => void
  reject: (err: Error) => void
}

export class GatedStore implements Store {
  /** Records buffered for the next commit. */
  buffered: string[] = []
  /** The commit under way, if any; the broker must never start a second one meanwhile. */
  pending: PendingCommit | undefined = undefined
  /** The records of each commit started so far, in order. */
  readonly commits: string[][] = []
  /** While true, each commit resolves on its own on the next turn (to set a test up). */
  autoRelease = true
  /** Set when the broker broke the contract (commit during a commit, close while one runs). */
  violation: string | undefined = undefined
  closed = 0

  load(): Promise<RecoveredState> {
    return new Promise((resolve) => setImmediate(() => resolve({ sessions: [], retained: [], messages: new Map(), nextMessageId: 1, nextOutgoingId: 1, report: ['loaded nothing (a gated test store)'] })))
  }

  private add(what: string): void { this.buffered.push(what) }
  sessionSaved(clientId: string): void { this.add(`session ${clientId}`) }
  sessionEnded(clientId: string): void { this.add(`ended ${clientId}`) }
  subscriptionAdded(clientId: string, sub: { key: string }): void { this.add(`sub ${clientId} ${sub.key}`) }
  subscriptionRemoved(clientId: string, key: string): void { this.add(`unsub ${clientId} ${key}`) }
  messageSaved(msg: { id: number; topic: string }): void { this.add(`message ${msg.topic}`) }
  retainedSet(topic: string): void { this.add(`retain ${topic}`) }
  retainedCleared(topic: string): void { this.add(`unretain ${topic}`) }
  outgoingQueued(clientId: string): void { this.add(`queued ${clientId}`) }
  outgoingSent(clientId: string): void { this.add(`sent ${clientId}`) }
  outgoingReleased(clientId: string): void { this.add(`released ${clientId}`) }
  outgoingDone(clientId: string): void { this.add(`done ${clientId}`) }
  incomingQos2Added(clientId: string): void { this.add(`qos2 ${clientId}`) }
  incomingQos2Released(clientId: string): void { this.add(`qos2 released ${clientId}`) }
  willSaved(clientId: string): void { this.add(`will ${clientId}`) }

  get dirty(): boolean { return this.buffered.length > 0 }
  /** The size each buffered record counts for in pendingBytes (a test raises it to pass the broker's bound). */
  recordBytes = 100
  get pendingBytes(): number { return this.buffered.length * this.recordBytes }
  readonly changesSinceCompaction = 0
  readonly recordsAtCompaction = 0

  commit(): Promise<void> {
    if (this.pending !== undefined) this.violation = 'commit() while a commit was under way'
    const records = this.buffered
    this.buffered = []
    this.commits.push(records)
    return new Promise<void>((resolve, reject) => {
      this.pending = { records, resolve, reject }
      if (this.autoRelease) setImmediate(() => this.release())
    })
  }

  /** Finishes the commit under way. */
  release(): void {
    const p = this.pending
    if (p === undefined) throw new Error('GatedStore.release: no commit under way')
    this.pending = undefined
    p.resolve()
  }

  /** Fails the commit under way. */
  fail(err: Error): void {
    const p = this.pending
    if (p === undefined) throw new Error('GatedStore.fail: no commit under way')
    this.pending = undefined
    p.reject(err)
  }

  compact(): void {
    if (this.pending !== undefined) this.violation = 'compact() while a commit was under way'
  }

  close(): void {
    if (this.pending !== undefined) this.violation = 'close() while a commit was under way'
    this.closed++
  }
}

/** A commit participant (a cluster forwarder, say) with the same gate: dirty while `work` is set. */
export class GatedParticipant implements CommitParticipant {
  work = 0
  pending: (() => void) | undefined = undefined
  commits = 0

  get dirty(): boolean { return this.work > 0 }

  commit(): Promise<void> {
    this.work = 0
    this.commits++
    return new Promise((resolve) => { this.pending = resolve })
  }

  release(): void {
    const r = this.pending
    if (r === undefined) throw new Error('GatedParticipant.release: no commit under way')
    this.pending = undefined
    r()
  }
}
