/**
 * Support for the bridge tests: the "VPS" (a remote broker: real mosquitto from the Debian package, or a
 * second Midge), the "Pi" (an in-process Midge whose bridges come from mosquitto.conf text), and clients
 * on either side whose messages are awaited, never slept for.
 *
 * mosquitto cannot listen on port 0 and tell which port it got, so a free loopback port is found first.
 * It keeps that port across restart(), so a bridge can find it again. As root it is given `user root`,
 * otherwise it would drop to the `mosquitto` user, which cannot read the tests' temp files.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startBridges, type Bridge, type BridgeOptions, type RunningBridges } from '../../src/bridge/index.js'
import { MqttClient } from '../../src/client/index.js'
import type { ClientOptions } from '../../src/client/index.js'
import { parseBridgeEntries } from '../../src/config/bridge-blocks.js'
import { parseText } from '../../src/config/parse.js'
import { Logger, silentLogger, type LogSink } from '../../src/observability/logger.js'
import type { PublishPacket } from '../../src/protocol/index.js'
import { startServer, type RunningServer } from '../../src/server/index.js'
import { freePort } from '../helpers/ports.js'

export const MosquittoBin = '/usr/sbin/mosquitto'

export function requireMosquitto (): void {
  if (!fs.existsSync(MosquittoBin)) throw new Error(`${MosquittoBin} is missing: install the Debian package mosquitto`)
  if (spawnSync('mosquitto_passwd', ['--help']).error !== undefined) throw new Error('mosquitto_passwd is missing: install the Debian package mosquitto')
}

export function tempDir (prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  fs.chmodSync(dir, 0o755)
  return dir
}

export interface MosquittoSetup {
  /** Extra lines for the listener (certfile, keyfile...). */
  listener?: string[]
  /** Users of a password file made with mosquitto_passwd; anonymous clients are then refused. */
  users?: Record<string, string>
  /** Keep sessions and retained messages across restart(). */
  persistence?: boolean
  /** Listen on this port instead of a free one found now. */
  port?: number
  /** Also open a plain listener (its port is `plainPort`), e.g. for test clients of a TLS broker. */
  plainListener?: boolean
}

/** A mosquitto on 127.0.0.1, its log kept for failure messages. */
export class RemoteMosquitto {
  private proc: ChildProcess | null = null
  private log = ''

  private constructor (readonly port: number, readonly plainPort: number, readonly dir: string, private readonly conf: string) {}

  static async start (o: MosquittoSetup = {}): Promise<RemoteMosquitto> {
    requireMosquitto()
    const dir = tempDir('midge-bridge-vps-')
    const port = o.port ?? await freePort()
    const plainPort = o.plainListener === true ? await freePort() : port
    const lines = [
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      'log_dest stderr', 'log_type all', 'connection_messages true',
      ...(o.persistence === true ? ['persistence true', `persistence_location ${dir}/`, 'autosave_interval 0'] : []),
      ...(o.users === undefined ? ['allow_anonymous true'] : ['allow_anonymous false', `password_file ${path.join(dir, 'passwd')}`]),
      `listener ${port} 127.0.0.1`,
      ...(o.listener ?? []),
      ...(plainPort !== port ? [`listener ${plainPort} 127.0.0.1`] : []),
    ]
    if (o.users !== undefined) {
      const file = path.join(dir, 'passwd')
      for (const [user, password] of Object.entries(o.users)) {
        const r = spawnSync('mosquitto_passwd', [...(fs.existsSync(file) ? [] : ['-c']), '-b', file, user, password], { encoding: 'utf8' })
        if (r.status !== 0) throw new Error(`mosquitto_passwd failed: ${r.error?.message ?? r.stderr}`)
      }
    }
    const conf = path.join(dir, 'mosquitto.conf')
    fs.writeFileSync(conf, lines.join('\n') + '\n')
    const m = new RemoteMosquitto(port, plainPort, dir, conf)
    await m.run()
    return m
  }

  get output (): string {
    return this.log
  }

  private async run (): Promise<void> {
    const proc = spawn(MosquittoBin, ['-c', this.conf], { stdio: ['ignore', 'ignore', 'pipe'] })
    this.proc = proc
    proc.stderr!.setEncoding('utf8')
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`mosquitto did not start within 10 s:\n${this.log}`)), 10_000)
      proc.stderr!.on('data', (d: string) => {
        this.log += d
        if (/mosquitto version \S+ running/.test(this.log.slice(this.log.lastIndexOf('starting')))) { clearTimeout(timer); resolve() }
      })
      proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`mosquitto exited with ${String(code)}:\n${this.log}`)) })
    })
  }

  /** SIGTERM and wait for the exit (a persistent mosquitto saves its database first). */
  async stop (): Promise<void> {
    const proc = this.proc
    this.proc = null
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill('SIGTERM')
    await exited
  }

  async restart (): Promise<void> {
    await this.stop()
    await this.run()
  }

  async remove (): Promise<void> {
    await this.stop()
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}

/** Collects log lines (for assertions and failure messages). */
export class LogCapture implements LogSink {
  readonly lines: string[] = []
  write (line: string): void { this.lines.push(line) }
  get text (): string { return this.lines.join('\n') }
}

