/**
 * The flags of `midge pub` and `midge sub`: mosquitto_pub's and mosquitto_sub's (2.0), with the same
 * meanings, defaults and refusals. One table-free parser, as mosquitto's client_config_line_proc, because
 * most flags need their own check and sentence; the sentences are mosquitto's, with the program name ours.
 */
import { isValidTopicFilter, isValidTopicName, NeverExpires } from '../protocol/index.js'
import type { ProtocolVersion, QoS } from '../protocol/index.js'
import { parseProperty } from './client-props.js'
import type { CommandProperties } from './client-props.js'
import { checkFormat } from './sub-format.js'
import { TlsVersions } from '../transport/tls-versions.js'

export type ClientKind = 'pub' | 'sub'
export type PubMode = 'none' | 'message' | 'file' | 'stdin-file' | 'stdin-line' | 'null'

export interface ClientConfig {
  kind: ClientKind
  host: string
  /** undefined: 1883, or 8883 when a CA is given. */
  port: number | undefined
  unixPath: string | undefined
  transport: 'tcp' | 'ws'
  bindAddress: string | undefined
  protocolVersion: ProtocolVersion
  id: string | undefined
  idPrefix: string | undefined
  keepalive: number
  cleanSession: boolean
  /** -1: not given. */
  sessionExpiry: number
  username: string | undefined
  password: string | undefined
  qos: QoS
  maxInflight: number
  debug: boolean
  quiet: boolean
  will: { topic: string | undefined; payload: string | undefined; qos: QoS; retain: boolean }
  tls: {
    cafile: string | undefined
    capath: string | undefined
    cert: string | undefined
    key: string | undefined
    ciphers: string | undefined
    insecure: boolean
    version: string | undefined
    alpn: string | undefined
    /** -L mqtts:// or wss://, or --tls-use-os-certs. */
    useOsCerts: boolean
  }
  props: CommandProperties
  // pub
  topic: string | undefined
  pubMode: PubMode
  message: string | undefined
  file: string | undefined
  retain: boolean
  repeatCount: number
  repeatDelayMs: number
  // sub
  topics: string[]
  unsubTopics: string[]
  filterOuts: string[]
  verbose: boolean
  eol: boolean
  msgCount: number
  timeout: number
  noRetain: boolean
  retainedOnly: boolean
  removeRetained: boolean
  retainAsPublished: boolean
  exitAfterSub: boolean
  format: string | undefined
  pretty: boolean
  /** Percentage in tenths, 1..1000 (mosquitto keeps 10000ths): 1000 prints everything. */
  randomFilter: number
}

export type ParseResult =
  | { ok: true; config: ClientConfig }
  | { ok: false; help: true }
  | { ok: false; help: false; error: string; showUsage: 'hint' | 'full' | 'none' }

function defaults (kind: ClientKind): ClientConfig {
  return {
    kind, host: 'localhost', port: undefined, unixPath: undefined, transport: 'tcp', bindAddress: undefined,
    protocolVersion: 4, id: undefined, idPrefix: undefined, keepalive: 60, cleanSession: true, sessionExpiry: -1,
    username: undefined, password: undefined, qos: 0, maxInflight: 20, debug: false, quiet: false,
    will: { topic: undefined, payload: undefined, qos: 0, retain: false },
    tls: { cafile: undefined, capath: undefined, cert: undefined, key: undefined, ciphers: undefined, insecure: false, version: undefined, alpn: undefined, useOsCerts: false },
    props: {},
    topic: undefined, pubMode: 'none', message: undefined, file: undefined, retain: false, repeatCount: 1, repeatDelayMs: 0,
    topics: [], unsubTopics: [], filterOuts: [], verbose: false, eol: true, msgCount: 0, timeout: 0,
    noRetain: false, retainedOnly: false, removeRetained: false, retainAsPublished: false, exitAfterSub: false,
    format: undefined, pretty: false, randomFilter: 1000,
  }
}

class ArgError extends Error {
  constructor (message: string, readonly showUsage: 'hint' | 'full' | 'none' = 'hint') { super(message) }
}

/** Whole decimal integer, or NaN: stricter than mosquitto's atoi, which reads "5x" as 5 and "x" as 0. */
function int (s: string): number {
  return /^[+-]?[0-9]+$/.test(s) ? Number(s) : NaN
}

const PubOnly = new Set(['-f', '--file', '-l', '--stdin-line', '-m', '--message', '-n', '--null-message', '-r', '--retain', '-s', '--stdin-file', '--repeat', '--repeat-delay'])
const SubOnly = new Set(['-C', '-E', '-F', '-N', '--pretty', '-R', '--random-filter', '--remove-retained', '--retain-as-published', '--retained-only', '-T', '--filter-out', '-U', '--unsubscribe', '-v', '--verbose', '-W'])

