/**
 * What a start as root does to files it finds before it drops to the broker's user (the privilege rule,
 * docs/security.md): the store file and the log file, which the broker owns by role, are handed to the
 * user when root owns them. Run after the start-up checks (start-checks.ts, which count on it), before the
 * log file and the store open.
 */
import { join, resolve } from 'node:path'
import { reclaim } from '../config/hand-over.js'
import type { UserIdentity } from '../config/file-access.js'
import type { MidgeConfig } from '../config/types.js'

/** Hands the root-owned store and log files to `owner`; the sentences to log ("… was owned by root; handed to user 'mosquitto'."). */
export function reclaimOwnedFiles(cfg: MidgeConfig, owner: UserIdentity | undefined): string[] {
  const g = cfg.global
  const said: Array<string | undefined> = []
  if (g.persistence) said.push(reclaim('Persistence file', join(resolve(g.persistenceLocation ?? process.cwd()), g.persistenceFile), owner))
  for (const d of g.logDest) if (d.kind === 'file') said.push(reclaim('Log file', d.path, owner))
  return said.filter((s): s is string => s !== undefined)
}
