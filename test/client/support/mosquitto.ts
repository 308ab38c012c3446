/**
 * A real mosquitto broker for interop tests: the Debian package's /usr/sbin/mosquitto, on a free loopback
 * port (mosquitto cannot listen on port 0 and say which port it got), with a config file written here.
 */
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { BrokerProcess, securityLines } from './broker-process.js'
import { freePort } from '../../helpers/ports.js'
import type { BrokerOptions } from './broker-process.js'

export type { BrokerOptions as MosquittoOptions }

export const MosquittoBin = '/usr/sbin/mosquitto'

/** Fails (never skips) when the Debian packages are missing. */
export function requireMosquitto (): void {
  if (!fs.existsSync(MosquittoBin)) throw new Error(`${MosquittoBin} is missing: install the Debian package mosquitto`)
  if (spawnSync('mosquitto_sub', ['--help']).error !== undefined) throw new Error('mosquitto_sub is missing: install the Debian package mosquitto-clients')
}

export class Mosquitto extends BrokerProcess {
  static async start (o: BrokerOptions = {}): Promise<Mosquitto> {
    requireMosquitto()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-mosq-'))
    // Started as root, mosquitto drops to the 'mosquitto' user before reading certificates and passwords.
    fs.chmodSync(dir, 0o755)
    let passwordFile: string | undefined
    if (o.users !== undefined) {
      passwordFile = path.join(dir, 'passwd')
      for (const [user, password] of Object.entries(o.users)) {
        const r = spawnSync('mosquitto_passwd', [...(fs.existsSync(passwordFile) ? [] : ['-c']), '-b', passwordFile, user, password], { encoding: 'utf8' })
        if (r.status !== 0) throw new Error(`mosquitto_passwd failed: ${r.error?.message ?? r.stderr}`)
      }
      fs.chmodSync(passwordFile, 0o644)
    }
    const ports = [await freePort()]
    for (const _ of o.listeners ?? []) ports.push(await freePort())
    const conf = [
      'per_listener_settings false',
      ...securityLines(o, passwordFile),
      ...(o.global ?? []),
      `listener ${ports[0]} 127.0.0.1`,
      ...(o.listener ?? []),
      ...(o.listeners ?? []).flatMap((lines, k) => [`listener ${ports[k + 1]} 127.0.0.1`, ...lines]),
    ]
    const file = path.join(dir, 'mosquitto.conf')
    fs.writeFileSync(file, conf.join('\n') + '\n')
    const proc = spawn(MosquittoBin, ['-c', file], { stdio: ['ignore', 'ignore', 'pipe'] })
    const m = new Mosquitto('mosquitto', ports, dir, proc)
    try {
      await m.waitForLog(/mosquitto version \S+ running/)
    } catch (err) {
      await m.stop()
      throw err
    }
    return m
  }
}
