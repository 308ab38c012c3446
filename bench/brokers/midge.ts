/**
 * Midge itself, from this checkout's build: `node bin/midge.js -c FILE` with a mosquitto.conf
 * equivalent to the one mosquitto gets.
 */
import { spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
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

/**
 * The generated config must be accepted (`midge check -c FILE`): a bench that quietly started Midge on defaults
 * instead (max_queued_messages 1000 rather than the config's) measured drops, not throughput. Checked once per
 * bench process: the configs differ only in the port, and a `midge check` inside every start was counted in the
 * start bench's time to listening (437 ms instead of ~235 ms).
 */
let checked = false
function checkedConfig(dir: string, port: number): string {
  const conf = join(dir, 'midge.conf')
  writeFileSync(conf, midgeConf(port))
  if (checked) return conf
  const r = spawnSync(process.execPath, [BIN, 'check', '-c', conf], { encoding: 'utf8', timeout: 10_000 })
  if (r.status !== 0) throw new Error(`midge check refused the bench's config ${conf}:\n${r.stdout}${r.stderr}`)
  checked = true
  return conf
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
    return spawnTracked(process.execPath, [BIN, '-c', checkedConfig(ctx.dir, ctx.port)], { core: ctx.core, nofile: ctx.nofile, logPath: join(ctx.dir, 'midge.log'), cwd: ROOT })
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
export const midgeDashboard = midgeWith('midge-dashboard', () => ['listener 0 127.0.0.1', 'protocol http'])
