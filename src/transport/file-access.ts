/**
 * "Can user U read file F, and if not, what stops it?" The seed's broker said only "Unable to load CA
 * certificates" when /etc/letsencrypt/live was mode 0700; this walks the path the way the kernel does
 * (every directory needs search `x`, symlinks are followed and their targets' directories need `x` too,
 * the file itself needs `r`) and names the first thing that blocks, with its owner and mode.
 *
 * Classic permission bits only: POSIX ACLs, capabilities other than root's and MAC (AppArmor, SELinux)
 * are not modelled. Root (uid 0) passes every read and search check, as the kernel's DAC override does.
 * config/file-access.ts builds `midge check`'s report on this walk, and on its passwd reader and mode format.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export interface UserIdentity {
  name: string
  uid: number
  gid: number
  /** Primary and supplementary groups. */
  groups: number[]
}

export interface AccessDenial {
  /** The path that was asked about. */
  path: string
  /** The directory or file whose permission bits (or absence) block access. */
  blockedBy: string
  kind: 'directory-search' | 'file-read' | 'missing' | 'not-a-file' | 'symlink-loop'
  /** One sentence naming the file, the user, the missing permission and what blocks it. */
  message: string
}

/** The identity of this process, as the kernel sees it. */
export function currentUser(): UserIdentity {
  const uid = process.getuid?.() ?? 0
  const gid = process.getgid?.() ?? 0
  const groups = process.getgroups?.() ?? [gid]
  let name = String(uid)
  try { name = os.userInfo().username } catch { /* uid without a passwd entry (containers) */ }
  return { name, uid, gid, groups: groups.includes(gid) ? groups : [gid, ...groups] }
}

export interface PasswdEntry { name: string; uid: number; gid: number }
export interface GroupEntry { name: string; gid: number; members: string[] }

/** /etc/passwd, the one reader of it (user names in messages, `user` and `midge check --user`). */
export function readPasswd(): PasswdEntry[] {
  return readColonFile('/etc/passwd').map((f) => ({ name: f[0] ?? '', uid: Number(f[2]), gid: Number(f[3]) }))
}

/** /etc/group. */
export function readGroups(): GroupEntry[] {
  return readColonFile('/etc/group').map((f) => ({
    name: f[0] ?? '',
    gid: Number(f[2]),
    members: (f[3] ?? '').split(',').filter((m) => m !== ''),
  }))
}

function readColonFile(file: string): string[][] {
  let text = ''
  try { text = fs.readFileSync(file, 'utf8') } catch { return [] }
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(':'))
}

/** A user by name or numeric id, from /etc/passwd and /etc/group (what `midge check --user NAME` asks about). */
export function lookupUser(nameOrUid: string): UserIdentity | undefined {
  const entry = readPasswd().find((p) => p.name === nameOrUid || String(p.uid) === nameOrUid)
  if (entry === undefined) return undefined
  const groups = [entry.gid]
  for (const g of readGroups()) if (g.members.includes(entry.name) && !groups.includes(g.gid)) groups.push(g.gid)
  return { name: entry.name, uid: entry.uid, gid: entry.gid, groups }
}

/** The user's name, or the number when /etc/passwd has none. */
export function userName(uid: number): string {
  return readPasswd().find((p) => p.uid === uid)?.name ?? String(uid)
}

/** The group's name, or the number when /etc/group has none. */
export function groupName(gid: number): string {
  return readGroups().find((g) => g.gid === gid)?.name ?? String(gid)
}

/**
 * The one way a file's permissions are written: "mode 0700 root", or "mode 0750 root:ssl-cert" when the group bits
 * grant something (then the group is what an operator can use to let the broker's user in).
 */
export function describeMode(st: fs.Stats): string {
  const mode = (st.mode & 0o7777).toString(8).padStart(4, '0')
  const owner = userName(st.uid)
  return (st.mode & 0o070) !== 0 ? `mode ${mode} ${owner}:${groupName(st.gid)}` : `mode ${mode} ${owner}`
}

