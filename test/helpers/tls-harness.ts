/**
 * Test plumbing for the TLS transport: a Midge broker behind startTlsListener (as serve.ts wires it),
 * a logger that records lines so tests wait for events instead of sleeping, a raw TLS probe that
 * reports which certificate a new connection gets, and a runner for mosquitto_pub / mosquitto_sub.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import fs from 'node:fs'
import tls from 'node:tls'
import { Broker } from '../../src/broker/broker.js'
import { Logger, LogTypes } from '../../src/observability/logger.js'
import { startTlsListener, type TlsListener, type TlsListenerOptions } from '../../src/transport/tls.js'

export class RecordingLogger extends Logger {
  readonly lines: string[] = []
  private waiters: Array<{ re: RegExp; from: number; resolve: (line: string) => void }> = []

  constructor () {
    super({ types: LogTypes, timestamp: false, sinks: [] })
    this.sinks.push({
      write: (line) => {
        this.lines.push(line)
        this.waiters = this.waiters.filter((w) => {
          if (!w.re.test(line)) return true
          w.resolve(line)
          return false
        })
      },
    })
  }

  /** Resolves with the first line matching `re` logged since line index `from` (default: any), waiting for it. */
  waitFor(re: RegExp, timeoutMs = 10_000, from = 0): Promise<string> {
    const seen = this.lines.slice(from).find((l) => re.test(l))
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no log line matching ${re} within ${timeoutMs} ms; lines:\n${this.lines.join('\n')}`)), timeoutMs)
      this.waiters.push({ re, from, resolve: (l) => { clearTimeout(timer); resolve(l) } })
    })
  }
}

export interface TlsBroker {
  broker: Broker
  listener: TlsListener
  logger: RecordingLogger
  port: number
  /** certificateUsername values handed over, in connection order. */
  identities: Array<string | undefined>
  /** Resolves once `n` connections have been handed to the broker. */
  handedOver(n: number): Promise<void>
  close(): Promise<void>
}

type ListenerOverrides = Partial<TlsListenerOptions> & Pick<TlsListenerOptions, 'certfile' | 'keyfile'>

/** A broker (anonymous allowed) behind a TLS listener on 127.0.0.1, port 0. */
export async function startTlsBroker(o: ListenerOverrides): Promise<TlsBroker> {
  const logger = new RecordingLogger()
  const broker = new Broker({ logger, sysInterval: 0 })
  const identities: Array<string | undefined> = []
  const handed = new EventEmitter()
  const listener = await startTlsListener({
    name: 'tls',
    host: '127.0.0.1',
    port: 0,
    requireCertificate: false,
    useIdentityAsUsername: false,
    useSubjectAsUsername: false,
    logger,
    ...o,
  }, (socket, certificateUsername) => {
    identities.push(certificateUsername)
    const meta: { remoteAddress: string; remoteIp: string; certificateUsername?: string } = {
      remoteAddress: `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`,
      remoteIp: socket.remoteAddress ?? '',
    }
    if (certificateUsername !== undefined) meta.certificateUsername = certificateUsername
    broker.handle(socket, { name: 'tls', allowAnonymous: true, mountPoint: '', protocol: 'mqtt' }, meta)
    handed.emit('socket')
  })
  return {
    broker,
    listener,
    logger,
    port: listener.address().port,
    identities,
    handedOver: async (n) => {
      while (identities.length < n) await once(handed, 'socket')
    },
    close: async () => {
      broker.close()
      await listener.close()
    },
  }
}

export interface Probe {
  authorized: boolean
  authorizationError: string | undefined
  /** SHA-256 fingerprint of the certificate the server sent. */
  fingerprint: string
  alpn: string | false
  protocol: string | null
}

/** Opens a TLS connection, reports what the server presented, and closes it. */
export function probe(port: number, o: tls.ConnectionOptions = {}): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ...o }, () => {
      const peer = socket.getPeerX509Certificate()
      const result: Probe = {
        authorized: socket.authorized,
        authorizationError: socket.authorizationError === null ? undefined : String(socket.authorizationError),
        fingerprint: peer?.fingerprint256 ?? '',
        alpn: socket.alpnProtocol ?? false,
        protocol: socket.getProtocol(),
      }
      socket.end()
      resolve(result)
    })
    socket.once('error', reject)
    socket.resume()
  })
}

export function readPem(file: string): string {
  return fs.readFileSync(file, 'utf8')
}

export interface RunResult { code: number | null; stdout: string; stderr: string }

const MISSING = 'install the Debian package mosquitto-clients'

/**
 * Spawns a mosquitto client; a missing binary fails with the Debian package to install. mosquitto_sub
 * runs under `stdbuf -oL`: its stdout is a pipe here, and without line buffering its "received SUBACK"
 * would only arrive at exit.
 */
export function spawnMosquitto(cmd: 'mosquitto_pub' | 'mosquitto_sub', args: string[]): ChildProcess {
  const child = cmd === 'mosquitto_sub'
    ? spawn('stdbuf', ['-oL', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  child.once('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') child.emit('missing', new Error(`${cmd} is missing: ${MISSING}`))
  })
  child.once('exit', (code) => {
    if (code === 127) child.emit('missing', new Error(`${cmd} is missing: ${MISSING}`))
  })
  return child
}

/** Runs a mosquitto client to completion (killed after `timeoutMs` as a failure guard). */
export function runMosquitto(cmd: 'mosquitto_pub' | 'mosquitto_sub', args: string[], timeoutMs = 10_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawnMosquitto(cmd, args)
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('missing', (err: Error) => { clearTimeout(timer); reject(err) })
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

/**
 * Starts mosquitto_sub with -d and resolves once it has its SUBACK; `done` resolves when it exits
 * (use -C N so it exits after N messages).
 */
export function startSubscriber(args: string[], timeoutMs = 10_000): Promise<{ done: Promise<RunResult>; kill: () => void }> {
  return new Promise((resolve, reject) => {
    const child = spawnMosquitto('mosquitto_sub', ['-d', ...args])
    let stdout = ''
    let stderr = ''
    let subscribed = false
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    const done = new Promise<RunResult>((res) => child.once('close', (code) => { clearTimeout(timer); res({ code, stdout, stderr }) }))
    child.once('missing', (err: Error) => { clearTimeout(timer); reject(err) })
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString()
      if (!subscribed && stdout.includes('received SUBACK')) {
        subscribed = true
        resolve({ done, kill: () => child.kill('SIGKILL') })
      }
    })
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
    void done.then((r) => { if (!subscribed) reject(new Error(`mosquitto_sub exited (${r.code}) before subscribing:\n${r.stdout}\n${r.stderr}`)) })
  })
}

/** Messages printed by `mosquitto_sub -d` (the lines that are not debug lines). */
export function payloadLines(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l !== '' && !l.startsWith('Client ') && !l.startsWith('Subscribed'))
}
