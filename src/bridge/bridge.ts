/**
 * One bridge (a mosquitto.conf `connection` block): an MqttClient to the remote broker and a LocalLink
 * session on this one, each forwarding what the other receives, with topics mapped as Mosquitto maps them
 * (topic-map.ts).
 *
 *   start ──► connecting ──CONNACK──► connected ──loss──► waiting ──restart_timeout──► connecting ...
 *                 │ refused / unreachable: next address, wait restart_timeout       (start_type once: stopped)
 *
 * Remote → local: a message on an in/both topic is published into this broker with the local session's
 * client id as its origin, so that session's No Local subscriptions never send it back out.
 * Local → remote: the local session receives out/both topics; each QoS 1/2 message is acknowledged to this
 * broker only once the remote has acknowledged it, so a message caught by a remote failure stays queued in
 * the local session and is sent again after the reconnection (with cleansession false it also survives a
 * restart of this broker when persistence is on). The local session is disconnected while the remote is
 * away, so the broker queues for it, within max_queued_messages, as for any offline client.
 *
 * Loops: besides No Local here, the remote must not echo back what the bridge publishes to it. MQTT 5 asks
 * for that with No Local on the remote subscriptions; for 3.1/3.1.1, try_private sets the bridge flag,
 * which makes a Mosquitto remote treat the subscriptions the same way.
 *
 * Notifications: `1` (connected) / `0` (not), retained at QoS 1 on notification_topic, locally and on the
 * remote; on the remote the `0` is the connection's will, so it also appears when the link just dies.
 */
import { EventEmitter } from 'node:events'
import net from 'node:net'
import type { Broker } from '../broker/broker.js'
import { ClientErrorCode, MqttClient } from '../client/index.js'
import type { ClientError, SubscribeRequest } from '../client/index.js'
import type { Logger } from '../observability/logger.js'
import { ConnackReturnCode, encodedSize, isValidTopicName, PacketType, topicMatches } from '../protocol/index.js'
import type { ConnackPacket, Properties, PublishPacket, QoS, Subscription } from '../protocol/index.js'
import { RestartBackoff } from './backoff.js'
import { LocalLink } from './local-link.js'
import type { BridgeAddress, BridgeOptions } from './options.js'
import { remoteClientOptions } from './remote-options.js'
import { BridgeTopic, mapIncoming, mapOutgoing } from './topic-map.js'
import { hostPort } from '../transport/peer-address.js'

export const BridgeState = { Idle: 0, Connecting: 1, Connected: 2, Waiting: 3, Stopped: 4 } as const
export type BridgeStateValue = (typeof BridgeState)[keyof typeof BridgeState]

/** While on a secondary address (round_robin false), how often the main one is probed, in seconds. */
const MainProbeSeconds = 5

/** How long stop() waits for the remote to take the final `0` notification, in ms. */
const StopGraceMs = 2000

/** Remote failures after which retrying cannot help: the message is dropped and acknowledged locally. */
const Undeliverable = new Set<string>([ClientErrorCode.PublishRefused, ClientErrorCode.PacketTooLarge, ClientErrorCode.InvalidArgument])

const One = Buffer.from('1')
const Zero = Buffer.from('0')

/**
 * Events: 'connected' (BridgeAddress; both sides subscribed), 'disconnected' (reason string; after the
 * local session was closed and the local `0` published), 'attempt-failed' (BridgeAddress, ClientError),
 * 'stopped'.
 */
export class Bridge extends EventEmitter {
  readonly options: BridgeOptions
  state: BridgeStateValue = BridgeState.Idle
  private readonly broker: Broker
  private readonly logger: Logger
  private readonly topics: BridgeTopic[]
  private readonly outTopics: BridgeTopic[]
  private readonly inTopics: BridgeTopic[]
  private readonly localSubscriptions: Subscription[]
  private readonly remoteSubscriptions: SubscribeRequest[]
  private readonly remoteUnsubscriptions: string[]
  private readonly link: LocalLink
  private readonly backoff: RestartBackoff
  /** One client per address, kept across reconnections so QoS 2 state received from that remote survives. */
  private readonly clients: Array<MqttClient | undefined>
  private client: MqttClient | null = null
  private addressIndex = 0
  private restartTimer: NodeJS.Timeout | null = null
  private probeTimer: NodeJS.Timeout | null = null
  private switchToMain = false
  /** The current client has had its CONNACK (a 'close' from now on is a lost connection, not a failed attempt). */
  private remoteUp = false
  /** The reason of the remote's v5 DISCONNECT, for the log line of the loss that follows. */
  private remoteDisconnectReason: number | undefined = undefined
  /** From the remote's CONNACK (v5): what it accepts. */
  private remoteMaxQos: QoS = 2
  private remoteRetain = true
  /** Local messages that could not be sent to the remote and were acknowledged anyway. */
  private dropped = 0
  /** try_private, until a remote refuses the flagged CONNECT (then plain CONNECTs, as Mosquitto does). */
  private tryPrivate: boolean