export function parseClientArgs (kind: ClientKind, argv: readonly string[]): ParseResult {
  try {
    const cfg = parseFlags(kind, argv)
    if (cfg === 'help') return { ok: false, help: true }
    validate(cfg)
    return { ok: true, config: cfg }
  } catch (err) {
    if (err instanceof ArgError) return { ok: false, help: false, error: err.message, showUsage: err.showUsage }
    throw err
  }
}

function parseFlags (kind: ClientKind, argv: readonly string[]): ClientConfig | 'help' {
  const cfg = defaults(kind)
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if ((kind === 'sub' && PubOnly.has(a)) || (kind === 'pub' && SubOnly.has(a))) throw new ArgError(`Error: Unknown option '${a}'.`)
    /** The flag's value; `what` completes mosquitto's "given but no ... specified". */
    const value = (what: string, flag = a): string => {
      const v = argv[i + 1]
      if (v === undefined) throw new ArgError(`Error: ${flag} argument given but no ${what} specified.`)
      i++
      return v
    }
    const setMode = (mode: PubMode): void => {
      if (cfg.pubMode !== 'none') throw new ArgError('Error: Only one type of message can be sent at once.')
      cfg.pubMode = mode
    }
    switch (a) {
      case '-A': cfg.bindAddress = value('address'); break
      case '--cafile': cfg.tls.cafile = value('file'); break
      case '--capath': cfg.tls.capath = value('directory'); break
      case '--cert': cfg.tls.cert = value('file'); break
      case '--key': cfg.tls.key = value('file'); break
      case '--ciphers': cfg.tls.ciphers = value('ciphers'); break
      case '--insecure': cfg.tls.insecure = true; break
      case '--tls-alpn': cfg.tls.alpn = value('protocol'); break
      case '--tls-use-os-certs': cfg.tls.useOsCerts = true; break
      case '--tls-version': {
        const v = value('version')
        if (!Object.hasOwn(TlsVersions, v)) throw new ArgError(`Error: Invalid TLS version '${v}': use tlsv1.3, tlsv1.2 or tlsv1.1.`)
        cfg.tls.version = v
        break
      }
      case '-C': {
        const v = value('count')
        const n = int(v)
        if (!(n >= 1)) throw new ArgError(`Error: Invalid message count "${v}".`)
        cfg.msgCount = n
        break
      }
      case '-c': case '--disable-clean-session': cfg.cleanSession = false; break
      case '-d': case '--debug': cfg.debug = true; break
      case '-D': case '--property': {
        const used = parseProperty(argv, i + 1, cfg.props)
        if (typeof used === 'string') throw new ArgError(used)
        i += used
        cfg.protocolVersion = 5
        break
      }
      case '-E': cfg.exitAfterSub = true; break
      case '-f': case '--file': {
        setMode('file')
        cfg.file = value('file', '-f')
        break
      }
      case '-F': {
        const f = value('format', '-F')
        const err = checkFormat(f)
        if (err !== null) throw new ArgError(err)
        cfg.format = f
        break
      }
      case '--help': return 'help'
      case '-h': case '--host': cfg.host = value('host', '-h'); break
      case '-i': case '--id': {
        if (cfg.idPrefix !== undefined) throw new ArgError('Error: -i and -I argument cannot be used together.')
        cfg.id = value('id', '-i')
        break
      }
      case '-I': case '--id-prefix': {
        if (cfg.id !== undefined) throw new ArgError('Error: -i and -I argument cannot be used together.')
        cfg.idPrefix = value('id prefix', '-I')
        break
      }
      case '-k': case '--keepalive': {
        const n = int(value('keepalive', '-k'))
        if (!(n >= 5 && n <= 65535)) throw new ArgError('Error: Invalid keepalive given, it must be between 5 and 65535 inclusive.')
        cfg.keepalive = n
        break
      }
      case '-L': case '--url': parseUrl(cfg, value('URL', '-L')); break
      case '-l': case '--stdin-line': setMode('stdin-line'); break
      case '-m': case '--message': {
        setMode('message')
        cfg.message = value('message', '-m')
        break
      }
      case '-M': {
        const n = int(value('max_inflight', '-M'))
        if (!(n >= 1)) throw new ArgError('Error: Maximum inflight messages must be greater than 0.')
        cfg.maxInflight = n
        break
      }
      case '--nodelay': break // always on: Midge disables Nagle on every client socket
      case '-n': case '--null-message': setMode('null'); break
      case '-N': cfg.eol = false; break
      case '-p': case '--port': {
        const v = value('port', '-p')
        const n = int(v)
        if (!(n >= 0 && n <= 65535)) throw new ArgError(`Error: Invalid port given: ${v}`)
        cfg.port = n
        break
      }
      case '--pretty': cfg.pretty = true; break
      case '-P': case '--pw': cfg.password = value('password', '-P'); break
      case '-q': case '--qos': {
        const v = value('QoS', '-q')
        const n = int(v)
        if (!(n >= 0 && n <= 2)) throw new ArgError(`Error: Invalid QoS given: ${v}`)
        cfg.qos = n as QoS
        break
      }
      case '--quiet': cfg.quiet = true; break
      case '-r': case '--retain': cfg.retain = true; break
      case '-R': cfg.noRetain = true; break
      case '--random-filter': {
        const f = Number(value('chance'))
        const tenths = Math.trunc(10 * f)
        if (!(tenths >= 1 && tenths <= 1000)) throw new ArgError('Error: --random-filter chance must be between 0.1-100.0')
        cfg.randomFilter = tenths
        break
      }
      case '--remove-retained': cfg.removeRetained = true; break
      case '--repeat': {
        const n = int(value('count'))
        if (!(n >= 1)) throw new ArgError('Error: --repeat argument must be >0.')
        cfg.repeatCount = n
        break
      }
      case '--repeat-delay': {
        const v = value('time')
        const f = /^[0-9]*\.?[0-9]+$|^[0-9]+\.$/.test(v) ? Number(v) : -1
        if (!(f >= 0)) throw new ArgError('Error: --repeat-delay argument must be >=0.0.')
        cfg.repeatDelayMs = Math.round(f * 1000)
        break
      }
      case '--retain-as-published': cfg.retainAsPublished = true; break
      case '--retained-only': cfg.retainedOnly = true; break
      case '-s': case '--stdin-file': setMode('stdin-file'); break
      case '-t': case '--topic': addTopic(cfg, value('topic', '-t'), '-t'); break
      case '-T': case '--filter-out': {
        const t = value('topic filter', '-T')
        if (!isValidTopicFilter(t)) throw new ArgError(`Error: Invalid filter topic '${t}', are all '+' and '#' wildcards correct?`)
        cfg.filterOuts.push(t)
        break
      }
      case '-U': case '--unsubscribe': {
        const t = value('unsubscribe topic', '-U')
        if (!isValidTopicFilter(t)) throw new ArgError(`Error: Invalid unsubscribe topic '${t}', are all '+' and '#' wildcards correct?`)
        cfg.unsubTopics.push(t)
        break
      }
      case '-u': case '--username': cfg.username = value('username', '-u'); break
      case '--unix': {
        cfg.unixPath = value('socket path')
        cfg.port = 0
        break
      }
      case '-V': case '--protocol-version': {
        const v = value('version', '--protocol-version')
        if (v === 'mqttv31' || v === '31') cfg.protocolVersion = 3
        else if (v === 'mqttv311' || v === '311') cfg.protocolVersion = 4
        else if (v === 'mqttv5' || v === '5') cfg.protocolVersion = 5
        else throw new ArgError('Error: Invalid protocol version argument given.')
        break
      }
      case '-v': case '--verbose': cfg.verbose = true; break
      case '-W': {
        const v = value('timeout')
        const n = int(v)
        if (!(n >= 1)) throw new ArgError(`Error: Invalid timeout "${v}".`)
        cfg.timeout = n
        break
      }
      case '--will-payload': cfg.will.payload = value('will payload'); break
      case '--will-qos': {
        const v = value('will QoS')
        const n = int(v)
        if (!(n >= 0 && n <= 2)) throw new ArgError(`Error: Invalid will QoS ${v}.`)
        cfg.will.qos = n as QoS
        break
      }
      case '--will-retain': cfg.will.retain = true; break
      case '--will-topic': {
        const t = value('will topic')
        if (!isValidTopicName(t)) throw new ArgError(`Error: Invalid will topic '${t}', does it contain '+' or '#'?`)
        cfg.will.topic = t
        break
      }
      case '-x': {
        const v = value('session expiry interval')
        // strtol(v, 0) as mosquitto: decimal or 0x hex; -1 and ∞ mean "never expires".
        const n = v === '∞' ? NeverExpires : /^-?[0-9]+$|^0x[0-9a-f]+$/i.test(v) ? Number(v) : NaN
        if (Number.isNaN(n)) throw new ArgError('Error: session-expiry-interval not a number.')
        if (n > NeverExpires || n < -1) throw new ArgError('Error: session-expiry-interval out of range.')
        cfg.sessionExpiry = n === -1 ? NeverExpires : n
        break
      }
      default: throw new ArgError(`Error: Unknown option '${a}'.`)
    }
  }
  return cfg
}

