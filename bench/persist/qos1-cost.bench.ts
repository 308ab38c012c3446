/**
 * The throughput cost of persistence for QoS 1: PUBLISHERS publishers, each keeping WINDOW QoS 1
 * messages in flight, send to one persistent QoS 1 subscriber (clean session 0) that acknowledges
 * every message. Each run gets a fresh broker process (broker-child.ts) and measures messages per
 * second from the first PUBLISH to the subscriber's last message. Modes take turns (off, on, off,
 * on, ...; `fsync` last when asked) so that a noisy minute of a shared machine hits them alike; the
 * medians are compared. `--mosquitto` adds Mosquitto without persistence, same clients, to the turns.
 *
 *   node dist/bench/persist/qos1-cost.bench.js [-n MSGS] [--runs N] [--publishers P] [--fsync] [--mosquitto]
 *
 * One JSON line per run and a summary line on stdout; progress on stderr. Targets (issue #18): on >= 0.8x
 * off; with fsync >= Mosquitto without persistence.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { Decoder } from '../../src/protocol/decoder.js'
import { encode } from '../../src/protocol/encoder.js'
import type { Packet, PublishPacket } from '../../src/protocol/packets.js'
import { mosquittoConf } from '../brokers/mosquitto.js'
import { freePort, spawnTracked, waitForMqtt } from '../brokers/process.js'
import { procCpuSeconds } from '../load/procstat.js'

const { values } = parseArgs({
  options: {
    n: { type: 'string', short: 'n', default: '60000' },
    runs: { type: 'string', default: '3' },
    publishers: { type: 'string', default: '4' },
    window: { type: 'string', default: '64' },
    payload: { type: 'string', default: '64' },
    fsync: { type: 'boolean', default: false },
    mosquitto: { type: 'boolean', default: false },
  },
})
const TOTAL = Number(values.n)
const RUNS = Number(values.runs)
const PUBLISHERS = Number(values.publishers)
const WINDOW = Number(values.window)
const PAYLOAD = Buffer.alloc(Number(values.payload), 0x78)
const CHILD = path.resolve(import.meta.dirname, 'broker-child.js')

type Mode = 'off' | 'on' | 'fsync' | 'mosquitto'

const out = (o: object): void => { process.stdout.write(JSON.stringify(o) + '\n') }
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

async function startMosquitto(dir: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort()
  const conf = path.join(dir, 'mosquitto.conf')
  fs.writeFileSync(conf, mosquittoConf(port), { mode: 0o644 })
  fs.chmodSync(dir, 0o755)
  const p = spawnTracked('/usr/sbin/mosquitto', ['-c', conf], { core: -1, nofile: 0, logPath: path.join(dir, 'mosquitto.log') })
  await waitForMqtt(p, port, 15_000)
  return { child: p.child, port }
}

function startBroker(mode: Mode, dir: string): Promise<{ child: ChildProcess; port: number }> {
  if (mode === 'mosquitto') return startMosquitto(dir)
  // BENCH_BROKER_NODE_ARGS (e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof') profiles the broker.
  const nodeArgs = (process.env.BENCH_BROKER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '')
  const child = spawn(process.execPath, [...nodeArgs, CHILD, mode, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    let buf = ''
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('broker did not start within 15 s')) }, 15_000)
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString()
      const m = buf.match(/PORT (\d+)\n/)
      if (m !== null) { clearTimeout(timer); resolve({ child, port: Number(m[1]) }) }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`broker exited with ${code}`)) })
  })
}

/** A bare MQTT 3.1.1 connection: CONNECT, then every packet to onPacket; writes batched by the caller. */
class Wire {
  readonly socket: net.Socket
  private readonly decoder: Decoder
  onPacket: (p: Packet) => void = () => {}

  private constructor(socket: net.Socket) {
    this.socket = socket
    this.decoder = new Decoder((p) => this.onPacket(p), { protocolVersion: 4 })
    socket.on('data', (chunk: Buffer) => {
      const err = this.decoder.push(chunk)
      if (err !== null) throw err
    })
  }

  static async open(port: number, clientId: string, clean: boolean): Promise<Wire> {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true })
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    const w = new Wire(socket)
    const connack = new Promise<void>((resolve, reject) => {
      w.onPacket = (p) => { if (p.type === 2 && p.reasonCode === 0) resolve(); else reject(new Error(`unexpected ${p.type}`)) }
    })
    socket.write(encode({ type: 1, protocolName: 'MQTT', protocolVersion: 4, bridge: false, cleanStart: clean, keepAlive: 0, clientId }, 4))
    await connack
    return w
  }
}

