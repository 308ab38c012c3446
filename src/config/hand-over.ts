/**
 * "Hand this to the broker's user": the one helper for ownership (docs/security.md, the privilege rule).
 * A broker started as root creates some files before it drops to `user` (the store, its lock, the log
 * file, the pid file and its folder, the ACME state); each is chowned to that user at creation, so the
 * broker can still write, rotate, compact or remove it afterwards. Only root may chown, and only root
 * needs to: any other process creates files that are already its own.
 *
 * `reclaim` is for files the broker owns by role (the store file in persistence_location, its log file)
 * and finds owned by root, e.g. left by an earlier start as root that failed before handing them over:
 * they are handed to the user, and the caller logs the returned sentence.
 */
import fs from 'node:fs'
import path from 'node:path'

export interface FileOwner {
  uid: number
  gid: number
}

const runningAsRoot = (): boolean => (process.geteuid?.() ?? -1) === 0

/** Chowns what this process just created (by path, or by descriptor) to `owner`; nothing when not root. */
export function handOver(path: string, owner: FileOwner | undefined, fd?: number): void {
  if (owner === undefined || !runningAsRoot()) return
  // lchown: a link swapped in after the creation (in a folder the user can write) must not hand over its target.
  if (fd === undefined) fs.lchownSync(path, owner.uid, owner.gid)
  else fs.fchownSync(fd, owner.uid, owner.gid)
}

/**
 * Creates `dir` and its missing parents (mode `mode`) and hands each folder made to `owner`; folders
 * that already existed keep their owner (acme_state_dir /etc/ssl must not become the broker's).
 */
export function makeDirFor(dir: string, owner: FileOwner | undefined, mode = 0o700): void {
  const created = fs.mkdirSync(dir, { recursive: true, mode })
  if (created === undefined) return
  // Every folder mkdir made, from the deepest up to the first one created.
  const first = path.resolve(created)
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    handOver(d, owner)
    if (d === first || d === path.dirname(d)) break
  }
}

/** Whether `reclaim` would take `path` for `owner`: running as root, the file exists and root owns it. */
export function reclaimable(path: string, owner: FileOwner | undefined): boolean {
  if (owner === undefined || owner.uid === 0 || !runningAsRoot()) return false
  try {
    const st = fs.lstatSync(path)
    return st.isFile() && st.uid === 0
  } catch {
    return false
  }
}

/**
 * Hands a root-owned file the broker owns by role to `owner` (and makes sure its owner may read and
 * write it). Returns the sentence to log, or undefined when there was nothing to do.
 */
export function reclaim(what: string, path: string, owner: (FileOwner & { name: string }) | undefined): string | undefined {
  if (owner === undefined || !reclaimable(path, owner)) return undefined
  // Through a descriptor opened without following a link, checked again: the user may write the folder and
  // swap a link to /etc/shadow in after the lstat above; chown by path would hand over the link's target.
  let fd: number
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK)
  } catch {
    return undefined
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile() || st.uid !== 0) return undefined
    fs.fchownSync(fd, owner.uid, owner.gid)
    if ((st.mode & 0o600) !== 0o600) fs.fchmodSync(fd, (st.mode & 0o7777) | 0o600)
  } finally {
    fs.closeSync(fd)
  }
  return `${what} ${path} was owned by root; handed to user '${owner.name}'.`
}
