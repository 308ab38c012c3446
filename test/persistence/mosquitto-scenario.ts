/**
 * Builds a mosquitto.db with the real Debian mosquitto (/usr/sbin/mosquitto 2.0.x): starts it with
 * persistence in a temp dir on a free port, creates retained messages, persistent v3.1.1 and v5 sessions
 * with queued and in-flight QoS 1/2 messages, a half-received QoS 2 message and a will, then stops it with
 * SIGTERM so it saves. The same config file is then given to Midge (30-mosquitto-import-e2e.test.ts), and
 * make-mosquitto-golden.ts keeps the file as a golden fixture.
 *
 * Clients are raw packet-level TestClients, so the in-flight states are exact (a PUBLISH left
 * unacknowledged, a PUBREL left without PUBCOMP, a PUBREC left without PUBREL).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { PacketType } from '../../src/protocol/constants.js'
import type { ProtocolVersion } from '../../src/protocol/constants.js'
import type { Properties, PublishPacket } from '../../src/protocol/packets.js'
import { freePort } from '../helpers/ports.js'
import { TestClient } from '../helpers/broker-harness.js'

export const MosquittoBin = '/usr/sbin/mosquitto'

/**
 * Session and message expiry of what the scenario keeps, in seconds: ten years, so the golden files written from
 * it (which hold absolute expiry times) stay valid for the tests that start a real broker on them.
 */
export const LongExpiry = 10 * 365 * 86400

/** 1 MiB with a pattern, so a shifted or cut payload does not compare equal. */
export const BigPayload = Buffer.from(Uint8Array.from({ length: 1024 * 1024 }, (_, i) => (i * 31 + (i >> 10)) & 0xff))

export const PropsMessage: Properties = {
  payloadFormatIndicator: 1,
  messageExpiryInterval: LongExpiry,
  contentType: 'application/json',
  responseTopic: 'home/v5/reply',
  correlationData: Buffer.from([1, 2, 3, 4]),
  userProperties: [['room', 'hall'], ['room', 'hall-2'], ['ünï', 'cödé']],
}

/** The retained messages the scenario leaves, by topic. */
export const Retained: Array<{ topic: string; payload: Buffer; qos: 0 | 1 | 2; properties?: Properties }> = [
  { topic: 'home/kitchen/light', payload: Buffer.from('on'), qos: 1 },
  { topic: 'home//empty', payload: Buffer.from('empty level'), qos: 1 },
  { topic: 'home/bücher/😀', payload: Buffer.from('utf-8 ✓'), qos: 0 },
  { topic: 'home/v5/props', payload: Buffer.from('{"t":21.5}'), qos: 1, properties: PropsMessage },
  { topic: 'big/blob', payload: BigPayload, qos: 1 },
  // From the will of 'willer', which Mosquitto publishes as it shuts down.
  { topic: 'home/will', payload: Buffer.from('willer gone'), qos: 1 },
]

export interface Queued { topic: string; payload: Buffer; qos: 1 | 2; retain: boolean; properties?: Properties }

/**
 * What is queued for the 'home/#' subscribers, in Mosquitto's order (QoS 0 is not queued for an offline
 * client). `retain` is the flag as published: a v5 Retain As Published subscriber sees it.
 */
export const QueuedForHome: Queued[] = [
  { topic: 'home/kitchen/light', payload: Buffer.from('on'), qos: 1, retain: true },
  { topic: 'home//empty', payload: Buffer.from('empty level'), qos: 1, retain: true },
  { topic: 'home/v5/props', payload: Buffer.from('{"t":21.5}'), qos: 1, retain: true, properties: PropsMessage },
  { topic: 'home/q1', payload: Buffer.from('queued one'), qos: 1, retain: false },
  { topic: 'home/q2', payload: Buffer.from('queued two'), qos: 2, retain: false, properties: { userProperties: [['k', 'v']] } },
  { topic: 'home/will', payload: Buffer.from('willer gone'), qos: 1, retain: true },
]

/** The QoS 2 message 'halfpub' sent and Mosquitto PUBREC'd, without PUBREL yet. */
export const Half = { clientId: 'halfpub', topic: 'home/half', payload: Buffer.from('half way'), packetId: 77 }

export interface ScenarioResult {
  dir: string
  port: number
  conf: string
  db: string
  /** Packet ids of the messages left in flight to 'flight5'. */
  flight: { a: number; b: number; c: number }
  log: string[]
}

export class MosquittoProcess {
  readonly lines: string[] = []
  readonly exited: Promise<number | null>
  private constructor(readonly child: ChildProcess) {
    let partial = ''
    child.stderr?.on('data', (d: Buffer) => {
      partial += d.toString()
      const parts = partial.split('\n')
      partial = parts.pop() ?? ''
      this.lines.push(...parts)
    })
    this.exited = new Promise((resolve) => child.on('close', (code) => resolve(code)))
  }

