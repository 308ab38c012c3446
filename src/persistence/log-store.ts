/**
 * The embedded store: one append-only file of checksummed records (record-buffer.ts) that is
 * periodically rewritten as a snapshot. Mutations are appended to an in-memory buffer and written with
 * one write() per event-loop turn (commit): once write() returns, the bytes are in the kernel and
 * survive a kill -9 of the broker; `fsync` adds fdatasync for power loss.
 *
 * File: "MIDGEDB\0" | u32 format version (1) | records...
 * A torn or corrupt tail is cut off at start-up and saved beside the file as <file>.damaged-<time>.
 *
 * Ownership: a broker started as root opens and compacts the store before it drops to its `user`, then
 * appends to it as that user. So everything the store creates (its folder, the file, <file>.new, the
 * damaged copies) is handed to `owner` at creation, before a rename makes it the store.
 *
 * A compaction that fails (EACCES on <file>.new, a full disk) changes nothing: the log it would have
 * replaced is complete, so the broker keeps appending to it; the failure is reported through `onError`
 * and compaction is not tried again for a minute.
 *
 * Why not SQLite: a QoS 1 message to a persistent subscriber costs 3-4 small records; appending them to
 * one buffer and writing once per turn costs far less than statements in a transaction, and recovery
 * is one sequential read. See docs/persistence.md for the measurements.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { handOver, makeDirFor, type FileOwner } from '../config/hand-over.js'
import type { QoS } from '../protocol/constants.js'
import { PublishBytesReader, StoredVersion, storedPublish, willBytes } from './publish-bytes.js'
import { RecordWriter, scanRecords, type RecordReader } from './record-buffer.js'
import type { LiveSnapshot, RecoveredState, Store, StoredMessage, StoredOutgoing, StoredSession, StoredSubscription, StoredWill } from './store.js'

export const FormatVersion = 1
const Magic = Buffer.from('MIDGEDB\0', 'latin1')
/** What a Midge store file starts with (then the u32 format version). */
export const StoreMagic: Readonly<Buffer> = Magic
const HeaderSize = Magic.length + 4

const Rec = {
  Session: 1,
  SessionEnd: 2,
  Sub: 3,
  Unsub: 4,
  Message: 5,
  Retain: 6,
  RetainClear: 7,
  OutQueued: 8,
  OutSent: 9,
  OutReleased: 10,
  OutDone: 11,
  InQos2: 12,
  InQos2Done: 13,
  Will: 14,
  WillClear: 15,
} as const

export interface LogStoreOptions {
  /** Directory holding the file (persistence_location). Created if missing. */
  dir: string
  /** File name (persistence_file). */
  file: string
  /** fdatasync after each commit: survives power loss, at a measured cost. */
  fsync: boolean
  /** The user the broker runs as after dropping root: what the store creates while root is chowned to it. */
  owner?: FileOwner | undefined
  /** Reports a failed compaction (one sentence: file, user, what to do). Default: stderr. */
  onError?: ((message: string) => void) | undefined
}

/** How long after a failed compaction the store reports no changes to compact, so it is not retried every turn. */
const CompactionRetryMs = 60_000
/** A background compaction's step serializes for this long (then writes what it made): well under 20 ms a turn. */
const StepMs = 4
/** Records committed during a background compaction are copied to <file>.new at most this much per step. */
const StepBytes = 4 * 1024 * 1024

/**
 * A compaction in the background. The snapshot is read from the live broker a step at a time, so an
 * object is serialized as it is when its step comes, not as it was when the compaction began. What
 * makes the result exact is the tail: every record committed since the beginning is kept and written
 * after the snapshot, so loading the new file replays them over a state that may already hold some of
 * their effects. Each record sets a value (a session's fields, a subscription, a queue entry's state,
 * a retained topic) or removes one, so applying it again gives the same result, and the last record
 * about a thing wins, as it would have in the old log. Messages: the snapshot may have passed the
 * session or topic that referred to a message before a record referred to it again, so while a
 * compaction runs the broker saves every message it refers to again (Store.compacting).
 *
 * Phases: 'snapshot' (steps; commits go to the old file and to `tail`), 'drain' (steps copy `tail`
 * to the new file), 'sync' (commits go to both files; an fsync of the new file runs off-thread; when it
 * is done the new file is renamed over the old one), 'swap' (the new file is the store; commits still go
 * to both until the directory is synced, so that whichever name a power loss leaves holds them all).
 * kill -9 at any moment leaves the old file (complete) or the renamed new one (complete).
 */
interface Compaction {
  phase: 'snapshot' | 'drain' | 'sync' | 'swap'
  /** Descriptor of <file>.new; in 'swap', of the old file. */
  other: number
  tmp: string
  live: LiveSnapshot
  retainedDone: boolean
  readonly w: RecordWriter
  readonly saved: Set<number>
  /** Records the snapshot holds. */
  records: number
  /** this.changes when it began: records since then are the new file's history. */
  readonly changesAtStart: number
  readonly tail: Buffer[]
  /** An fsync runs off-thread on `other` (or the directory): its callback closes what a cancel left open. */
  busy: boolean
  cancelled: boolean
}

