/**
 * One client's network connection: the read loop (bytes -> Decoder -> dispatch), the write queue
 * (coalesced per event-loop turn), keep-alive bookkeeping and the single place where a protocol error
 * becomes wire behaviour (STYLE habit 4). It knows nothing of sockets beyond ClientStream (client-stream.ts).
 *
 * States: see conn-state.ts. Only this class changes its own fields: the handlers read them through getters
 * and change them through the few named transitions below (begin, identify, beginAuthentication, accept,
 * closeByClient), so every state change of a connection can be found here.
 */
import { Decoder } from '../protocol/decoder.js'
import { encode } from '../protocol/encoder.js'
import { MqttProtocolError } from '../protocol/errors.js'
import { PacketType, ReasonCode, type ProtocolVersion } from '../protocol/constants.js'
import type { ClientIdentity } from '../auth/types.js'
import type { ConnackPacket, ConnectPacket, DisconnectPacket, Packet, WillMessage, Properties } from '../protocol/packets.js'
import { PreAuthMaxPacketSize, type ListenerInfo } from './options.js'
import type { Broker } from './broker.js'
import type { Session } from './session.js'
import type { ClientStream } from './client-stream.js'
import { BrokerProtocolError, protocolViolation } from './errors.js'
import { ConnState, type ConnStateValue } from './conn-state.js'
import { OutAliases } from './out-aliases.js'
import { handleConnect } from './handlers/connect.js'
import { handlePublish } from './handlers/publish.js'
import { handlePuback, handlePubrec, handlePubrel, handlePubcomp } from './handlers/acks.js'
import { handleSubscribe } from './handlers/subscribe.js'
import { handleUnsubscribe } from './handlers/unsubscribe.js'
import { handleDisconnect } from './handlers/disconnect.js'
import { pump } from './delivery.js'
import { appended } from './append.js'

/**
 * Bytes the socket may hold unsent before further messages wait in the session queue instead
 * (which max_queued_messages / max_queued_bytes bound, as in mosquitto, for QoS 0 too).
 */
const SocketHighWater = 1024 * 1024
/**
 * Bytes one turn may queue for a connection before further messages wait in the session queue too: one
 * SUBSCRIBE matching many retained messages (or a pump after 'drain') must not build them all at once. Above
 * SocketHighWater so that a fast subscriber of many busy publishers still gets a turn's messages in one write.
 */
const TurnHighWater = 4 * 1024 * 1024
/**
 * Bytes joined into one socket write. Below it a turn's packets leave in one write (one syscall); above
 * it they leave in batches of about this size, so one turn never builds a buffer of unbounded size.
 */
const WriteBatchBytes = 256 * 1024
/**
 * Broker work units (see Broker.work: trie nodes walked, subscriptions matched, deliveries) one connection's
 * packets may cost in one turn of the event loop before it yields to the others (~10-30 ms of work).
 */
const ReadWorkBudget = 100_000
/**
 * Packets accepted while CONNECT is being authenticated, before the client is cut off. The socket is paused
 * meanwhile, so these can only be the rest of the chunk that carried the CONNECT.
 */
const MaxPendingWhileAuthenticating = 1000

export interface ConnectionMeta {
  /** 'ip:port' of the peer, for logs and throttling. */
  remoteAddress: string
  /** The peer's IP alone (no port), for brute-force accounting. */
  remoteIp: string
  /** A username derived from a verified client certificate (TLS use_identity_as_username). */
  certificateUsername?: string
}

const Bit = {
  ProblemInformation: 1,
  PrivateBridge: 2,
  CleanDisconnect: 4,
  Held: 8,
  AwaitingDrain: 16,
  /** The connection ended with the client's DISCONNECT (whatever its reason code). */
  Disconnected: 32,
} as const

