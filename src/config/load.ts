/**
 * Entries (parse.ts) → a validated MidgeConfig, driven by the option table (schema.ts). Every problem found
 * is collected; if there is any, loadConfig throws one ConfigInvalidError listing them all in file order,
 * so a user fixes their config in one pass. Nothing here opens a port or reads a referenced file; `midge
 * check` (cli/commands/check.ts) adds those checks.
 */
import { isIP } from 'node:net'
import { dirname, resolve } from 'node:path'
import { LogTypes, type LogType } from '../observability/logger.js'
import {
  ConfigError, ConfigErrorCode, ConfigInvalidError, formatLocation, type ConfigWarning, type SourceLocation,
} from './errors.js'
import { parseConfigFile, parseConfigText, type ConfigEntry, type ParsedConfig } from './parse.js'
import { BridgeBlocks } from './bridge-blocks.js'
import { classifyOption, findOption, OptionTable, suggestOption, type OptionSpec } from './schema.js'
import {
  type ConfigurableBrokerOptions, type GlobalConfig, isTlsListener, type ListenerConfig, type LogDest, type MidgeConfig, type SecuritySettings,
} from './types.js'
import { BadValue, type ListenerArgs } from './value-types.js'

const DefaultLogTypes: readonly LogType[] = ['error', 'warning', 'notice', 'information']

function emptySecurity(): SecuritySettings {
  return { allowAnonymous: undefined, passwordFile: undefined, aclFile: undefined, allowZeroLengthClientId: undefined, autoIdPrefix: undefined }
}

function defaultGlobal(): GlobalConfig {
  const g = { security: emptySecurity(), origins: {} } as unknown as GlobalConfig
  const rec = g as unknown as Record<string, unknown>
  for (const o of OptionTable) if ('global' in o.target && o.default !== undefined) rec[o.target.global] = o.default
  g.logDest = [{ kind: 'stderr' }]
  g.logType = [...DefaultLogTypes]
  g.persistenceLocation = undefined
  g.pidFile = undefined
  g.clusterRedis = undefined
  g.clusterNodeId = undefined
  g.user = undefined
  return g
}

function newListener(args: ListenerArgs, loc: SourceLocation, implicit = false): ListenerConfig {
  const l = {
    port: args.port, bindAddress: args.bindAddress, bindInterface: undefined, socketDomain: undefined,
    maxQos: undefined, maxTopicAlias: undefined,
    allowAnonymous: false, passwordFile: undefined, aclFile: undefined, allowZeroLengthClientId: undefined, autoIdPrefix: undefined,
    security: emptySecurity(), origins: {},
    certfile: undefined, keyfile: undefined, cafile: undefined, capath: undefined, crlfile: undefined, tlsVersion: undefined,
    ciphers: undefined, ciphersTls13: undefined,
    file: loc.file, line: loc.line, name: String(args.port), implicit,
  } as ListenerConfig
  const rec = l as unknown as Record<string, unknown>
  for (const o of OptionTable) if ('listener' in o.target && o.default !== undefined) rec[o.target.listener] = o.default
  return l
}

export interface LoadOptions {
  /** Where the path came from, for the error when the main file cannot be read (e.g. `-c` on the command line). */
  from?: SourceLocation
}

/** Reads and validates a config file. Throws ConfigInvalidError listing every problem. */
export function loadConfig(file: string, opts: LoadOptions = {}): MidgeConfig {
  return build(parseConfigFile(file, opts.from === undefined ? {} : { from: opts.from }))
}

/**
 * Validates a config given as mosquitto.conf text, exactly as loadConfig does a file. `file` names the text
 * in messages (`file:line: …`) and its directory is where relative paths resolve; without it the text is
 * `(config text)` in the working directory. Throws ConfigInvalidError listing every problem.
 */
export function loadConfigText(text: string, opts: { file?: string } = {}): MidgeConfig {
  const file = opts.file === undefined ? ConfigTextName : resolve(opts.file)
  return build(parseConfigText(text, file, opts.file === undefined ? process.cwd() : dirname(file)))
}

/** What a config given as text without a file name is called in messages. */
export const ConfigTextName = '(config text)'

