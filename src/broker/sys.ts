/**
 * $SYS/broker/... topics, published retained every sys_interval seconds with mosquitto's names so
 * existing dashboards keep working. Other parts add their own values through the broker's `sysValues`
 * (per broker: two brokers in one process never show each other's values).
 */
import type { Broker } from './broker.js'

export class SysPublisher {
  private readonly broker: Broker
  private readonly timer: NodeJS.Timeout

  constructor(broker: Broker, intervalSeconds: number) {
    this.broker = broker
    this.timer = setInterval(() => this.publishAll(), intervalSeconds * 1000)
    this.timer.unref()
    setImmediate(() => this.publishAll())
  }

  publishAll(): void {
    const b = this.broker
    const s = b.stats
    let connected = 0
    for (const sess of b.sessions.values()) if (sess.connection !== null) connected++
    const values: Array<[string, string]> = [
      ['version', `midge version ${b.version}`],
      ['uptime', `${Math.floor((Date.now() - b.startedAt) / 1000)} seconds`],
      ['clients/connected', String(connected)],
      ['clients/disconnected', String(b.sessions.size - connected)],
      ['clients/total', String(b.sessions.size)],
      ['messages/received', String(s.messagesReceived)],
      ['messages/sent', String(s.messagesSent)],
      ['messages/dropped', String(s.messagesDropped)],
      ['subscriptions/count', String(b.subscriptions.size + b.shared.size)],
      ['retained messages/count', String(b.retained.size)],
      ['heap/current', String(process.memoryUsage().heapUsed)],
    ]
    for (const [k, f] of b.sysValues) values.push([k, f()])
    for (const [k, v] of values) b.publish(`$SYS/broker/${k}`, Buffer.from(v), 0, true, undefined)
  }

  stop(): void {
    clearInterval(this.timer)
  }
}
