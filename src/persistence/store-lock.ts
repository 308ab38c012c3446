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

/**
 * Creates `file` holding `content` if it does not exist; false if it does. The file appears whole (written
 * beside it, then hard-linked in): a lock seen empty would read as an unreadable, stale one, and a broker
 * starting at the same moment would take it over.
 */
function create(file: string, content: string, owner: FileOwner | undefined): boolean {
  const tmp = `${file}.${process.pid}.new`
  fs.rmSync(tmp, { force: true })
  const fd = fs.openSync(tmp, 'wx', 0o644)
  try {
    try {
      handOver(tmp, owner, fd)
      fs.writeSync(fd, content)
    } finally {
      fs.closeSync(fd)
    }
    fs.linkSync(tmp, file)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  } finally {
    fs.rmSync(tmp, { force: true })
  }
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
      if (create(file, content, opts.owner)) return new StoreLock(file, content)
      if (attempt > 4) throw Object.assign(new Error(`cannot take the lock ${file}: it keeps changing`), { code: 'EEXIST' })
      let text: string
      try {
        text = fs.readFileSync(file, 'latin1')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
        throw err
      }
      const h = parse(text)
      if (h !== undefined && h.pid !== process.pid && alive(h)) throw new StoreLockedError(store, h)
      // Stale. Another broker may take it over at the same moment and have made its own lock by the time
      // we remove this one: move the file aside and remove it only if it is still the stale one we read.
      const aside = `${file}.${process.pid}.stale`
      try {
        fs.renameSync(file, aside)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
        throw err
      }
      const moved = fs.readFileSync(aside, 'latin1')
      if (moved !== text) {
        // A live broker's fresh lock: put it back (never over a third one's) and look again.
        try { fs.linkSync(aside, file) } catch { /* another lock is in place */ }
        fs.rmSync(aside, { force: true })
        continue
      }
      fs.rmSync(aside, { force: true })
      opts.onTakeOver?.(h === undefined
        ? `Persistence: ${file} was unreadable; took the lock over.`
        : `Persistence: took over the lock ${file} of a broker that is no longer running (pid ${h.pid}, since ${h.since}).`)
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