function build(parsed: ParsedConfig): MidgeConfig {
  const b = new Builder(parsed.baseDir)
  b.errors.push(...parsed.errors)
  if (parsed.files.length > 0) b.run(parsed.entries)
  const cfg = b.finish(parsed.file, parsed.files)
  if (b.errors.length > 0) throw new ConfigInvalidError(sortErrors(b.errors, parsed.files))
  return cfg
}

/** The config used without -c: listeners on 127.0.0.1 and ::1 for each port (default 1883), anonymous allowed. */
export function localOnlyConfig(ports: readonly number[] = [1883]): MidgeConfig {
  const b = new Builder(process.cwd())
  const cfg = b.finish('', [])
  cfg.listeners = []
  for (const port of ports) {
    for (const addr of ['127.0.0.1', '::1']) {
      const l = newListener({ port, bindAddress: addr }, { file: '(command line)', line: 0 }, true)
      l.allowAnonymous = true
      cfg.listeners.push(l)
    }
  }
  nameListeners(cfg.listeners)
  return cfg
}

function sortErrors(errors: ConfigError[], files: string[]): ConfigError[] {
  const rank = (f: string): number => { const i = files.indexOf(f); return i === -1 ? -1 : i }
  return errors
    .map((e, i) => ({ e, i }))
    .sort((x, y) => rank(x.e.file) - rank(y.e.file) || x.e.line - y.e.line || x.i - y.i)
    .map((x) => x.e)
}

class Builder {
  readonly errors: ConfigError[] = []
  readonly warnings: ConfigWarning[] = []
  readonly global = defaultGlobal()
  readonly broker: Partial<ConfigurableBrokerOptions> = {}
  readonly listeners: ListenerConfig[] = []
  /** `connection` blocks (bridges), read by bridge-blocks.ts. */
  readonly bridges = new BridgeBlocks()
  defaultListener: ListenerConfig | undefined
  current: ListenerConfig | undefined
  /** First location of each single-valued option per scope, to warn about repeats. */
  readonly seen = new Map<string, SourceLocation>()
  /** Security options written inside a listener block while per_listener_settings is false; only worth a
   * warning when there is more than one listener for them to surprise. */
  readonly scopeWarnings: ConfigWarning[] = []
  logTypeSet = false
  logDestSet = false

  constructor(readonly baseDir: string) {}

  error(code: ConfigError['code'], loc: SourceLocation, detail: string, fix?: string): void {
    this.errors.push(new ConfigError(code, loc, detail, fix === undefined ? undefined : { fix }))
  }

  warn(loc: SourceLocation, message: string): void {
    this.warnings.push({ file: loc.file, line: loc.line, message })
  }

  run(entries: ConfigEntry[]): void {
    // per_listener_settings changes how earlier lines are read, so it is looked up first (Mosquitto asks for
    // it to be the first option; here its position does not matter).
    for (const e of entries) {
      if (e.key !== 'per_listener_settings') continue
      try {
        this.global.perListenerSettings = findOption('per_listener_settings')?.type.parse(e.value, this) === true
      } catch { /* reported in the main pass */ }
    }
    for (const e of entries) this.entry(e)
  }

  entry(e: ConfigEntry): void {
    if (this.bridges.entry(e, this)) return
    const kind = classifyOption(e.key)
    if (kind === 'unknown') {
      const guess = suggestOption(e.key)
      this.error(ConfigErrorCode.UnknownOption, e, `unknown option '${e.key}'${guess === undefined ? '' : ` (did you mean '${guess}'?)`}`)
      return
    }
    if (kind === 'unsupported-mosquitto') {
      this.error(ConfigErrorCode.UnsupportedOption, e, `option '${e.key}' is a Mosquitto option Midge does not support yet`)
      return
    }
    const spec = findOption(e.key)
    if (spec === undefined) return // include_dir, already expanded by parse.ts
    if (e.value === '') {
      this.error(ConfigErrorCode.MissingValue, e, `option '${spec.name}' needs a value: ${spec.type.expects}`)
      return
    }
    let value: unknown
    try {
      value = spec.type.parse(e.value, this)
    } catch (err) {
      if (!(err instanceof BadValue)) throw err
      this.error(ConfigErrorCode.BadValue, e, err.detail ?? `option '${spec.name}' expects ${spec.type.expects}, got '${e.value}'`)
      return
    }
    if (spec.noEffect !== undefined) this.warn(e, `'${spec.name}' is accepted for compatibility and has no effect: ${spec.noEffect}`)
    if (spec.deprecated !== undefined) this.warn(e, `'${spec.name}' is deprecated: ${spec.deprecated}`)
    this.apply(spec, value, e)
  }

