/**
 * The start's second phase, after the start-up checks (start-checks.ts, the code `midge check` runs):
 * load what they checked before anything is opened or created. Nothing here binds a
 * port, writes a file or starts a timer; a problem throws Refused with the operator's sentence, and the
 * broker does not start. What it found (the files loaded, the listen addresses resolved) is what the later
 * phases use, so a check and its use cannot disagree.
 */
import type { AuthThrottle } from '../auth/throttle.js'
import { brokerUser, currentUser, type BrokerUser } from '../config/file-access.js'
import { listenAddresses } from '../config/listen-addresses.js'
import { isTlsListener, type MidgeConfig } from '../config/types.js'
import type { Logger } from '../observability/logger.js'
import { AcmeListeners } from './acme-listeners.js'
import { loaded, type OptionalModules } from './optional-modules.js'
import { Security } from './security.js'
import { Refused } from './start-failure.js'
import { tlsOptions } from './tls-listeners.js'

export interface PreflightContext {
  logger: Logger
  modules: OptionalModules
  throttle: AuthThrottle
  /** Whether the start will switch to the config's `user` (started as root, `midge serve`). */
  dropPrivileges: boolean
}

export interface Preflight {
  /** Who the broker runs as once started; `switches` only with dropPrivileges. */
  user: BrokerUser
  security: Security
  acme: AcmeListeners | undefined
  /** The addresses each listener binds, by listener index. */
  addresses: string[][]
}

export async function preflight(cfg: MidgeConfig, ctx: PreflightContext): Promise<Preflight> {
  const log = ctx.logger
  const user: BrokerUser = ctx.dropPrivileges ? brokerUser(cfg.global.user) : { user: currentUser(), error: undefined, switches: false }
  if (user.error !== undefined) throw new Refused(`${user.error} (the 'user' option)`)
  let security: Security
  try {
    security = await Security.load(cfg, ctx.throttle, log)
  } catch (err) {
    throw new Refused((err as Error).message)
  }
  const acme = AcmeListeners.setUp(cfg, ctx.modules, log, user.switches ? user.user : undefined)
  for (const [i, l] of cfg.listeners.entries()) {
    if (!isTlsListener(l)) continue
    // Warnings are logged once, by startTlsListener; here only errors stop the start.
    const problems = loaded(ctx.modules.tls, 'tls').checkTlsFiles(acme?.tlsOptions(cfg, i) ?? tlsOptions(l))
    const errors = problems.filter((p) => p.severity === 'error')
    // No usable certificate yet: the broker starts without this listener, which opens once ACME has one.
    if (acme?.waitsForCertificate(cfg, i, errors, log) === true) continue
    if (errors.length > 0) throw new Refused(errors.map((p) => `TLS listener ${l.name} (${l.file}:${l.line}): ${p.message}`).join('\n'))
  }
  let addresses: string[][]
  try {
    addresses = await Promise.all(cfg.listeners.map((l) => listenAddresses(l)))
  } catch (err) {
    throw new Refused((err as Error).message)
  }
  return { user, security, acme, addresses }
}
