/**
 * $SYS/broker/... topics with Mosquitto's names and formats, so dashboards and Home Assistant sensors made for
 * Mosquitto keep working (docs/monitoring.md lists them). Published retained every sys_interval seconds; as in
 * Mosquitto, a value is sent again only when it changed (uptime always), so an idle broker's $SYS is quiet.
 * Counters come from BrokerStats (plain increments on the message path); everything else is computed here, at
 * publish time. Other parts add their own values through the broker's `sysValues` (per broker: two brokers in
 * one process never show each other's values).
 */
import type { Broker } from './broker.js'
import { LoadAverage, LoadWindowNames } from './sys-load.js'

/** The counters Mosquitto averages under load/, with the BrokerStats reading each. */
const LoadSeries: ReadonlyArray<[string, (b: Broker) => number]> = [
  ['messages/received', (b) => b.stats.packetsReceived],
  ['messages/sent', (b) => b.stats.packetsSent],
  ['publish/dropped', (b) => b.stats.messagesDropped],
  ['publish/received', (b) => b.stats.messagesReceived],
  ['publish/sent', (b) => b.stats.messagesSent],
  ['bytes/received', (b) => b.stats.bytesReceived],
  ['bytes/sent', (b) => b.stats.bytesSent],
  ['sockets', (b) => b.stats.socketsAccepted],
  ['connections', (b) => b.stats.connectionsAccepted],
]

export class SysPublisher {
  private readonly broker: Broker
  private readonly timer: NodeJS.Timeout
  private readonly loads: LoadAverage[]
  private readonly published = new Map<string, string>()
  private lastUpdate: number
  private maxClients = 0
  private maxHeap = 0

  constructor(broker: Broker, intervalSeconds: number) {
    this.broker = broker
    this.lastUpdate = Date.now()
    this.loads = LoadSeries.map(([, read]) => new LoadAverage(read(broker)))
    this.timer = setInterval(() => this.publishAll(), intervalSeconds * 1000)
    this.timer.unref()
    setImmediate(() => this.publishAll())
  }

  /** Every value now, as (name under $SYS/broker/, payload) pairs; advances the load averages. */
  private values(): Array<[string, string]> {
    const b = this.broker
    const s = b.stats
    const now = Date.now()
    let connected = 0
    let stored = b.retained.size
    let storedBytes = 0
    for (const sess of b.sessions.values()) {
      if (sess.connection !== null) connected++
      stored += sess.queueLength + sess.inflight.size
      storedBytes += sess.queuedBytes
      for (const o of sess.inflight.values()) storedBytes += o.msg.payload.length
    }
    for (const m of b.retained.messages()) storedBytes += m.payload.length
    const total = b.sessions.size
    if (total > this.maxClients) this.maxClients = total
    const heap = process.memoryUsage().heapUsed
    if (heap > this.maxHeap) this.maxHeap = heap
    const seconds = (now - this.lastUpdate) / 1000
    this.lastUpdate = now
    const values: Array<[string, string]> = [
      ['version', `midge version ${b.version}`],
      ['uptime', `${Math.floor((now - b.startedAt) / 1000)} seconds`],
      ['clients/connected', String(connected)],
      ['clients/disconnected', String(total - connected)],
      // Mosquitto 2 still publishes the 1.x names, deprecated, for dashboards made then.
      ['clients/active', String(connected)],
      ['clients/inactive', String(total - connected)],
      ['clients/total', String(total)],
      ['clients/maximum', String(this.maxClients)],
      ['clients/expired', String(s.clientsExpired)],
      ['messages/received', String(s.packetsReceived)],
      ['messages/sent', String(s.packetsSent)],
      ['messages/stored', String(stored)],
      ['store/messages/count', String(stored)],
      ['store/messages/bytes', String(storedBytes)],
      ['publish/messages/received', String(s.messagesReceived)],
      ['publish/messages/sent', String(s.messagesSent)],
      ['publish/messages/dropped', String(s.messagesDropped)],
      ['publish/bytes/received', String(s.publishBytesReceived)],
      ['publish/bytes/sent', String(s.publishBytesSent)],
      ['bytes/received', String(s.bytesReceived)],
      ['bytes/sent', String(s.bytesSent)],
      ['subscriptions/count', String(b.subscriptions.size + b.shared.size)],
      ['shared_subscriptions/count', String(b.shared.size)],
      ['retained messages/count', String(b.retained.size)],
      ['heap/current', String(heap)],
      ['heap/maximum', String(this.maxHeap)],
    ]
    LoadSeries.forEach(([name, read], i) => {
      const load = this.loads[i] as LoadAverage
      load.update(read(b), seconds)
      LoadWindowNames.forEach((w, j) => { values.push([`load/${name}/${w}`, (load.values[j] as number).toFixed(2)]) })
    })
    for (const [k, f] of b.sysValues) values.push([k, f()])
    return values
  }

  publishAll(): void {
    const b = this.broker
    for (const [k, v] of this.values()) {
      if (k !== 'uptime' && this.published.get(k) === v) continue
      this.published.set(k, v)
      b.publish(`$SYS/broker/${k}`, Buffer.from(v), 0, true, undefined)
    }
  }

  stop(): void {
    clearInterval(this.timer)
  }
}