  constructor (broker: Broker, options: BridgeOptions, logger: Logger) {
    super()
    this.broker = broker
    this.options = options
    this.logger = logger
    this.topics = options.topics.map((t) => new BridgeTopic(t))
    this.outTopics = this.topics.filter((t) => t.outgoing)
    this.inTopics = this.topics.filter((t) => t.incoming)
    this.localSubscriptions = this.outTopics.map((t) => ({
      topicFilter: t.localTopic, qos: t.qos, noLocal: true, retainAsPublished: true, retainHandling: 0,
    }))
    const v5 = options.protocolVersion === 5
    this.remoteSubscriptions = this.inTopics.map((t) => ({
      topicFilter: t.remoteTopic, qos: t.qos, noLocal: v5, retainAsPublished: v5, retainHandling: 0,
    }))
    const inFilters = new Set(this.inTopics.map((t) => t.remoteTopic))
    this.remoteUnsubscriptions = [...new Set(this.outTopics.filter((t) => !inFilters.has(t.remoteTopic)).map((t) => t.remoteTopic))]
    this.link = new LocalLink(broker, {
      name: options.name, clientId: options.localClientId, username: options.localUsername, clean: options.localCleanSession,
    }, this)
    this.backoff = new RestartBackoff(options.restartTimeout.base, options.restartTimeout.cap)
    this.clients = options.addresses.map(() => undefined)
    this.tryPrivate = options.tryPrivate
  }

  get address (): BridgeAddress {
    return this.options.addresses[this.addressIndex]!
  }

  start (): void {
    if (this.state !== BridgeState.Idle) return
    // As Mosquitto: the local state starts at 0 until the first connection says otherwise.
    this.notifyLocal(Zero)
    this.connect()
  }

  /**
   * Stops for good: the remote gets a final `0` and a DISCONNECT, the local session is closed (and kept,
   * unless clean), the local state becomes `0`.
   */
  async stop (): Promise<void> {
    if (this.state === BridgeState.Stopped) return
    const wasConnected = this.state === BridgeState.Connected
    this.state = BridgeState.Stopped
    this.clearTimers()
    const client = this.client
    this.client = null
    this.remoteUp = false
    this.link.close()
    if (client !== null) {
      if (client.connected) {
        if (this.options.notifications && !this.options.notificationsLocalOnly) {
          await withTimeout(client.publish(this.options.notificationTopic, Zero, { qos: 1, retain: true }), StopGraceMs)
        }
        await client.disconnect()
      } else {
        client.end()
      }
    }
    if (wasConnected) this.logger.notice(`Bridge ${this.options.name} stopped.`)
    this.notifyLocal(Zero)
    this.emit('stopped')
  }

  // ---- connection lifecycle ---------------------------------------------------------------------------------

  private connect (): void {
    if (this.state === BridgeState.Stopped) return
    this.state = BridgeState.Connecting
    const index = this.addressIndex
    const address = this.address
    let client: MqttClient
    try {
      client = this.clientFor(index)
    } catch (err) {
      this.logger.error(`Bridge ${this.options.name}: cannot connect to ${formatAddress(address)}: ${(err as Error).message}.`)
      this.attemptFailed()
      return
    }
    this.client = client
    this.logger.notice(`Connecting bridge ${this.options.name} (${formatAddress(address)})`)
    client.connect().then((connack) => this.remoteConnected(client, connack), (err: ClientError) => {
      if (this.client !== client || this.state === BridgeState.Stopped) return
      this.client = null
      this.logger.warning(`Bridge ${this.options.name}: connection to ${formatAddress(address)} failed: ${err.message}.`)
      this.emit('attempt-failed', address, err)
      if (err.code === ClientErrorCode.ConnectionRefused && err.reasonCode === ConnackReturnCode.UnacceptableProtocolVersion && client.options.bridge) {
        // [MQTT-3.1.2-2] a broker that does not know the bridge flag calls it a bad protocol level.
        this.tryPrivate = false
        this.logger.notice(`Bridge ${this.options.name}: the remote refused the bridge flag (try_private); connecting as an ordinary client from now on.`)
      }
      this.attemptFailed()
    })
  }

