/**
 * The broker's system account, made the way docs/service.md makes it for packaging/midge.service:
 *
 *   useradd --system --user-group --home-dir /var/lib/midge --no-create-home --shell /usr/sbin/nologin midge
 *
 * A system account (uid below 1000, no password, no login shell) with a group of its own name, which is
 * the group that config, password file and TLS key are shared with (root:midge 0640). Its home is the
 * state directory so tools that look up $HOME for the user land somewhere it owns. One helper for every
 * command that needs the account (`midge init`, the service installer).
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { lookupUser, type UserIdentity } from '../config/file-access.js'

export interface SystemUser {
  user: UserIdentity
  /** True when this call made the account. */
  created: boolean
}

/** `useradd` is in /usr/sbin, which a non-login root shell (su without -) may not have on PATH. */
function useraddPath(): string {
  for (const dir of ['/usr/sbin', '/sbin']) if (existsSync(`${dir}/useradd`)) return `${dir}/useradd`
  return 'useradd'
}

/** Returns the account `name`, creating it first (as root) when it does not exist. */
export async function ensureSystemUser(name: string, home: string): Promise<SystemUser> {
  const found = lookupUser(name)
  if (found !== undefined) return { user: found, created: false }
  if (process.getuid?.() !== 0) {
    throw new Error(`the user '${name}' does not exist, and only root can create it: run this as root (sudo), or choose an existing user`)
  }
  const args = ['--system', '--user-group', '--home-dir', home, '--no-create-home', '--shell', '/usr/sbin/nologin', name]
  await new Promise<void>((resolve, reject) => {
    execFile(useraddPath(), args, (err, _stdout, stderr) => {
      if (err === null) { resolve(); return }
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error(`cannot create the user '${name}': useradd is missing (install the Debian package passwd: sudo apt-get install passwd)`))
        return
      }
      reject(new Error(`cannot create the user '${name}': useradd ${args.join(' ')}: ${stderr.trim() || err.message}`))
    })
  })
  const made = lookupUser(name)
  if (made === undefined) throw new Error(`useradd reported success but the user '${name}' is not in /etc/passwd`)
  return { user: made, created: true }
}
