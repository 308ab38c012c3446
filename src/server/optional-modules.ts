/**
 * What only some configs use (TLS, wss, ACME, bridges), loaded once per runtime before its first port opens:
 * otherwise half of the start-up time and ~10 MB of RSS (docs/performance.md). Loading before the ports open
 * is also loading before the switch away from root: a module first loaded after it could be unreadable to
 * the broker's user. A reload cannot add TLS, websockets, ACME or bridges (they need a restart), so what the
 * start loaded is all a reload needs. Held by the runtime, not in module variables, so two runtimes in one
 * process each see what their own config asked for.
 */
import { acmeListeners } from '../acme/from-config.js'
import { isTlsListener, type MidgeConfig } from '../config/types.js'

export interface OptionalModules {
  tls: typeof import('../transport/tls.js') | undefined
  wss: typeof import('../transport/wss.js') | undefined
  acme: typeof import('../acme/manager.js') | undefined
  bridges: typeof import('../bridge/index.js') | undefined
}

export async function loadOptionalModules(cfg: MidgeConfig): Promise<OptionalModules> {
  const m: OptionalModules = { tls: undefined, wss: undefined, acme: undefined, bridges: undefined }
  if (cfg.listeners.some(isTlsListener)) m.tls = await import('../transport/tls.js')
  if (cfg.listeners.some((l) => isTlsListener(l) && l.protocol === 'websockets')) m.wss = await import('../transport/wss.js')
  if (acmeListeners(cfg).length > 0) {
    m.acme = await import('../acme/manager.js')
    // acme-client itself, which the first order would otherwise load after the switch away from root.
    await (await import('../acme/order.js')).loadAcme()
  }
  if (cfg.bridges.length > 0) m.bridges = await import('../bridge/index.js')
  return m
}

/** A module the config needs; loadOptionalModules loaded it whenever the config names what uses it. */
export function loaded<T>(m: T | undefined, what: string): T {
  if (m === undefined) throw new Error(`internal: the ${what} module was not loaded for this config`)
  return m
}
