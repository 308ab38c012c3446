/** Eclipse Mosquitto from Debian's `mosquitto` package, with a generated mosquitto.conf. */
import { spawnSync } from 'node:child_process'
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MAX_QUEUED, type BrokerDef, type StartContext } from './broker.js'
import { spawnTracked, which } from './process.js'

const BIN = '/usr/sbin/mosquitto'

export function mosquittoConf(port: number): string {
  return [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    // The default (1000) drops QoS 0 and QoS 1 messages to a subscriber that falls behind.
    `max_queued_messages ${MAX_QUEUED}`,
    'set_tcp_nodelay true',
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'connection_messages false',
    '',
  ].join('\n')
}

export const mosquitto: BrokerDef = {
  name: 'mosquitto',
  missing() {
    return which(BIN) === null ? `${BIN} not found: install the Debian package 'mosquitto' (apt-get install mosquitto)` : null
  },
  start(ctx: StartContext) {
    const conf = join(ctx.dir, 'mosquitto.conf')
    writeFileSync(conf, mosquittoConf(ctx.port))
    // Started as root, mosquitto drops to the 'mosquitto' user after reading its config.
    chmodSync(ctx.dir, 0o755)
    chmodSync(conf, 0o644)
    return spawnTracked(BIN, ['-c', conf], { core: ctx.core, nofile: ctx.nofile, logPath: join(ctx.dir, 'mosquitto.log') })
  },
  version() {
    const r = spawnSync(BIN, ['-h'], { encoding: 'utf8' })
    const m = /mosquitto version (\S+)/.exec(`${r.stdout}${r.stderr}`)
    return m ? `mosquitto ${m[1]}` : 'mosquitto (version unknown)'
  },
}