/** Creates persistence_location if missing (0700), every folder made handed to `owner`. */
export function makeStoreDir(dir: string, owner: FileOwner | undefined): void {
  makeDirFor(dir, owner)
}

export class LogStore implements Store {
  readonly filePath: string
  private readonly opts: LogStoreOptions
  private fd = -1
  /** Records buffered for the next commit. */
  private w = new RecordWriter()
  /** The other buffer: the one the commit under way writes from; swapped with `w` at each commit. */
  private spare = new RecordWriter()
  /** A commit's write (and fdatasync) is under way on the thread pool. */
  private writing = false
  /** Records written between commits (a compaction's first step) but not fdatasync'ed yet: the next commit does. */
  private unsynced = false
  /** What a compaction's file-system callbacks must not do while a commit writes (rename, close): done after it. */
  private afterWrite: Array<() => void> = []
  private changes = 0
  /** Records the file held right after the last compaction (or load): the live state's size. */
  private liveRecords = 0
  private readonly publish = new PublishBytesReader()
  /** After a failed compaction: no new attempt before this time (ms since the epoch). */
  private compactionRetryAt = 0
  private job: Compaction | undefined

  constructor(opts: LogStoreOptions) {
    this.opts = opts
    this.filePath = path.resolve(opts.dir, opts.file)
  }

  get dirty(): boolean {
    return this.w.pos > 0 || this.unsynced
  }

  get pendingBytes(): number {
    return this.w.pos
  }

  get recordsAtCompaction(): number {
    return this.liveRecords
  }

  get changesSinceCompaction(): number {
    return this.compactionRetryAt > Date.now() || this.job !== undefined ? 0 : this.changes
  }

  get compacting(): boolean {
    return this.job !== undefined
  }

  load(): RecoveredState {
    makeStoreDir(this.opts.dir, this.opts.owner)
    const report: string[] = []
    let buf: Buffer
    try {
      buf = fs.readFileSync(this.filePath)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw describeFileError(err as NodeJS.ErrnoException, this.filePath, 'read')
      buf = Buffer.alloc(0)
    }
    const model = new Model()
    let rewrite = true
    let records = 0
    if (buf.length > 0) {
      if (buf.length < HeaderSize || !buf.subarray(0, Magic.length).equals(Magic)) {
        const aside = this.setAside(buf, 0)
        report.push(`${this.filePath} is not a Midge store (bad header); moved it to ${aside} and started empty`)
        buf = Buffer.alloc(0)
      } else {
        const version = buf.readUInt32BE(Magic.length)
        if (version !== FormatVersion) throw new Error(`${this.filePath}: store format version ${version} is not readable by this Midge (it reads version ${FormatVersion})`)
        const scan = scanRecords(buf, HeaderSize, (type, r) => { records++; this.apply(model, type, r) })
        if (scan.damage !== undefined) {
          const aside = this.setAside(buf, scan.goodEnd)
          report.push(`${this.filePath}: found ${scan.damage}; kept everything before it, moved the ${buf.length - scan.goodEnd} bytes after it to ${aside}`)
          fs.truncateSync(this.filePath, scan.goodEnd)
        } else {
          rewrite = false
        }
      }
    }
    const state = model.toState(report)
    if (report.length > 0) rewrite = true
    report.unshift(`loaded ${state.sessions.length} persistent sessions and ${state.retained.length} retained messages from ${this.filePath}`)
    // A file that is mostly live records (e.g. the snapshot a clean shutdown wrote) is kept and appended
    // to: rewriting it would double the start-up time for nothing. One that is mostly history, damaged
    // or new is rewritten as a snapshot, so recovery cost stays proportional to the live state.
    const live = snapshotRecordCount(state)
    this.liveRecords = live
    if (rewrite || records > 2 * live + 1000) {
      try {
        this.writeSnapshot(state)
      } catch (err) {
        this.changes = records - live
        // An empty or foreign file cannot be appended to: it needs at least a header.
        if (buf.length === 0) this.writeEmptyStore()
        this.compactionFailed(err)
      }
    } else {
      this.changes = records - live
      // Written by a run that may not have synced it: make it as durable as what we add to it.
      if (this.opts.fsync) syncFile(this.filePath)
    }
    return state
  }

  private setAside(buf: Buffer, from: number): string {
    const aside = `${this.filePath}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`
    // 'wx': a name planted in advance (a link, in a folder the broker's user can write) is never written through.
    fs.writeFileSync(aside, buf.subarray(from), { mode: 0o600, flag: 'wx' })
    this.handOver(aside)
    return aside
  }