  /** The client for one address; its TLS material is re-read at every attempt. */
  private clientFor (index: number): MqttClient {
    const opts = remoteClientOptions(this.options, this.options.addresses[index]!, this.tryPrivate)
    let client = this.clients[index]
    if (client === undefined) {
      const c = new MqttClient(opts)
      c.on('message', (p: PublishPacket) => { if (this.client === c) this.onRemoteMessage(p) })
      c.on('close', () => { if (this.client === c && this.remoteUp) this.remoteLost() })
      c.on('disconnect', (d: { reasonCode: number }) => { if (this.client === c) this.remoteDisconnectReason = d.reasonCode })
      this.clients[index] = c
      client = c
    } else {
      client.options.tls = opts.tls
      client.options.bridge = opts.bridge ?? false
    }
    return client
  }

  private remoteConnected (client: MqttClient, connack: ConnackPacket): void {
    if (this.client !== client || this.state === BridgeState.Stopped) {
      client.end()
      return
    }
    const o = this.options
    this.remoteUp = true
    this.remoteDisconnectReason = undefined
    const props = connack.properties
    this.remoteMaxQos = (props?.maximumQoS ?? 2) as QoS
    this.remoteRetain = props?.retainAvailable !== 0
    this.backoff.reset()
    const resumed = connack.sessionPresent ? ' (session resumed)' : ''
    const ready: Array<Promise<unknown>> = []
    if (this.remoteSubscriptions.length > 0) {
      ready.push(client.subscribe(this.remoteSubscriptions).then((suback) => {
        suback.reasonCodes.forEach((code, i) => {
          if (code >= 0x80) this.logger.warning(`Bridge ${o.name}: the remote refused the subscription to '${this.remoteSubscriptions[i]?.topicFilter}' (code 0x${code.toString(16)}).`)
        })
      }))
    }
    if (o.attemptUnsubscribe && this.remoteUnsubscriptions.length > 0) {
      client.unsubscribe(this.remoteUnsubscriptions).catch(() => {})
    }
    if (o.notifications) {
      if (!o.notificationsLocalOnly) client.publish(o.notificationTopic, One, { qos: 1, retain: true }).catch(() => {})
      this.notifyLocal(One)
    }
    ready.push(this.link.open(this.localSubscriptions))
    Promise.all(ready).then(() => {
      if (this.client !== client || this.state !== BridgeState.Connecting) return
      this.state = BridgeState.Connected
      this.logger.notice(`Bridge ${o.name} connected to ${formatAddress(this.address)} as ${client.clientId}${resumed}.`)
      if (!o.roundRobin && this.addressIndex !== 0) this.startMainProbe()
      this.emit('connected', this.address)
    }, (err: Error) => {
      if (this.client !== client || this.state !== BridgeState.Connecting) return
      this.logger.error(`Bridge ${o.name}: ${err.message}; restarting the bridge.`)
      client.end()
    })
  }

  /** The remote connection ended (or was ended because the local session failed). */
  private remoteLost (): void {
    this.client = null
    this.remoteUp = false
    this.stopMainProbe()
    this.link.close()
    const code = this.remoteDisconnectReason
    const why = code === undefined ? 'connection lost' : `the remote sent DISCONNECT (reason 0x${code.toString(16)})`
    this.logger.notice(`Bridge ${this.options.name} disconnected from ${formatAddress(this.address)}: ${why}.`)
    this.notifyLocal(Zero)
    this.emit('disconnected', why)
    if (this.switchToMain) {
      this.switchToMain = false
      this.addressIndex = 0
      this.connect()
      return
    }
    this.attemptFailed()
  }

