/**
 * A runtime's reload (SIGHUP for `midge serve`). If the new config fails validation (or a password/ACL file
 * in it does), the running config stays and the reasons are logged. Otherwise reloadable options apply at
 * once (limits, allow_anonymous, logging, the auth_* throttle), the password and ACL files are re-read,
 * certificates are re-read, the log file is reopened, and changes that need a restart are named in a
 * warning. Connected clients stay.
 */
import { ConfigInvalidError, formatWarning } from '../config/errors.js'
import { restartNeeded } from '../config/reload-diff.js'
import type { MidgeConfig } from '../config/types.js'
import { createLogSinks, type LogSinkSet } from '../observability/log-sinks.js'
import { applyReloadableOptions } from './broker-options.js'
import type { MidgeRuntime } from './runtime.js'
import { applySecurity, Security, throttleSettings } from './security.js'
import { formatProblem, startChecks, type Problem } from './start-checks.js'

/** The new config, or a loader whose ConfigInvalidError is logged like any reason to keep the running one. */
export type ReloadSource = MidgeConfig | (() => MidgeConfig)

export async function reloadRuntime(rt: MidgeRuntime, source: ReloadSource): Promise<boolean> {
  const log = rt.logger
  log.notice('Reloading config.')
  let next: MidgeConfig
  try {
    next = typeof source === 'function' ? source() : source
  } catch (err) {
    const errors = err instanceof ConfigInvalidError ? err.errors : [err as Error]
    for (const e of errors) log.error(`Error: ${e.message}`)
    log.error(`Reload failed: the configuration has ${errors.length} error${errors.length === 1 ? '' : 's'}; keeping the running configuration.`)
    return false
  }
  // The files a reload re-reads, checked as the broker's user (which this process now is), as at start.
  let refused: Problem[]
  try {
    refused = (await startChecks(next, 'reload', { dropPrivileges: rt.options.dropPrivileges === true })).problems.filter((p) => p.severity === 'error')
  } catch (err) {
    log.error(`Error: ${(err as Error).message}`)
    log.error('Reload failed: keeping the running configuration.')
    return false
  }
  if (refused.length > 0) {
    for (const p of refused) log.error(`Error: ${formatProblem(p)}`)
    log.error('Reload failed: keeping the running configuration.')
    return false
  }
  let security: Security
  try {
    security = await Security.load(next, rt.throttle, log)
  } catch (err) {
    log.error(`Error: ${(err as Error).message}`)
    log.error('Reload failed: keeping the running configuration.')
    return false
  }
  let sinks: LogSinkSet | undefined
  // The application's own sinks (StartOptions.logSinks) stay whatever log_dest says.
  const sameDest = rt.options.logSinks !== undefined || JSON.stringify(next.global.logDest) === JSON.stringify(rt.cfg.global.logDest)
  if (!sameDest) {
    try {
      sinks = createLogSinks(next.global.logDest)
    } catch (err) {
      log.error(`Error: cannot open the log file: ${(err as Error).message}`)
      log.error('Reload failed: keeping the running configuration.')
      return false
    }
  }

  // From here on the new configuration is known to be good: apply it.
  const needRestart = restartNeeded(rt.cfg, next)
  if (sinks !== undefined) {
    const old = rt.sinks
    rt.sinks = sinks
    rt.attachTopicLog(sinks)
    old?.close()
  } else {
    try { rt.sinks?.reopen() } catch (err) { log.error(`Error: cannot reopen the log file: ${(err as Error).message}`) }
  }
  log.configure({ types: next.global.logType, timestamp: next.global.logTimestamp, timestampFormat: next.global.logTimestampFormat, ...(rt.sinks === undefined ? {} : { sinks: rt.sinks.sinks }) })

  if (rt.server !== undefined) applyReloadableOptions(rt.server.broker, next, log, security, rt.options.broker ?? {})
  rt.throttle.configure(throttleSettings(next))
  // Listeners stay as they are (changing them needs a restart); their security settings follow the file.
  if (!needRestart.includes('listener')) {
    next.listeners.forEach((l, i) => { const info = rt.infos[i]; if (info !== undefined) applySecurity(info, l, security) })
  } else {
    rt.cfg.listeners.forEach((l, i) => {
      const same = next.listeners.find((n) => n.port === l.port && n.bindAddress === l.bindAddress)
      const info = rt.infos[i]
      if (same !== undefined && info !== undefined) applySecurity(info, same, security)
    })
  }
  rt.security.close()
  rt.security = security
  if (!rt.closed) security.watch()
  for (const { listener } of rt.tlsListeners) {
    try {
      if (!(await listener.reload())) log.warning('Warning: a TLS listener kept its previous certificate (see the messages above).')
    } catch (err) {
      log.error(`Error: certificate reload failed: ${(err as Error).message}`)
    }
  }
  rt.cfg = { ...next, listeners: needRestart.includes('listener') ? rt.cfg.listeners : next.listeners }
  for (const w of next.warnings) log.warning(`Warning: ${formatWarning(w)}`)
  if (needRestart.length > 0) {
    log.warning(`Warning: ${needRestart.map((n) => `'${n}'`).join(', ')} changed but ${needRestart.length === 1 ? 'needs' : 'need'} a restart to take effect.`)
  }
  log.notice('Configuration reloaded.')
  return true
}
