/**
 * Midge itself, from this checkout's build: `node bin/midge.js -c FILE` with a mosquitto.conf
 * equivalent to the one mosquitto gets, or `-p PORT` while the config loader cannot read it
 * (checked once with `midge check -c FILE`).
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { MAX_QUEUED, mosquittoUser, ROOT, type BrokerDef, type StartContext } from './broker.js'
import { spawnTracked } from './process.js'

const BIN = join(ROOT, 'bin/midge.js')

export function midgeConf(port: number): string {
  return [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    `max_queued_messages ${MAX_QUEUED}`,
    'set_tcp_nodelay true',
    // As mosquitto's (brokers/mosquitto.ts): no per-connection log lines, errors and warnings only.
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'connection_messages false',
    '',
  ].join('\n')
}

let configWorks: boolean | null = null

/**
 * Whether this build of Midge can be started with the generated config (asked once per bench):
 * `midge check -c FILE` must accept the file and `midge serve -c FILE --help` the flag.
 */
function acceptsConfig(dir: string): boolean {
  if (configWorks === null) {
    const conf = join(dir, 'midge-check.conf')
    writeFileSync(conf, midgeConf(1883))
    const ask = (args: string[]): boolean => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 10_000 }).status === 0
    configWorks = ask(['check', '-c', conf]) && ask(['serve', '-c', conf, '--help'])
    if (!configWorks) process.stderr.write('bench: this midge does not take the generated config yet; starting it with -p PORT\n')
  }
  return configWorks
}

/** Midge with a config of its own (`extra` lines appended), for the persistence variants below. */
function midgeWith(name: string, extra: (dir: string) => string[]): BrokerDef {
  return {
    ...midge,
    name,
    start(ctx: StartContext) {
      const conf = join(ctx.dir, 'midge.conf')
      writeFileSync(conf, midgeConf(ctx.port) + extra(ctx.dir).join('\n') + '\n')
      return spawnTracked(process.execPath, [BIN, '-c', conf], { core: ctx.core, nofile: ctx.nofile, logPath: join(ctx.dir, 'midge.log'), cwd: ROOT })
    },
  }
}

export const midge: BrokerDef = {
  name: 'midge',
  missing() {
    if (!existsSync(join(ROOT, 'dist/src/cli/main.js'))) return 'Midge is not built: run `npx tsc -p .` (or `npm run build`) first'
    if (!existsSync(join(ROOT, 'dist/src/cli/commands/serve.js'))) return 'this build of Midge has no broker yet (dist/src/cli/commands/serve.js missing)'
    return null
  },
  start(ctx: StartContext) {
    let args = ['-p', String(ctx.port)]
    if (acceptsConfig(ctx.dir)) {
      const conf = join(ctx.dir, 'midge.conf')
      writeFileSync(conf, midgeConf(ctx.port))
      args = ['-c', conf]
    }
    return spawnTracked(process.execPath, [BIN, ...args], { core: ctx.core, nofile: ctx.nofile, logPath: join(ctx.dir, 'midge.log'), cwd: ROOT })
  },
  version() {
    try {
      const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
      return `midge ${pkg.version} on Node ${process.version}`
    } catch {
      return 'midge (version unknown)'
    }
  },
}

/**
 * `--brokers midge-persist,midge-fsync` (issue #18): `persistence true`, and with `persistence_fsync true`.
 * Started as root, Midge runs as the mosquitto user: the store goes to a folder it may write.
 */
function storeDir(dir: string): string {
  const store = join(dir, 'store')
  mkdirSync(store, { recursive: true })
  // The run's folder and the bench's folder above it (mkdtemp: 0700) must let that user through.
  chmodSync(dir, 0o755)
  chmodSync(dirname(dir), 0o755)
  const user = mosquittoUser()
  if (user !== undefined) chownSync(store, user.uid, user.gid)
  return store
}
export const midgePersist = midgeWith('midge-persist', (dir) => ['persistence true', `persistence_location ${storeDir(dir)}/`])
export const midgeFsync = midgeWith('midge-fsync', (dir) => ['persistence true', `persistence_location ${storeDir(dir)}/`, 'persistence_fsync true'])

/**
 * `--brokers midge,midge-dashboard` (issue #16): beside the MQTT listener a `protocol http` one (dashboard,
 * /metrics) that nobody opens, to show that the message path pays nothing for it.
 */
export const midgeDashboard = midgeWith('midge-dashboard', (dir) => {
  // Started as root, Midge reads its config as the mosquitto user too (for a reload): let it through.
  chmodSync(dir, 0o755)
  chmodSync(dirname(dir), 0o755)
  return ['listener 0 127.0.0.1', 'protocol http']
})