function addTopic (cfg: ClientConfig, topic: string, flag: string): void {
  if (cfg.kind === 'pub') {
    if (!isValidTopicName(topic)) throw new ArgError(`Error: Invalid publish topic '${topic}', does it contain '+' or '#'?`)
    cfg.topic = topic
  } else {
    if (!isValidTopicFilter(topic)) throw new ArgError(`Error: Invalid subscription topic '${topic}', are all '+' and '#' wildcards correct?`)
    cfg.topics.push(topic)
  }
  void flag
}

/** mqtt(s)://[username[:password]@]host[:port]/topic, and ws(s):// for WebSockets. */
function parseUrl (cfg: ClientConfig, url: string): void {
  const m = /^(mqtts?|wss?):\/\//i.exec(url)
  if (m === null) throw new ArgError('Error: unsupported URL scheme.')
  const scheme = m[1]!.toLowerCase()
  const secure = scheme === 'mqtts' || scheme === 'wss'
  cfg.port = secure ? 8883 : 1883
  cfg.tls.useOsCerts = cfg.tls.useOsCerts || secure
  cfg.transport = scheme.startsWith('ws') ? 'ws' : 'tcp'
  let rest = url.slice(m[0].length)
  const slash = rest.indexOf('/')
  if (slash < 0) throw new ArgError('Error: Invalid URL for -L argument specified - topic missing.')
  addTopic(cfg, rest.slice(slash + 1), '-L topic')
  rest = rest.slice(0, slash)
  const at = rest.indexOf('@')
  if (at >= 0) {
    const auth = rest.slice(0, at)
    const colon = auth.indexOf(':')
    if (colon >= 0) {
      cfg.username = auth.slice(0, colon)
      cfg.password = auth.slice(colon + 1)
    } else {
      cfg.username = auth
    }
    rest = rest.slice(at + 1)
  }
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(rest)
  let portText: string | undefined
  if (bracket !== null) {
    cfg.host = bracket[1]!
    portText = bracket[2]
  } else {
    const colon = rest.indexOf(':')
    cfg.host = colon >= 0 ? rest.slice(0, colon) : rest
    portText = colon >= 0 ? rest.slice(colon + 1) : undefined
  }
  if (portText !== undefined) {
    const n = int(portText)
    if (!(n >= 0 && n <= 65535)) throw new ArgError(`Error: Invalid port given: ${portText}`)
    cfg.port = n
  }
}