export class Connection {
  readonly broker: Broker
  readonly stream: ClientStream
  readonly listener: ListenerInfo
  readonly meta: ConnectionMeta
  readonly decoder: Decoder
  readonly connectedAt: number
  private _state: ConnStateValue = ConnState.AwaitConnect
  private _version: ProtocolVersion = 4
  private _session: Session | null = null
  private _clientId = ''
  private _username: string | undefined = undefined
  private _keepAliveLimitMs = 0
  private _lastPacketAt: number
  private _will: WillMessage | undefined = undefined
  private _sendWindow = 65535
  private _receiveMaximum = 65535
  private _clientMaxPacketSize = 0
  private _clientTopicAliasMaximum = 0
  /** Booleans of the connection (Bit below), in one small integer: bytes per connection matter. */
  private bits: number = Bit.ProblemInformation
  private _closeReason = ''
  /** Outbound topic aliases, created on first use. */
  private outAliases: OutAliases | undefined = undefined
  /** Inbound topic aliases (v5), created on first use. */
  private topicAliases: Map<number, string> | undefined = undefined
  private pending: Packet[] | undefined = undefined
  private out: Buffer[] = []
  private outBytes = 0
  private dirty = false
  /** Bytes waiting for a pipelined commit (Broker.flushAll): they leave with releaseSealed(). */
  private sealedOut: Buffer[] = []
  private sealedBytes = 0
  /** Whether this turn's bytes must wait for the commit of the turn's records (see write). */
  private dependent = false

  get state(): ConnStateValue { return this._state }
  /** The protocol level of the client's CONNECT: 3 (MQTT 3.1), 4 (3.1.1) or 5. */
  get version(): ProtocolVersion { return this._version }
  get session(): Session | null { return this._session }
  get clientId(): string { return this._clientId }
  get username(): string | undefined { return this._username }
  /** Keep alive in ms after which the client is dropped (1.5 x the negotiated value); 0 = none. */
  get keepAliveLimitMs(): number { return this._keepAliveLimitMs }
  get lastPacketAt(): number { return this._lastPacketAt }
  /** The will, with the listener's mount point applied; undefined without one. */
  get will(): WillMessage | undefined { return this._will }
  /** Outgoing QoS 1/2 messages this client accepts in flight (its Receive Maximum, capped by ours). */
  get sendWindow(): number { return this._sendWindow }
  /** The Receive Maximum this client was told in CONNACK (v5): its QoS 2 PUBLISHes awaiting PUBREL may not exceed it. */
  get receiveMaximum(): number { return this._receiveMaximum }
  /** The client's Maximum Packet Size (v5); 0 = no limit. */
  get clientMaxPacketSize(): number { return this._clientMaxPacketSize }
  /** The client's Topic Alias Maximum (v5 CONNECT): how many aliases we may use towards it. */
  get clientTopicAliasMaximum(): number { return this._clientTopicAliasMaximum }
  /** v5 Request Problem Information: when false, reason strings go only in CONNACK/DISCONNECT. */
  get problemInformation(): boolean { return (this.bits & Bit.ProblemInformation) !== 0 }
  /**
   * A 3.x bridge that set the protocol level's high bit (mosquitto's try_private): its subscriptions
   * behave as No Local + Retain As Published, so what it sends us is not echoed back to it.
   */
  get privateBridge(): boolean { return (this.bits & Bit.PrivateBridge) !== 0 }
  /** Set by a clean DISCONNECT (without 0x04): the will is discarded [MQTT-3.1.2-10]. */
  get cleanDisconnect(): boolean { return (this.bits & Bit.CleanDisconnect) !== 0 }
  /** Why the connection ended, for the log. */
  get closeReason(): string { return this._closeReason }

  constructor(broker: Broker, stream: ClientStream, listener: ListenerInfo, meta: ConnectionMeta) {
    this.broker = broker
    this.stream = stream
    this.listener = listener
    this.meta = meta
    this._lastPacketAt = broker.now()
    this.connectedAt = this._lastPacketAt
    // Until the client has authenticated, a packet may not exceed 512 KiB (a CONNECT's fields are at most
    // 64 KiB each): an anonymous peer must not make us buffer 256 MB. authenticated() lifts it.
    const maxPacketSize = broker.options.maxPacketSize
    this.decoder = new Decoder(onDecodedPacket, { maxPacketSize: maxPacketSize > 0 && maxPacketSize < PreAuthMaxPacketSize ? maxPacketSize : PreAuthMaxPacketSize }, this)
    // Module-level listeners find their Connection through the stream: no closures per connection.
    ;(stream as StreamWithConnection)[kConnection] = this
    stream.on('data', onStreamData)
    stream.on('error', onStreamError)
    stream.on('close', onStreamClose)
    stream.on('end', onStreamClose)
  }

