/**
 * Password hashing must not stall the broker: while COUNT CONNECTs with wrong passwords arrive at once (each
 * costing one 10,000-iteration PBKDF2, as `midge passwd` writes by default; loopback is exempt from the
 * throttle by default, so every one is hashed), a client already connected keeps a QoS 0 publish-to-self
 * ping-pong going; its round trips are measured, and the same ping-pong without the flood first, as long.
 * (Formerly the timed test test/auth/24, whose 50 ms bound failed on loaded machines: a measurement, not a
 * pass/fail check; docs/security.md section 4 quotes its figures.)
 *
 *   node dist/bench/auth/auth-latency.bench.js [--attempts N] [--bound MS]
 *
 * The broker runs in this process, with the authenticator stack `midge serve` builds (a password file
 * behind the shared AuthThrottle, logging to a file), so a round trip needs one event loop to be scheduled,
 * not two. The flood comes from another process (connect-flood.js), started before the measurement.
 * stdout: one JSON line per phase (baseline, flood), then a summary line; progress on stderr.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import mqtt from 'mqtt'
import { PasswordFileAuthenticator } from '../../src/auth/password-authenticator.js'
import { formatPasswordHash, hashPassword } from '../../src/auth/password-hash.js'
import { AuthThrottle, ThrottledAuthenticator } from '../../src/auth/throttle.js'
import { FileLogSink } from '../../src/observability/log-sinks.js'
import { Logger } from '../../src/observability/logger.js'
import { startServer } from '../../src/server/index.js'

const { values } = parseArgs({ options: { attempts: { type: 'string', default: '200' }, bound: { type: 'string', default: '50' } } })
const Attempts = Number(values.attempts)
const BoundMs = Number(values.bound)
const FLOOD = join(import.meta.dirname, 'connect-flood.js')

interface Stats { rounds: number; p50: number; p99: number; max: number }

function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b)
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN
  const r = (x: number): number => Math.round(x * 100) / 100
  return { rounds: s.length, p50: r(at(0.5)), p99: r(at(0.99)), max: r(s[s.length - 1] ?? Number.NaN) }
}

const out = (o: object): void => { process.stdout.write(`${JSON.stringify(o)}\n`) }
const note = (s: string): void => { process.stderr.write(`auth-latency: ${s}\n`) }

/** Back-to-back QoS 0 round trips to itself until `stop()` says so; each round trip's time in ms. */
async function pingPong(client: mqtt.MqttClient, topic: string, stop: (rounds: number) => boolean): Promise<number[]> {
  const samples: number[] = []
  for (;;) {
    let timer: NodeJS.Timeout | undefined
    const echo = new Promise<void>((done, fail) => {
      client.once('message', () => done())
      timer = setTimeout(() => fail(new Error(`no echo within 10 s after ${samples.length} round trips`)), 10_000)
    })
    const t0 = performance.now()
    client.publish(topic, 'ping', { qos: 0 })
    await echo
    samples.push(performance.now() - t0)
    clearTimeout(timer)
    if (stop(samples.length)) return samples
  }
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'midge-auth-latency-'))
  writeFileSync(join(dir, 'passwd'), `alice:${formatPasswordHash(await hashPassword('a-pw'))}\n`)
  const logFile = new FileLogSink(join(dir, 'midge.log'))
  const logger = new Logger({ sinks: [logFile] })
  const authenticator = new ThrottledAuthenticator(await PasswordFileAuthenticator.fromFile(join(dir, 'passwd')), new AuthThrottle(), logger)
  const server = await startServer({
    broker: { logger, sysInterval: 0, authenticator },
    noDelay: true,
    listeners: [{ host: '127.0.0.1', port: 0, protocol: 'mqtt', maxConnections: -1, info: { name: 'latency', allowAnonymous: false, mountPoint: '', protocol: 'mqtt' } }],
  })
  const port = server.listeners[0]!.address().port
  const flood = spawn(process.execPath, [FLOOD, String(port), String(Attempts), 'alice'], { stdio: ['pipe', 'pipe', 'inherit'] })
  let pinger: mqtt.MqttClient | undefined
  try {
    let text = ''
    const exited = new Promise<number | null>((done) => flood.once('exit', done))
    const floodLine = (re: RegExp): Promise<string> => new Promise<string>((done, fail) => {
      const check = (): boolean => { const m = text.split('\n').find((l) => re.test(l)); if (m !== undefined) done(m); return m !== undefined }
      flood.stdout.on('data', (d: Buffer) => { text += d.toString(); check() })
      void exited.then((code) => { if (!check()) fail(new Error(`connect-flood exited (${String(code)}) without ${re}; output: ${text}`)) })
    })
    await floodLine(/^ready$/)

    pinger = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'pinger', username: 'alice', password: 'a-pw', reconnectPeriod: 0 })
    await pinger.subscribeAsync('pp/pinger', { qos: 0 })
    await pingPong(pinger, 'pp/pinger', (n) => n >= 200) // warm-up: JIT, password cache
    note('baseline (3 s)')
    const baselineStart = performance.now()
    const baseline = stats(await pingPong(pinger, 'pp/pinger', () => performance.now() - baselineStart > 3000))
    out({ bench: 'auth-latency', phase: 'baseline', ...baseline })

    note(`flood of ${Attempts} wrong-password CONNECTs`)
    let floodDone = false
    const result = floodLine(/^\{/).finally(() => { floodDone = true })
    flood.stdin.end('go\n')
    const during = stats(await pingPong(pinger, 'pp/pinger', () => floodDone))
    const r = JSON.parse(await result) as { byCode: Record<string, number>; ms: number }
    const hashed = readFileSync(join(dir, 'midge.log'), 'utf8').split('\n').filter((l) => /\(u'alice'\) refused: wrong password for user 'alice'\./.test(l)).length
    out({ bench: 'auth-latency', phase: 'flood', attempts: Attempts, floodMs: r.ms, byCode: r.byCode, hashed, ...during })
    out({ bench: 'auth-latency', boundMs: BoundMs, maxDuringFlood: during.max, maxBaseline: baseline.max, withinBound: during.max < BoundMs })
    return 0
  } finally {
    if (flood.exitCode === null) flood.kill()
    pinger?.end(true)
    await server.close()
    logFile.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`auth-latency: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  },
)