  /** After a failed attempt or a lost connection: the next address, after restart_timeout. */
  private attemptFailed (): void {
    if (this.state === BridgeState.Stopped) return
    if (this.options.startType === 'once') {
      this.logger.notice(`Bridge ${this.options.name} is not restarted (start_type once).`)
      this.state = BridgeState.Stopped
      this.notifyLocal(Zero)
      this.emit('stopped')
      return
    }
    this.addressIndex = (this.addressIndex + 1) % this.options.addresses.length
    this.state = BridgeState.Waiting
    const delay = this.backoff.next()
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null
      this.connect()
    }, delay * 1000)
    this.restartTimer.unref()
  }

  /** round_robin false on a secondary address: go back to the main one as soon as it accepts connections. */
  private startMainProbe (): void {
    this.stopMainProbe()
    const main = this.options.addresses[0]!
    this.probeTimer = setInterval(() => {
      const socket = net.connect({ host: main.host, port: main.port })
      socket.setTimeout(MainProbeSeconds * 1000)
      socket.on('connect', () => {
        socket.destroy()
        if (this.state !== BridgeState.Connected || this.client === null) return
        this.logger.notice(`Bridge ${this.options.name}: the main address ${formatAddress(main)} is reachable again; switching back to it.`)
        this.switchToMain = true
        this.client.end()
      })
      socket.on('timeout', () => socket.destroy())
      socket.on('error', () => {})
    }, MainProbeSeconds * 1000)
    this.probeTimer.unref()
  }

  private stopMainProbe (): void {
    if (this.probeTimer !== null) clearInterval(this.probeTimer)
    this.probeTimer = null
  }

  private clearTimers (): void {
    if (this.restartTimer !== null) clearTimeout(this.restartTimer)
    this.restartTimer = null
    this.stopMainProbe()
  }

  private notifyLocal (state: Buffer): void {
    if (!this.options.notifications) return
    this.broker.publish(this.options.notificationTopic, state, 1, true, undefined, this.options.localClientId)
  }

  // ---- forwarding -------------------------------------------------------------------------------------------

  /** Remote → local. */
  private onRemoteMessage (p: PublishPacket): void {
    const topic = mapIncoming(this.inTopics, p.topic)
    if (topic === undefined) {
      if (this.logger.enabled('debug')) this.logger.debug(`Bridge ${this.options.name}: dropped a message on '${p.topic}' from the remote: no in/both topic asks for it.`)
      return
    }
    if (!isValidTopicName(topic)) {
      this.logger.warning(`Bridge ${this.options.name}: dropped a message on '${p.topic}' from the remote: it maps to '${topic}', which is not a valid topic.`)
      return
    }
    this.broker.publish(topic, p.payload, p.qos, p.retain, forwardable(p.properties), this.options.localClientId)
  }

  /** Local → remote; called by the LocalLink. */
  onLocalMessage (p: PublishPacket, gen: number): void {
    const client = this.client
    // Not connected any more: no acknowledgement, so the broker sends it again on the next local session.
    if (client === null || !client.connected) return
    if (!this.wantsOutgoing(p.topic)) {
      this.dropLocal(p, gen, 'no out/both topic asks for it (a subscription left from an earlier configuration?)')
      return
    }
    const topic = mapOutgoing(this.outTopics, p.topic)
    if (!isValidTopicName(topic)) {
      this.dropLocal(p, gen, `it maps to '${topic}', which is not a valid topic`)
      return
    }
    const qos = (p.qos < this.remoteMaxQos ? p.qos : this.remoteMaxQos) as QoS
    const retain = p.retain && this.options.outgoingRetain && this.remoteRetain
    const properties = client.protocolVersion === 5 ? forwardable(p.properties) : undefined
    const max = this.options.maxPacketSize
    if (max > 0) {
      const size = encodedSize({ type: PacketType.Publish, topic, payload: p.payload, qos, retain, dup: false, packetId: 1, properties }, client.protocolVersion)
      if (size > max) {
        this.dropLocal(p, gen, `its ${size}-byte PUBLISH exceeds bridge_max_packet_size ${max}`)
        return
      }
    }
    const sent = client.publish(topic, p.payload, { qos, retain, properties })
    if (p.qos === 0) {
      sent.catch(noop)
      return
    }
    const link = this.link
    // MqttClient's API is one promise per publish; the closures below are that price, paid once per message.
    sent.then(() => link.ack(gen, p.qos, p.packetId), (err: ClientError) => {
      if (!Undeliverable.has(err.code)) return // connection lost: the local session resends it later
      this.dropLocal(p, gen, `the remote did not take it as '${topic}': ${err.message}`)
    })
  }

  /** Called by the LocalLink when this broker ended the bridge's session. */
  onLocalLost (why: string): void {
    if (this.state === BridgeState.Stopped) return
    this.logger.warning(`Bridge ${this.options.name}: its local session ended: ${why}; restarting the bridge.`)
    this.client?.end()
  }

  private wantsOutgoing (topic: string): boolean {
    const topics = this.outTopics
    for (let i = 0; i < topics.length; i++) if (topicMatches(topics[i]!.localTopic, topic)) return true
    return false
  }

  private dropLocal (p: PublishPacket, gen: number, why: string): void {
    // One line per power of two drops keeps a stream of undeliverable messages from flooding the log.
    const n = ++this.dropped
    if ((n & (n - 1)) === 0) this.logger.warning(`Bridge ${this.options.name}: dropped the local message on '${p.topic}': ${why} (${n} dropped so far).`)
    if (p.qos > 0) this.link.ack(gen, p.qos, p.packetId)
  }
}

/** Properties that belong to one hop (alias, subscription ids) stay behind; the rest travels on. */
function forwardable (props: Properties | undefined): Properties | undefined {
  if (props === undefined || (props.topicAlias === undefined && props.subscriptionIdentifiers === undefined)) return props
  const out = { ...props }
  delete out.topicAlias
  delete out.subscriptionIdentifiers
  return Object.keys(out).length === 0 ? undefined : out
}

function formatAddress (a: BridgeAddress): string {
  return hostPort(a.host, a.port)
}

function noop (): void {}

function withTimeout (p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms)
    p.then(() => { clearTimeout(timer); resolve() }, () => { clearTimeout(timer); resolve() })
  })
}