  /** Human form for logs: client id when known, else the address. */
  get label(): string {
    return this.clientId !== '' ? this.clientId : `<unknown ${this.meta.remoteAddress}>`
  }

  onData(chunk: Buffer): void {
    if (this._state === ConnState.Closed) return
    this._lastPacketAt = this.broker.now()
    // Per chunk, not per packet: one addition per socket read ($SYS/broker/bytes/received).
    this.broker.stats.bytesReceived += chunk.length
    this.workStart = this.broker.work
    const err = this.decoder.push(chunk)
    if (err !== null && (this.state as ConnStateValue) !== ConnState.Closed) this.onDecodeError(err)
  }

  /** Broker.work when this turn's reading began: the read yields once its packets have cost ReadWorkBudget. */
  private workStart = 0

  /**
   * Stops decoding after the current packet and reading the socket, and resumes on a later turn: the
   * packets of one client (a flood of PUBLISHes matching thousands of filters) never hold the event loop
   * for long, and TCP pushes back on the sender meanwhile.
   */
  private yieldRead(): void {
    this.decoder.pause()
    this.stream.pause()
    setImmediate(resumeRead, this)
  }

  /** Stops reading until the commit under way resolves (Broker.commitBacklogged): TCP holds the client back. */
  private waitForCommit(): void {
    this.decoder.pause()
    this.stream.pause()
    this.broker.resumeAfterCommit(this)
  }

  resumeRead(): void {
    if (this.state === ConnState.Closed || this.held) return
    this.workStart = this.broker.work
    const err = this.decoder.resume()
    if ((this.state as ConnStateValue) === ConnState.Closed) return
    if (err !== null) {
      this.onDecodeError(err)
      return
    }
    if (!this.decoder.paused) this.stream.resume()
  }

  private onDecodeError(err: MqttProtocolError): void {
    this.broker.stats.protocolErrors++
    if (err.code === 'MQTT_ERR_UNSUPPORTED_VERSION' && this.state === ConnState.AwaitConnect) {
      // [MQTT-3.1.2-2] answer with CONNACK 0x01 / 0x84 and close; an unknown protocol name gets no CONNACK.
      if (err.protocolVersion !== undefined) {
        this._version = err.protocolVersion
        this.sendPacket({ type: PacketType.Connack, sessionPresent: false, reasonCode: err.protocolVersion === 5 ? ReasonCode.UnsupportedProtocolVersion : 1 })
      }
      this.close(`refused: ${err.message}`)
      return
    }
    this.protocolError(err.reasonCode, err.message)
  }

  /** Called by the decoder (with this connection as receiver: no closure per connection). */
  onPacket(packet: Packet): void {
    if (this.state === ConnState.Closed) return
    try {
      this.dispatch(packet)
      if (this.broker.work - this.workStart > ReadWorkBudget && this.state === ConnState.Connected) this.yieldRead()
      else if (this.broker.commitBacklogged && this.state === ConnState.Connected) this.waitForCommit()
    } catch (err) {
      this.packetFailed(packet.type, err)
    }
  }

  private packetFailed(type: number, err: unknown): void {
    if (err instanceof BrokerProtocolError || err instanceof MqttProtocolError) {
      this.broker.stats.protocolErrors++
      this.protocolError(err.reasonCode, err.message)
    } else {
      this.broker.options.logger.error(`Internal error handling ${packetName(type)} from client ${this.label}: ${(err as Error).stack ?? String(err)}`)
      this.protocolError(ReasonCode.ImplementationSpecificError, 'internal error')
    }
  }

