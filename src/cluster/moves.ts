/**
 * Sessions this node handed over to another node lately (a takeover), with their ordinary subscriptions' filters.
 * A message forwarded here by a node that had not yet heard the session left, or published here before this
 * node's view of the new owner's interest caught up, still arrives here for a while after the hand-over: it
 * goes on to the new owner for that client only, instead of being lost for the session. What arrived before the
 * hand-over was drained into the session it carried, so nothing is sent twice from here.
 *
 * Bounded: a record lasts `KeepMs`, and at most `MaxMoves` are kept (the oldest go first), so a stranger cycling
 * takeovers through client ids cannot grow it. Matched through a trie (the broker's): thousands of clients
 * moving at once (a network blip, a rebalancing) cost a message what its matching sessions cost, not a scan.
 */
import { TopicTrie } from '../broker/topic-trie.js'

/** Longer than a forward can take to reach a node behind on its stream, or a node's view to hear of a move. */
export const KeepMs = 10_000
export const MaxMoves = 10_000

export interface Moved {
  readonly clientId: string
  readonly to: string
  readonly filters: readonly string[]
  readonly until: number
}

export class Moves {
  private readonly byClient = new Map<string, Moved>()
  private readonly filters = new TopicTrie<string>()
  private readonly found = new Set<string>()
  private readonly visit = (clientId: string): void => { this.found.add(clientId) }

  get size (): number {
    return this.byClient.size
  }

  add (clientId: string, to: string, filters: readonly string[], now: number): void {
    this.delete(clientId)
    this.byClient.set(clientId, { clientId, to, filters, until: now + KeepMs })
    for (const f of filters) this.filters.add(f, clientId, clientId)
    if (this.byClient.size > MaxMoves) this.delete(this.byClient.keys().next().value!)
  }

  delete (clientId: string): void {
    const m = this.byClient.get(clientId)
    if (m === undefined) return
    this.byClient.delete(clientId)
    for (const f of m.filters) this.filters.remove(f, clientId)
  }

  get (clientId: string, now: number): Moved | undefined {
    this.expire(now)
    return this.byClient.get(clientId)
  }

  /** The moved sessions with an ordinary subscription matching `topic`. */
  matching (topic: string, now: number): Moved[] {
    this.expire(now)
    this.filters.match(topic, this.visit)
    const out: Moved[] = []
    for (const clientId of this.found) out.push(this.byClient.get(clientId)!)
    this.found.clear()
    return out
  }

  /** Insertion order is expiry order: the expired ones are at the front. */
  private expire (now: number): void {
    for (const m of this.byClient.values()) {
      if (m.until > now) return
      this.delete(m.clientId)
    }
  }
}

/** Per arrival: at most this many messages remembered (a flood past it may then give a duplicate, never a loss). */
export const MaxSeen = 100_000

interface Named { readonly topic: string; readonly from: string; readonly seq: number }

/**
 * The other side: sessions moved here lately, and the messages (from, seq) they already had from the copies
 * forwarded here directly. A copy redirected by the node the session left is delivered only if it is not one
 * of those: the origin forwarded to both nodes while it knew both had the interest.
 */
export class Arrivals {
  private readonly byClient = new Map<string, { until: number; seen: Set<string>; filters: readonly string[] }>()
  private readonly filters = new TopicTrie<string>()
  private key = ''
  private readonly visit = (clientId: string): void => {
    const a = this.byClient.get(clientId)
    if (a !== undefined && a.seen.size < MaxSeen) a.seen.add(this.key)
  }

  get size (): number {
    return this.byClient.size
  }

  /** `filters`: the session's ordinary subscriptions as it arrived (those the old node redirects for). */
  add (clientId: string, filters: readonly string[], now: number): void {
    this.delete(clientId)
    this.byClient.set(clientId, { until: now + KeepMs, seen: new Set(), filters })
    for (const f of filters) this.filters.add(f, clientId, clientId)
    if (this.byClient.size > MaxMoves) this.delete(this.byClient.keys().next().value!)
  }

  /** A message forwarded here directly: remembered for the arrived sessions it matches. */
  delivered (m: Named, now: number): void {
    this.expire(now)
    this.key = `${m.from}\0${m.seq}`
    this.filters.match(m.topic, this.visit)
  }

  /** Whether a redirected copy for clientId is the first it gets (remembered, so a second redirect is not either). */
  firstCopy (clientId: string, m: Named): boolean {
    const a = this.byClient.get(clientId)
    if (a === undefined) return true
    const key = `${m.from}\0${m.seq}`
    if (a.seen.has(key)) return false
    if (a.seen.size < MaxSeen) a.seen.add(key)
    return true
  }

  private delete (clientId: string): void {
    const a = this.byClient.get(clientId)
    if (a === undefined) return
    this.byClient.delete(clientId)
    for (const f of a.filters) this.filters.remove(f, clientId)
  }

  private expire (now: number): void {
    for (const [clientId, a] of this.byClient) {
      if (a.until > now) return
      this.delete(clientId)
    }
  }
}
