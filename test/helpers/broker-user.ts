/**
 * Tests that start `midge` as root: the broker drops to its user (`mosquitto`, else `nobody`) after
 * binding its sockets and must then be able to read every file it uses (the privilege rule,
 * docs/security.md). These helpers give that user what a careful admin would: traversal of the test's
 * temporary folders, and group read access to its files. Nothing to do when the tests do not run as root.
 */
import fs from 'node:fs'
import path from 'node:path'
import { lookupUser, type UserIdentity } from '../../src/config/file-access.js'

export const isRoot = process.getuid?.() === 0

/** The user a broker started as root without a `user` line runs as. */
export function brokerUserForTests(): UserIdentity {
  const u = lookupUser('mosquitto') ?? lookupUser('nobody')
  if (u === undefined) throw new Error("neither 'mosquitto' nor 'nobody' exists: install the Debian package mosquitto (it creates the user)")
  return u
}

/**
 * Lets the broker's user read everything under each path: folders g+rx, files g+r, all in its group
 * (symlinks are left alone; their targets are in the tree). Owners stay root.
 */
export function shareWithBrokerUser(...paths: string[]): void {
  if (!isRoot) return
  const gid = brokerUserForTests().gid
  const walk = (p: string): void => {
    const st = fs.lstatSync(p)
    if (st.isSymbolicLink()) return
    fs.chownSync(p, st.uid, gid)
    fs.chmodSync(p, (st.mode & 0o7777) | (st.isDirectory() ? 0o050 : 0o040))
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e))
  }
  for (const p of paths) walk(p)
}
