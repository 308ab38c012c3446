/**
 * What every dashboard of a runtime shares: the recent log lines, the last value per topic, the message and
 * byte rates, each bridge's last error, and the fan-out of live events to the open streams.
 *
 * The message path pays nothing while no stream is open: the broker's `published`, `connected` and
 * `disconnected` events (broker/events.ts: one `listeners.x !== undefined` test per message when nobody
 * listens) are subscribed to when the first stream opens and dropped when the last one closes, and the
 * one-second stats timer runs only meanwhile. Rates are otherwise computed from BrokerStats when asked.
 */
import type { Bridge } from '../../bridge/bridge.js'
import type { ClientInfo, MessageInfo } from '../../broker/hooks.js'
import type { MidgeRuntime } from '../runtime.js'
import { LastValues, payloadView } from './last-values.js'
import type { LogRing } from './log-ring.js'
import type { LiveStream } from './live-stream.js'
import { clientRow, counters } from './read-api.js'

/** Sampled `message` events per second, over all streams; the rest are dropped (the topic tree still sees them). */
export const MessageEventsPerSecond = 20

export interface Rates {
  msgIn: number
  msgOut: number
  bytesIn: number
  bytesOut: number
}

interface Sample {
  at: number
  msgIn: number
  msgOut: number
  bytesIn: number
  bytesOut: number
}

export class DashboardHub {
  readonly lastValues = new LastValues()
  /** Each bridge's latest failure (cleared when it connects), by bridge name. */
  readonly bridgeErrors = new Map<string, string>()
  private readonly streams = new Set<LiveStream>()
  private statsTimer: NodeJS.Timeout | undefined
  private previous: Sample | undefined
  private rates: Rates = { msgIn: 0, msgOut: 0, bytesIn: 0, bytesOut: 0 }
  private budget = MessageEventsPerSecond
  /** The time messages are stamped with, advanced by the stats timer: a clock read per message costs more than it is worth. */
  private clock = Date.now()
  private readonly watched = new WeakSet<Bridge>()
  /** Edits of each password or ACL file, one at a time: two admins saving at once must not lose one edit. */
  private readonly fileEdits = new Map<string, Promise<unknown>>()

  /** `log`: the runtime's ring of recent lines (a logger tap from the start on). */
  constructor(private readonly rt: MidgeRuntime, readonly log: LogRing) {}

  /** Follows each bridge's failures for the overview (bridges start after the listeners). */
  watchBridges(bridges: readonly Bridge[]): void {
    for (const b of bridges) {
      if (this.watched.has(b)) continue
      this.watched.add(b)
      const name = b.options.name
      b.on('attempt-failed', (_address: unknown, err: unknown) => { this.bridgeErrors.set(name, err instanceof Error ? err.message : String(err)) })
      b.on('disconnected', (why: unknown) => { this.bridgeErrors.set(name, String(why)) })
      b.on('connected', () => { this.bridgeErrors.delete(name) })
    }
  }

  /** Runs `edit` after the edits of `file` queued before it. */
  editFile<T>(file: string, edit: () => Promise<T>): Promise<T> {
    const run = (this.fileEdits.get(file) ?? Promise.resolve()).then(edit, edit)
    const settled = run.catch(() => undefined)
    this.fileEdits.set(file, settled)
    void settled.then(() => { if (this.fileEdits.get(file) === settled) this.fileEdits.delete(file) })
    return run
  }

  /** Messages and bytes per second: over the last second of the stats timer, or since the previous call. */
  currentRates(): Rates {
    this.sample()
    return this.rates
  }

  get streamCount(): number { return this.streams.size }

  addStream(stream: LiveStream): void {
    this.streams.add(stream)
    stream.whenClosed(() => {
      this.streams.delete(stream)
      if (this.streams.size === 0) this.detach()
    })
    if (this.streams.size === 1) this.attach()
    stream.send('stats', this.stats())
  }

  close(): void {
    for (const s of [...this.streams]) s.close()
    this.detach()
  }

  private sample(): void {
    const s = this.rt.broker.stats
    const now: Sample = { at: Date.now(), msgIn: s.messagesReceived, msgOut: s.messagesSent, bytesIn: s.bytesReceived, bytesOut: s.bytesSent }
    const prev = this.previous
    if (prev !== undefined && now.at - prev.at < 1000) return
    if (prev !== undefined) {
      const secs = (now.at - prev.at) / 1000
      const per = (a: number, b: number): number => Math.round(((a - b) / secs) * 100) / 100
      this.rates = { msgIn: per(now.msgIn, prev.msgIn), msgOut: per(now.msgOut, prev.msgOut), bytesIn: per(now.bytesIn, prev.bytesIn), bytesOut: per(now.bytesOut, prev.bytesOut) }
    }
    this.previous = now
  }

  private stats(): { rates: Rates; counters: ReturnType<typeof counters>; authFailures: number; at: number } {
    return { rates: this.currentRates(), counters: counters(this.rt), authFailures: this.rt.throttle.failures, at: Date.now() }
  }

  private broadcast(event: string, data: unknown, optional = false): void {
    for (const s of this.streams) s.send(event, data, optional)
  }

  private readonly onPublished = (m: MessageInfo): void => {
    const now = this.clock
    this.lastValues.record(m.topic, m.payload, m.qos, m.retain, now)
    // $SYS updates come in bursts every sys_interval: they would use up the sample, and the overview has them.
    if (this.budget <= 0 || m.topic.startsWith('$SYS/')) return
    this.budget--
    let data: unknown
    for (const s of this.streams) {
      if (!s.mayRead(m.topic)) continue
      data ??= { topic: m.topic, ...payloadView(m.payload.subarray(0, 1024), m.payload.length), qos: m.qos, retain: m.retain, at: now }
      s.send('message', data, true)
    }
  }

  private readonly onConnected = (c: ClientInfo): void => {
    const session = this.rt.broker.sessions.get(c.clientId)
    const row = session?.connection == null ? undefined : clientRow(session, session.connection)
    this.broadcast('client', { type: 'connected', client: row ?? { clientId: c.clientId, address: c.remoteAddress, username: c.username ?? null, listener: c.listener } })
  }

  private readonly onDisconnected = (c: ClientInfo, reason: string): void => {
    this.broadcast('client', { type: 'disconnected', client: { clientId: c.clientId, address: c.remoteAddress, username: c.username ?? null, listener: c.listener }, reason })
  }

  private attach(): void {
    const events = this.rt.broker.events
    events.on('published', this.onPublished)
    events.on('connected', this.onConnected)
    events.on('disconnected', this.onDisconnected)
    this.log.onLine = (line) => { this.broadcast('log', { line }, true) }
    this.clock = Date.now()
    this.statsTimer = setInterval(() => {
      this.clock = Date.now()
      this.budget = MessageEventsPerSecond
      // A stream answers no request, so the checks every request makes are made here for it.
      for (const s of [...this.streams]) if (s.revoked()) s.close()
      this.broadcast('stats', this.stats())
    }, 1000)
    this.statsTimer.unref()
  }

  private detach(): void {
    if (this.statsTimer === undefined) return
    const events = this.rt.broker.events
    events.off('published', this.onPublished)
    events.off('connected', this.onConnected)
    events.off('disconnected', this.onDisconnected)
    this.log.onLine = undefined
    clearInterval(this.statsTimer)
    this.statsTimer = undefined
  }
}
