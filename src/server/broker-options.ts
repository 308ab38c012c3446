/**
 * The Broker's options from a MidgeConfig, at start and at reload: defaults, then the file's values, then the
 * objects the runtime built (logger, authenticator, authorizer), then what an embedding application passed
 * (createBroker's overrides), which a reload never takes away.
 */
import type { Broker } from '../broker/broker.js'
import { defaultBrokerOptions, type BrokerOptions } from '../broker/options.js'
import { OptionTable } from '../config/schema.js'
import type { MidgeConfig } from '../config/types.js'
import type { Logger } from '../observability/logger.js'
import type { Security } from './security.js'

export function brokerOptions(cfg: MidgeConfig, logger: Logger, sec: Security, overrides: Partial<BrokerOptions> = {}): Partial<BrokerOptions> {
  const g = cfg.global.security
  const perListener = cfg.global.perListenerSettings
  // Mosquitto's autosave_on_changes turns autosave_interval from seconds into a change count.
  const autosave = cfg.global.autosaveOnChanges
    ? { autosaveInterval: 0, autosaveOnChanges: cfg.global.autosaveInterval }
    : { autosaveInterval: cfg.global.autosaveInterval, autosaveOnChanges: 0 }
  return {
    ...cfg.broker,
    ...autosave,
    logger,
    // Every listener gets its own (applySecurity); these are the fallback the broker's API documents.
    // Never the refusing anonymous authenticator here: a listener that allows anonymous clients falls back to it.
    authenticator: perListener ? undefined : sec.authenticator(g.passwordFile, true),
    authorizer: perListener ? undefined : sec.authorizer(g.aclFile),
    // The authenticate hook of an embedding application runs behind the same throttle as the password files.
    authThrottle: sec.throttle,
    ...overrides,
  }
}

/** Reload: the options marked reloadable in the option table take the new config's values (or their defaults). */
export function applyReloadableOptions(broker: Broker, next: MidgeConfig, logger: Logger, sec: Security, overrides: Partial<BrokerOptions>): void {
  const defaults = defaultBrokerOptions()
  const opts = broker.options as unknown as Record<string, unknown>
  for (const o of OptionTable) {
    if (!o.reload || !('broker' in o.target)) continue
    const key = o.target.broker
    opts[key] = next.broker[key] ?? defaults[key]
  }
  for (const key of ['allowZeroLengthClientId', 'autoIdPrefix'] as const) opts[key] = next.broker[key] ?? defaults[key]
  const b = brokerOptions(next, logger, sec)
  opts['authenticator'] = b.authenticator
  opts['authorizer'] = b.authorizer
  Object.assign(opts, overrides)
}
