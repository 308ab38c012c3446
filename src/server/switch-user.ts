/**
 * The switch away from root (mosquitto's `user`), a process concern: only `midge serve` asks for it
 * (StartOptions.dropPrivileges), after its ports are bound and before its bridges start.
 */
import type { UserIdentity } from '../config/file-access.js'
import { Refused } from './start-failure.js'

export function switchUser(u: UserIdentity): void {
  try {
    process.setgroups?.(u.groups)
    process.setgid?.(u.gid)
    process.setuid?.(u.uid)
  } catch (err) {
    throw new Refused(`cannot switch to user '${u.name}': ${(err as Error).message}`)
  }
}
