/**
 * Test plumbing for the broker core: an in-memory Duplex pair (the broker gets one end through
 * broker.handle(), a TestClient the other), a TestClient that frames what it receives by itself
 * (so the raw bytes of every packet can be checked independently of the codec) and waits for packets
 * with a failure timeout, a fake clock plus a "sweep barrier" for the broker's once-a-second timers,
 * and a helper that starts Midge on a loopback TCP port for interop tests.
 *
 * Waiting rules: nothing here sleeps. `sync()` is a PINGREQ/PINGRESP round trip: the broker answers
 * packets in order and writes everything of one event-loop turn in one flush, so once PINGRESP is in,
 * every packet caused by what this client (or another client that synced before) sent is in too.
 */
import type { Duplex } from 'node:stream'
import type { TestContext } from 'node:test'
import { Broker } from '../../src/broker/broker.js'
import type { BrokerOptions, ListenerInfo } from '../../src/broker/options.js'
import { silentLogger } from '../../src/observability/logger.js'
import { Decoder } from '../../src/protocol/decoder.js'
import { encode } from '../../src/protocol/encoder.js'
import { PacketType, type ProtocolVersion, type QoS } from '../../src/protocol/constants.js'
import type {
  AckPacket, AuthPacket, ConnackPacket, ConnectPacket, DisconnectPacket, Packet, PingreqPacket, PingrespPacket,
  Properties, PublishPacket, SubackPacket, SubscribePacket, UnsubackPacket, UnsubscribePacket, WillMessage,
} from '../../src/protocol/packets.js'
import { startServer, type RunningServer } from '../../src/server/index.js'
import { memoryPair } from '../../src/transport/memory-pair.js'

// ---- in-memory duplex pair -----------------------------------------------------------------------

/** Two connected Duplex streams: bytes written to one are read from the other (the bridge uses the same). */
export const duplexPair = memoryPair

// ---- broker setup --------------------------------------------------------------------------------

export const testListener: ListenerInfo = { name: 'test', allowAnonymous: true, mountPoint: '', protocol: 'mqtt' }

/** A broker for tests: silent, no $SYS, anything else as given. */
export function newBroker (opts: Partial<BrokerOptions> = {}): Broker {
  return new Broker({ logger: silentLogger(), sysInterval: 0, ...opts })
}

let connectionCounter = 0

/** Hands one end of a new in-memory connection to the broker; returns a TestClient on the other end. */
export function attach (broker: Broker, version: ProtocolVersion = 4, listener: ListenerInfo = testListener): TestClient {
  const [server, client] = duplexPair()
  const n = ++connectionCounter
  broker.handle(server, listener, { remoteAddress: `memory:${n}`, remoteIp: 'memory' })
  return new TestClient(client, version)
}

/**
 * Per-test setup: a broker that is closed when the test ends, and shortcuts to open clients on it.
 * Clients default to keep alive 0 so no test is at the mercy of the keep-alive sweep.
 */
export class Harness {
  readonly broker: Broker
  private readonly clients: TestClient[] = []

  constructor (broker: Broker) {
    this.broker = broker
  }

  /** A client that has sent nothing yet. */
  raw (version: ProtocolVersion = 4): TestClient {
    const c = attach(this.broker, version)
    this.clients.push(c)
    return c
  }

  /** A client that has connected; fails the test unless the CONNACK says success. */
  async client (version: ProtocolVersion, fields: ConnectFields = {}): Promise<TestClient> {
    const c = this.raw(version)
    const ack = await c.connect(fields)
    if (ack.reasonCode !== 0) throw new Error(`CONNECT of ${fields.clientId ?? '(no id)'} refused with 0x${ack.reasonCode.toString(16)}`)
    return c
  }

  close (): void {
    this.broker.close()
    for (const c of this.clients) c.destroy()
  }
}

export function setup (t: TestContext, opts: Partial<BrokerOptions> = {}): Harness {
  const h = new Harness(newBroker(opts))
  t.after(() => h.close())
  return h
}

// ---- time ----------------------------------------------------------------------------------------

/**
 * Replaces broker.now() (the clock the broker uses for keep alive, expiry and will delays) with one
 * that only moves when told to. The sweep itself still runs once a real second; see sweepBarrier.
 */
export class FakeClock {
  now: number

  constructor (broker: Broker) {
    this.now = broker.now()
    broker.now = () => this.now
  }

