/**
 * The broker's command line, as mosquitto(8): `midge [-c FILE] [-p PORT]... [-v] [-d]`, plus
 * `--help-config`. resolveServeConfig() turns it into a MidgeConfig:
 *   no -c, no -p   listeners on 127.0.0.1:1883 and [::1]:1883, anonymous allowed (Mosquitto 2's local-only mode)
 *   -p PORT        the same on PORT instead (repeatable)
 *   -c FILE        the file; each -p adds `listener PORT` on all interfaces, with the file's security settings
 *   -v             log_type all, overriding the file (as mosquitto -v)
 */
import { mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { ConfigError, ConfigErrorCode } from './errors.js'
import { loadConfig, localOnlyConfig } from './load.js'
import type { ListenerConfig, MidgeConfig } from './types.js'
import { LogTypes } from '../observability/logger.js'
import { HandshakeDefaults } from '../transport/handshake-guard.js'

export interface ServeArgs {
  configFile: string | undefined
  ports: number[]
  verbose: boolean
  daemon: boolean
  help: boolean
  helpConfig: boolean
  /** --workers N: cluster_workers from the command line (overrides the file). */
  workers: number | undefined
}

const CommandLine = { file: '(command line)', line: 0 }

export const ServeUsage = `Usage: midge [-c FILE] [-p PORT]... [-v] [-d] [--workers N]
  -c, --config-file FILE  read mosquitto.conf-style configuration from FILE
  -p, --port PORT         listen on PORT (repeatable); without -c, on 127.0.0.1 and ::1 only
  -v, --verbose           log everything (log_type all), overriding the config file
  -d, --daemon            run in the background; returns once the listeners are open (0),
                          or with the error and status 1 when the start fails
      --workers N         run N broker processes on the same listeners, joined as a cluster
                          through the config's cluster_redis (as cluster_workers N)
      --help-config       list every configuration option
  -h, --help              show this help`

/** Throws ConfigError (code CFG_ERR_ARGS) on a bad argument. */
export function parseServeArgs(argv: readonly string[]): ServeArgs {
  const out: ServeArgs = { configFile: undefined, ports: [], verbose: false, daemon: false, help: false, helpConfig: false, workers: undefined }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) throw new ConfigError(ConfigErrorCode.Args, CommandLine, `${a} needs a value`)
      return v
    }
    switch (a) {
      case '-c': case '--config-file':
        if (out.configFile !== undefined) throw new ConfigError(ConfigErrorCode.Args, CommandLine, `-c may be given only once`)
        out.configFile = value()
        break
      case '-p': case '--port': {
        const v = value()
        const n = Number(v)
        if (!/^\d+$/.test(v) || n < 1 || n > 65535) throw new ConfigError(ConfigErrorCode.Args, CommandLine, `-p expects a port from 1 to 65535, got '${v}'`)
        out.ports.push(n)
        break
      }
      case '--workers': {
        const v = value()
        const n = Number(v)
        if (!/^\d+$/.test(v) || n > 256) throw new ConfigError(ConfigErrorCode.Args, CommandLine, `--workers expects a number from 0 to 256, got '${v}'`)
        out.workers = n
        break
      }
      case '-v': case '--verbose': out.verbose = true; break
      case '-d': case '--daemon': out.daemon = true; break
      case '-h': case '--help': out.help = true; break
      case '--help-config': out.helpConfig = true; break
      default:
        throw new ConfigError(ConfigErrorCode.Args, CommandLine, `unknown argument '${a}'`, { fix: ServeUsage })
    }
  }
  return out
}

/** The config a start with these arguments uses. Throws ConfigInvalidError for a bad file. */
export function resolveServeConfig(args: ServeArgs): MidgeConfig {
  let cfg: MidgeConfig
  if (args.configFile === undefined) {
    cfg = localOnlyConfig(args.ports.length > 0 ? args.ports : [1883])
    if (args.ports.length === 0) {
      // The embedded default (`npm start`, plain `midge`) keeps what it acknowledged in ./data.
      // `-p PORT` alone behaves like `mosquitto -p`: in memory only.
      cfg.global.persistence = true
      cfg.global.persistenceLocation = resolve('data')
      mkdirSync(cfg.global.persistenceLocation, { recursive: true, mode: 0o700 })
      // ./data belongs to whoever ran `npm start`: no switch to the 'mosquitto' user for the embedded default.
      cfg.global.user = 'root'
      cfg.global.persistenceFile = 'midge.db'
    }
  } else {
    cfg = loadConfig(args.configFile, { from: CommandLine })
    if (args.ports.length > 0) addCommandLinePorts(cfg, args.ports)
  }
  if (args.verbose) cfg.global.logType = [...LogTypes]
  if (args.workers !== undefined) cfg.global.clusterWorkers = args.workers
  return cfg
}

function addCommandLinePorts(cfg: MidgeConfig, ports: readonly number[]): void {
  // Implicit local-only listeners give way to the explicit ports, as a `listener` line would.
  cfg.listeners = cfg.listeners.filter((l) => !l.implicit)
  const template = cfg.listeners[0]
  for (const port of ports) {
    if (cfg.listeners.some((l) => l.port === port)) {
      throw new ConfigError(ConfigErrorCode.DuplicateListener, CommandLine, `-p ${port}: port ${port} is already a listener in ${cfg.file}`)
    }
    const s = cfg.global.perListenerSettings ? undefined : cfg.global.security
    const l: ListenerConfig = {
      port, bindAddress: undefined, bindInterface: undefined, protocol: 'mqtt', httpRequireAuth: false, httpAllowInsecureLogin: false, socketDomain: undefined, maxConnections: -1,
      handshakeTimeout: HandshakeDefaults.timeoutSeconds, maxHandshakes: HandshakeDefaults.maxPending, maxHandshakesPerAddress: HandshakeDefaults.maxPendingPerAddress,
      mountPoint: '', maxQos: template?.maxQos, maxTopicAlias: template?.maxTopicAlias,
      allowAnonymous: s?.allowAnonymous ?? false, passwordFile: s?.passwordFile, aclFile: s?.aclFile,
      allowZeroLengthClientId: s?.allowZeroLengthClientId, autoIdPrefix: s?.autoIdPrefix,
      security: { allowAnonymous: undefined, passwordFile: undefined, aclFile: undefined, allowZeroLengthClientId: undefined, autoIdPrefix: undefined },
      certfile: undefined, keyfile: undefined, cafile: undefined, capath: undefined, crlfile: undefined, tlsVersion: undefined,
      ciphers: undefined, ciphersTls13: undefined, requireCertificate: false, useIdentityAsUsername: false, useSubjectAsUsername: false,
      origins: {}, file: CommandLine.file, line: 0, name: String(port), implicit: false,
    }
    cfg.listeners.push(l)
  }
}
