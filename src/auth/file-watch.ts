/**
 * Reload-on-change for the ACL (and, if wanted, password) file.
 *
 * Watches the file's directory, not the file: editors and `midge passwd` replace a file by rename, which
 * a watch on the old inode would never report, and Kubernetes-style mounts swap a `..data` symlink in the
 * same directory. Any event there (debounced) leads to a content comparison, so only a real change
 * calls back, once. The watcher does not keep the process alive.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { basename, dirname } from 'node:path'

export interface FileWatch {
  close(): void
}

async function digestOf(path: string): Promise<string> {
  try {
    return createHash('sha256').update(await readFile(path)).digest('base64')
  } catch {
    return '' // missing or unreadable: a change when it comes back
  }
}

/** Synchronous for the starting point only, so that a write right after the call is seen as a change. */
function digestNow(path: string): string {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('base64')
  } catch {
    return ''
  }
}

export function watchFileContent(path: string, onChange: () => void, opts: { debounceMs?: number } = {}): FileWatch {
  const debounceMs = opts.debounceMs ?? 100
  let closed = false
  let timer: NodeJS.Timeout | undefined
  let last: Promise<string> = Promise.resolve(digestNow(path))
  const name = basename(path)
  const fire = (): void => {
    timer = undefined
    const previous = last
    last = digestOf(path)
    void Promise.all([previous, last]).then(([before, now]) => {
      if (!closed && before !== now) onChange()
    })
  }
  const watcher: FSWatcher = watch(dirname(path), { persistent: false }, (_event, filename) => {
    // filename can be null on some platforms; then any event counts.
    if (closed || (filename !== null && filename !== name && !String(filename).startsWith('..'))) return
    if (timer !== undefined) clearTimeout(timer)
    timer = setTimeout(fire, debounceMs)
    timer.unref()
  })
  watcher.on('error', () => { /* the directory vanished: nothing left to watch */ })
  return {
    close() {
      closed = true
      if (timer !== undefined) clearTimeout(timer)
      watcher.close()
    },
  }
}

export interface Reloadable<T> {
  readonly file: string | undefined
  reload(): Promise<T>
}

/**
 * Calls `target.reload()` whenever its file changes. Errors go to `onError` and leave the old contents in
 * force (the reload methods guarantee that); the caller logs both outcomes.
 */
export function reloadOnChange<T>(target: Reloadable<T>, handlers: { onReload?: (result: T) => void; onError?: (err: unknown) => void }, opts: { debounceMs?: number } = {}): FileWatch {
  if (target.file === undefined) throw new Error('reloadOnChange needs a target loaded from a file')
  return watchFileContent(target.file, () => {
    target.reload().then((r) => handlers.onReload?.(r), (err: unknown) => handlers.onError?.(err))
  }, opts)
}