  private apply(m: Model, type: number, r: RecordReader): void {
    switch (type) {
      case Rec.Session: {
        const id = r.str()
        const s = m.session(id)
        s.expiryInterval = r.u32()
        const hasUser = r.u8()
        s.username = hasUser ? r.str() : undefined
        s.disconnectedAt = r.f64()
        return
      }
      case Rec.SessionEnd: m.sessions.delete(r.str()); return
      case Rec.Sub: {
        const s = m.session(r.str())
        const key = r.str()
        const filter = r.str()
        const group = r.str()
        const qos = r.u8() as QoS
        const flags = r.u8()
        const subscriptionId = r.u32()
        s.subs.set(key, { key, filter, group, qos, noLocal: (flags & 1) !== 0, retainAsPublished: (flags & 2) !== 0, retainHandling: ((flags >> 2) & 3) as 0 | 1 | 2, subscriptionId })
        return
      }
      case Rec.Unsub: m.sessions.get(r.str())?.subs.delete(r.str()); return
      case Rec.Message: {
        const id = r.f64()
        const expiresAt = r.f64()
        const origin = r.str()
        const p = this.publish.read(r.bytes())
        m.messages.set(id, { id, topic: p.topic, payload: p.payload, qos: p.qos, retain: p.retain, properties: p.properties, expiresAt, origin })
        if (id >= m.nextMessageId) m.nextMessageId = id + 1
        return
      }
      case Rec.Retain: m.retained.set(r.str(), r.f64()); return
      case Rec.RetainClear: m.retained.delete(r.str()); return
      case Rec.OutQueued: {
        const s = m.session(r.str())
        const oid = r.f64()
        const messageId = r.f64()
        const qos = r.u8() as QoS
        const retain = r.u8() === 1
        const subscriptionIds = r.ids()
        s.out.set(oid, { oid, messageId, qos, retain, subscriptionIds, packetId: 0, released: false })
        if (oid >= m.nextOutgoingId) m.nextOutgoingId = oid + 1
        return
      }
      case Rec.OutSent: {
        const s = m.sessions.get(r.str())
        const o = s?.out.get(r.f64())
        const packetId = r.u16()
        if (o !== undefined && s !== undefined) {
          o.packetId = packetId
          s.sentOrder.set(o.oid, m.seq++)
        }
        return
      }
      case Rec.OutReleased: {
        const o = m.sessions.get(r.str())?.out.get(r.f64())
        if (o !== undefined) o.released = true
        return
      }
      case Rec.OutDone: {
        const s = m.sessions.get(r.str())
        const oid = r.f64()
        s?.out.delete(oid)
        s?.sentOrder.delete(oid)
        return
      }
      case Rec.InQos2: m.session(r.str()).incoming.add(r.u16()); return
      case Rec.InQos2Done: m.sessions.get(r.str())?.incoming.delete(r.u16()); return
      case Rec.Will: {
        const s = m.session(r.str())
        const dueAt = r.f64()
        const delay = r.u32()
        s.will = { will: this.publish.readWill(delay, r.bytes()), dueAt }
        return
      }
      case Rec.WillClear: {
        const s = m.sessions.get(r.str())
        if (s !== undefined) s.will = undefined
        return
      }
      default:
        throw new RangeError(`unknown record type ${type}`)
    }
  }


  // ---- mutations ------------------------------------------------------------------------------

  sessionSaved(clientId: string, expiryInterval: number, username: string | undefined, disconnectedAt: number): void {
    putSession(this.w, clientId, expiryInterval, username, disconnectedAt)
    this.changes++
  }

  sessionEnded(clientId: string): void {
    this.w.begin(Rec.SessionEnd).str(clientId).end()
    this.changes++
  }

  subscriptionAdded(clientId: string, s: StoredSubscription): void {
    putSub(this.w, clientId, s)
    this.changes++
  }

  subscriptionRemoved(clientId: string, key: string): void {
    this.w.begin(Rec.Unsub).str(clientId).str(key).end()
    this.changes++
  }

  messageSaved(msg: StoredMessage): void {
    putMessage(this.w, msg)
    this.changes++
  }

  retainedSet(topic: string, messageId: number): void {
    putRetain(this.w, topic, messageId)
    this.changes++
  }

  retainedCleared(topic: string): void {
    this.w.begin(Rec.RetainClear).str(topic).end()
    this.changes++
  }

  outgoingQueued(clientId: string, o: StoredOutgoing): void {
    putQueued(this.w, clientId, o)
    this.changes++
  }

  outgoingSent(clientId: string, oid: number, packetId: number): void {
    putSent(this.w, clientId, oid, packetId)
    this.changes++
  }

  outgoingReleased(clientId: string, oid: number): void {
    putReleased(this.w, clientId, oid)
    this.changes++
  }