  apply(spec: OptionSpec, value: unknown, e: ConfigEntry): void {
    const t = spec.target
    const loc = { file: e.file, line: e.line }
    if ('ignored' in t) return
    if ('special' in t) {
      if (t.special === 'listener') {
        this.bridges.endBlock()
        this.current = newListener(value as ListenerArgs, e)
        this.listeners.push(this.current)
        return
      }
      const d = this.ensureDefaultListener(e)
      if (t.special === 'port') d.port = value as number
      else d.bindAddress = value as string
      this.warn(e, `'${spec.name}' is deprecated; use 'listener PORT [ADDRESS]' instead`)
      return
    }
    if ('listener' in t) {
      const l = this.listenerFor(spec, e)
      if (l === undefined) return
      this.noteRepeat(spec, e, `listener@${l.file}:${l.line}`)
      l.origins[spec.name] = loc
      ;(l as unknown as Record<string, unknown>)[t.listener] = value
      return
    }
    if ('security' in t) {
      if (this.global.perListenerSettings) {
        const l = this.listenerFor(spec, e)
        if (l === undefined) return
        this.noteRepeat(spec, e, `listener@${l.file}:${l.line}`)
        l.origins[spec.name] = loc
        ;(l.security as unknown as Record<string, unknown>)[t.security] = value
        return
      }
      if (this.current !== undefined) {
        this.scopeWarnings.push({ file: e.file, line: e.line, message: `'${spec.name}' applies to all listeners, not only to the 'listener ${this.current.port}' block above it, because per_listener_settings is false` })
      }
      this.noteRepeat(spec, e, 'global')
      this.global.origins[spec.name] = loc
      ;(this.global.security as unknown as Record<string, unknown>)[t.security] = value
      return
    }
    if ('broker' in t) {
      this.noteRepeat(spec, e, 'global')
      this.global.origins[spec.name] = loc
      ;(this.broker as Record<string, unknown>)[t.broker] = value
      return
    }
    this.global.origins[spec.name] = loc
    if (spec.name === 'log_dest') {
      if (!this.logDestSet) { this.global.logDest = []; this.logDestSet = true }
      const d = value as LogDest | null
      if (d === null) { this.global.logDest = []; return }
      if (d.kind === 'file' && this.global.logDest.some((x) => x.kind === 'file')) {
        this.error(ConfigErrorCode.Conflict, e, `only one 'log_dest file' may be configured`)
        return
      }
      if (!this.global.logDest.some((x) => x.kind === d.kind)) this.global.logDest.push(d)
      return
    }
    if (spec.name === 'log_type') {
      if (!this.logTypeSet) { this.global.logType = []; this.logTypeSet = true }
      const v = value as LogType | 'all' | 'none'
      if (v === 'none') this.global.logType = []
      else if (v === 'all') this.global.logType = [...LogTypes]
      else if (!this.global.logType.includes(v)) this.global.logType.push(v)
      return
    }
    this.noteRepeat(spec, e, 'global')
    ;(this.global as unknown as Record<string, unknown>)[t.global] = value
  }

  /** The listener a listener-scoped option applies to, or an error when no listener line precedes it. */
  listenerFor(spec: OptionSpec, e: ConfigEntry): ListenerConfig | undefined {
    const l = this.current ?? this.defaultListener
    if (l !== undefined) return l
    if (spec.scope === 'security') {
      this.error(ConfigErrorCode.NeedsListener, e,
        `option '${spec.name}' must follow a 'listener' line because per_listener_settings is true`,
        `move it below the 'listener' line it belongs to, or set per_listener_settings false to apply it to all listeners`)
    } else {
      this.error(ConfigErrorCode.NeedsListener, e,
        `option '${spec.name}' applies to a listener, but no 'listener' line comes before it`,
        `add a line such as 'listener ${spec.name.includes('file') || spec.name.includes('cert') || spec.name.startsWith('tls') || spec.name.startsWith('ciphers') ? 8883 : 1883}' above it`)
    }
    return undefined
  }

