/**
 * A session handed from one node to another over the control channel, for a cluster without a shared store
 * (persistence off): the old node's LiveSession as JSON (Buffers as base64), its message ids renumbered into
 * the new broker's space on arrival. With the Redis store the session travels through the store instead.
 */
import type { LiveSession, StoredMessage, StoredSession } from '../persistence/store.js'

export function encodeSession (live: LiveSession): string {
  return toJson(live)
}

/** JSON with Buffers (payloads, correlation data) as base64. */
export function toJson (value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    const b = v as { type?: string; data?: number[] } | null
    // Buffer.toJSON has run before the replacer sees the value.
    if (b !== null && typeof b === 'object' && b.type === 'Buffer' && Array.isArray(b.data)) return { $b: Buffer.from(b.data).toString('base64') }
    return v
  })
}

export function fromJson<T> (text: string): T {
  return JSON.parse(text, (_k, v: unknown) => {
    const b = v as { $b?: unknown } | null
    if (b !== null && typeof b === 'object' && typeof b.$b === 'string') return Buffer.from(b.$b, 'base64')
    return v
  }) as T
}

export function decodeSession (text: string, allocateId: () => number): { session: StoredSession; messages: Map<number, StoredMessage> } {
  const live = fromJson<LiveSession>(text)
  const ids = new Map<number, number>()
  const messages = new Map<number, StoredMessage>()
  for (const m of live.messages) {
    if (ids.has(m.id)) continue
    const id = allocateId()
    ids.set(m.id, id)
    messages.set(id, { ...m, id })
  }
  const outgoing = live.session.outgoing.map((o) => ({ ...o, messageId: ids.get(o.messageId) ?? 0 }))
  return { session: { ...live.session, outgoing }, messages }
}