  dispatch(packet: Packet): void {
    this.broker.stats.packetsReceived++
    switch (this.state) {
      case ConnState.AwaitConnect:
        if (packet.type !== PacketType.Connect) {
          // [MQTT-3.1.0-1] the first packet from the client MUST be CONNECT.
          this.close(`sent ${packetName(packet.type)} before CONNECT`)
          return
        }
        handleConnect(this, packet)
        // Until CONNACK, hold no more than this chunk: an unauthenticated peer must not make us buffer what it
        // sends while its password is hashed (or its banned address is held). TCP backpressure holds the rest.
        if ((this.state as ConnStateValue) === ConnState.Authenticating) this.stream.pause()
        return
      case ConnState.Authenticating:
        if (this.pending === undefined) this.pending = []
        if (this.pending.length >= MaxPendingWhileAuthenticating) {
          this.close('sent too many packets while its CONNECT was being authenticated')
          return
        }
        this.pending.push(packet)
        return
      case ConnState.Connected:
        break
      default:
        return
    }
    switch (packet.type) {
      case PacketType.Publish: handlePublish(this, packet); return
      case PacketType.Puback: handlePuback(this, packet); return
      case PacketType.Pubrec: handlePubrec(this, packet); return
      case PacketType.Pubrel: handlePubrel(this, packet); return
      case PacketType.Pubcomp: handlePubcomp(this, packet); return
      case PacketType.Subscribe: handleSubscribe(this, packet); return
      case PacketType.Unsubscribe: handleUnsubscribe(this, packet); return
      case PacketType.Pingreq: this.sendPacket({ type: PacketType.Pingresp }); return
      case PacketType.Disconnect: handleDisconnect(this, packet); return
      case PacketType.Connect:
        // [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
        throw protocolViolation('sent a second CONNECT')
      case PacketType.Auth:
        // No enhanced authentication method is offered, so AUTH can never be valid here [MQTT-4.12.0-1].
        throw protocolViolation('sent AUTH without an authentication method')
      default:
        // Server-to-client packets (CONNACK, SUBACK, UNSUBACK, PINGRESP) from a client.
        throw protocolViolation(`sent ${packetName(packet.type)}, which only a server may send`)
    }
  }

  // ---- transitions, called by the CONNECT and DISCONNECT handlers -------------------------------------------

  /** A CONNECT arrived: its protocol level, and the client's Maximum Packet Size, which every answer must fit. */
  begin(p: ConnectPacket): void {
    this._version = p.protocolVersion
    this.setBit(Bit.PrivateBridge, p.bridge && p.protocolVersion < 5)
    this._clientMaxPacketSize = p.properties?.maximumPacketSize ?? 0
  }

  /** The client id: as sent, assigned by the broker, or the username (use_username_as_clientid). */
  identify(clientId: string): void {
    this._clientId = clientId
  }

  /** CONNECT passed the protocol checks; its credentials are being checked (maybe asynchronously). */
  beginAuthentication(): void {
    this._state = ConnState.Authenticating
  }

  /**
   * Authentication succeeded: binds the client's session (taking over, discarding or resuming it) and records
   * what was negotiated. CONNACK is sent after this, then authenticated().
   */
  accept(a: Accepted): { session: Session; present: boolean } {
    this._username = a.identity.username
    const attached = this.broker.attachSession(this, a.identity.clientId, a.cleanStart, a.expiryInterval, a.identity)
    this._session = attached.session
    this._keepAliveLimitMs = a.keepAlive === 0 ? 0 : a.keepAlive * 1500
    this._sendWindow = a.sendWindow
    this._receiveMaximum = a.receiveMaximum
    this._clientTopicAliasMaximum = a.clientTopicAliasMaximum
    this.setBit(Bit.ProblemInformation, a.problemInformation)
    this._will = a.will
    return attached
  }

  /** DISCONNECT from the client: `discardWill` unless it asked for the will (v5 0x04) [MQTT-3.14.4-3]. */
  closeByClient(discardWill: boolean, reason: string): void {
    this.setBit(Bit.CleanDisconnect, discardWill)
    this.bits |= Bit.Disconnected
    this.close(reason)
  }

  /** The topic an inbound v5 topic alias stands for, if the client set it. */
  aliasedTopic(alias: number): string | undefined {
    return this.topicAliases?.get(alias)
  }

  setTopicAlias(alias: number, topic: string): void {
    if (this.topicAliases === undefined) this.topicAliases = new Map()
    this.topicAliases.set(alias, topic)
  }

  /** The topic aliases we use towards this client, created on first use. */
  outgoingAliases(): OutAliases {
    return this.outAliases ?? (this.outAliases = new OutAliases())
  }

  /** Called by the CONNECT handler once authentication has finished and CONNACK was sent. */
  authenticated(): void {
    this._state = ConnState.Connected
    this.decoder.maxPacketSize = this.broker.options.maxPacketSize
    // A transport that frames messages itself (WebSockets) held them to the pre-auth size as well.
    ;(this.stream as PreAuthLimitedStream).liftPreAuthLimit?.()
    this.replayPending()
    if (this.state === ConnState.Connected && !this.held) this.stream.resume()
  }