  outgoingDone(clientId: string, oid: number): void {
    this.w.begin(Rec.OutDone).str(clientId).f64(oid).end()
    this.changes++
  }

  incomingQos2Added(clientId: string, packetId: number): void {
    putInQos2(this.w, clientId, packetId)
    this.changes++
  }

  incomingQos2Released(clientId: string, packetId: number): void {
    this.w.begin(Rec.InQos2Done).str(clientId).u16(packetId).end()
    this.changes++
  }

  willSaved(clientId: string, will: StoredWill | undefined): void {
    if (will === undefined) this.w.begin(Rec.WillClear).str(clientId).end()
    else putWill(this.w, clientId, will)
    this.changes++
  }

  // ---- durability -----------------------------------------------------------------------------

  /**
   * Writes the buffered records with fs.write on the thread pool (and, with fsync, fdatasync there too),
   * so the event loop goes on meanwhile; new records go to the other buffer and wait for the next
   * commit. The broker never calls it while one is under way, nor runs a compaction step meanwhile.
   */
  commit(): void | Promise<void> {
    if (this.writing) return Promise.reject(new Error(`${this.filePath}: commit while a commit is under way`))
    if (this.w.pos === 0 && !this.unsynced) return
    if (this.fd === -1) this.openForAppend()
    const w = this.w
    this.w = this.spare
    this.spare = w
    const bytes = w.take()
    this.unsynced = false
    this.writing = true
    const job = this.job
    // The tail is the compaction's copy of every record since it began: taken now, in commit order.
    if (job !== undefined && bytes.length > 0 && (job.phase === 'snapshot' || job.phase === 'drain')) job.tail.push(Buffer.from(bytes))
    return this.writeCommitted(this.fd, bytes, job).finally(this.writeDone)
  }

  private async writeCommitted(fd: number, bytes: Buffer, job: Compaction | undefined): Promise<void> {
    if (bytes.length > 0) await writeAllAsync(fd, bytes)
    if (this.opts.fsync) await fdatasyncAsync(fd)
    if (job === undefined || this.job !== job || bytes.length === 0 || (job.phase !== 'sync' && job.phase !== 'swap')) return
    // From 'sync' on, commits go to both files (see Compaction); the rename waits for this one (afterWrite).
    try {
      await writeAllAsync(job.other, bytes)
      if (this.opts.fsync) await fdatasyncAsync(job.other)
    } catch (err) {
      // Before the rename the new file is not the store yet: give the compaction up. After it, the
      // other file is the replaced one, kept only against a power loss before the directory sync.
      if (job.phase === 'sync') this.abandon(job, err)
      else this.finish(job)
    }
  }

  private readonly writeDone = (): void => {
    this.writing = false
    this.spare.reset()
    const later = this.afterWrite
    if (later.length === 0) return
    this.afterWrite = []
    for (const f of later) f()
  }

  /** Runs f now, or once the commit under way has written: a compaction never renames or closes under it. */
  private whenNotWriting(f: () => void): void {
    if (this.writing) this.afterWrite.push(f)
    else f()
  }

  /**
   * Between commits (a compaction's beginning or step, the close): writes what is buffered at once, so
   * the live state a snapshot reads holds nothing the file lacks. Its fdatasync is left to the next
   * commit, before whose end nothing that depends on these records is sent.
   */
  private writeBuffered(): void {
    if (this.w.pos === 0) return
    if (this.fd === -1) this.openForAppend()
    const bytes = this.w.take()
    writeAll(this.fd, bytes)
    if (this.job !== undefined) this.follow(this.job, bytes)
    this.w.reset()
    if (this.opts.fsync) this.unsynced = true
  }

  /** What a commit does for the compaction under way: the records also go to the other file. */
  private follow(job: Compaction, bytes: Buffer): void {
    if (job.phase === 'snapshot' || job.phase === 'drain') {
      job.tail.push(Buffer.from(bytes))
      return
    }
    try {
      writeAll(job.other, bytes)
      if (this.opts.fsync) fs.fdatasyncSync(job.other)
    } catch (err) {
      // Before the rename the new file is not the store yet: give the compaction up. After it, the
      // other file is the replaced one, kept only against a power loss before the directory sync.
      if (job.phase === 'sync') this.abandon(job, err)
      else this.finish(job)
    }
  }

  /**
   * Starts a compaction in the background (see Compaction). Returns false when one is running, the
   * last one failed less than a minute ago, or <file>.new cannot be created (reported like a failed
   * compaction).
   */
  beginCompaction(live: LiveSnapshot): boolean {
    if (this.job !== undefined || this.compactionRetryAt > Date.now() || this.writing) return false
    // Everything so far goes to the old file: the snapshot starts from here.
    this.writeBuffered()
    if (this.fd === -1) this.openForAppend()
    const tmp = `${this.filePath}.new`
    let other: number
    try {
      other = this.createNew(tmp)
    } catch (err) {
      this.compactionFailed(err)
      return false
    }
    this.job = {
      phase: 'snapshot', other, tmp, live, retainedDone: false, w: new RecordWriter(), saved: new Set(), records: 0,
      changesAtStart: this.changes, tail: [], busy: false, cancelled: false,
    }
    return true
  }