  ensureDefaultListener(e: ConfigEntry): ListenerConfig {
    if (this.defaultListener === undefined) {
      this.defaultListener = newListener({ port: 1883, bindAddress: undefined }, e)
    }
    return this.defaultListener
  }

  noteRepeat(spec: OptionSpec, e: ConfigEntry, scope: string): void {
    const key = `${scope}|${spec.name}`
    const first = this.seen.get(key)
    if (first === undefined) { this.seen.set(key, { file: e.file, line: e.line }); return }
    this.warn(e, `'${spec.name}' is set again (first at ${formatLocation(first)}); this later value is used`)
  }

  finish(file: string, files: string[]): MidgeConfig {
    const listeners = this.defaultListener === undefined ? [...this.listeners] : [this.defaultListener, ...this.listeners]
    const configured = listeners.length > 0
    if (!configured && file !== '') {
      for (const addr of ['127.0.0.1', '::1']) {
        listeners.push(newListener({ port: 1883, bindAddress: addr }, { file, line: 0 }, true))
      }
      this.warn({ file, line: 0 }, `no 'listener' is configured: listening on 127.0.0.1:1883 and [::1]:1883 only (local clients)`)
    }
    if (listeners.length > 1) this.warnings.push(...this.scopeWarnings)
    for (const l of listeners) this.resolveSecurity(l)
    this.checkListeners(listeners)
    this.checkAcme(listeners)
    this.unifyPerListener(listeners)
    nameListeners(listeners)
    this.securityWarnings(listeners)
    // In the syslog destination itself, so a SIGHUP that changes only log_facility also rebuilds the sinks.
    const syslog = this.global.logDest.find((d) => d.kind === 'syslog')
    if (syslog !== undefined && this.global.logFacility !== undefined) syslog.facility = this.global.logFacility
    const bridges = this.bridges.finish()
    this.errors.push(...this.bridges.errors)
    this.warnings.push(...this.bridges.warnings)
    const rank = (f: string): number => { const i = files.indexOf(f); return i === -1 ? files.length : i }
    const warnings = this.warnings.map((w, i) => ({ w, i }))
      .sort((a, b) => rank(a.w.file) - rank(b.w.file) || a.w.line - b.w.line || a.i - b.i)
      .map((x) => x.w)
    return { file, files, broker: this.broker, listeners, global: this.global, warnings, bridges }
  }

  resolveSecurity(l: ListenerConfig): void {
    const s = this.global.perListenerSettings ? l.security : this.global.security
    l.allowAnonymous = s.allowAnonymous ?? l.implicit
    l.passwordFile = s.passwordFile
    l.aclFile = s.aclFile
    l.allowZeroLengthClientId = s.allowZeroLengthClientId
    l.autoIdPrefix = s.autoIdPrefix
  }

  checkListeners(listeners: ListenerConfig[]): void {
    for (let i = 0; i < listeners.length; i++) {
      const a = listeners[i] as ListenerConfig
      this.checkTls(a)
      if (a.port === 0) continue
      for (let j = 0; j < i; j++) {
        const b = listeners[j] as ListenerConfig
        if (b.port !== a.port) continue
        if (a.bindAddress !== undefined && b.bindAddress !== undefined && a.bindAddress !== b.bindAddress) continue
        if (a.socketDomain !== undefined && b.socketDomain !== undefined && a.socketDomain !== b.socketDomain) continue
        this.error(ConfigErrorCode.DuplicateListener, a,
          `duplicate listener: port ${a.port}${a.bindAddress === undefined ? '' : ` on ${a.bindAddress}`} is already used by the listener at ${formatLocation(b)}${b.bindAddress === undefined ? ' (all interfaces)' : ` (${b.bindAddress})`}`,
          'give each listener its own port, or bind them to different addresses')
        break
      }
    }
  }

