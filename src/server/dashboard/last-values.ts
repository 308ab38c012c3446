/**
 * The last message seen on each topic, for the dashboard's topic tree: a Map kept in least-recently-written
 * order and cut to `max` topics. Fed only while a dashboard stream is open (hub.ts attaches the broker's
 * `published` event then), so the message path pays nothing otherwise. Each entry keeps a copy of at most
 * PayloadViewBytes of the payload, never the message's own buffer, so a large payload is not held.
 */
import type { QoS } from '../../protocol/constants.js'

export const LastValuesMax = 10_000
/** Payloads are shown cut to this many bytes. */
export const PayloadViewBytes = 1024

export interface LastValue {
  head: Buffer
  size: number
  qos: QoS
  retain: boolean
  at: number
}

/** A payload as JSON carries it: UTF-8 text when it is valid UTF-8, else base64; `truncated` when cut. */
export interface PayloadView {
  payload: string
  base64: boolean
  truncated: boolean
  /** Bytes of the whole payload. */
  size: number
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

export function payloadView(head: Buffer, size: number): PayloadView {
  const cut = head.length > PayloadViewBytes ? head.subarray(0, PayloadViewBytes) : head
  const truncated = size > cut.length
  try {
    return { payload: utf8.decode(cut), base64: false, truncated, size }
  } catch {
    // A cut through a multi-byte character is still text: retry without the partial sequence at the end.
    if (truncated) {
      for (let back = 1; back <= 3 && back < cut.length; back++) {
        try {
          return { payload: utf8.decode(cut.subarray(0, cut.length - back)), base64: false, truncated, size }
        } catch { /* not yet */ }
      }
    }
    return { payload: cut.toString('base64'), base64: true, truncated, size }
  }
}

export class LastValues {
  private readonly map = new Map<string, LastValue>()

  constructor(private readonly max = LastValuesMax) {}

  get size(): number { return this.map.size }

  record(topic: string, payload: Buffer, qos: QoS, retain: boolean, at: number): void {
    const head = Buffer.from(payload.subarray(0, PayloadViewBytes))
    this.map.delete(topic)
    this.map.set(topic, { head, size: payload.length, qos, retain, at })
    if (this.map.size > this.max) {
      const oldest = this.map.keys().next().value
      if (oldest !== undefined) this.map.delete(oldest)
    }
  }

  get(topic: string): LastValue | undefined {
    return this.map.get(topic)
  }

  topics(): IterableIterator<string> {
    return this.map.keys()
  }
}