  /**
   * One step of the background compaction, a few milliseconds at most. What is buffered is written
   * first, so the live state read here holds nothing that is not in the file yet. Returns true while the
   * compaction needs more steps; the rest (fsync, rename) completes by itself, off-thread.
   */
  compactStep(): boolean {
    const job = this.job
    if (job === undefined || this.writing) return job !== undefined
    this.writeBuffered()
    try {
      if (job.phase === 'snapshot') this.snapshotStep(job)
      else if (job.phase === 'drain') this.drainStep(job)
    } catch (err) {
      this.abandon(job, err)
      return false
    }
    return this.job === job && (job.phase === 'snapshot' || job.phase === 'drain')
  }

  private snapshotStep(job: Compaction): void {
    const deadline = performance.now() + StepMs
    const w = job.w
    let n = 0
    while (job.phase === 'snapshot') {
      if ((++n & 31) === 0 && performance.now() > deadline) break
      if (!job.retainedDone) {
        const r = job.live.retained.next()
        if (r.done === true) job.retainedDone = true
        else job.records += putSnapshotRetained(w, r.value, job.saved)
        continue
      }
      const r = job.live.sessions.next()
      if (r.done === true) {
        job.phase = 'drain'
        break
      }
      const { session, messages } = r.value
      job.records += putSnapshotSession(w, session, (i) => messages[i], job.saved)
    }
    if (w.pos > 0) writeAll(job.other, w.take())
    w.reset()
    if (job.phase === 'drain') this.drainStep(job)
  }

  private drainStep(job: Compaction): void {
    let budget = StepBytes
    while (job.tail.length > 0 && budget > 0) {
      const b = job.tail.shift()!
      writeAll(job.other, b)
      budget -= b.length
    }
    if (job.tail.length > 0) return
    // The new file holds the snapshot and every record since: from now on commits go to both files.
    job.phase = 'sync'
    job.busy = true
    fs.fsync(job.other, (err) => this.whenNotWriting(() => {
      job.busy = false
      if (job.cancelled) return this.closeQuietly(job.other)
      if (err !== null) return this.abandon(job, err)
      this.swap(job)
    }))
  }

  /** The new file is complete and on disk: it becomes the store. */
  private swap(job: Compaction): void {
    try {
      fs.renameSync(job.tmp, this.filePath)
    } catch (err) {
      this.abandon(job, err)
      return
    }
    const old = this.fd
    this.fd = job.other
    job.other = old
    job.phase = 'swap'
    let dir = -1
    try {
      dir = fs.openSync(path.dirname(this.filePath), 'r')
    } catch {
      this.finish(job)
      return
    }
    job.busy = true
    fs.fsync(dir, () => this.whenNotWriting(() => {
      // Some file systems refuse fsync on a directory; the files themselves were synced.
      job.busy = false
      this.closeQuietly(dir)
      if (!job.cancelled) this.finish(job)
    }))
  }

  /** The compaction is over and its file is the store; the replaced file is closed. */
  private finish(job: Compaction): void {
    if (this.job !== job) return
    this.job = undefined
    this.closeQuietly(job.other)
    this.liveRecords = job.records
    this.changes -= job.changesAtStart
  }

  /** Gives up a compaction before its rename: the old file stays the store, complete. */
  private abandon(job: Compaction, err: unknown): void {
    if (this.job !== job) return
    this.job = undefined
    job.cancelled = true
    if (!job.busy) this.closeQuietly(job.other)
    try { fs.rmSync(job.tmp, { force: true }) } catch { /* a leftover <file>.new is ignored and replaced next time */ }
    this.compactionFailed(err)
  }

  /** Stops a background compaction for a synchronous one or the close: before the rename it is dropped, after it completed. */
  private cancelCompaction(): void {
    const job = this.job
    if (job === undefined) return
    if (job.phase === 'swap') {
      job.cancelled = true
      syncDirectory(path.dirname(this.filePath))
      this.finish(job)
      return
    }
    this.job = undefined
    job.cancelled = true
    if (!job.busy) this.closeQuietly(job.other)
    try { fs.rmSync(job.tmp, { force: true }) } catch { /* replaced by the next compaction */ }
  }

  private closeQuietly(fd: number): void {
    if (fd === -1) return
    try { fs.closeSync(fd) } catch { /* nothing buffered in user space: nothing to lose */ }
  }

  private openForAppend(): void {
    try {
      this.fd = fs.openSync(this.filePath, 'a', 0o600)
    } catch (err) {
      throw describeFileError(err as NodeJS.ErrnoException, this.filePath, 'write')
    }
  }

