/**
 * Replaces a file so that readers (the broker reloading on change, on SIGHUP) see either the old or the
 * new contents, never a half-written file: write a temp file beside the target, fsync it, rename it over
 * the target, fsync the directory. The temp file is removed on any failure.
 *
 * Permissions: a new file gets 0600 (0640 with `groupReadable`, for a broker running under a group that
 * owns the file). Replacing a file keeps its group-read bit and its owner and group (when we may chown,
 * i.e. as root), but never keeps world bits: a password file is nobody else's business.
 * A symlink is followed: its target is replaced, the link stays.
 */
import { constants } from 'node:fs'
import { open, realpath, rename, stat, unlink } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { basename, dirname, join } from 'node:path'

export interface AtomicWriteOptions {
  /** Mode for a file that does not exist yet, or to force on an existing one. */
  mode?: number
}

async function resolveTarget(path: string): Promise<string> {
  try {
    return await realpath(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return path
    throw err
  }
}

export async function writeFileAtomic(path: string, data: string | Buffer, opts: AtomicWriteOptions = {}): Promise<void> {
  const target = await resolveTarget(path)
  let existing: { mode: number; uid: number; gid: number } | undefined
  try {
    const st = await stat(target)
    existing = { mode: st.mode & 0o777, uid: st.uid, gid: st.gid }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const mode = opts.mode ?? (existing !== undefined ? existing.mode & 0o640 : 0o600)
  const dir = dirname(target)
  const temp = join(dir, `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  const fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)
  let renamed = false
  try {
    try {
      await fh.writeFile(data)
      // open()'s mode is filtered by the umask; chmod is not.
      await fh.chmod(mode)
      if (existing !== undefined && (existing.uid !== process.getuid?.() || existing.gid !== process.getgid?.())) {
        await fh.chown(existing.uid, existing.gid).catch(() => { /* not root: the file becomes ours */ })
      }
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(temp, target)
    renamed = true
    await syncDirectory(dir)
  } finally {
    if (!renamed) await unlink(temp).catch(() => {})
  }
}

async function syncDirectory(dir: string): Promise<void> {
  let dh: Awaited<ReturnType<typeof open>> | undefined
  try {
    dh = await open(dir, constants.O_RDONLY)
    await dh.sync()
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is still atomic.
  } finally {
    await dh?.close()
  }
}
