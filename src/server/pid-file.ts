/**
 * pid_file: written once the listeners are open (as root, before the switch: `/run/x.pid` works), removed at
 * close. It and a folder made for it belong to the broker's user, who removes it at the stop.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { handOver, makeDirFor, type FileOwner } from '../config/hand-over.js'
import { Refused } from './start-failure.js'

export function writePidFile(file: string, owner: FileOwner | undefined): void {
  try {
    makeDirFor(dirname(resolve(file)), owner, 0o755)
    // Removed, then created exclusively: never written through a symlink left in its place.
    rmSync(file, { force: true })
    writeFileSync(file, `${process.pid}\n`, { mode: 0o644, flag: 'wx' })
    handOver(file, owner)
  } catch (err) {
    throw new Refused(`cannot write pid_file ${file}: ${(err as Error).message}`)
  }
}

export function removePidFile(file: string): void {
  try { rmSync(file, { force: true }) } catch { /* after a user switch the directory may be root's */ }
}