  /**
   * Rewrites the store as a snapshot of `state`. On failure the current log stays the store, and keeps
   * whatever was buffered for it.
   */
  compact(state: RecoveredState): void {
    if (this.writing) {
      // The broker compacts only between commits; anyone else is told, and nothing is lost.
      this.compactionFailed(new Error('a commit is under way'))
      return
    }
    this.cancelCompaction()
    const pending = this.w.pos > 0 ? Buffer.from(this.w.buf.subarray(0, this.w.pos)) : undefined
    const changes = this.changes
    try {
      this.writeSnapshot(state)
    } catch (err) {
      this.w.reset()
      if (pending !== undefined) this.w.append(pending)
      this.changes = changes
      this.compactionFailed(err)
    }
  }

  private compactionFailed(err: unknown): void {
    this.compactionRetryAt = Date.now() + CompactionRetryMs
    const e = err as NodeJS.ErrnoException
    const file = typeof e.path === 'string' ? e.path : `${this.filePath}.new`
    const why = describeFileError(e, file, 'write').message
    const message = `Persistence: cannot compact ${this.filePath}: ${why}. Midge keeps appending to ${this.filePath} (nothing is lost) and tries again in ${CompactionRetryMs / 1000} s.`
    if (this.opts.onError !== undefined) this.opts.onError(message)
    else process.stderr.write(`${message}\n`)
  }

  /** A store holding only the header, written in place (after a failed snapshot of an empty state). */
  private writeEmptyStore(): void {
    let fd = -1
    try {
      fd = fs.openSync(this.filePath, 'w', 0o600)
      this.handOver(this.filePath, fd)
      writeAll(fd, storeHeader())
      fs.fsyncSync(fd)
    } catch (err) {
      throw describeFileError(err as NodeJS.ErrnoException, this.filePath, 'write')
    } finally {
      if (fd !== -1) fs.closeSync(fd)
    }
  }

  /** Gives what the store just created to the broker's user (only root may, and only root needs to). */
  private handOver(file: string, fd?: number): void {
    handOver(file, this.opts.owner, fd)
  }

  /** Writes the snapshot to <file>.new, syncs it and renames it over the file: atomic on POSIX. Throws on I/O errors. */
  private writeSnapshot(state: RecoveredState): void {
    // Mutations buffered before the snapshot describe state the snapshot already holds.
    this.w.reset()
    const w = this.w
    const saved = new Set<number>()
    let records = 0
    for (const m of state.retained) records += putSnapshotRetained(w, m, saved)
    for (const s of state.sessions) records += putSnapshotSession(w, s, (i) => state.messages.get(s.outgoing[i]!.messageId), saved)
    const body = w.take()
    const tmp = `${this.filePath}.new`
    const fd = this.createNew(tmp)
    try {
      try {
        writeAll(fd, body)
        fs.fsyncSync(fd)
      } finally {
        fs.closeSync(fd)
      }
      fs.renameSync(tmp, this.filePath)
    } catch (err) {
      // Ours and incomplete: a half-written snapshot on a full disk would only take more space.
      try { fs.rmSync(tmp, { force: true }) } catch { /* the error below says what is wrong */ }
      throw err
    }
    // From here on the snapshot is the store: nothing may throw and leave appends going to the old file.
    // The rename lives in the directory: without syncing it, a power loss can bring back the old file
    // while later commits (fdatasync'ed) went to the new one. Compactions are rare, so always pay it.
    syncDirectory(path.dirname(this.filePath))
    if (this.fd !== -1) {
      try { fs.closeSync(this.fd) } catch { /* the descriptor of the replaced file: nothing to lose */ }
    }
    this.fd = -1
    w.reset()
    this.liveRecords = records
    this.changes = 0
    // The snapshot was fsync'ed: it holds the state that records written without fdatasync described.
    this.unsynced = false
  }

  /** Creates <file>.new holding the store header; returns its descriptor. Throws on I/O errors. */
  private createNew(tmp: string): number {
    // A <file>.new left by a crash mid-compaction is removed, not reused: reopening it would keep its
    // mode (maybe wider than 0600) and follow it if it were a symlink. O_EXCL then creates ours.
    fs.rmSync(tmp, { force: true })
    const fd = fs.openSync(tmp, 'wx', 0o600)
    try {
      this.handOver(tmp, fd)
      writeAll(fd, storeHeader())
    } catch (err) {
      fs.closeSync(fd)
      try { fs.rmSync(tmp, { force: true }) } catch { /* the error below says what is wrong */ }
      throw err
    }
    return fd
  }

  /** Writes what is buffered and closes the file; after the commit under way, if any. */
  close(): void | Promise<void> {
    if (this.writing) return new Promise((resolve, reject) => this.afterWrite.push(() => { try { this.closeNow(); resolve() } catch (err) { reject(err) } }))
    this.closeNow()
  }