  /** Handles the packets that arrived with the CONNECT, until one of them holds the read (hooks.ts). */
  private replayPending(): void {
    const pending = this.pending
    if (pending === undefined) return
    this.pending = undefined
    for (let i = 0; i < pending.length; i++) {
      if (this.state !== ConnState.Connected) return
      if (this.held) {
        this.pending = pending.slice(i)
        return
      }
      this.onPacket(pending[i]!)
    }
  }

  /** Set while an application hook decides on one of this client's packets: nothing further is read. */
  private get held(): boolean { return (this.bits & Bit.Held) !== 0 }

  private setBit(bit: number, on: boolean): void {
    this.bits = on ? this.bits | bit : this.bits & ~bit
  }

  /** Stops handling this client's packets until releaseRead(): they wait, in order, in the decoder and the socket. */
  holdRead(): void {
    this.bits |= Bit.Held
    this.decoder.pause()
    this.stream.pause()
  }

  /**
   * Finishes a packet of type `type` whose hook answered on a later turn (the read was held for it): with the
   * same error handling as a packet handled when read, then reads on.
   */
  finishHeld(type: number, work: () => void): void {
    if (this.state !== ConnState.Connected) return
    try {
      work()
    } catch (err) {
      this.packetFailed(type, err)
    }
    this.releaseRead()
  }

  private releaseRead(): void {
    if (!this.held) return
    this.bits &= ~Bit.Held
    if (this.state !== ConnState.Connected) return
    this.replayPending()
    if (this.held) return
    this.resumeRead()
  }

  /** A protocol violation: v5 clients get a DISCONNECT (or CONNACK) with the reason; 3.x clients a close. */
  protocolError(reasonCode: number, message: string): void {
    if (this.state === ConnState.Closed) return
    if (this.state === ConnState.Connected) {
      if (this.version === 5) this.sendDisconnect(reasonCode, this.problemInformation ? message : undefined)
    } else if (this.state === ConnState.AwaitConnect && this.decoder.protocolVersion === 5) {
      // A v5 CONNECT that cannot be accepted MAY get a CONNACK with the reason before the close [MQTT-3.2.2-8].
      // The Reason String goes only when the client's Maximum Packet Size is known: the CONNECT may have
      // failed before its properties were read [MQTT-3.2.2-19].
      this._version = 5
      const limit = this.decoder.peerMaxPacketSize
      const properties: Properties | undefined = limit >= 0 ? { reasonString: message } : undefined
      this.sendWithinLimit({ type: PacketType.Connack, sessionPresent: false, reasonCode, properties }, limit > 0 ? limit : 0)
    }
    this.close(`protocol error: ${message} (reason 0x${reasonCode.toString(16).padStart(2, '0')})`)
  }

  sendDisconnect(reasonCode: number, reasonString?: string): void {
    if (this.version !== 5) return
    const properties: Properties | undefined = reasonString !== undefined ? { reasonString } : undefined
    this.sendWithinLimit({ type: PacketType.Disconnect, reasonCode, properties })
  }

  /**
   * `packet` as it may go to this client: optional properties are shed until it fits the client's Maximum
   * Packet Size — Reason String and User Properties first [MQTT-3.2.2-19, MQTT-3.14.2-3], then a Topic
   * Alias Maximum (absent means no aliases, which is still true to what we accept). undefined when even that
   * is too large: it must not be sent [MQTT-3.1.2-24].
   */
  fitToClient<P extends ConnackPacket | DisconnectPacket>(packet: P, limit = this.clientMaxPacketSize): P | undefined {
    if (limit === 0 || encode(packet, this.version).length <= limit) return packet
    if (packet.properties === undefined) return undefined
    const properties: Properties = { ...packet.properties }
    delete properties.reasonString
    delete properties.userProperties
    let fitted: P = { ...packet, properties }
    if (encode(fitted, this.version).length <= limit) return fitted
    if (properties.topicAliasMaximum === undefined) return undefined
    delete properties.topicAliasMaximum
    fitted = { ...packet, properties }
    return encode(fitted, this.version).length <= limit ? fitted : undefined
  }

