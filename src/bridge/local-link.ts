/**
 * The bridge's session on this broker: an MQTT 5 client speaking to broker.handle() over an in-memory
 * Duplex pair. Going through the broker's front door (rather than a private hook) means the local side of
 * a bridge gets what any client gets: QoS 1/2 flows with the broker's in-flight window, a queue bounded by
 * max_queued_messages while the remote is away, persistence of that queue, retained messages on subscribe,
 * and `$SYS` client counts that include it.
 *
 *   broker ── PUBLISH ──► LocalLink ──► Bridge ──► remote
 *          ◄── PUBACK/PUBREC ── ack(), once the remote has acknowledged (so nothing is lost in between)
 *          ── PUBREL ──► PUBCOMP at once (the message already left)
 *
 * Every subscription carries No Local: what the bridge itself publishes here (messages from the remote,
 * injected with this client id as their origin) is never handed back to it.
 *
 * Only the bridge writes to this connection, so the client side needs no packet-id allocation beyond the
 * one SUBSCRIBE per connection.
 */
import type { Duplex } from 'node:stream'
import type { Broker } from '../broker/broker.js'
import type { ListenerInfo } from '../broker/options.js'
import type { Authenticator, Authorizer } from '../auth/types.js'
import { Decoder, encode, NeverExpires, PacketType, ReasonCode } from '../protocol/index.js'
import type { ConnackPacket, Packet, PublishPacket, SubackPacket, Subscription } from '../protocol/index.js'
import { memoryPair } from '../transport/memory-pair.js'

export interface LocalLinkOptions {
  /** The `connection` name, for the connection's address in logs (`bridge:NAME`). */
  name: string
  clientId: string
  username: string | undefined
  clean: boolean
}

export interface LocalLinkHandler {
  /** A message for the remote; `gen` goes back into ack(). */
  onLocalMessage(p: PublishPacket, gen: number): void
  /** The broker ended the connection (shutdown, session taken over, protocol error). */
  onLocalLost(why: string): void
}

/**
 * The bridge is part of the broker: it is let in whatever the listeners require, and reads what its topic
 * lines subscribe to; acl_file rules, written for clients, do not apply to it.
 */
const trustAll: Authorizer = { canPublish: () => true, canSubscribe: () => true, canRead: () => true }

export class LocalLink {
  /** Bumped per connection: acknowledgements meant for an earlier connection are dropped. */
  gen = 0
  connected = false
  private stream: Duplex | null = null
  private pending: { resolve: () => void; reject: (err: Error) => void } | null = null
  private pingTimer: NodeJS.Timeout | null = null
  private readonly listener: ListenerInfo

  constructor (private readonly broker: Broker, private readonly opts: LocalLinkOptions, private readonly handler: LocalLinkHandler) {
    const username = opts.username
    const authenticator: Authenticator = { authenticate: () => ({ ok: true, username }) }
    this.listener = { name: `bridge:${opts.name}`, allowAnonymous: true, mountPoint: '', protocol: 'mqtt', authenticator, authorizer: trustAll }
  }

  /** Connects and subscribes; resolves once the SUBACK is in. Rejects if the broker refuses either. */
  open (subscriptions: Subscription[]): Promise<void> {
    this.close()
    const gen = ++this.gen
    const [ours, theirs] = memoryPair()
    this.stream = ours
    const decoder = new Decoder((p) => this.onPacket(p, gen, subscriptions), { protocolVersion: 5 })
    ours.on('data', (chunk: Buffer) => {
      const err = decoder.push(chunk)
      if (err !== null) this.lost(gen, `the broker sent a bad packet: ${err.message}`)
    })
    ours.on('close', () => this.lost(gen, 'the broker closed the connection'))
    ours.on('end', () => this.lost(gen, 'the broker closed the connection'))
    ours.on('error', () => {})
    return new Promise<void>((resolve, reject) => {
      this.pending = { resolve, reject }
      this.broker.handle(theirs, this.listener, { remoteAddress: `bridge:${this.opts.name}`, remoteIp: 'bridge' })
      this.send({
        type: PacketType.Connect,
        protocolName: 'MQTT',
        protocolVersion: 5,
        bridge: false,
        cleanStart: this.opts.clean,
        keepAlive: 0,
        clientId: this.opts.clientId,
        username: this.opts.username,
        properties: this.opts.clean ? undefined : { sessionExpiryInterval: NeverExpires },
      })
    })
  }