  checkTls(l: ListenerConfig): void {
    const where = `listener ${l.port}${l.bindAddress === undefined ? '' : ` ${l.bindAddress}`}`
    if (l.acmeDomains !== undefined && (l.certfile !== undefined || l.keyfile !== undefined)) {
      const set = [l.certfile === undefined ? '' : 'certfile', l.keyfile === undefined ? '' : 'keyfile'].filter((x) => x !== '').join(' and ')
      this.error(ConfigErrorCode.Conflict, l, `${where} has both acme_domain and ${set}: with acme_domain Midge obtains the certificate itself`, `remove ${set} from this listener, or remove acme_domain`)
      return
    }
    if (l.certfile !== undefined && l.keyfile === undefined) {
      this.error(ConfigErrorCode.TlsIncomplete, l, `${where} has certfile but no keyfile: a TLS listener needs both certfile and keyfile`, `add 'keyfile /path/to/privkey.pem' to this listener`)
      return
    }
    if (l.keyfile !== undefined && l.certfile === undefined) {
      this.error(ConfigErrorCode.TlsIncomplete, l, `${where} has keyfile but no certfile: a TLS listener needs both certfile and keyfile`, `add 'certfile /path/to/cert.pem' to this listener`)
      return
    }
    if (l.certfile === undefined && l.acmeDomains === undefined) {
      const tlsOnly: string[] = []
      if (l.cafile !== undefined) tlsOnly.push('cafile')
      if (l.capath !== undefined) tlsOnly.push('capath')
      if (l.crlfile !== undefined) tlsOnly.push('crlfile')
      if (l.tlsVersion !== undefined) tlsOnly.push('tls_version')
      if (l.ciphers !== undefined) tlsOnly.push('ciphers')
      if (l.ciphersTls13 !== undefined) tlsOnly.push('ciphers_tls1.3')
      if (l.requireCertificate) tlsOnly.push('require_certificate')
      if (l.useIdentityAsUsername) tlsOnly.push('use_identity_as_username')
      if (l.useSubjectAsUsername) tlsOnly.push('use_subject_as_username')
      if (tlsOnly.length > 0) {
        this.error(ConfigErrorCode.TlsIncomplete, l, `${where} sets ${tlsOnly.join(', ')} but has no certfile and keyfile: a TLS listener needs both`, `add certfile and keyfile (or acme_domain) to this listener, or remove ${tlsOnly.join(', ')}`)
      }
      return
    }
    if (l.requireCertificate && l.cafile === undefined && l.capath === undefined) {
      this.error(ConfigErrorCode.TlsIncomplete, l, `${where} has require_certificate true but no cafile or capath to verify client certificates with`, `add 'cafile /path/to/ca.pem' to this listener`)
    }
    if ((l.useIdentityAsUsername || l.useSubjectAsUsername) && !l.requireCertificate) {
      const opt = l.useIdentityAsUsername ? 'use_identity_as_username' : 'use_subject_as_username'
      this.error(ConfigErrorCode.TlsIncomplete, l, `${where} has ${opt} true but require_certificate is false: there would be no verified certificate to take the username from`, `add 'require_certificate true' to this listener`)
    }
  }

  /** The acme_* options: global ones without any acme_domain listener, and certificates that would collide. */
  checkAcme(listeners: ListenerConfig[]): void {
    const acme = listeners.filter((l) => l.acmeDomains !== undefined)
    const o = this.global.origins
    const globals = Object.keys(o).filter((k) => k.startsWith('acme_'))
    if (acme.length === 0) {
      for (const k of globals) this.warn(o[k] as SourceLocation, `'${k}' has no effect: no listener has acme_domain`)
      return
    }
    if (this.global.acmeWebroot !== undefined) {
      for (const k of ['acme_challenge_port', 'acme_challenge_always']) {
        if (o[k] !== undefined) this.warn(o[k], `'${k}' has no effect with acme_webroot: the web server serving ${this.global.acmeWebroot} answers the challenges`)
      }
    }
    const byFirst = new Map<string, ListenerConfig>()
    for (const l of acme) {
      const names = l.acmeDomains as string[]
      const other = byFirst.get(names[0] as string)
      if (other === undefined) { byFirst.set(names[0] as string, l); continue }
      if ((other.acmeDomains as string[]).join(' ') !== names.join(' ')) {
        this.error(ConfigErrorCode.Conflict, l.origins['acme_domain'] ?? l,
          `acme_domain '${names.join(' ')}' starts with the same name as '${(other.acmeDomains as string[]).join(' ')}' (${formatLocation(other.origins['acme_domain'] ?? other)}) but lists other names: the first name names the certificate`,
          'give both listeners the same acme_domain line, or start them with different names')
      }
    }
  }

