/**
 * Tells a TLS listener that its files may have changed. certbot renews by writing new files into
 * archive/NAME/ and repointing the symlinks in live/NAME/, so a watch on the old target would never
 * fire: each file is watched itself, in its directory (the symlink's) and in its target's directory.
 * Events are debounced (certbot touches four files in a burst). Watching fails on some filesystems (NFS,
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
  /** Call onChange this often regardless of events (0 = never). */
  pollIntervalMs: number
  /** Whether to use fs.watch at all (false leaves only the poll). */
  watch: boolean
  onChange: (reason: 'watch' | 'poll') => void
}

export class CertWatcher {
  private readonly opts: CertWatchOptions
  private readonly watchers = new Map<string, fs.FSWatcher>()
  private debounce: NodeJS.Timeout | undefined
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
    const wanted = new Set<string>()
    for (const p of this.opts.paths) {
      const abs = path.resolve(p)
      wanted.add(abs)
      wanted.add(path.dirname(abs))
      try {
        const real = fs.realpathSync(abs)
        wanted.add(real)
        wanted.add(path.dirname(real))
      } catch { /* missing now: its directory's watch tells us when it appears */ }
    }
    for (const [p, w] of this.watchers) {
      if (!wanted.has(p)) { w.close(); this.watchers.delete(p) }
    }
    for (const p of wanted) {
      if (this.watchers.has(p)) continue
      try {
        const w = fs.watch(p, { persistent: false }, () => this.kick())
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

  private kick(): void {
    if (this.closed) return
    if (this.debounce !== undefined) clearTimeout(this.debounce)
    this.debounce = setTimeout(() => {
      this.debounce = undefined
      this.rearm()
      this.opts.onChange('watch')
    }, this.opts.debounceMs)
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