  /** Acknowledges a message once the remote has it: PUBACK for QoS 1, PUBREC for QoS 2. */
  ack (gen: number, qos: number, packetId: number): void {
    if (gen !== this.gen || !this.connected) return
    if (qos === 1) this.send({ type: PacketType.Puback, packetId, reasonCode: 0 })
    else if (qos === 2) this.send({ type: PacketType.Pubrec, packetId, reasonCode: 0 })
  }

  /** Ends the connection with DISCONNECT; the session stays when it is not clean. */
  close (): void {
    const stream = this.stream
    if (stream === null) return
    if (this.connected) this.send({ type: PacketType.Disconnect, reasonCode: ReasonCode.NormalDisconnection })
    this.reset(new Error('closed'))
    stream.end()
  }

  private reset (err: Error): void {
    this.gen++
    this.connected = false
    this.stream = null
    if (this.pingTimer !== null) clearInterval(this.pingTimer)
    this.pingTimer = null
    const pending = this.pending
    this.pending = null
    if (pending !== null) pending.reject(err)
  }

  private lost (gen: number, why: string): void {
    if (gen !== this.gen) return
    const stream = this.stream
    const wasUp = this.connected
    this.reset(new Error(why))
    stream?.destroy()
    if (wasUp) this.handler.onLocalLost(why)
  }

  private send (p: Packet): void {
    const stream = this.stream
    if (stream === null || stream.destroyed) return
    stream.write(encode(p, 5))
  }

  private onPacket (p: Packet, gen: number, subscriptions: Subscription[]): void {
    if (gen !== this.gen) return
    switch (p.type) {
      case PacketType.Publish:
        this.handler.onLocalMessage(p, gen)
        return
      case PacketType.Pubrel:
        this.send({ type: PacketType.Pubcomp, packetId: p.packetId, reasonCode: 0 })
        return
      case PacketType.Connack:
        this.onConnack(p, subscriptions)
        return
      case PacketType.Suback:
        this.onSuback(p, subscriptions)
        return
      case PacketType.Disconnect:
        this.lost(gen, `the broker disconnected the bridge (reason 0x${p.reasonCode.toString(16)})`)
        return
      default:
        // PINGRESP, and acknowledgements of nothing we sent: nothing to do.
    }
  }

  private onConnack (p: ConnackPacket, subscriptions: Subscription[]): void {
    if (p.reasonCode !== 0) {
      this.fail(`the broker refused the bridge's local session '${this.opts.clientId}' (reason 0x${p.reasonCode.toString(16)})`)
      return
    }
    this.connected = true
    // max_keepalive may impose a keep alive even on this in-memory connection: ping at half of it.
    const keepAlive = p.properties?.serverKeepAlive ?? 0
    if (keepAlive > 0) {
      this.pingTimer = setInterval(() => this.send({ type: PacketType.Pingreq }), keepAlive * 500)
      this.pingTimer.unref()
    }
    if (subscriptions.length === 0) {
      this.settle()
      return
    }
    this.send({ type: PacketType.Subscribe, packetId: 1, subscriptions })
  }

  private onSuback (p: SubackPacket, subscriptions: Subscription[]): void {
    const refused = subscriptions.filter((_, i) => (p.reasonCodes[i] ?? 0x80) >= 0x80).map((s) => s.topicFilter)
    if (refused.length > 0) {
      this.fail(`the broker refused the bridge's local subscription${refused.length > 1 ? 's' : ''} ${refused.map((f) => `'${f}'`).join(', ')}`)
      return
    }
    this.settle()
  }

  private settle (): void {
    const pending = this.pending
    this.pending = null
    if (pending !== null) pending.resolve()
  }

  private fail (why: string): void {
    const pending = this.pending
    this.pending = null
    const stream = this.stream
    this.reset(new Error(why))
    stream?.destroy()
    if (pending !== null) pending.reject(new Error(why))
  }
}