  advance (ms: number): void {
    this.now += ms
  }
}

/**
 * Resolves once the broker's periodic sweep has run with the clock as it is now (plus
 * connectTimeoutMs + 1 ms). A probe connection that never sends CONNECT is opened and the clock moved
 * past the connect timeout: the sweep that closes the probe is the same synchronous pass that handles
 * keep alive, will delays and session expiry, so all of those have been applied when this resolves.
 * Keep connectTimeoutMs small in tests that use it (the clock moves by that much).
 */
export async function sweepBarrier (broker: Broker, clock: FakeClock, guardMs = 3000): Promise<void> {
  const probe = attach(broker, 4)
  clock.advance(broker.options.connectTimeoutMs + 1)
  await probe.waitClosed(guardMs)
}

// ---- the test client -----------------------------------------------------------------------------

export interface PacketByType {
  1: ConnectPacket
  2: ConnackPacket
  3: PublishPacket
  4: AckPacket
  5: AckPacket
  6: AckPacket
  7: AckPacket
  8: SubscribePacket
  9: SubackPacket
  10: UnsubscribePacket
  11: UnsubackPacket
  12: PingreqPacket
  13: PingrespPacket
  14: DisconnectPacket
  15: AuthPacket
}
export type PacketTypeNumber = keyof PacketByType