  /** Sends a CONNACK or DISCONNECT cut to the client's Maximum Packet Size; false when it could not be sent. */
  sendWithinLimit(packet: ConnackPacket | DisconnectPacket, limit = this.clientMaxPacketSize): boolean {
    const fitted = this.fitToClient(packet, limit)
    if (fitted === undefined) return false
    this.sendPacket(fitted)
    return true
  }

  sendPacket(packet: Packet): void {
    this.write(encode(packet, this.version))
  }

  /**
   * Queues bytes for this turn of the event loop; the broker flushes every dirty connection once. One call per
   * packet (delivery.ts and sendPacket), so $SYS/broker/messages/sent counts here.
   *
   * `free`: bytes that may leave before the turn's store records are committed — a QoS 0 or 1 delivery: a
   * crash before the commit can only make it a duplicate (the publisher, not acknowledged, sends again),
   * which those QoS allow. Everything else (acknowledgements, CONNACK, SUBACK, QoS 2 deliveries) depends on
   * the commit, and so does a free packet behind such bytes on the same connection: order is kept.
   */
  write(bytes: Buffer, free = false): void {
    if (this.state === ConnState.Closed) return
    this.broker.stats.packetsSent++
    this.out = appended(this.out, bytes)
    this.outBytes += bytes.length
    if (!free || this.sealedBytes > 0) this.dependent = true
    if (!this.dirty) {
      this.dirty = true
      this.broker.scheduleFlush(this)
    }
  }

  /**
   * True when the socket has more unsent bytes than it should: new messages queue in the session until
   * 'drain', so a slow subscriber costs bounded memory and never stalls delivery to others.
   */
  isCongested(): boolean {
    if (this.stream.writableLength <= SocketHighWater && this.outBytes + this.sealedBytes <= TurnHighWater) return false
    if ((this.bits & Bit.AwaitingDrain) === 0) {
      this.bits |= Bit.AwaitingDrain
      this.stream.once('drain', onStreamDrain)
    }
    return true
  }

  /** Bytes written for this client that the network has not taken yet: this turn's and the stream's. */
  get unsentBytes(): number {
    return this.outBytes + this.sealedBytes + this.stream.writableLength
  }

  /** Whether bytes of this connection wait for a flush or a commit. */
  get holdsBytes(): boolean {
    return this.outBytes + this.sealedBytes > 0
  }

  /** Whether this turn's bytes must wait for the next commit (false: only free deliveries, see write). */
  get dependsOnCommit(): boolean {
    return this.dependent
  }

  onDrain(): void {
    this.bits &= ~Bit.AwaitingDrain
    if (this.state === ConnState.Connected && this.session !== null) pump(this.session, this.broker.now())
  }

  flush(): void {
    this.dirty = false
    this.dependent = false
    const out = this.out
    if (out.length === 0) return
    // Emptied before writing: a write can run a peer's handler synchronously (in-memory pairs), and what that
    // makes us send goes to the next flush instead of being lost with this one.
    this.out = []
    const total = this.outBytes
    this.outBytes = 0
    this.send(out, total)
  }

  /**
   * The turn's bytes wait for the pipelined commit that starts now; what is written meanwhile waits for
   * the next one. Commits are serialized, so nothing is sealed still.
   */
  seal(): void {
    this.dirty = false
    this.dependent = false
    this.sealedOut = this.out
    this.sealedBytes = this.outBytes
    this.out = []
    this.outBytes = 0
  }

  /** The commit the sealed bytes depend on is done: they leave. */
  releaseSealed(): void {
    const list = this.sealedOut
    if (list.length === 0) return
    const total = this.sealedBytes
    this.sealedOut = []
    this.sealedBytes = 0
    this.send(list, total)
  }

  private send(out: Buffer[], total: number): void {
    const n = out.length
    const stream = this.stream
    const writable = !stream.destroyed && stream.writable
    if (writable) this.broker.stats.bytesSent += total
    if (n === 1 || total <= WriteBatchBytes) {
      // One write per turn: many small PUBLISHes become one syscall (mosquitto issues one send() each).
      if (writable) stream.write(n === 1 ? out[0]! : Buffer.concat(out, total))
      return
    }
    // A large turn leaves in bounded batches: one Buffer.concat of everything could outgrow what a Buffer
    // may hold (and doubles the memory of the turn).
    const list = out
    if (!writable) return
    stream.cork()
    let from = 0
    let bytes = 0
    for (let i = 0; i < n; i++) {
      bytes += list[i]!.length
      if (bytes >= WriteBatchBytes || i === n - 1) {
        stream.write(i === from ? list[i]! : Buffer.concat(list.slice(from, i + 1), bytes))
        from = i + 1
        bytes = 0
      }
    }
    stream.uncork()
  }