  private closeNow(): void {
    this.writeBuffered()
    if (this.unsynced && this.fd !== -1) fs.fdatasyncSync(this.fd)
    this.unsynced = false
    this.cancelCompaction()
    if (this.fd !== -1) fs.closeSync(this.fd)
    this.fd = -1
  }
}

// ---- record encoders, shared by the mutations and the snapshots ---------------------------------

function putSession(w: RecordWriter, clientId: string, expiryInterval: number, username: string | undefined, disconnectedAt: number): void {
  w.begin(Rec.Session).str(clientId).u32(expiryInterval)
  if (username === undefined) w.u8(0)
  else w.u8(1).str(username)
  w.f64(disconnectedAt).end()
}

function putSub(w: RecordWriter, clientId: string, s: StoredSubscription): void {
  const flags = (s.noLocal ? 1 : 0) | (s.retainAsPublished ? 2 : 0) | (s.retainHandling << 2)
  w.begin(Rec.Sub).str(clientId).str(s.key).str(s.filter).str(s.group).u8(s.qos).u8(flags).u32(s.subscriptionId).end()
}

function putMessage(w: RecordWriter, msg: StoredMessage): void {
  const packet = storedPublish(msg.topic, msg.payload, msg.qos, msg.retain, msg.properties)
  w.begin(Rec.Message).f64(msg.id).f64(msg.expiresAt).str(msg.origin).publish(packet, StoredVersion).end()
}

function putRetain(w: RecordWriter, topic: string, messageId: number): void {
  w.begin(Rec.Retain).str(topic).f64(messageId).end()
}

function putQueued(w: RecordWriter, clientId: string, o: StoredOutgoing): void {
  w.begin(Rec.OutQueued).str(clientId).f64(o.oid).f64(o.messageId).u8(o.qos).u8(o.retain ? 1 : 0).ids(o.subscriptionIds)
  w.end()
}

function putSent(w: RecordWriter, clientId: string, oid: number, packetId: number): void {
  w.begin(Rec.OutSent).str(clientId).f64(oid).u16(packetId).end()
}

function putReleased(w: RecordWriter, clientId: string, oid: number): void {
  w.begin(Rec.OutReleased).str(clientId).f64(oid).end()
}

function putInQos2(w: RecordWriter, clientId: string, packetId: number): void {
  w.begin(Rec.InQos2).str(clientId).u16(packetId).end()
}

function putWill(w: RecordWriter, clientId: string, will: StoredWill): void {
  const { delay, bytes } = willBytes(will.will)
  w.begin(Rec.Will).str(clientId).f64(will.dueAt).u32(delay).bytes(bytes).end()
}

/** A retained message as a snapshot holds it (its body once, whoever else refers to it); returns the records written. */
function putSnapshotRetained(w: RecordWriter, m: StoredMessage, saved: Set<number>): number {
  let n = 1
  if (!saved.has(m.id)) {
    saved.add(m.id)
    putMessage(w, m)
    n++
  }
  putRetain(w, m.topic, m.id)
  return n
}

/** A session as a snapshot holds it; messageOf(i) is the message of s.outgoing[i]. Returns the records written. */
function putSnapshotSession(w: RecordWriter, s: StoredSession, messageOf: (i: number) => StoredMessage | undefined, saved: Set<number>): number {
  let n = 1
  putSession(w, s.clientId, s.expiryInterval, s.username, s.disconnectedAt)
  for (const sub of s.subscriptions) { putSub(w, s.clientId, sub); n++ }
  for (let i = 0; i < s.outgoing.length; i++) {
    const o = s.outgoing[i]!
    const m = messageOf(i)
    if (m === undefined) continue
    if (!saved.has(m.id)) {
      saved.add(m.id)
      putMessage(w, m)
      n++
    }
    putQueued(w, s.clientId, o)
    n++
    if (o.packetId !== 0) { putSent(w, s.clientId, o.oid, o.packetId); n++ }
    if (o.released) { putReleased(w, s.clientId, o.oid); n++ }
  }
  for (const id of s.incomingQos2) { putInQos2(w, s.clientId, id); n++ }
  if (s.will !== undefined) { putWill(w, s.clientId, s.will); n++ }
  return n
}

function storeHeader(): Buffer {
  const header = Buffer.allocUnsafe(HeaderSize)
  Magic.copy(header, 0)
  header.writeUInt32BE(FormatVersion, Magic.length)
  return header
}

/** How many records compact(state) writes: to tell a snapshot-like file from a long history. */
function snapshotRecordCount(state: RecoveredState): number {
  let n = state.retained.length * 2
  const messages = new Set<number>()
  for (const m of state.retained) messages.add(m.id)
  for (const s of state.sessions) {
    n += 1 + s.subscriptions.length + s.incomingQos2.length + (s.will !== undefined ? 1 : 0)
    for (const o of s.outgoing) {
      n += 1 + (o.packetId !== 0 ? 1 : 0) + (o.released ? 1 : 0)
      if (!messages.has(o.messageId)) {
        messages.add(o.messageId)
        n++
      }
    }
  }
  return n
}