/** The checks mosquitto makes once every flag is read (client_config_load and the programs' main). */
function validate (cfg: ClientConfig): void {
  if (cfg.will.payload !== undefined && cfg.will.topic === undefined) throw new ArgError('Error: Will payload given, but no will topic given.')
  if (cfg.will.retain && cfg.will.topic === undefined) throw new ArgError('Error: Will retain given, but no will topic given.')
  if ((cfg.tls.cert === undefined) !== (cfg.tls.key === undefined)) throw new ArgError('Error: Both certfile and keyfile must be provided if one of them is set.')
  if (cfg.protocolVersion === 5) {
    if (!cfg.cleanSession && cfg.sessionExpiry === -1) cfg.sessionExpiry = NeverExpires
    if (cfg.sessionExpiry > 0) {
      if (cfg.sessionExpiry === NeverExpires && (cfg.idPrefix !== undefined || cfg.id === undefined)) {
        throw new ArgError('Error: You must provide a client id if you are using an infinite session expiry interval.')
      }
      ;(cfg.props.connect ??= {}).sessionExpiryInterval = cfg.sessionExpiry
    }
  } else {
    if (!cfg.cleanSession && (cfg.idPrefix !== undefined || cfg.id === undefined)) {
      throw new ArgError('Error: You must provide a client id if you are using the -c option.')
    }
    if (Object.keys(cfg.props).length > 0) throw new ArgError('Error: MQTT v5 properties (-D) need -V mqttv5.')
  }
  if (cfg.kind === 'sub') {
    if (cfg.topics.length === 0 && cfg.unsubTopics.length === 0) throw new ArgError('Error: You must specify a topic to subscribe to.')
    if (cfg.noRetain && cfg.retainedOnly) throw new ArgError("\nError: Combining '-R' and '--retained-only' makes no sense.", 'none')
  } else if (cfg.topic === undefined || cfg.pubMode === 'none') {
    throw new ArgError('Error: Both topic and message must be supplied.', 'full')
  }
}
