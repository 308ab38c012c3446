/**
 * MqttClient: MQTT 3.1, 3.1.1 and 5.0 over TCP, TLS or WebSockets, built on src/protocol's codec. Used by
 * `midge pub`, `midge sub` and the bridge.
 *
 * Life of a connection: connect() opens the transport, sends CONNECT and settles on CONNACK. An unexpected
 * loss after that starts a reconnect every reconnectPeriod ms (when set) until disconnect()/end(); on each
 * new CONNACK the in-flight QoS 1/2 operations are re-sent (PUBLISH with DUP, or PUBREL), and when the server
 * kept no session the subscriptions are made again.
 *
 * Events: 'connect' (ConnackPacket), 'message' (PublishPacket, topic aliases resolved), 'close' (each lost
 * or ended connection), 'reconnect' (an attempt starts), 'disconnect' (the server's v5 DISCONNECT), 'error'
 * (only emitted when someone listens: failures reach callers through the promises), and, for -d style
 * tracing, 'packetsend' / 'packetreceive' (only built when listened to).
 */
import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import {
  Decoder, encode, encodePublish, isValidTopicFilter, isValidTopicName, PacketType, ReasonCode,
} from '../protocol/index.js'
import type {
  AckPacket, ConnackPacket, DisconnectPacket, Packet, Properties, ProtocolVersion, PublishPacket, QoS,
  SubackPacket, SubscribePacket, Subscription, UnsubackPacket, UnsubscribePacket,
} from '../protocol/index.js'
import { ClientError, ClientErrorCode, classifySocketError } from './errors.js'
import { Await, Flows, Pending } from './flows.js'
import { resolveOptions } from './options.js'
import type { ClientOptions, ResolvedOptions } from './options.js'
import { openTransport } from './transport.js'
import type { OpenTransport } from './transport.js'

export interface PublishOptions {
  qos?: QoS
  retain?: boolean
  properties?: Properties
}

export interface SubscribeRequest {
  topicFilter: string
  qos?: QoS
  noLocal?: boolean
  retainAsPublished?: boolean
  retainHandling?: 0 | 1 | 2
}

const State = { Idle: 0, Connecting: 1, Connected: 2, Waiting: 3, Closed: 4 } as const
type StateValue = (typeof State)[keyof typeof State]

export class MqttClient extends EventEmitter {
  readonly options: ResolvedOptions
  readonly protocolVersion: ProtocolVersion
  /** The identifier in use: the configured one, or the server's Assigned Client Identifier (v5). */
  clientId: string
  /** The last CONNACK's properties (v5), e.g. receiveMaximum, maximumPacketSize, topicAliasMaximum. */
  serverProperties: Properties | undefined

  private state: StateValue = State.Idle
  private stream: Duplex | null = null
  private decoder: Decoder | null = null
  private attempt: OpenTransport | null = null
  private readonly flows: Flows
  /** Topic aliases the server set on this connection (v5), alias -> topic. */
  private readonly aliases = new Map<number, string>()
  /** Granted subscriptions, re-made after a reconnect without a session. */
  private readonly subscriptions = new Map<string, { sub: Subscription; properties: Properties | undefined }>()
  private corked = false
  private lastWrite = 0
  private pingOutstanding = false
  private keepaliveMs = 0
  private keepaliveTimer: NodeJS.Timeout | null = null
  private connectTimer: NodeJS.Timeout | null = null
  private reconnectTimer: NodeJS.Timeout | null = null
  /** Why the current connection is ending, reported to the waiters it leaves behind. */
  private closeReason: ClientError | null = null
  private connectWaiter: { resolve: (c: ConnackPacket) => void; reject: (e: Error) => void } | null = null
  private hasConnected = false
  private maxOutgoingPacket = 0

  constructor (opts: ClientOptions) {
    super()
    this.options = resolveOptions(opts)
    this.protocolVersion = this.options.protocolVersion
    if (this.protocolVersion < 5 && this.options.password !== undefined && this.options.username === undefined) {
      throw new ClientError(ClientErrorCode.InvalidArgument, 'MQTT 3.x cannot send a password without a username')
    }
    this.clientId = this.options.clientId
    this.flows = new Flows(this.options.maxInflight)
  }