/** Bridges from mosquitto.conf text; throws with every config error. */
export function bridgesFromConfig (text: string, baseDir = os.tmpdir()): BridgeOptions[] {
  const r = parseBridgeEntries(parseText(text, 'test.conf'), { baseDir })
  if (r.errors.length > 0) throw new Error(r.errors.map((e) => e.message).join('\n'))
  return r.bridges
}

/** The "Pi": an in-process Midge with one loopback listener, plus bridges. */
export class LocalMidge {
  private constructor (readonly server: RunningServer, readonly bridges: RunningBridges, readonly log: LogCapture) {}

  static async start (bridgeConfig: string, o: { logging?: boolean } = {}): Promise<LocalMidge> {
    const capture = new LogCapture()
    const logger = o.logging === false ? silentLogger() : new Logger({ types: ['error', 'warning', 'notice', 'information'], sinks: [capture], timestamp: false })
    const server = await startServer({
      broker: { logger, sysInterval: 0 },
      noDelay: true,
      listeners: [{ host: '127.0.0.1', port: 0, protocol: 'mqtt', maxConnections: -1, info: { name: 'pi', allowAnonymous: true, mountPoint: '', protocol: 'mqtt' } }],
    })
    const running = startBridges(server.broker, bridgesFromConfig(bridgeConfig), logger)
    return new LocalMidge(server, running, capture)
  }

  get port (): number {
    return this.server.listeners[0]!.address().port
  }

  get bridge (): Bridge {
    return this.bridges.bridges[0]!
  }

  async close (): Promise<void> {
    await this.bridges.stop()
    await this.server.close()
  }
}

/** Resolves on the bridge's next 'connected' (or at once if it already is). */
export function connected (bridge: Bridge, timeoutMs = 10_000): Promise<void> {
  if (bridge.state === 2) return Promise.resolve()
  return once(bridge, 'connected', timeoutMs, `bridge ${bridge.options.name} never connected`)
}

export function once (emitter: NodeJS.EventEmitter, event: string, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { emitter.removeListener(event, done); reject(new Error(`${what} (waited ${timeoutMs} ms)`)) }, timeoutMs)
    const done = (): void => { clearTimeout(timer); resolve() }
    emitter.once(event, done)
  })
}

/** A client that records every message it receives and can wait for one. */
export class Peer {
  readonly messages: PublishPacket[] = []
  private waiters: Array<{ test: (p: PublishPacket) => boolean; resolve: (p: PublishPacket) => void }> = []

  private constructor (readonly client: MqttClient, readonly name: string) {
    client.on('message', (p: PublishPacket) => {
      this.messages.push(p)
      this.waiters = this.waiters.filter((w) => {
        if (!w.test(p)) return true
        w.resolve(p)
        return false
      })
    })
  }

  static async connect (name: string, port: number, o: Partial<ClientOptions> = {}): Promise<Peer> {
    const client = new MqttClient({ host: '127.0.0.1', port, clientId: name, keepalive: 0, ...o })
    // Listening before CONNECT: a resumed session's messages may arrive in the same read as the CONNACK.
    const peer = new Peer(client, name)
    await client.connect()
    return peer
  }

  /** The first message on `topic` (already received, or the next one). */
  waitFor (topic: string, timeoutMs = 8000, payload?: string): Promise<PublishPacket> {
    const test = (p: PublishPacket): boolean => p.topic === topic && (payload === undefined || p.payload.toString() === payload)
    const seen = this.messages.find(test)
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const w = { test, resolve: (p: PublishPacket) => { clearTimeout(timer); resolve(p) } }
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w)
        reject(new Error(`${this.name}: no message on '${topic}'${payload === undefined ? '' : ` with payload '${payload}'`} within ${timeoutMs} ms; got ${JSON.stringify(this.messages.map((m) => `${m.topic}=${m.payload.toString()}`))}`))
      }, timeoutMs)
      this.waiters.push(w)
    })
  }

  /** Resolves once `topic` has received exactly these payloads, in order (fails on anything else). */
  async waitForSequence (topic: string, payloads: string[], timeoutMs = 8000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const got = this.on(topic)
      if (got.length >= payloads.length) {
        if (JSON.stringify(got) !== JSON.stringify(payloads)) throw new Error(`${this.name}: on '${topic}' expected ${JSON.stringify(payloads)}, got ${JSON.stringify(got)}`)
        return
      }
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`${this.name}: on '${topic}' expected ${JSON.stringify(payloads)} within ${timeoutMs} ms, got ${JSON.stringify(got)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { this.client.removeListener('message', onMessage); resolve() }, left)
        const onMessage = (): void => { clearTimeout(timer); this.client.removeListener('message', onMessage); resolve() }
        this.client.on('message', onMessage)
      })
    }
  }

  /** Messages received on `topic`, as payload strings. */
  on (topic: string): string[] {
    return this.messages.filter((m) => m.topic === topic).map((m) => m.payload.toString())
  }

  async close (): Promise<void> {
    await this.client.disconnect()
  }
}
