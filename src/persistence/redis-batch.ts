/**
 * The Redis store's buffered changes (redis-store.ts): per session hash and for the retained hash, the
 * last value of each field (null: delete it), whether the hash is deleted first (sessionEnded) and
 * whether ownership is to be recorded. Holding final values is what makes a batch safe to send twice
 * and two batches mergeable into one (absorb), which is how a failed commit is repaired.
 */

/** Pending changes to one session hash. */
export class SessionDiff {
  /** Delete the hash (and its ownership) before writing `fields`. */
  ended = false
  /** Record this node as the owner after writing. */
  own = false
  readonly fields = new Map<string, Buffer | null>()
  /** Fields created by unconfirmed diffs, absent from Redis: deleting one drops it from the diff. */
  readonly fresh = new Set<string>()

  set(field: string, value: Buffer, fresh = false): void {
    this.fields.set(field, value)
    if (fresh) this.fresh.add(field)
  }

  delete(field: string): void {
    if (this.fresh.delete(field)) this.fields.delete(field)
    else this.fields.set(field, null)
  }
}

export class Batch {
  readonly sessions = new Map<string, SessionDiff>()
  readonly retained = new Map<string, Buffer | null>()

  /** compact(): the broker's id counters, recorded so that a load never goes below them. */
  nextIds: { m: number; o: number } | undefined

  /** Commands a user of the store sends in the same MULTI/EXEC (RedisStore.withNextCommit), after the changes. */
  readonly extra: Array<Array<string | number | Buffer>> = []
  /** Told when a commit holding `extra` is confirmed. */
  readonly confirmed: Array<() => void> = []

  get empty(): boolean {
    return this.sessions.size === 0 && this.retained.size === 0 && this.nextIds === undefined && this.extra.length === 0
  }

  session(clientId: string): SessionDiff {
    let d = this.sessions.get(clientId)
    if (d === undefined) {
      d = new SessionDiff()
      this.sessions.set(clientId, d)
    }
    return d
  }

  /** Applies `newer` on top of this (older, unconfirmed) batch: the result is what both together do. */
  absorb(newer: Batch): this {
    // In order, older first: each is idempotent (withNextCommit), so sending the older ones again is harmless.
    for (const c of newer.extra) this.extra.push(c)
    for (const f of newer.confirmed) this.confirmed.push(f)
    if (newer.nextIds !== undefined) this.nextIds = newer.nextIds
    for (const [topic, v] of newer.retained) this.retained.set(topic, v)
    for (const [clientId, n] of newer.sessions) {
      const o = this.sessions.get(clientId)
      // A newer end deletes the hash: what the older diff wrote there no longer matters.
      if (o === undefined || n.ended) {
        this.sessions.set(clientId, n)
        continue
      }
      for (const [field, v] of n.fields) {
        if (v === null && o.fresh.delete(field)) o.fields.delete(field)
        else o.fields.set(field, v)
      }
      for (const f of n.fresh) o.fresh.add(f)
      o.own ||= n.own
    }
    return this
  }
}