  static async start(conf: string): Promise<MosquittoProcess> {
    if (!fs.existsSync(MosquittoBin)) throw new Error(`${MosquittoBin} is missing: install the Debian package mosquitto`)
    const m = new MosquittoProcess(spawn(MosquittoBin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] }))
    await m.waitFor(/mosquitto version \S+ running/)
    return m
  }

  async waitFor(re: RegExp, timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs
    let exited = false
    void this.exited.then(() => { exited = true })
    while (!this.lines.some((l) => re.test(l))) {
      if (exited || Date.now() > until) throw new Error(`mosquitto: no line matching ${re}; log:\n${this.lines.join('\n')}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  /** SIGTERM: Mosquitto publishes the wills of connected clients, then saves its database. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM')
    await this.exited
  }
}

export async function rawClient(port: number, version: ProtocolVersion): Promise<TestClient> {
  const socket = net.connect({ host: '127.0.0.1', port })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return new TestClient(socket, version)
}

/** The mosquitto.conf both brokers read: Debian's persistence lines, in a temp dir, on a free port. */
export function writeConf(dir: string, port: number): string {
  const conf = path.join(dir, 'mosquitto.conf')
  // user root: the temp dir is 0700 root's; as root, both brokers would otherwise switch to 'mosquitto'.
  fs.writeFileSync(conf, [
    'user root',
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence true',
    `persistence_location ${dir}/`,
    'persistence_file mosquitto.db',
    // Only the save at shutdown: the file then holds exactly the state when mosquitto stopped.
    'autosave_interval 0',
    '',
  ].join('\n'))
  return conf
}

async function connectOk(c: TestClient, clientId: string, cleanStart: boolean, properties?: Properties, will?: { topic: string; payload: Buffer; qos: 0 | 1 | 2; retain: boolean }): Promise<void> {
  const ack = await c.connect({ clientId, cleanStart, keepAlive: 0, ...(properties !== undefined ? { properties } : {}), ...(will !== undefined ? { will } : {}) })
  if (ack.reasonCode !== 0) throw new Error(`mosquitto refused ${clientId}: ${ack.reasonCode}`)
}

/** Runs mosquitto in `dir` through the whole scenario and stops it. */
export async function runMosquittoScenario(dir: string): Promise<ScenarioResult> {
  const port = await freePort()
  const conf = writeConf(dir, port)
  const m = await MosquittoProcess.start(conf)
  const clients: TestClient[] = []
  const open = async (version: ProtocolVersion): Promise<TestClient> => {
    const c = await rawClient(port, version)
    clients.push(c)
    return c
  }
  try {
    // Persistent subscribers, then offline.
    const s3 = await open(4)
    await connectOk(s3, 'sub311', false)
    await s3.subscribe('home/#', { qos: 2 })
    await s3.disconnect()
    const s5 = await open(5)
    await connectOk(s5, 'sub5', false, { sessionExpiryInterval: LongExpiry })
    await s5.subscribe('home/#', { qos: 2, noLocal: true, retainAsPublished: true, id: 42 })
    await s5.disconnect()
    // A subscriber that stays online and leaves messages in flight.
    const f5 = await open(5)
    await connectOk(f5, 'flight5', false, { sessionExpiryInterval: LongExpiry })
    await f5.subscribe('flight/#', { qos: 2, id: 9 })

    const pub = await open(5)
    await connectOk(pub, 'publisher', true)
    for (const r of Retained.filter((x) => x.topic !== 'home/will')) {
      await pub.publishAcked(r.topic, r.payload, { qos: r.qos, retain: true, ...(r.properties !== undefined ? { properties: r.properties } : {}) })
    }
    for (const q of QueuedForHome.filter((x) => !x.retain)) {
      await pub.publishAcked(q.topic, q.payload, { qos: q.qos, ...(q.properties !== undefined ? { properties: q.properties } : {}) })
    }
    // flight/a: PUBLISH not acknowledged; flight/b: QoS 2 PUBLISH not PUBREC'd; flight/c: PUBREC'd, PUBREL not completed.
    await pub.publishAcked('flight/a', 'flight a', { qos: 1 })
    await pub.publishAcked('flight/b', 'flight b', { qos: 2 })
    await pub.publishAcked('flight/c', 'flight c', { qos: 2 })
    const got = (topic: string): Promise<PublishPacket> => f5.publishOn(topic, 5000)
    const a = await got('flight/a')
    const b = await got('flight/b')
    const c = await got('flight/c')
    f5.send({ type: PacketType.Pubrec, packetId: c.packetId, reasonCode: 0 })
    await f5.waitFor(PacketType.Pubrel, (p) => p.packetId === c.packetId)
    f5.destroy()

    // A publisher whose QoS 2 message Mosquitto has PUBREC'd but not yet seen PUBREL for.
    const h = await open(4)
    await connectOk(h, Half.clientId, false)
    h.publish(Half.topic, Half.payload, { qos: 2, packetId: Half.packetId })
    await h.waitFor(PacketType.Pubrec, (p) => p.packetId === Half.packetId)
    h.destroy()

    // Connected when mosquitto stops: its will goes out at shutdown, into the retained store and the queues.
    const w = await open(4)
    await connectOk(w, 'willer', true, undefined, { topic: 'home/will', payload: Buffer.from('willer gone'), qos: 1, retain: true })

    // A session that expires one second after its client goes: gone by the time Midge starts.
    const brief = await open(5)
    await connectOk(brief, 'brief', false, { sessionExpiryInterval: 1 })
    await brief.subscribe('home/#', { qos: 1 })
    await brief.disconnect()
    await pub.disconnect()
    await m.waitFor(/Client flight5 (closed its connection|disconnected)/)
    await m.waitFor(/Client halfpub (closed its connection|disconnected)/)
    await m.stop()
    const db = path.join(dir, 'mosquitto.db')
    if (!fs.existsSync(db)) throw new Error(`mosquitto did not save ${db}; log:\n${m.lines.join('\n')}`)
    return { dir, port, conf, db, flight: { a: a.packetId, b: b.packetId, c: c.packetId }, log: m.lines }
  } finally {
    for (const c of clients) c.destroy()
    await m.stop()
  }
}
