/**
 * Midge's own broker for interop tests: `node bin/midge.js -c CONF` (the build in dist/), with the same
 * mosquitto.conf lines mosquitto gets. Its listeners use port 0; the ports come from the log lines
 * "Opening ipv4 listen socket on 127.0.0.1 port N (listener 0#I)", where I is the listener's index.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { BrokerProcess, securityLines } from './broker-process.js'
import type { BrokerOptions } from './broker-process.js'
import { runMidge } from './cli.js'
import { MidgeProcess } from '../../helpers/midge-process.js'

export class MidgeBroker extends BrokerProcess {
  static async start (o: BrokerOptions = {}): Promise<MidgeBroker> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-broker-'))
    let passwordFile: string | undefined
    if (o.users !== undefined) {
      passwordFile = path.join(dir, 'passwd')
      for (const [user, password] of Object.entries(o.users)) {
        const r = await runMidge(['passwd', ...(fs.existsSync(passwordFile) ? [] : ['-c']), '-b', passwordFile, user, password])
        if (r.code !== 0) throw new Error(`midge passwd failed (${r.code}): ${r.stderr}`)
      }
    }
    const listeners = [o.listener ?? [], ...(o.listeners ?? [])]
    const conf = [
      // Started as root without `user`, Midge switches to 'mosquitto', which cannot read this 0700 directory.
      'user root',
      'per_listener_settings false',
      ...securityLines(o, passwordFile),
      ...(o.global ?? []),
      ...listeners.flatMap((lines) => ['listener 0 127.0.0.1', ...lines]),
    ]
    const file = path.join(dir, 'midge.conf')
    fs.writeFileSync(file, conf.join('\n') + '\n')
    // The one runner of the binary; BrokerProcess follows the same stderr for its log waits.
    const proc = new MidgeProcess(['-c', file]).child
    const ports: number[] = []
    const m = new MidgeBroker('midge', ports, dir, proc)
    try {
      for (let i = 0; i < listeners.length; i++) {
        const re = new RegExp(`Opening ipv4 (?:TLS )?listen socket on 127\\.0\\.0\\.1 port (\\d+) \\(listener 0#${i}\\)`)
        await m.waitForLog(re)
        ports.push(Number(re.exec(m.output)![1]))
      }
    } catch (err) {
      await m.stop()
      throw err
    }
    return m
  }
}
