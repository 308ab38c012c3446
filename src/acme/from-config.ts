/**
 * The acme_* options as AcmeManager settings, shared by `midge serve` and `midge cert`, so both look at
 * the same state directory and answer challenges the same way.
 */
import path from 'node:path'
import type { AcmeSettings } from './manager.js'
import type { MidgeConfig } from '../config/types.js'

export function acmeSettings(cfg: MidgeConfig): AcmeSettings {
  const g = cfg.global
  return {
    directoryUrl: g.acmeDirectory,
    email: g.acmeEmail,
    caFile: g.acmeCaFile,
    stateDir: g.acmeStateDir ?? path.join(g.persistenceLocation ?? process.cwd(), 'acme'),
    challenge: g.acmeWebroot !== undefined
      ? { kind: 'webroot', dir: g.acmeWebroot }
      : { kind: 'responder', port: g.acmeChallengePort, always: g.acmeChallengeAlways },
  }
}

/** Listener indexes with acme_domain, and their names. */
export function acmeListeners(cfg: MidgeConfig): Array<{ index: number; domains: string[] }> {
  const out: Array<{ index: number; domains: string[] }> = []
  cfg.listeners.forEach((l, index) => { if (l.acmeDomains !== undefined) out.push({ index, domains: l.acmeDomains }) })
  return out
}
