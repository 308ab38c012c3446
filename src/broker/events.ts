/**
 * What the broker tells the host application (docs/embedding.md): a typed emitter whose listeners run on a
 * microtask after the step that caused the event, in order. Never inside routing, so a listener may publish;
 * never on the caller's stack, so a listener that throws is logged and harms nothing.
 *
 * Cost when nobody listens: the emitting code tests `events.listeners.<name> !== undefined` (an array only
 * while it has listeners) and builds no arguments otherwise.
 */
import type { QoS } from '../protocol/constants.js'
import type { Logger } from '../observability/logger.js'
import type { ClientInfo, MessageInfo } from './hooks.js'

export interface BrokerEventMap {
  /** A client was let in and sent its CONNACK. */
  connected: [client: ClientInfo]
  /** A connected client is gone (`reason` as in the log: 'disconnected', 'exceeded its keep alive timeout'…). */
  disconnected: [client: ClientInfo, reason: string]
  /** Filters a SUBSCRIBE added (after the mount point, `$share/group/` kept), at the QoS granted; refused ones are not listed. */
  subscribed: [client: ClientInfo, subscriptions: ReadonlyArray<{ topic: string; qos: QoS }>]
  /** Filters an UNSUBSCRIBE removed. */
  unsubscribed: [client: ClientInfo, topics: readonly string[]]
  /** A message entered routing: from a client (`client` set), a will, $SYS or the application (undefined). */
  published: [message: MessageInfo, client: ClientInfo | undefined]
  /** A message was written to a subscriber's connection (first sends; resends after a reconnect are not counted). */
  delivered: [message: MessageInfo, client: ClientInfo]
  /** A message was discarded for one subscriber: its queue was full, it expired, or it exceeds the client's packet size. */
  dropped: [message: MessageInfo, client: ClientInfo, reason: string]
}

export type BrokerEventName = keyof BrokerEventMap
export type BrokerListener<K extends BrokerEventName> = (...args: BrokerEventMap[K]) => void

type Listeners = { [K in BrokerEventName]: Array<BrokerListener<K>> | undefined }

export const BrokerEventNames: readonly BrokerEventName[] = ['connected', 'disconnected', 'subscribed', 'unsubscribed', 'published', 'delivered', 'dropped']

export class BrokerEvents {
  /** Per event, its listeners, or undefined when it has none (the hot path's test). Replaced, never mutated. */
  readonly listeners: Listeners = { connected: undefined, disconnected: undefined, subscribed: undefined, unsubscribed: undefined, published: undefined, delivered: undefined, dropped: undefined }
  private queue: Array<[BrokerEventName, unknown[]]> = []
  private scheduled = false
  private readonly run = (): void => this.drain()

  constructor(private readonly logger: Logger) {}

  on<K extends BrokerEventName>(event: K, listener: BrokerListener<K>): void {
    if (!BrokerEventNames.includes(event)) throw new TypeError(`unknown broker event '${String(event)}' (known: ${BrokerEventNames.join(', ')})`)
    if (typeof listener !== 'function') throw new TypeError(`the listener of '${event}' is not a function`)
    const list = this.listeners[event] as Array<BrokerListener<K>> | undefined
    ;(this.listeners[event] as Array<BrokerListener<K>>) = list === undefined ? [listener] : [...list, listener]
  }

  off<K extends BrokerEventName>(event: K, listener: BrokerListener<K>): void {
    const list = this.listeners[event] as Array<BrokerListener<K>> | undefined
    if (list === undefined) return
    const i = list.indexOf(listener)
    if (i === -1) return
    const rest = list.filter((_, j) => j !== i)
    ;(this.listeners[event] as Array<BrokerListener<K>> | undefined) = rest.length === 0 ? undefined : rest
  }

  /** Queues the event for its listeners (callers test `listeners[event]` first, so this runs only when some exist). */
  emit<K extends BrokerEventName>(event: K, ...args: BrokerEventMap[K]): void {
    this.queue.push([event, args])
    if (!this.scheduled) {
      this.scheduled = true
      queueMicrotask(this.run)
    }
  }

  private drain(): void {
    this.scheduled = false
    const queue = this.queue
    this.queue = []
    for (const [event, args] of queue) {
      const list = this.listeners[event] as Array<(...a: unknown[]) => void> | undefined
      if (list === undefined) continue
      for (const fn of list) {
        try {
          fn(...args)
        } catch (err) {
          // Anything may be thrown, null too: read .stack only from an Error.
          this.logger.error(`A '${event}' listener threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
        }
      }
    }
  }
}
