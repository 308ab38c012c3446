/**
 * One broker per store. Two brokers appending to one store file (a manual start beside the service)
 * would interleave records and lose both brokers' state at the next compaction, so the broker holds a
 * lock for its whole life: `<store>.lock`, created with O_EXCL ('wx') beside the store, holding the
 * holder's pid and its start time. Node has no flock(2); an exclusive create is atomic on every local
 * file system, and the pid + start time tell a live holder from a stale file.
 *
 * A lock whose process is gone (kill -9, power loss) is stale: the next broker takes it over and says so.
 * The start time (field 22 of /proc/PID/stat) tells a live holder from a new process that reused a dead
 * holder's pid; without /proc (not Linux) a live pid counts as the holder.
 */
import fs from 'node:fs'
import { handOver, type FileOwner } from '../config/hand-over.js'

export interface LockHolder {
  pid: number
  /** Clock ticks since boot, from /proc/PID/stat; undefined where /proc is missing. */
  started: number | undefined
  /** When the holder took the lock (ISO), for the message. */
  since: string
}

export const lockPath = (store: string): string => `${store}.lock`

function processStart(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1')
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[19])
    return Number.isFinite(ticks) ? ticks : undefined
  } catch {
    return undefined
  }
}

function alive(holder: LockHolder): boolean {
  try {
    process.kill(holder.pid, 0)
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  if (holder.started === undefined) return true
  const now = processStart(holder.pid)
  return now === undefined || now === holder.started
}

function parse(text: string): LockHolder | undefined {
  const m = /^(\d+) (\d+|-) (\S+)\n?$/.exec(text)
  if (m === null) return undefined
  return { pid: Number(m[1]), started: m[2] === '-' ? undefined : Number(m[2]), since: m[3] as string }
}

function readHolder(file: string): LockHolder | undefined | 'none' {
  let text: string
  try {
    text = fs.readFileSync(file, 'latin1')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'none'
    throw err
  }
  return parse(text)
}

/** The sentence both `midge check` and a refused start print. */
export function lockedMessage(store: string, h: LockHolder): string {
  return `the store ${store} is in use by another broker (pid ${h.pid}, running since ${h.since}); stop that broker first, or give this one its own persistence_location`
}

/**
 * The live broker holding `store`'s lock, if any (a stale or unreadable lock file counts as free: the
 * start takes it over). Changes nothing: `midge check` and `midge import-mosquitto` ask this.
 */
export function storeLockHolder(store: string): LockHolder | undefined {
  let h: LockHolder | undefined | 'none'
  try { h = readHolder(lockPath(store)) } catch { return undefined }
  if (h === 'none' || h === undefined || h.pid === process.pid) return undefined
  return alive(h) ? h : undefined
}

export class StoreLockedError extends Error {
  readonly code = 'STORE_ERR_LOCKED'
  constructor(store: string, readonly holder: LockHolder) {
    super(lockedMessage(store, holder))
  }
}

export class StoreLock {
  private released = false

  private constructor(readonly file: string, private readonly content: string) {}

  /**
   * Takes the lock of `store` for this process. Throws StoreLockedError when a live broker holds it;
   * `onTakeOver` hears about a stale lock taken over. `owner` gets the lock file when created as root, so
   * the broker can still remove it after dropping to its user.
   */
  static acquire(store: string, opts: { owner?: FileOwner | undefined; onTakeOver?: (message: string) => void } = {}): StoreLock {
    const file = lockPath(store)
    const content = `${process.pid} ${processStart(process.pid) ?? '-'} ${new Date().toISOString()}\n`
    for (let attempt = 0; ; attempt++) {
      let fd: number
      try {
        fd = fs.openSync(file, 'wx', 0o644)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw err
        const h = readHolder(file)
        if (h !== 'none' && h !== undefined && h.pid !== process.pid && alive(h)) throw new StoreLockedError(store, h)
        // Stale: remove it and create ours. Two brokers racing here both remove, but only one 'wx' wins.
        fs.rmSync(file, { force: true })
        if (h !== 'none') {
          opts.onTakeOver?.(h === undefined
            ? `Persistence: ${file} was unreadable; took the lock over.`
            : `Persistence: took over the lock ${file} of a broker that is no longer running (pid ${h.pid}, since ${h.since}).`)
        }
        continue
      }
      try {
        handOver(file, opts.owner, fd)
        fs.writeSync(fd, content)
      } finally {
        fs.closeSync(fd)
      }
      return new StoreLock(file, content)
    }
  }

  /** Removes the lock file if it is still ours (idempotent). */
  release(): void {
    if (this.released) return
    this.released = true
    try {
      if (fs.readFileSync(this.file, 'latin1') === this.content) fs.rmSync(this.file, { force: true })
    } catch { /* already gone */ }
  }
}
