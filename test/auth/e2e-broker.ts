/**
 * Support for the end-to-end tests test/auth/2N-*: Midge started as `node bin/midge.js -c CONF` on a config
 * the test writes into a temp dir, password files made with `midge passwd`, and MQTT.js clients whose
 * refusals come back as the CONNACK / SUBACK / PUBACK reason code.
 *
 * Every config starts with `user root` (as root the broker would switch to 'mosquitto', which cannot read
 * the 0700 temp dir) and one listener on 127.0.0.1 at a port found free by binding port 0 first, so the
 * tests can pass a literal `-p PORT` to mosquitto_pub as the seed does.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { formatPasswordHash, hashPassword } from '../../src/auth/password-hash.js'
import { MIDGE, MidgeProcess } from '../helpers/midge-process.js'
import { freePort } from '../helpers/ports.js'

/** `midge passwd ARGS`; throws with its output when it fails. */
export function midgePasswd(args: string[]): void {
  const r = spawnSync(process.execPath, [MIDGE, 'passwd', ...args], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`midge passwd ${args.join(' ')} exited ${String(r.status)}: ${r.stdout}${r.stderr}`)
}

export interface ClientOptions {
  clientId: string
  username?: string
  password?: string
  /** 4 = MQTT 3.1.1 (default), 5 = MQTT 5. */
  version?: 4 | 5
  /** Source address, e.g. 127.0.0.2: another loopback address is another client address to the throttle. */
  localAddress?: string
}

/** An error carrying an MQTT reason code, as MQTT.js reports refusals. */
export function reasonCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code
  return typeof code === 'number' ? code : undefined
}

/** A password file of `user:password` pairs, hashed in-process with few iterations (the hash format is tested elsewhere). */
export async function writePasswordFile(file: string, users: Record<string, string>): Promise<void> {
  let text = ''
  for (const [user, password] of Object.entries(users)) text += `${user}:${formatPasswordHash(await hashPassword(password, { iterations: 1000 }))}\n`
  writeFileSync(file, text)
}

export class E2EBroker {
  readonly clients: mqtt.MqttClient[] = []
  private constructor(readonly dir: string, readonly port: number, readonly midge: MidgeProcess) {}

  /**
   * Writes the files (name → content, relative to the temp dir) and `midge.conf` = `user root`, the listener,
   * then `body`, and starts the broker. `setup` runs first, in the temp dir (e.g. to run `midge passwd`).
   */
  static async start(name: string, body: string, setup: (dir: string) => void | Promise<void> = () => {}): Promise<E2EBroker> {
    const dir = mkdtempSync(join(tmpdir(), `midge-${name}-`))
    try {
      await setup(dir)
      const port = await freePort()
      writeFileSync(join(dir, 'midge.conf'), `user root\nlistener ${port} 127.0.0.1\n${body}`)
      const midge = new MidgeProcess(['-c', join(dir, 'midge.conf')], { cwd: dir })
      const b = new E2EBroker(dir, port, midge)
      try {
        await midge.opened(1)
      } catch (err) {
        await b.close()
        throw err
      }
      return b
    } catch (err) {
      rmSync(dir, { recursive: true, force: true })
      throw err
    }
  }

  path(name: string): string {
    return join(this.dir, name)
  }

  /** Rewrites midge.conf (same listener) for a reload. */
  writeConfig(body: string): void {
    writeFileSync(this.path('midge.conf'), `user root\nlistener ${this.port} 127.0.0.1\n${body}`)
  }

  /** SIGHUP, resolved once the broker logs that the reload is done. */
  async hup(): Promise<void> {
    const mark = this.midge.lines.length
    this.midge.child.kill('SIGHUP')
    await this.midge.waitFor(/Configuration reloaded\.|Reload failed/, mark)
  }

  /** A connected MQTT.js client; rejects with the CONNACK code (MQTT.js's err.code) when refused. */
  connect(o: ClientOptions): Promise<mqtt.MqttClient> {
    const port = this.port
    const c = new mqtt.MqttClient(() => net.createConnection({ host: '127.0.0.1', port, ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }) }), {
      clientId: o.clientId,
      protocolVersion: o.version ?? 4,
      reconnectPeriod: 0,
      connectTimeout: 15_000,
      ...(o.username === undefined ? {} : { username: o.username }),
      ...(o.password === undefined ? {} : { password: o.password }),
    })
    this.clients.push(c)
    let first: Error | undefined
    c.on('error', (err) => { first ??= err })
    const connected = new Promise<mqtt.MqttClient>((resolve, reject) => {
      c.once('connect', () => resolve(c))
      c.once('close', () => reject(first ?? new Error(`${o.clientId}: connection closed before CONNACK`)))
    })
    return this.midge.guard(connected, `CONNECT of ${o.clientId}`)
  }

  /** Connects expecting a refusal; returns the CONNACK code. */
  async refusal(o: ClientOptions): Promise<number> {
    try {
      const c = await this.connect(o)
      c.end(true)
    } catch (err) {
      const code = reasonCode(err)
      if (code === undefined) throw err
      return code
    }
    throw new Error(`${o.clientId} was let in, but a refusal was expected`)
  }

  /** Resolves with the next message `client` receives on `topic`. */
  next(client: mqtt.MqttClient, topic: string, what = `a message on ${topic}`): Promise<string> {
    return this.midge.guard(new Promise<string>((resolve) => {
      const on = (t: string, payload: Buffer): void => {
        if (t !== topic) return
        client.off('message', on)
        resolve(payload.toString())
      }
      client.on('message', on)
    }), what)
  }

  /** Every message `client` receives from now on, as `topic payload`. */
  collect(client: mqtt.MqttClient): string[] {
    const got: string[] = []
    client.on('message', (t, payload) => { got.push(`${t} ${payload.toString()}`) })
    return got
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => new Promise<void>((resolve) => c.end(true, {}, () => resolve()))))
    await this.midge.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }
}
