/**
 * Tells a TLS listener that its files may have changed. certbot renews by writing new files into
 * archive/NAME/ and repointing the symlinks in live/NAME/, so a watch on the old target would never
 * fire: each file is watched itself, in its directory (the symlink's) and in its target's directory.
 * Only events naming a watched file count: a directory watch also reports every neighbour (a log file
 * beside the certificates), and counting those would postpone a renewal until the folder went quiet.
 * Events are debounced (certbot touches four files in a burst), but never past maxWaitMs after the
 * first one, so a file that keeps changing is still picked up. Watching fails on some filesystems (NFS,
 * some container mounts) or runs out of inotify watches, so a periodic poll runs as well; the listener
 * compares a digest of the contents, so a spurious wake-up costs only a few small reads.
 *
 *   live/x/cert.pem ──symlink──▶ archive/x/cert3.pem
 *   watched: live/x/cert.pem (follows the link), live/x/, archive/x/
 */
import fs from 'node:fs'
import path from 'node:path'

export interface CertWatchOptions {
  /** Files and directories to watch (certfile, keyfile, cafile, capath, crlfile). */
  paths: readonly string[]
  /** Wait this long after the last event before calling onChange. */
  debounceMs: number
  /** ...but no longer than this after the first event of a burst (default 1000 ms). */
  maxWaitMs?: number
  /** Call onChange this often regardless of events (0 = never). */
  pollIntervalMs: number
  /** Whether to use fs.watch at all (false leaves only the poll). */
  watch: boolean
  onChange: (reason: 'watch' | 'poll') => void
}

export class CertWatcher {
  private readonly opts: CertWatchOptions
  private readonly watchers = new Map<string, fs.FSWatcher>()
  /** Per watched path, the entry names whose events count; null: every event (a watched file or capath itself). */
  private relevant = new Map<string, Set<string> | null>()
  private debounce: NodeJS.Timeout | undefined
  /** When the first event of the pending burst arrived (0: none pending). */
  private burstStart = 0
  private poll: NodeJS.Timeout | undefined
  private closed = false

  constructor (opts: CertWatchOptions) {
    this.opts = opts
    if (opts.watch) this.rearm()
    if (opts.pollIntervalMs > 0) {
      this.poll = setInterval(() => {
        // Re-arm first: a symlink that now points elsewhere needs its new target directory watched.
        if (this.opts.watch) this.rearm()
        this.opts.onChange('poll')
      }, opts.pollIntervalMs)
      this.poll.unref()
    }
  }

  /** The set of paths currently watched (for tests and debug logs). */
  watched(): string[] {
    return [...this.watchers.keys()].sort()
  }

  /** Watches what the paths resolve to now; drops watches on what they no longer lead to. */
  rearm(): void {
    if (this.closed || !this.opts.watch) return
    const wanted = new Map<string, Set<string> | null>()
    const want = (p: string): void => { wanted.set(p, null) }
    const wantIn = (file: string): void => {
      const dir = path.dirname(file)
      const names = wanted.get(dir)
      if (names === null) return
      if (names === undefined) wanted.set(dir, new Set([path.basename(file)]))
      else names.add(path.basename(file))
    }
    for (const p of this.opts.paths) {
      const abs = path.resolve(p)
      want(abs)
      wantIn(abs)
      try {
        const real = fs.realpathSync(abs)
        want(real)
        wantIn(real)
      } catch { /* missing now: its directory's watch tells us when it appears */ }
    }
    this.relevant = wanted
    for (const [p, w] of this.watchers) {
      if (!wanted.has(p)) { w.close(); this.watchers.delete(p) }
    }
    for (const p of wanted.keys()) {
      if (this.watchers.has(p)) continue
      try {
        const w = fs.watch(p, { persistent: false }, (_event, name) => { if (this.counts(p, name)) this.kick() })
        w.on('error', () => {
          // The watched path went away (a replaced symlink target, a removed directory): re-arm later.
          w.close()
          if (this.watchers.get(p) === w) this.watchers.delete(p)
          this.kick()
        })
        this.watchers.set(p, w)
      } catch { /* ENOENT, EACCES, ENOSPC (inotify limit): the poll covers it */ }
    }
  }

  /** Whether an event from the watch on `p` about entry `name` concerns a watched file. */
  private counts(p: string, name: string | Buffer | null): boolean {
    const names = this.relevant.get(p)
    // A platform that reports no name (allowed by fs.watch) could be about anything: count it.
    if (names === null || names === undefined || name === null) return true
    return names.has(name.toString())
  }

  private kick(): void {
    if (this.closed) return
    const now = Date.now()
    if (this.burstStart === 0) this.burstStart = now
    if (this.debounce !== undefined) clearTimeout(this.debounce)
    const deadline = this.burstStart + (this.opts.maxWaitMs ?? 1000)
    this.debounce = setTimeout(() => {
      this.debounce = undefined
      this.burstStart = 0
      this.rearm()
      this.opts.onChange('watch')
    }, Math.max(0, Math.min(this.opts.debounceMs, deadline - now)))
    this.debounce.unref()
  }

  close(): void {
    this.closed = true
    if (this.debounce !== undefined) clearTimeout(this.debounce)
    if (this.poll !== undefined) clearInterval(this.poll)
    for (const w of this.watchers.values()) w.close()
    this.watchers.clear()
  }
}