  get connected (): boolean {
    return this.state === State.Connected
  }

  /** Opens the connection; resolves with the CONNACK, rejects with a ClientError (refused, network, TLS...). */
  connect (): Promise<ConnackPacket> {
    if (this.state === State.Connecting || this.state === State.Connected) {
      return Promise.reject(new ClientError(ClientErrorCode.InvalidArgument, 'already connected or connecting'))
    }
    return new Promise<ConnackPacket>((resolve, reject) => {
      this.connectWaiter = { resolve, reject }
      this.startAttempt()
    })
  }

  /** Resolves when the server acknowledged (QoS 1: PUBACK, QoS 2: PUBCOMP) or, for QoS 0, once written. */
  publish (topic: string, payload: Buffer | string, opts: PublishOptions = {}): Promise<AckPacket | undefined> {
    const qos = opts.qos ?? 0
    const alias = opts.properties?.topicAlias
    if (!(topic === '' && alias !== undefined) && !isValidTopicName(topic)) {
      return Promise.reject(new ClientError(ClientErrorCode.InvalidArgument, `invalid topic name '${topic}'`))
    }
    const packet: PublishPacket = {
      type: PacketType.Publish,
      topic,
      payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
      qos,
      retain: opts.retain ?? false,
      dup: false,
      packetId: 0,
      properties: this.protocolVersion === 5 ? opts.properties : undefined,
    }
    return this.enqueue(packet) as Promise<AckPacket | undefined>
  }

  /** Sends one SUBSCRIBE; resolves with the SUBACK (check its reasonCodes: >= 0x80 is a refusal). */
  subscribe (requests: string | SubscribeRequest | SubscribeRequest[], opts: { qos?: QoS; properties?: Properties } = {}): Promise<SubackPacket> {
    const list = typeof requests === 'string' ? [{ topicFilter: requests }] : Array.isArray(requests) ? requests : [requests]
    const subscriptions: Subscription[] = []
    for (const r of list) {
      if (!isValidTopicFilter(r.topicFilter)) {
        return Promise.reject(new ClientError(ClientErrorCode.InvalidArgument, `invalid topic filter '${r.topicFilter}'`))
      }
      subscriptions.push({
        topicFilter: r.topicFilter,
        qos: r.qos ?? opts.qos ?? 0,
        noLocal: r.noLocal ?? false,
        retainAsPublished: r.retainAsPublished ?? false,
        retainHandling: r.retainHandling ?? 0,
      })
    }
    const packet: SubscribePacket = {
      type: PacketType.Subscribe, packetId: 0, subscriptions, properties: this.v5(opts.properties),
    }
    return this.enqueue(packet) as Promise<SubackPacket>
  }

  unsubscribe (filters: string | string[], properties?: Properties): Promise<UnsubackPacket> {
    const topicFilters = typeof filters === 'string' ? [filters] : filters
    const packet: UnsubscribePacket = {
      type: PacketType.Unsubscribe, packetId: 0, topicFilters, properties: this.v5(properties),
    }
    return this.enqueue(packet) as Promise<UnsubackPacket>
  }