async function run(mode: Mode): Promise<{ rate: number; cpuUsPerMsg: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-bench-qos1-'))
  const { child, port } = await startBroker(mode, dir)
  try {
    const sub = await Wire.open(port, 'bench-sub', false)
    await new Promise<void>((resolve) => {
      sub.onPacket = (p) => { if (p.type === 9) resolve() }
      sub.socket.write(encode({ type: 8, packetId: 1, subscriptions: [{ topicFilter: 'bench/#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] }, 4))
    })
    let received = 0
    let started = 0n
    const done = new Promise<number>((resolve) => {
      sub.onPacket = (p) => {
        if (p.type !== 3) return
        const pub = p as PublishPacket
        // PUBACKs of one read go out together (Node batches writes of one tick on the socket).
        sub.socket.write(encode({ type: 4, packetId: pub.packetId, reasonCode: 0 }, 4))
        if (++received === TOTAL) resolve(Number(process.hrtime.bigint() - started) / 1e9)
      }
    })
    const pubs = await Promise.all(Array.from({ length: PUBLISHERS }, (_, i) => Wire.open(port, `bench-pub-${i}`, true)))
    const per = Math.ceil(TOTAL / PUBLISHERS)
    started = process.hrtime.bigint()
    const cpu0 = procCpuSeconds(child.pid!)
    pubs.forEach((w, i) => {
      let sent = 0
      let nextId = 1
      const topic = `bench/${i}`
      const fill = (n: number): void => {
        const parts: Buffer[] = []
        for (let k = 0; k < n && sent < per; k++, sent++) {
          parts.push(encode({ type: 3, topic, payload: PAYLOAD, qos: 1, retain: false, dup: false, packetId: nextId }, 4))
          nextId = nextId === 65535 ? 1 : nextId + 1
        }
        if (parts.length > 0) w.socket.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts))
      }
      let acks = 0
      w.onPacket = (p) => {
        if (p.type !== 4) return
        acks++
        // Refill in batches of 8 so that each read does not become one tiny write.
        if (acks % 8 === 0) fill(8)
      }
      fill(WINDOW)
    })
    const seconds = await Promise.race([done, new Promise<number>((_, reject) => setTimeout(() => reject(new Error(`run timed out at ${received}/${TOTAL}`)), 120_000).unref())])
    for (const w of [sub, ...pubs]) w.socket.destroy()
    // The broker's CPU per message: much steadier than the rate on a shared machine.
    const cpuUsPerMsg = Math.round(((procCpuSeconds(child.pid!) - cpu0) * 1e7) / TOTAL) / 10
    return { rate: Math.round(TOTAL / seconds), cpuUsPerMsg }
  } finally {
    // A profiled broker must exit by itself to write its profile.
    child.kill(process.env.BENCH_BROKER_NODE_ARGS === undefined ? 'SIGKILL' : 'SIGTERM')
    await new Promise((r) => child.once('exit', r))
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

async function main(): Promise<void> {
  const order: Mode[] = []
  for (let i = 0; i < RUNS; i++) {
    order.push('off', 'on')
    if (values.fsync) order.push('fsync')
    if (values.mosquitto) order.push('mosquitto')
  }
  const rates: Record<Mode, number[]> = { off: [], on: [], fsync: [], mosquitto: [] }
  const cpus: Record<Mode, number[]> = { off: [], on: [], fsync: [], mosquitto: [] }
  for (const [i, mode] of order.entries()) {
    process.stderr.write(`run ${i + 1}/${order.length}: persistence ${mode}, ${TOTAL} messages...\n`)
    const { rate, cpuUsPerMsg } = await run(mode)
    rates[mode].push(rate)
    cpus[mode].push(cpuUsPerMsg)
    out({ bench: 'persist.qos1', mode, run: rates[mode].length, messages: TOTAL, publishers: PUBLISHERS, window: WINDOW, payloadBytes: PAYLOAD.length, msgsPerSec: rate, brokerCpuUsPerMsg: cpuUsPerMsg })
  }
  const off = median(rates.off)
  const on = median(rates.on)
  const summary: Record<string, unknown> = { bench: 'persist.qos1.summary', offMedian: off, onMedian: on, costPct: Math.round((1 - on / off) * 1000) / 10, onVsOff: Math.round((on / off) * 100) / 100, target: 'on >= 0.8x off' }
  summary.ok = on / off >= 0.8
  summary.brokerCpuUsPerMsg = Object.fromEntries(Object.entries(cpus).filter(([, v]) => v.length > 0).map(([k, v]) => [k, median(v)]))
  if (rates.fsync.length > 0) {
    const fs1 = median(rates.fsync)
    summary.fsyncMedian = fs1
    summary.fsyncCostPct = Math.round((1 - fs1 / off) * 1000) / 10
  }
  if (rates.mosquitto.length > 0) {
    summary.mosquittoNoPersistenceMedian = median(rates.mosquitto)
    if (rates.fsync.length > 0) summary.fsyncVsMosquitto = Math.round((median(rates.fsync) / median(rates.mosquitto)) * 100) / 100
  }
  summary.node = process.version
  summary.cpus = os.cpus().length
  out(summary)
}

main().catch((err: unknown) => {
  process.stderr.write(`qos1-cost: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
