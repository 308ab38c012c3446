/**
 * A real mosquitto broker for interop tests: the Debian package's /usr/sbin/mosquitto, on a free loopback
 * port, with a config file written here. Readiness and subscriptions are awaited by watching its log (it
 * logs "CLIENTID QOS FILTER" for each subscription with log_type subscribe), never by sleeping.
 */
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

export const MosquittoBin = '/usr/sbin/mosquitto'

/** Fails (never skips) when the Debian packages are missing. */
export function requireMosquitto (): void {
  if (!fs.existsSync(MosquittoBin)) throw new Error(`${MosquittoBin} is missing: install the Debian package mosquitto`)
  if (spawnSync('mosquitto_sub', ['--help']).error !== undefined) throw new Error('mosquitto_sub is missing: install the Debian package mosquitto-clients')
}

export async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

export interface MosquittoOptions {
  /** Extra lines for the listener (certfile, keyfile...) and the global section. */
  listener?: string[]
  global?: string[]
  allowAnonymous?: boolean
  /** More listeners, each its own lines (certfile...); their ports are in `ports`, after `port`. */
  listeners?: string[][]
}

export class Mosquitto {
  private log = ''
  private waiters: Array<{ re: RegExp; resolve: () => void }> = []

  private constructor (readonly ports: number[], readonly dir: string, private readonly proc: ChildProcess) {
    proc.stderr!.setEncoding('utf8')
    proc.stderr!.on('data', (d: string) => {
      this.log += d
      this.waiters = this.waiters.filter((w) => {
        if (!w.re.test(this.log)) return true
        w.resolve()
        return false
      })
    })
  }

  static async start (o: MosquittoOptions = {}): Promise<Mosquitto> {
    requireMosquitto()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-mosq-'))
    // Started as root, mosquitto drops to the 'mosquitto' user before reading certificates.
    fs.chmodSync(dir, 0o755)
    const ports = [await freePort()]
    for (const _ of o.listeners ?? []) ports.push(await freePort())
    const port = ports[0]!
    const conf = [
      'per_listener_settings false',
      `allow_anonymous ${o.allowAnonymous === false ? 'false' : 'true'}`,
      'log_dest stderr',
      'log_type error', 'log_type warning', 'log_type notice', 'log_type information', 'log_type subscribe',
      ...(o.global ?? []),
      `listener ${port} 127.0.0.1`,
      ...(o.listener ?? []),
      ...(o.listeners ?? []).flatMap((lines, k) => [`listener ${ports[k + 1]} 127.0.0.1`, ...lines]),
    ]
    const file = path.join(dir, 'mosquitto.conf')
    fs.writeFileSync(file, conf.join('\n') + '\n')
    const proc = spawn(MosquittoBin, ['-c', file], { stdio: ['ignore', 'ignore', 'pipe'] })
    const m = new Mosquitto(ports, dir, proc)
    const exited = new Promise<never>((_resolve, reject) => {
      proc.once('exit', (code) => reject(new Error(`mosquitto exited (${code}) before it was ready:\n${m.log}`)))
    })
    await Promise.race([m.waitForLog(/mosquitto version \S+ running/), exited])
    return m
  }

  get port (): number {
    return this.ports[0]!
  }

  get output (): string {
    return this.log
  }

  /** Resolves once the log matches (already, or later). */
  waitForLog (re: RegExp, timeoutMs = 10_000): Promise<void> {
    if (re.test(this.log)) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`mosquitto log never matched ${re}:\n${this.log}`)), timeoutMs)
      this.waiters.push({ re, resolve: () => { clearTimeout(timer); resolve() } })
    })
  }

  /** Resolves once client `id` has subscribed to `filter`. */
  waitForSubscription (id: string, filter: string): Promise<void> {
    const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    return this.waitForLog(new RegExp(`: ${esc(id)} \\d ${esc(filter)}\\n`))
  }

  async stop (): Promise<void> {
    if (this.proc.exitCode === null) {
      const gone = new Promise((resolve) => this.proc.once('exit', resolve))
      this.proc.kill('SIGTERM')
      await gone
    }
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}