  /**
   * The broker applies max_qos, max_topic_alias, allow_zero_length_clientid and auto_id_prefix to all
   * listeners for now; a config asking for different values per listener is refused rather than half-honoured.
   */
  unifyPerListener(listeners: ListenerConfig[]): void {
    const unify = <K extends 'maxQos' | 'maxTopicAlias' | 'allowZeroLengthClientId' | 'autoIdPrefix'>(key: K, option: string, target: keyof ConfigurableBrokerOptions): void => {
      const set = listeners.filter((l) => l[key] !== undefined)
      if (set.length === 0) return
      const first = set[0] as ListenerConfig
      const perListener = key === 'maxQos' || key === 'maxTopicAlias' || this.global.perListenerSettings
      const differing = perListener ? listeners.find((l) => l[key] !== first[key]) : undefined
      if (differing !== undefined) {
        this.error(ConfigErrorCode.Conflict, differing,
          `listener ${differing.port} has ${option} ${String(differing[key] ?? '(default)')} but the listener at ${formatLocation(first)} has ${String(first[key])}: Midge does not support different ${option} values per listener yet`,
          `use the same ${option} in every listener block`)
        return
      }
      ;(this.broker as Record<string, unknown>)[target] = first[key]
    }
    unify('maxQos', 'max_qos', 'maxQos')
    unify('maxTopicAlias', 'max_topic_alias', 'topicAliasMaximum')
    unify('allowZeroLengthClientId', 'allow_zero_length_clientid', 'allowZeroLengthClientId')
    unify('autoIdPrefix', 'auto_id_prefix', 'autoIdPrefix')
  }

  securityWarnings(listeners: ListenerConfig[]): void {
    for (const l of listeners) {
      if (l.protocol === 'http') {
        if ((l.httpRequireAuth || !isLoopbackListener(l)) && l.passwordFile === undefined) {
          this.warn(l, `http listener ${l.port} requires basic auth but has no password_file: every request to it is refused`)
        }
        if (l.httpAllowInsecureLogin && !isTlsListener(l) && !isLoopbackListener(l)) {
          this.warn(l, `http listener ${l.port} serves the dashboard's login over plain HTTP off loopback (http_allow_insecure_login true): passwords and session cookies cross the network in clear text`)
        }
        continue
      }
      if (l.allowAnonymous && !isLoopbackListener(l)) {
        this.warn(l, `listener ${l.port} accepts anonymous clients on ${l.bindAddress ?? (l.bindInterface === undefined ? 'all interfaces' : `interface ${l.bindInterface}`)} (allow_anonymous true): anyone who can reach this port can publish and subscribe`)
      }
      if (!l.allowAnonymous && l.passwordFile === undefined && !l.useIdentityAsUsername && !l.useSubjectAsUsername) {
        this.warn(l, `listener ${l.port} refuses anonymous clients but has no password_file: no client can connect to it`)
      }
    }
  }
}

export function isLoopbackListener(l: Pick<ListenerConfig, 'bindAddress' | 'bindInterface'>): boolean {
  if (l.bindInterface !== undefined) return l.bindInterface === 'lo'
  const a = l.bindAddress
  if (a === undefined) return false
  if (a === 'localhost' || a === '::1') return true
  return isIP(a) === 4 && a.startsWith('127.')
}

function nameListeners(listeners: ListenerConfig[]): void {
  for (let i = 0; i < listeners.length; i++) {
    const l = listeners[i] as ListenerConfig
    const shared = listeners.some((o) => o !== l && o.port === l.port)
    if (l.port === 0) l.name = `0#${i}`
    else l.name = shared ? `${l.port}@${l.bindAddress ?? '*'}${l.socketDomain === undefined ? '' : `/${l.socketDomain}`}` : String(l.port)
  }
}