  /**
   * Ends the connection once. `reason` goes to the log. The will is published unless the client sent a
   * normal DISCONNECT [MQTT-3.1.2-8, MQTT-3.1.2-10].
   */
  close(reason: string): void {
    if (this.state === ConnState.Closed) return
    const wasConnected = this.state === ConnState.Connected || this.state === ConnState.Authenticating
    this._state = ConnState.Closed
    this._closeReason = reason
    this.decoder.stop()
    // Session and will changes of the close go into the same commit as what this connection was told,
    // and that commit precedes the last bytes leaving (see Broker.flushAll); then endStream().
    try {
      this.broker.connectionClosed(this, wasConnected)
    } catch (err) {
      // close() runs from socket event handlers and timers: a throw here would take the process down.
      this.broker.options.logger.error(`Internal error closing the connection of client ${this.label} from ${this.meta.remoteAddress}${this.username === undefined ? '' : ` (u'${this.username}')`}: ${(err as Error).stack ?? String(err)}`)
    }
    this.broker.closeAfterCommit(this)
  }

  /** After close(), once the last bytes have left: ends the stream. */
  endStream(): void {
    const stream = this.stream
    if ((this.bits & Bit.Disconnected) !== 0 && stream.endAfterDisconnect !== undefined) {
      stream.endAfterDisconnect()
      return
    }
    // Paused while authenticating: read (and drop) again so the peer's FIN is seen and the socket can close.
    if (stream.isPaused()) stream.resume()
    if (!stream.destroyed) {
      if (stream.writableLength > 0 || !stream.writableEnded) {
        stream.end()
        // Don't wait on a peer that never reads: the socket goes after a short grace period. (A bare TCP
        // handle whose peer has already closed is destroyed by end() itself: no timer for it.)
        if (stream.destroyed) return
        const t = setTimeout(() => stream.destroy(), 2000)
        t.unref()
        stream.once('close', () => clearTimeout(t))
      } else {
        stream.destroy()
      }
    }
  }

  onStreamError(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code
    this.close(code === 'ECONNRESET' || code === 'EPIPE' ? 'connection reset by peer' : `socket error: ${err.message}`)
  }

  onStreamClose(): void {
    this.close(this.state === ConnState.Connected ? 'closed its connection' : 'closed before CONNECT completed')
  }
}

/** What a successful CONNECT settles (see Connection.accept). */
export interface Accepted {
  identity: ClientIdentity
  cleanStart: boolean
  /** Session Expiry Interval in seconds (NeverExpires = forever). */
  expiryInterval: number
  /** Negotiated keep alive in seconds; 0 = none. */
  keepAlive: number
  sendWindow: number
  receiveMaximum: number
  clientTopicAliasMaximum: number
  problemInformation: boolean
  will: WillMessage | undefined
}

/** A stream that bounds its own input until the client has authenticated (see transport/ws-stream.ts). */
interface PreAuthLimitedStream { liftPreAuthLimit?(): void }

const kConnection = Symbol('midge.connection')
interface StreamWithConnection extends ClientStream { [kConnection]: Connection }

function onStreamData(this: ClientStream, chunk: Buffer): void { (this as StreamWithConnection)[kConnection].onData(chunk) }
function onStreamError(this: ClientStream, err: Error): void { (this as StreamWithConnection)[kConnection].onStreamError(err) }
function onStreamClose(this: ClientStream): void { (this as StreamWithConnection)[kConnection].onStreamClose() }
function onStreamDrain(this: ClientStream): void { (this as StreamWithConnection)[kConnection].onDrain() }
function resumeRead(conn: Connection): void { conn.resumeRead() }
function onDecodedPacket(this: unknown, packet: Packet): void { (this as Connection).onPacket(packet) }

const packetNames = ['RESERVED', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP', 'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH']
function packetName(type: number): string {
  return packetNames[type] ?? `type ${type}`
}
