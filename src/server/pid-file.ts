/** pid_file: written once the listeners are open, removed at close. */
import { rmSync, writeFileSync } from 'node:fs'
import { Refused } from './start-failure.js'

export function writePidFile(file: string): void {
  try {
    writeFileSync(file, `${process.pid}\n`)
  } catch (err) {
    throw new Refused(`cannot write pid_file ${file}: ${(err as Error).message}`)
  }
}

export function removePidFile(file: string): void {
  try { rmSync(file, { force: true }) } catch { /* after a user switch the directory may be root's */ }
}
