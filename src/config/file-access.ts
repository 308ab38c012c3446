/**
 * "Can the broker's user use this file, and if not, what exactly stops it?" for every file a config
 * names (`midge check`, and serve.ts before it drops privileges). The path walk itself lives in
 * transport/file-access.ts (written for TLS files; one copy for both); this file adds which user the
 * broker will run as, write access (persistence, log file, pid file) and the one-line report format:
 *
 *   certfile /etc/letsencrypt/live/example.org/cert.pem: permission denied for user 'mosquitto'
 *     (the directory /etc/letsencrypt/live is mode 0700 root)
 */
import { existsSync, statSync, type Stats } from 'node:fs'
import { dirname, resolve } from 'node:path'
import {
  currentUser, describeMode, explainDirectoryAccess, explainFileAccess, groupName, lookupUser, type AccessDenial, type UserIdentity,
} from '../transport/file-access.js'

export { currentUser, describeMode, explainDirectoryAccess, explainFileAccess, lookupUser, type AccessDenial, type UserIdentity }

export interface BrokerUser {
  user: UserIdentity | undefined
  /** Set when the configured user cannot be used (does not exist). */
  error: string | undefined
  /** True when the broker would switch to `user` after opening its listeners (started as root). */
  switches: boolean
}

/**
 * The user the broker runs as once started, as Mosquitto decides it: started as root, the `user` option
 * (default `mosquitto`, falling back to `nobody` when that account does not exist; `root` means stay root);
 * started as anyone else, that user, whatever `user` says.
 */
export function brokerUser(configured: string | undefined, current: UserIdentity = currentUser()): BrokerUser {
  if (current.uid !== 0) return { user: current, error: undefined, switches: false }
  const name = configured ?? 'mosquitto'
  if (name === 'root') return { user: current, error: undefined, switches: false }
  const found = lookupUser(name) ?? (configured === undefined ? lookupUser('nobody') : undefined)
  if (found === undefined) return { user: undefined, error: `user '${name}' does not exist on this machine`, switches: true }
  return { user: found, error: undefined, switches: found.uid !== 0 }
}

export interface AccessProblem {
  /** The report line (without file:line). */
  message: string
  fix: string | undefined
}

function modeOf(path: string): string {
  try { return describeMode(statSync(path)) } catch { return 'unknown mode' }
}

function groupOf(user: UserIdentity): string {
  return groupName(user.gid)
}

/** Turns a denial from the path walk into the report line and its fix. `label` is e.g. "certfile /path". */
export function describeDenial(label: string, denial: AccessDenial, user: UserIdentity): AccessProblem {
  const who = `user '${user.name}'`
  switch (denial.kind) {
    case 'directory-search': {
      const dir = denial.blockedBy
      return {
        message: `${label}: permission denied for ${who} (the directory ${dir} is ${modeOf(dir)})`,
        fix: `let '${user.name}' pass through ${dir}: 'chgrp ${groupOf(user)} ${dir} && chmod g+x ${dir}', or 'chmod o+x ${dir}' (neither lets it list the directory)`,
      }
    }
    case 'file-read': {
      const file = denial.blockedBy
      const what = file === resolve(denial.path) ? 'the file' : `its target ${file}`
      return {
        message: `${label}: permission denied for ${who} (${what} is ${modeOf(file)})`,
        fix: `give '${user.name}' read access: 'chgrp ${groupOf(user)} ${file} && chmod g+r ${file}'`,
      }
    }
    case 'missing':
      return { message: `${label}: not found (${denial.message})`, fix: undefined }
    case 'not-a-file':
    case 'symlink-loop':
      return { message: `${label}: ${denial.message}`, fix: undefined }
  }
}

/** Can `user` read the file (or list the directory) at `path`? undefined when it can. */
export function checkRead(label: string, path: string, user: UserIdentity, kind: 'file' | 'directory' = 'file'): AccessProblem | undefined {
  const denial = kind === 'file' ? explainFileAccess(path, user) : explainDirectoryAccess(path, user)
  return denial === undefined ? undefined : describeDenial(label, denial, user)
}

function grantsWrite(st: Stats, user: UserIdentity): boolean {
  if (user.uid === 0) return true
  if (st.uid === user.uid) return (st.mode & 0o200) !== 0
  if (user.groups.includes(st.gid)) return (st.mode & 0o020) !== 0
  return (st.mode & 0o002) !== 0
}

/**
 * Can `user` create or append to the file at `path` (log file, pid file), or create files in the
 * directory at `path` (persistence_location)? undefined when it can.
 */
export function checkWrite(label: string, path: string, user: UserIdentity, kind: 'file' | 'directory'): AccessProblem | undefined {
  const who = `user '${user.name}'`
  if (kind === 'file' && existsSync(path)) {
    const denial = explainFileAccess(path, user)
    if (denial !== undefined && denial.kind !== 'file-read') return describeDenial(label, denial, user)
    const st = statSync(path)
    if (grantsWrite(st, user)) return undefined
    return {
      message: `${label}: permission denied for ${who} (the file is ${describeMode(st)}, not writable by it)`,
      fix: `'chown ${user.name} ${path}' or 'chgrp ${groupOf(user)} ${path} && chmod g+w ${path}'`,
    }
  }
  const dir = kind === 'file' ? dirname(path) : path
  const denial = explainDirectoryAccess(dir, user)
  if (denial !== undefined) return describeDenial(kind === 'file' ? `${label} (directory ${dir})` : label, denial, user)
  const st = statSync(dir)
  if (grantsWrite(st, user)) return undefined
  return {
    message: `${label}: permission denied for ${who} (the directory ${dir} is ${describeMode(st)}, not writable by it)`,
    fix: `'chown ${user.name} ${dir}' or 'chgrp ${groupOf(user)} ${dir} && chmod g+w ${dir}'`,
  }
}