const names = ['RESERVED', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP', 'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH']
export const packetName = (type: number): string => names[type] ?? `type ${type}`

/** A packet as received: the decoded form (undefined if the codec refused it) and the exact bytes. */
export interface Frame {
  type: number
  packet: Packet | undefined
  raw: Buffer
  decodeError: string | undefined
}

export interface ConnectFields {
  clientId?: string
  cleanStart?: boolean
  keepAlive?: number
  username?: string
  password?: Buffer
  will?: WillMessage
  properties?: Properties
  /** Set the bridge bit (0x80) of the protocol level, as mosquitto's try_private bridges do. */
  bridge?: boolean
}

export interface SubscribeOptions {
  qos?: QoS
  noLocal?: boolean
  retainAsPublished?: boolean
  retainHandling?: 0 | 1 | 2
  /** v5 Subscription Identifier. */
  id?: number
}

export interface PublishFields {
  qos?: QoS
  retain?: boolean
  dup?: boolean
  packetId?: number
  properties?: Properties
}

interface Waiter {
  match: (f: Frame) => boolean
  resolve: (f: Frame) => void
}

const DefaultTimeout = 3000

export class TestClient {
  readonly stream: Duplex
  version: ProtocolVersion
  /** Every frame received, in order (never consumed). */
  readonly history: Frame[] = []
  /** Frames not yet taken by next()/waitFor(). */
  readonly inbox: Frame[] = []
  closed = false
  private buf: Buffer = Buffer.alloc(0)
  private waiters: Waiter[] = []
  private closeWaiters: Array<() => void> = []
  private nextPacketId = 1

  constructor (stream: Duplex, version: ProtocolVersion) {
    this.stream = stream
    this.version = version
    stream.on('data', (chunk: Buffer) => this.onData(chunk))
    stream.on('error', () => { /* a reset is a close for the test's purposes */ })
    stream.on('close', () => this.onClose())
  }

  // -- receiving --

  private onData (chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    for (;;) {
      const total = frameLength(this.buf)
      if (total < 0 || this.buf.length < total) return
      const raw = Buffer.from(this.buf.subarray(0, total))
      this.buf = this.buf.subarray(total)
      this.onFrame(raw)
    }
  }

  private onFrame (raw: Buffer): void {
    let packet: Packet | undefined
    // A fresh decoder per frame: one refused frame must not hide the next one.
    const decoder = new Decoder((p) => { packet = p }, { protocolVersion: this.version })
    const err = decoder.push(raw)
    const frame: Frame = { type: raw[0]! >> 4, packet, raw, decodeError: err === null ? undefined : err.message }
    this.history.push(frame)
    const i = this.waiters.findIndex((w) => w.match(frame))
    if (i >= 0) {
      const w = this.waiters[i]!
      this.waiters.splice(i, 1)
      w.resolve(frame)
      return
    }
    this.inbox.push(frame)
  }

  private onClose (): void {
    this.closed = true
    const ws = this.closeWaiters
    this.closeWaiters = []
    for (const w of ws) w()
  }

  /** The next frame, whatever its type. */
  nextFrame (timeoutMs = DefaultTimeout): Promise<Frame> {
    return this.takeFrame(() => true, 'any packet', timeoutMs)
  }

  /** The next packet, which must be of `type` (the test fails otherwise). */
  async next<T extends PacketTypeNumber> (type: T, timeoutMs = DefaultTimeout): Promise<PacketByType[T]> {
    const f = await this.nextFrame(timeoutMs)
    if (f.type !== type) throw new Error(`expected ${packetName(type)}, got ${describe(f)}`)
    return decoded(f) as PacketByType[T]
  }

  /** The first packet of `type` (and matching `pred`), skipping over others, which stay in the inbox. */
  async waitFor<T extends PacketTypeNumber> (type: T, pred: (p: PacketByType[T]) => boolean = () => true, timeoutMs = DefaultTimeout): Promise<PacketByType[T]> {
    const f = await this.takeFrame((fr) => fr.type === type && fr.packet !== undefined && pred(fr.packet as PacketByType[T]), packetName(type), timeoutMs)
    return decoded(f) as PacketByType[T]
  }

  /** The first PUBLISH on `topic`. */
  publishOn (topic: string, timeoutMs = DefaultTimeout): Promise<PublishPacket> {
    return this.waitFor(PacketType.Publish, (p) => p.topic === topic, timeoutMs)
  }

  private takeFrame (match: (f: Frame) => boolean, what: string, timeoutMs: number): Promise<Frame> {
    const i = this.inbox.findIndex(match)
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]!)
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve: (f) => {
          clearTimeout(timer)
          resolve(f)
        },
      }
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter)
        reject(new Error(`no ${what} within ${timeoutMs} ms${this.closed ? ' (connection closed)' : ''}; received so far: ${this.history.map(describe).join(', ') || 'nothing'}`))
      }, timeoutMs)
      this.waiters.push(waiter)
    })
  }

  /** Received and not yet taken packets of a type. */
  pending<T extends PacketTypeNumber> (type: T): Array<PacketByType[T]> {
    return this.inbox.filter((f) => f.type === type).map((f) => f.packet as PacketByType[T])
  }

  /** Empties the inbox (e.g. retained messages a test does not care about). */
  drain (): Frame[] {
    return this.inbox.splice(0, this.inbox.length)
  }

  /** Round trip PINGREQ -> PINGRESP: everything the broker sent before the PINGRESP is in the inbox after. */
  async sync (timeoutMs = DefaultTimeout): Promise<void> {
    this.send({ type: PacketType.Pingreq })
    await this.waitFor(PacketType.Pingresp, () => true, timeoutMs)
  }

  /** sync(), then fail if any packet (of `type`, when given) is waiting. */
  async expectNothing (type?: PacketTypeNumber, what = ''): Promise<void> {
    await this.sync()
    const left = type === undefined ? this.inbox : this.inbox.filter((f) => f.type === type)
    if (left.length > 0) throw new Error(`expected no ${type === undefined ? 'packet' : packetName(type)}${what !== '' ? ` (${what})` : ''}, got ${left.map(describe).join(', ')}`)
  }

  /** Resolves when the connection is closed; rejects after timeoutMs. */
  waitClosed (timeoutMs = DefaultTimeout): Promise<void> {
    if (this.closed) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connection not closed within ${timeoutMs} ms; received: ${this.history.map(describe).join(', ') || 'nothing'}`)), timeoutMs)
      this.closeWaiters.push(() => {
        clearTimeout(timer)
        resolve()
      })
    })
  }

  // -- sending --

  send (packet: Packet): void {
    this.sendRaw(encode(packet, this.version))
  }

  sendRaw (bytes: Buffer | Uint8Array): void {
    if (this.stream.destroyed || this.stream.writableEnded) return
    this.stream.write(Buffer.from(bytes))
  }

  /** A fresh packet identifier (1, 2, 3, ...). */
  packetId (): number {
    const id = this.nextPacketId
    this.nextPacketId = id === 65535 ? 1 : id + 1
    return id
  }

  connectPacket (fields: ConnectFields = {}): ConnectPacket {
    const p: ConnectPacket = {
      type: PacketType.Connect,
      protocolName: this.version === 3 ? 'MQIsdp' : 'MQTT',
      protocolVersion: this.version,
      bridge: fields.bridge ?? false,
      cleanStart: fields.cleanStart ?? true,
      keepAlive: fields.keepAlive ?? 0,
      clientId: fields.clientId ?? '',
    }
    if (fields.username !== undefined) p.username = fields.username
    if (fields.password !== undefined) p.password = fields.password
    if (fields.will !== undefined) p.will = fields.will
    if (fields.properties !== undefined) p.properties = fields.properties
    return p
  }

  /** Sends CONNECT and returns the CONNACK (whatever its code). */
  async connect (fields: ConnectFields = {}): Promise<ConnackPacket> {
    this.send(this.connectPacket(fields))
    return this.next(PacketType.Connack)
  }

  /** SUBSCRIBE to filters (all with the same options) and return the SUBACK. */
  async subscribe (filters: string | string[], o: SubscribeOptions = {}, properties?: Properties): Promise<SubackPacket> {
    const list = typeof filters === 'string' ? [filters] : filters
    const packetId = this.packetId()
    const p: SubscribePacket = {
      type: PacketType.Subscribe,
      packetId,
      subscriptions: list.map((topicFilter) => ({
        topicFilter,
        qos: o.qos ?? 0,
        noLocal: o.noLocal ?? false,
        retainAsPublished: o.retainAsPublished ?? false,
        retainHandling: o.retainHandling ?? 0,
      })),
    }
    if (o.id !== undefined || properties !== undefined) p.properties = { ...properties, ...(o.id !== undefined ? { subscriptionIdentifiers: [o.id] } : {}) }
    this.send(p)
    return this.waitFor(PacketType.Suback, (s) => s.packetId === packetId)
  }

  async unsubscribe (filters: string | string[]): Promise<UnsubackPacket> {
    const packetId = this.packetId()
    this.send({ type: PacketType.Unsubscribe, packetId, topicFilters: typeof filters === 'string' ? [filters] : filters })
    return this.waitFor(PacketType.Unsuback, (s) => s.packetId === packetId)
  }

  /** Sends a PUBLISH (a packet id is chosen for QoS > 0 unless given) and returns that id. */
  publish (topic: string, payload: string | Buffer, f: PublishFields = {}): number {
    const qos = f.qos ?? 0
    const packetId = qos === 0 ? 0 : f.packetId ?? this.packetId()
    const p: PublishPacket = {
      type: PacketType.Publish,
      topic,
      payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
      qos,
      retain: f.retain ?? false,
      dup: f.dup ?? false,
      packetId,
    }
    if (f.properties !== undefined) p.properties = f.properties
    this.send(p)
    return packetId
  }

  /** Publishes and completes the QoS flow (PUBACK, or PUBREC/PUBREL/PUBCOMP); returns the final ack. */
  async publishAcked (topic: string, payload: string | Buffer, f: PublishFields = {}): Promise<AckPacket | undefined> {
    const qos = f.qos ?? 0
    const id = this.publish(topic, payload, f)
    if (qos === 0) {
      await this.sync()
      return undefined
    }
    if (qos === 1) return this.waitFor(PacketType.Puback, (a) => a.packetId === id)
    const rec = await this.waitFor(PacketType.Pubrec, (a) => a.packetId === id)
    if (rec.reasonCode >= 0x80) return rec
    this.send({ type: PacketType.Pubrel, packetId: id, reasonCode: 0 })
    return this.waitFor(PacketType.Pubcomp, (a) => a.packetId === id)
  }

  /** Acknowledges a received QoS 1/2 PUBLISH fully (PUBACK, or PUBREC -> PUBREL -> PUBCOMP). */
  async ack (p: PublishPacket): Promise<void> {
    if (p.qos === 1) this.send({ type: PacketType.Puback, packetId: p.packetId, reasonCode: 0 })
    if (p.qos === 2) {
      this.send({ type: PacketType.Pubrec, packetId: p.packetId, reasonCode: 0 })
      await this.waitFor(PacketType.Pubrel, (r) => r.packetId === p.packetId)
      this.send({ type: PacketType.Pubcomp, packetId: p.packetId, reasonCode: 0 })
    }
  }

  /** Sends DISCONNECT (v5: with the reason and properties) and waits for the broker to close. */
  async disconnect (reasonCode = 0, properties?: Properties): Promise<void> {
    const p: DisconnectPacket = { type: PacketType.Disconnect, reasonCode }
    if (properties !== undefined) p.properties = properties
    this.send(p)
    await this.waitClosed()
  }

  /** Ends the connection without DISCONNECT, like a client whose network failed. */
  destroy (): void {
    if (!this.stream.destroyed) this.stream.destroy()
  }

  /** After a protocol violation: a v5 client must first get DISCONNECT with one of `codes`; any client is closed. */
  async expectProtocolClose (codes: number[], timeoutMs = DefaultTimeout): Promise<DisconnectPacket | undefined> {
    await this.waitClosed(timeoutMs)
    const frames = this.drain()
    if (this.version !== 5) {
      const bad = frames.filter((f) => f.type !== PacketType.Publish)
      if (bad.length > 0) throw new Error(`a 3.x client got ${bad.map(describe).join(', ')} before the close`)
      return undefined
    }
    const last = frames.filter((f) => f.type !== PacketType.Publish).at(-1)
    if (last === undefined || last.type !== PacketType.Disconnect) throw new Error(`expected DISCONNECT with one of ${codes.map(hex).join('/')} before the close, got ${frames.map(describe).join(', ') || 'nothing'}`)
    const d = last.packet as DisconnectPacket
    if (!codes.includes(d.reasonCode)) throw new Error(`expected DISCONNECT with one of ${codes.map(hex).join('/')}, got ${hex(d.reasonCode)}`)
    return d
  }
}

export const hex = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`

function decoded (f: Frame): Packet {
  if (f.packet === undefined) throw new Error(`the broker sent a packet the codec refuses (${f.decodeError ?? '?'}): ${f.raw.toString('hex')}`)
  return f.packet
}

export function describe (f: Frame): string {
  const p = f.packet
  if (p === undefined) return `${packetName(f.type)}[undecodable: ${f.decodeError ?? ''}]`
  switch (p.type) {
    case PacketType.Publish: return `PUBLISH(${p.topic}, q${p.qos}${p.retain ? ', r' : ''}${p.dup ? ', d' : ''}${p.qos > 0 ? `, id ${p.packetId}` : ''})`
    case PacketType.Connack: return `CONNACK(${hex(p.reasonCode)}${p.sessionPresent ? ', sp' : ''})`
    case PacketType.Disconnect: return `DISCONNECT(${hex(p.reasonCode)})`
    case PacketType.Puback: case PacketType.Pubrec: case PacketType.Pubrel: case PacketType.Pubcomp:
      return `${packetName(p.type)}(${p.packetId}${p.reasonCode !== 0 ? `, ${hex(p.reasonCode)}` : ''})`
    case PacketType.Suback: return `SUBACK(${p.reasonCodes.map(hex).join(' ')})`
    default: return packetName(p.type)
  }
}

/** Total length of the first frame in buf from its fixed header, -1 while the header is incomplete. */
function frameLength (buf: Buffer): number {
  let value = 0
  let mult = 1
  for (let i = 1; i < 5; i++) {
    if (i >= buf.length) return -1
    const b = buf[i]!
    value += (b & 127) * mult
    if ((b & 128) === 0) return 1 + i + value
    mult *= 128
  }
  throw new Error(`the broker sent a Remaining Length longer than 4 bytes: ${buf.subarray(0, 5).toString('hex')}`)
}

/** Polls `cond` until true; for state with no event to wait on (e.g. an external client's subscription). */
export async function waitUntil (cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

// ---- TCP -----------------------------------------------------------------------------------------

export interface TcpBroker {
  server: RunningServer
  broker: Broker
  port: number
  host: string
  close(): Promise<void>
}

/** Midge on host (default 127.0.0.1) and port (default 0 = a free one), through startServer as `midge serve` runs it. */
export async function startTcpBroker (opts: Partial<BrokerOptions> = {}, host = '127.0.0.1', port = 0): Promise<TcpBroker> {
  const info: ListenerInfo = { name: 'tcp', allowAnonymous: true, mountPoint: '', protocol: 'mqtt' }
  const server = await startServer({
    broker: { logger: silentLogger(), sysInterval: 0, ...opts },
    noDelay: true,
    listeners: [{ host, port, protocol: 'mqtt', maxConnections: -1, info }],
  })
  return {
    server,
    broker: server.broker,
    port: server.listeners[0]!.address().port,
    host,
    close: () => server.close(),
  }
}