/** Whether `st` grants `bit` (4 = r, 1 = x) to `user`: owner bits, else group bits, else other bits. */
function grants(st: fs.Stats, user: UserIdentity, bit: 4 | 1): boolean {
  if (user.uid === 0) return bit === 4 || (st.mode & 0o111) !== 0 || st.isDirectory()
  if (st.uid === user.uid) return ((st.mode >> 6) & bit) !== 0
  if (user.groups.includes(st.gid)) return ((st.mode >> 3) & bit) !== 0
  return (st.mode & bit) !== 0
}

const MAX_SYMLINKS = 40

class Walk {
  symlinks = 0
  constructor (readonly asked: string, readonly user: UserIdentity) {}

  /** Resolves `target` (absolute) component by component; returns its real path or a denial. */
  resolve(target: string): string | AccessDenial {
    const parts = path.resolve(target).split(path.sep).filter((p) => p !== '')
    let dir: string = path.sep
    for (let i = 0; i < parts.length; i++) {
      const dirStat = fs.statSync(dir)
      if (!grants(dirStat, this.user, 1)) {
        return this.deny(dir, 'directory-search',
          `directory ${dir} (${describeMode(dirStat)}) does not let user '${this.user.name}' enter it: search (x) permission is missing`)
      }
      const next = path.join(dir, parts[i] as string)
      let st: fs.Stats
      try {
        st = fs.lstatSync(next)
      } catch {
        return this.deny(next, 'missing', next === path.resolve(this.asked)
          ? `${next} does not exist`
          : `${next} does not exist (on the way to ${this.asked})`)
      }
      if (st.isSymbolicLink()) {
        if (++this.symlinks > MAX_SYMLINKS) return this.deny(next, 'symlink-loop', `${next} is part of a symlink loop`)
        const link = fs.readlinkSync(next)
        const resolved = this.resolve(path.resolve(dir, link))
        if (typeof resolved !== 'string') {
          if (resolved.kind === 'missing') {
            resolved.message = `${next} is a symlink to ${link}, which does not exist`
          }
          return resolved
        }
        dir = resolved
      } else {
        dir = next
      }
    }
    return dir
  }

  deny(blockedBy: string, kind: AccessDenial['kind'], message: string): AccessDenial {
    return { path: this.asked, blockedBy, kind, message }
  }
}

/**
 * Why `user` cannot read the file at `file`, or undefined when it can. `file` may be relative (to the
 * working directory). A directory where a file is expected is reported too.
 */
export function explainFileAccess(file: string, user: UserIdentity = currentUser()): AccessDenial | undefined {
  const walk = new Walk(file, user)
  let real: string | AccessDenial
  try {
    real = walk.resolve(file)
  } catch (err) {
    return walk.deny(file, 'missing', `${file} cannot be examined: ${(err as Error).message}`)
  }
  if (typeof real !== 'string') return real
  const st = fs.statSync(real)
  if (st.isDirectory()) return walk.deny(real, 'not-a-file', `${file} is a directory, not a file`)
  if (!grants(st, user, 4)) {
    const where = real === path.resolve(file) ? `file ${real}` : `file ${real} (the target of ${file})`
    return walk.deny(real, 'file-read',
      `${where} (${describeMode(st)}) does not let user '${user.name}' read it: read (r) permission is missing`)
  }
  return undefined
}

/** Whether `user` can list and enter `dir` (needs r and x), e.g. a capath directory. */
export function explainDirectoryAccess(dir: string, user: UserIdentity = currentUser()): AccessDenial | undefined {
  const walk = new Walk(dir, user)
  let real: string | AccessDenial
  try {
    real = walk.resolve(dir)
  } catch (err) {
    return walk.deny(dir, 'missing', `${dir} cannot be examined: ${(err as Error).message}`)
  }
  if (typeof real !== 'string') return real
  const st = fs.statSync(real)
  if (!st.isDirectory()) return walk.deny(real, 'not-a-file', `${dir} is not a directory`)
  if (!grants(st, user, 4) || !grants(st, user, 1)) {
    return walk.deny(real, 'directory-search',
      `directory ${real} (${describeMode(st)}) does not let user '${user.name}' list it: read and search (r-x) permissions are needed`)
  }
  return undefined
}