  /**
   * Sends DISCONNECT (v5: with this reason and properties) and closes; no reconnect follows. Operations still
   * waiting are rejected with CLIENT_ERR_CLOSED: await them first for a clean exit.
   */
  disconnect (reasonCode: number = ReasonCode.NormalDisconnection, properties?: Properties): Promise<void> {
    const stream = this.stream
    const wasConnected = this.state === State.Connected
    this.state = State.Closed
    this.clearReconnect()
    if (stream === null || stream.destroyed) {
      this.abortAttempt()
      this.finalClose()
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      stream.once('close', () => resolve())
      if (wasConnected) {
        const packet: DisconnectPacket = { type: PacketType.Disconnect, reasonCode, properties: this.v5(properties) }
        this.send(packet)
      }
      this.uncork()
      stream.end()
      // A peer that never closes its side must not hold us: end() waits for it, destroy() after a grace period.
      setTimeout(() => { stream.destroy() }, 2000).unref()
    })
  }

  /** Closes at once without DISCONNECT (so a v3/v5 server sends the Will); no reconnect follows. */
  end (): void {
    this.state = State.Closed
    this.clearReconnect()
    this.abortAttempt()
    if (this.stream !== null) this.stream.destroy()
    else this.finalClose()
  }

  // ---- connection lifecycle ----

  private startAttempt (): void {
    this.state = State.Connecting
    this.closeReason = null
    const attempt = openTransport(this.options)
    this.attempt = attempt
    this.connectTimer = setTimeout(() => {
      this.fail(new ClientError(ClientErrorCode.ConnectTimeout, `no CONNACK within ${this.options.connectTimeout} ms`))
      attempt.abort()
    }, this.options.connectTimeout)
    attempt.ready.then((stream) => {
      if (this.attempt !== attempt) { stream.destroy(); return }
      this.attempt = null
      this.attach(stream)
    }, (err: ClientError) => {
      if (this.attempt !== attempt) return
      this.attempt = null
      if (this.closeReason === null) this.closeReason = err
      this.afterClose()
    })
  }

  private attach (stream: Duplex): void {
    this.stream = stream
    const decoder = new Decoder((p) => this.onPacket(p), {
      protocolVersion: this.protocolVersion, maxPacketSize: this.options.maxPacketSize,
    })
    this.decoder = decoder
    stream.on('data', (chunk: Buffer) => {
      const err = decoder.push(chunk)
      if (err !== null) this.fail(new ClientError(ClientErrorCode.Protocol, `server sent a bad packet: ${err.message}`, { cause: err }))
    })
    const secure = this.options.transport === 'tls' || this.options.transport === 'wss'
    stream.on('error', (err: Error & { code?: string }) => {
      // A TLS alert can come after the handshake (TLS 1.3 servers refuse a missing client certificate then).
      if (this.closeReason === null) this.closeReason = classifySocketError(err, secure)
    })
    stream.on('close', () => {
      if (this.stream === stream) this.afterClose()
    })
    const o = this.options
    this.send({
      type: PacketType.Connect,
      protocolName: this.protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
      protocolVersion: this.protocolVersion,
      bridge: o.bridge,
      cleanStart: o.clean,
      keepAlive: o.keepalive,
      clientId: this.clientId,
      username: o.username,
      password: o.password,
      will: o.will === undefined ? undefined : { ...o.will, properties: this.v5(o.will.properties) },
      properties: this.v5(o.properties),
    })
  }

  private onConnack (p: ConnackPacket): void {
    if (this.state !== State.Connecting) {
      this.fail(new ClientError(ClientErrorCode.Protocol, 'unexpected CONNACK'))
      return
    }
    this.clearConnectTimer()
    if (p.reasonCode !== 0) {
      const err = new ClientError(ClientErrorCode.ConnectionRefused, `connection refused by the server (code ${p.reasonCode})`, { reasonCode: p.reasonCode })
      this.rejectConnect(err)
      this.fail(err)
      return
    }
    this.state = State.Connected
    this.hasConnected = true
    const props = p.properties
    this.serverProperties = props
    if (props?.assignedClientIdentifier !== undefined) this.clientId = props.assignedClientIdentifier
    this.flows.quota = Math.min(this.options.maxInflight, props?.receiveMaximum ?? 65535)
    this.maxOutgoingPacket = props?.maximumPacketSize ?? 0
    this.keepaliveMs = (props?.serverKeepAlive ?? this.options.keepalive) * 1000
    this.aliases.clear()
    if (!p.sessionPresent) {
      this.flows.heldQos2.clear()
      if (this.options.resubscribe) this.resubscribe()
    }
    this.resendInflight()
    this.pump()
    if (this.keepaliveMs > 0) this.armKeepalive(this.keepaliveMs)
    const waiter = this.connectWaiter
    this.connectWaiter = null
    if (waiter !== null) waiter.resolve(p)
    this.emit('connect', p)
  }

  /** Common end of every connection or failed attempt: decide between reconnecting and closing for good. */
  private afterClose (): void {
    this.stopKeepalive()
    this.clearConnectTimer()
    this.decoder?.stop()
    this.decoder = null
    this.stream = null
    this.corked = false
    this.pingOutstanding = false
    const reason = this.closeReason ?? new ClientError(ClientErrorCode.Closed, 'connection closed')
    this.rejectConnect(reason)
    const retry = this.state !== State.Closed && this.hasConnected && this.options.reconnectPeriod > 0
    if (retry) {
      this.state = State.Waiting
      // QoS 0 messages written to a dead socket are gone; those queued stay for the next connection.
      this.emit('close')
      if (this.listenerCount('error') > 0 && this.closeReason !== null) this.emit('error', this.closeReason)
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = null
        this.emit('reconnect')
        this.startAttempt()
      }, this.options.reconnectPeriod)
      return
    }
    this.state = State.Closed
    this.finalClose(reason)
  }

  private finalClose (reason?: ClientError): void {
    const err = reason ?? new ClientError(ClientErrorCode.Closed, 'client closed')
    for (const p of this.flows.drain()) p.reject(err)
    this.emit('close')
  }

  private rejectConnect (err: ClientError): void {
    const waiter = this.connectWaiter
    this.connectWaiter = null
    if (waiter !== null) waiter.reject(err)
  }

  /** Ends the connection because of `err` (the first reason wins). */
  private fail (err: ClientError): void {
    if (this.closeReason === null) this.closeReason = err
    if (this.stream !== null) {
      this.uncork()
      this.stream.destroy()
    } else if (this.attempt === null) {
      this.afterClose()
    }
  }

  private abortAttempt (): void {
    const attempt = this.attempt
    if (attempt === null) return
    this.attempt = null
    this.clearConnectTimer()
    attempt.abort()
  }

  private clearConnectTimer (): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer)
    this.connectTimer = null
  }

  private clearReconnect (): void {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = null
  }

  // ---- keep alive ----

  private armKeepalive (delay: number): void {
    this.keepaliveTimer = setTimeout(this.onKeepalive, delay)
    this.keepaliveTimer.unref()
  }

  private readonly onKeepalive = (): void => {
    this.keepaliveTimer = null
    if (this.state !== State.Connected) return
    if (this.pingOutstanding) {
      this.fail(new ClientError(ClientErrorCode.KeepaliveTimeout, `no PINGRESP within ${this.keepaliveMs / 1000} s`))
      return
    }
    const idle = Date.now() - this.lastWrite
    if (idle >= this.keepaliveMs) {
      this.pingOutstanding = true
      this.send({ type: PacketType.Pingreq })
      this.armKeepalive(this.keepaliveMs)
    } else {
      this.armKeepalive(this.keepaliveMs - idle)
    }
  }

  private stopKeepalive (): void {
    if (this.keepaliveTimer !== null) clearTimeout(this.keepaliveTimer)
    this.keepaliveTimer = null
  }

  // ---- outgoing ----

  private enqueue (packet: PublishPacket | SubscribePacket | UnsubscribePacket): Promise<unknown> {
    if (this.state === State.Closed || (this.state === State.Idle && !this.hasConnected)) {
      return Promise.reject(new ClientError(ClientErrorCode.NotConnected, 'not connected'))
    }
    return new Promise((resolve, reject) => {
      this.flows.queue.push(new Pending(packet, resolve, reject))
      if (this.state === State.Connected) this.pump()
    })
  }

  /** Sends queued operations while quota and identifiers allow. */
  private pump (): void {
    while (this.state === State.Connected) {
      const p = this.flows.takeSendable()
      if (p === undefined) return
      const packet = p.packet
      if (packet.type === PacketType.Publish && packet.qos === 0) {
        this.send(packet, (err) => { if (err == null) p.resolve(undefined); else p.reject(this.closedError()) })
      } else {
        this.send(packet)
      }
    }
  }

  private resendInflight (): void {
    for (const [id, p] of this.flows.inflight) {
      if (p.state === Await.Pubcomp) {
        this.send({ type: PacketType.Pubrel, packetId: id, reasonCode: 0 })
      } else if (p.packet.type === PacketType.Publish) {
        p.packet.dup = true
        this.send(p.packet)
      } else {
        this.send(p.packet)
      }
    }
  }

  private resubscribe (): void {
    const again: Pending[] = []
    for (const { sub, properties } of this.subscriptions.values()) {
      const packet: SubscribePacket = { type: PacketType.Subscribe, packetId: 0, subscriptions: [sub], properties }
      // Nobody awaits these: a refusal shows in the SUBACK, which the 'packetreceive' tracer can report.
      again.push(new Pending(packet, () => {}, () => {}))
    }
    this.flows.queue.unshift(...again)
  }

  /** Encodes and writes one packet; a tick's writes leave in one batch (cork now, uncork next tick). */
  private send (packet: Packet, cb?: (err?: Error | null) => void): void {
    const stream = this.stream
    if (stream === null || stream.destroyed) {
      if (cb !== undefined) cb(this.closedError())
      return
    }
    const buf = packet.type === PacketType.Publish ? encodePublish(packet, this.protocolVersion) : encode(packet, this.protocolVersion)
    if (this.maxOutgoingPacket > 0 && buf.length > this.maxOutgoingPacket && packet.type === PacketType.Publish) {
      const pending = this.flows.complete(packet.packetId, packet.qos === 1 ? Await.Puback : Await.Pubrec)
      const err = new ClientError(ClientErrorCode.PacketTooLarge, `PUBLISH of ${buf.length} bytes exceeds the server's maximum packet size of ${this.maxOutgoingPacket}`)
      if (pending !== undefined) pending.reject(err)
      else if (cb !== undefined) cb(err)
      return
    }
    if (!this.corked) {
      this.corked = true
      stream.cork()
      process.nextTick(this.uncork)
    }
    this.lastWrite = Date.now()
    if (this.listenerCount('packetsend') > 0) this.emit('packetsend', packet)
    stream.write(buf, cb)
  }

  private readonly uncork = (): void => {
    if (!this.corked) return
    this.corked = false
    this.stream?.uncork()
  }

  private closedError (): ClientError {
    return this.closeReason ?? new ClientError(ClientErrorCode.Closed, 'connection closed')
  }

  private v5 (props: Properties | undefined): Properties | undefined {
    return this.protocolVersion === 5 ? props : undefined
  }

  // ---- incoming ----

  private onPacket (p: Packet): void {
    if (this.listenerCount('packetreceive') > 0) this.emit('packetreceive', p)
    switch (p.type) {
      case PacketType.Connack: this.onConnack(p); return
      case PacketType.Publish: this.onPublish(p); return
      case PacketType.Puback: this.onAck(p, Await.Puback); return
      case PacketType.Pubrec: this.onPubrec(p); return
      case PacketType.Pubrel: this.onPubrel(p); return
      case PacketType.Pubcomp: this.onAck(p, Await.Pubcomp); return
      case PacketType.Suback: this.onSuback(p); return
      case PacketType.Unsuback: this.onUnsuback(p); return
      case PacketType.Pingresp: this.pingOutstanding = false; return
      case PacketType.Disconnect: {
        this.emit('disconnect', p)
        this.fail(new ClientError(ClientErrorCode.ServerDisconnect, `the server disconnected (reason 0x${p.reasonCode.toString(16)})`, { reasonCode: p.reasonCode }))
        return
      }
      default:
        this.fail(new ClientError(ClientErrorCode.Protocol, `unexpected packet type ${p.type} from the server`))
    }
  }

  private onPublish (p: PublishPacket): void {
    if (this.state !== State.Connected) {
      this.fail(new ClientError(ClientErrorCode.Protocol, 'PUBLISH before CONNACK'))
      return
    }
    const alias = p.properties?.topicAlias
    if (alias !== undefined) {
      const max = this.options.properties?.topicAliasMaximum ?? 0
      if (alias === 0 || alias > max) { this.protocolFail(ReasonCode.TopicAliasInvalid, `topic alias ${alias} out of range`); return }
      if (p.topic.length > 0) this.aliases.set(alias, p.topic)
      else {
        const topic = this.aliases.get(alias)
        if (topic === undefined) { this.protocolFail(ReasonCode.ProtocolError, `unknown topic alias ${alias}`); return }
        p.topic = topic
      }
    }
    if (p.qos === 0) {
      this.emit('message', p)
    } else if (p.qos === 1) {
      // Acknowledge first: a listener that disconnects on this message must not put DISCONNECT ahead of it.
      this.send({ type: PacketType.Puback, packetId: p.packetId, reasonCode: 0 })
      this.emit('message', p)
    } else {
      if (!this.flows.heldQos2.has(p.packetId)) this.flows.heldQos2.set(p.packetId, p)
      this.send({ type: PacketType.Pubrec, packetId: p.packetId, reasonCode: 0 })
    }
  }

  private onPubrel (p: AckPacket): void {
    const held = this.flows.heldQos2.get(p.packetId)
    this.flows.heldQos2.delete(p.packetId)
    const rc = held === undefined && this.protocolVersion === 5 ? ReasonCode.PacketIdentifierNotFound : 0
    this.send({ type: PacketType.Pubcomp, packetId: p.packetId, reasonCode: rc })
    if (held !== undefined) this.emit('message', held)
  }

  private onAck (p: AckPacket, state: typeof Await.Puback | typeof Await.Pubcomp): void {
    const pending = this.flows.complete(p.packetId, state)
    if (pending === undefined) return // a late or duplicate ack: nothing waits for it
    if (p.reasonCode >= 0x80) pending.reject(refused(p))
    else pending.resolve(p)
    this.pump()
  }

  private onPubrec (p: AckPacket): void {
    const pending = this.flows.inflight.get(p.packetId)
    if (pending === undefined || pending.state !== Await.Pubrec) {
      // [MQTT-4.3.3] a PUBREC for nothing we sent: release it anyway so the server can forget it.
      if (pending === undefined) this.send({ type: PacketType.Pubrel, packetId: p.packetId, reasonCode: this.protocolVersion === 5 ? ReasonCode.PacketIdentifierNotFound : 0 })
      return
    }
    if (p.reasonCode >= 0x80) {
      this.flows.complete(p.packetId, Await.Pubrec)
      pending.reject(refused(p))
      this.pump()
      return
    }
    pending.state = Await.Pubcomp
    this.send({ type: PacketType.Pubrel, packetId: p.packetId, reasonCode: 0 })
  }

  private onSuback (p: SubackPacket): void {
    const pending = this.flows.complete(p.packetId, Await.Suback)
    if (pending === undefined) return
    const req = pending.packet as SubscribePacket
    req.subscriptions.forEach((s, i) => {
      const code = p.reasonCodes[i] ?? 0x80
      if (code < 0x80) this.subscriptions.set(s.topicFilter, { sub: s, properties: req.properties })
    })
    pending.resolve(p)
    this.pump()
  }

  private onUnsuback (p: UnsubackPacket): void {
    const pending = this.flows.complete(p.packetId, Await.Unsuback)
    if (pending === undefined) return
    for (const f of (pending.packet as UnsubscribePacket).topicFilters) this.subscriptions.delete(f)
    pending.resolve(p)
    this.pump()
  }

  /** A v5 server gets a DISCONNECT naming the problem before the close; a v3 one just sees the close. */
  private protocolFail (reasonCode: number, message: string): void {
    if (this.protocolVersion === 5) this.send({ type: PacketType.Disconnect, reasonCode })
    this.fail(new ClientError(ClientErrorCode.Protocol, message, { reasonCode }))
  }
}

function refused (p: AckPacket): ClientError {
  const name = p.type === PacketType.Puback ? 'PUBACK' : p.type === PacketType.Pubrec ? 'PUBREC' : 'PUBCOMP'
  return new ClientError(ClientErrorCode.PublishRefused, `the server refused the message (${name} reason 0x${p.reasonCode.toString(16)})`, { reasonCode: p.reasonCode })
}
