/**
 * The last message seen on each topic, for the dashboard's topic tree: at most `max` topics, the least
 * recently written going first (approximately: see record()). Fed only while a dashboard stream is open (hub.ts attaches the broker's
 * `published` event then), so the message path pays nothing otherwise. Each entry keeps a copy of at most
 * PayloadViewBytes of the payload, never the message's own buffer, so a large payload is not held.
 */
import type { QoS } from '../../protocol/constants.js'

export const LastValuesMax = 10_000
/**
 * And at most this many bytes of topics and payload copies: a topic may be 64 KiB long, so a count alone
 * would let one client make 10,000 of them hold 640 MiB while a dashboard is open.
 */
export const LastValuesMaxBytes = 16 * 1024 * 1024
/** What an entry costs beside its topic and payload copy (the Map slot, the object, the Buffer), roughly. */
const EntryOverhead = 160
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
  private readonly map = new Map<string, LastValue & { used: boolean }>()
  private held = 0

  constructor(private readonly max = LastValuesMax, private readonly maxBytes = LastValuesMaxBytes) {}

  get size(): number { return this.map.size }

  /** Bytes the entries hold, as counted against maxBytes. */
  get bytes(): number { return this.held }

  /**
   * Runs per message while a dashboard is open, so it is kept cheap: an entry is updated in place (its copy
   * buffer reused when the length is the same, as it mostly is for one topic), and recency is a flag read
   * only when the map is full (the "clock" approximation of least-recently-used: the oldest entry written
   * since it was last passed over gets another round instead of going).
   */
  record(topic: string, payload: Buffer, qos: QoS, retain: boolean, at: number): void {
    const n = payload.length < PayloadViewBytes ? payload.length : PayloadViewBytes
    const e = this.map.get(topic)
    if (e !== undefined) {
      if (e.head.length !== n) {
        this.held += n - e.head.length
        e.head = Buffer.allocUnsafe(n)
      }
      payload.copy(e.head, 0, 0, n)
      e.size = payload.length
      e.qos = qos
      e.retain = retain
      e.at = at
      e.used = true
      return
    }
    const cost = entryBytes(topic, n)
    while (this.map.size > 0 && (this.map.size >= this.max || this.held + cost > this.maxBytes)) this.evict()
    this.held += cost
    const head = Buffer.allocUnsafe(n)
    payload.copy(head, 0, 0, n)
    this.map.set(topic, { head, size: payload.length, qos, retain, at, used: false })
  }

  get(topic: string): LastValue | undefined {
    const e = this.map.get(topic)
    return e === undefined ? undefined : { head: e.head, size: e.size, qos: e.qos, retain: e.retain, at: e.at }
  }

  topics(): IterableIterator<string> {
    return this.map.keys()
  }

  private evict(): void {
    // Each pass either drops an entry or clears a flag, so this ends within max + 1 steps.
    for (const [topic, e] of this.map) {
      this.map.delete(topic)
      if (!e.used) {
        this.held -= entryBytes(topic, e.head.length)
        return
      }
      e.used = false
      this.map.set(topic, e)
    }
  }
}

/** A JS string of Latin-1 text takes a byte per character, of other text two: counted as two. */
function entryBytes(topic: string, head: number): number {
  return EntryOverhead + 2 * topic.length + head
}