function syncFile(file: string): void {
  const fd = fs.openSync(file, 'r+')
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

function syncDirectory(dir: string): void {
  let fd = -1
  try {
    fd = fs.openSync(dir, 'r')
    fs.fsyncSync(fd)
  } catch {
    // Some file systems (and Windows) refuse fsync on a directory; the file itself was synced.
  } finally {
    if (fd !== -1) fs.closeSync(fd)
  }
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off)
}

/** writeAll on the thread pool: the event loop runs on while the kernel copies (or the disk takes) the bytes. */
function writeAllAsync(fd: number, buf: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let off = 0
    const next = (): void => {
      fs.write(fd, buf, off, buf.length - off, null, (err, n) => {
        if (err !== null) return reject(err)
        off += n
        if (off < buf.length) next()
        else resolve()
      })
    }
    next()
  })
}

function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err === null ? resolve() : reject(err))))
}

/** Turns EACCES/ENOENT/... into a sentence naming the file, the user and what to do. */
export function describeFileError(err: NodeJS.ErrnoException, file: string, action: 'read' | 'write'): Error {
  const user = process.getuid !== undefined ? `${userName()} (uid ${process.getuid()})` : 'this user'
  const dir = path.dirname(file)
  let hint = ''
  if (err.code === 'EACCES' || err.code === 'EPERM') hint = `: permission denied for user ${user}; make ${file} and its directory ${dir} ${action === 'read' ? 'readable' : 'writable'} by that user (e.g. chown it to the broker's user)`
  else if (err.code === 'ENOENT') hint = `: the directory ${dir} does not exist`
  else if (err.code === 'ENOSPC') hint = ': the disk is full'
  else if (err.code === 'EROFS') hint = ': the file system is read-only'
  else if (err.code === 'EISDIR' || err.code === 'EEXIST' || err.code === 'ERR_FS_EISDIR') hint = `: a directory (or another non-file) is in the way; remove ${file}`
  else hint = `: ${err.message}`
  return new Error(`cannot ${action} the persistence file ${file}${hint}`, { cause: err })
}

function userName(): string {
  // After the switch to `user`, USER and LOGNAME still name the account that started the broker.
  try {
    return os.userInfo().username
  } catch {
    return String(process.getuid?.())
  }
}

interface ModelSession {
  expiryInterval: number
  username: string | undefined
  disconnectedAt: number
  subs: Map<string, StoredSubscription>
  out: Map<number, StoredOutgoing>
  sentOrder: Map<number, number>
  incoming: Set<number>
  will: StoredWill | undefined
}

/** What replaying the records builds, turned into RecoveredState at the end. */
class Model {
  readonly sessions = new Map<string, ModelSession>()
  readonly messages = new Map<number, StoredMessage>()
  readonly retained = new Map<string, number>()
  nextMessageId = 1
  nextOutgoingId = 1
  seq = 0

  session(id: string): ModelSession {
    let s = this.sessions.get(id)
    if (s === undefined) {
      s = { expiryInterval: 0, username: undefined, disconnectedAt: 0, subs: new Map(), out: new Map(), sentOrder: new Map(), incoming: new Set(), will: undefined }
      this.sessions.set(id, s)
    }
    return s
  }

  toState(report: string[]): RecoveredState {
    const sessions: StoredSession[] = []
    const used = new Map<number, StoredMessage>()
    let missing = 0
    for (const [clientId, s] of this.sessions) {
      const sent: StoredOutgoing[] = []
      const queued: StoredOutgoing[] = []
      for (const o of s.out.values()) {
        const m = this.messages.get(o.messageId)
        if (m === undefined) { missing++; continue }
        used.set(m.id, m)
        if (o.packetId !== 0) sent.push(o)
        else queued.push(o)
      }
      sent.sort((a, b) => (s.sentOrder.get(a.oid) ?? 0) - (s.sentOrder.get(b.oid) ?? 0))
      sessions.push({
        clientId,
        expiryInterval: s.expiryInterval,
        username: s.username,
        disconnectedAt: s.disconnectedAt,
        subscriptions: [...s.subs.values()],
        outgoing: sent.concat(queued),
        incomingQos2: [...s.incoming],
        will: s.will,
      })
    }
    if (missing > 0) report.push(`${missing} queued deliveries referred to messages that were not in the store and were dropped`)
    const retained: StoredMessage[] = []
    for (const id of this.retained.values()) {
      const m = this.messages.get(id)
      if (m !== undefined) retained.push(m)
    }
    return { sessions, retained, messages: used, nextMessageId: this.nextMessageId, nextOutgoingId: this.nextOutgoingId, report }
  }
}
