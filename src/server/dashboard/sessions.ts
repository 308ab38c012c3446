/**
 * Dashboard login sessions: in memory only (a restart logs everyone out), at most MaxSessions per listener,
 * each ending after IdleMs without a request. When the table is full, the user holding the most sessions
 * loses its least recently used one: any user could otherwise log every admin out by logging in again and
 * again (logins are throttled only when they fail). The cookie carries 32
 * random bytes; the table is keyed by their SHA-256, so a lookup's timing says nothing about a stored token.
 * The CSRF token is separate random bytes, sent in the login reply and checked against a request header.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

export const SessionLimits = {
  maxSessions: 64,
  idleMs: 30 * 60_000,
} as const

export const SessionCookie = 'midge_session'

export interface DashboardSession {
  readonly username: string
  readonly csrf: string
  readonly address: string
  lastUsed: number
  /** Called when the session ends (logout, eviction, expiry, user removed): its live streams close. */
  readonly onEnd: Set<() => void>
}

const digest = (token: string): string => createHash('sha256').update(token).digest('base64url')

export class SessionStore {
  private readonly sessions = new Map<string, DashboardSession>()

  constructor(private readonly now: () => number = Date.now, private readonly limits: { maxSessions: number; idleMs: number } = SessionLimits) {}

  get size(): number { return this.sessions.size }

  /** A new session; returns the cookie's token. The least recently used session goes when the table is full. */
  create(username: string, address: string): { token: string; session: DashboardSession } {
    this.sweep()
    while (this.sessions.size >= this.limits.maxSessions) {
      const victim = this.evictable()
      if (victim === undefined) break
      this.end(victim)
    }
    const token = randomBytes(32).toString('base64url')
    const session: DashboardSession = { username, csrf: randomBytes(32).toString('base64url'), address, lastUsed: this.now(), onEnd: new Set() }
    this.sessions.set(digest(token), session)
    return { token, session }
  }

  /** The live session of a cookie token, marked used; undefined when unknown or idle too long. */
  get(token: string | undefined): DashboardSession | undefined {
    if (token === undefined || token.length > 64) return undefined
    const key = digest(token)
    const s = this.sessions.get(key)
    if (s === undefined) return undefined
    const now = this.now()
    if (now - s.lastUsed > this.limits.idleMs) {
      this.end(key)
      return undefined
    }
    s.lastUsed = now
    // Re-inserted: the Map stays in least-recently-used order for eviction and sweep().
    this.sessions.delete(key)
    this.sessions.set(key, s)
    return s
  }

  /** Ends the session of a cookie token (logout). */
  delete(token: string | undefined): DashboardSession | undefined {
    if (token === undefined) return undefined
    const key = digest(token)
    const s = this.sessions.get(key)
    if (s !== undefined) this.end(key)
    return s
  }

  /** Ends every session of a user (removed from the password file, or its password changed), but `keep`. */
  endUser(username: string, keep?: DashboardSession): number {
    let n = 0
    for (const [key, s] of this.sessions) {
      if (s.username !== username || s === keep) continue
      this.end(key)
      n++
    }
    return n
  }

  clear(): void {
    for (const key of [...this.sessions.keys()]) this.end(key)
  }

  /** The key of the least recently used session of the user holding the most (the Map is in LRU order). */
  private evictable(): string | undefined {
    const count = new Map<string, number>()
    const oldest = new Map<string, string>()
    for (const [key, s] of this.sessions) {
      count.set(s.username, (count.get(s.username) ?? 0) + 1)
      if (!oldest.has(s.username)) oldest.set(s.username, key)
    }
    let most = 0
    let victim: string | undefined
    // In LRU order of each user's oldest session: between users holding as many, the longer idle loses.
    for (const [user, key] of oldest) {
      const n = count.get(user) as number
      if (n > most) {
        most = n
        victim = key
      }
    }
    return victim
  }

  private sweep(): void {
    const now = this.now()
    for (const [key, s] of this.sessions) {
      if (now - s.lastUsed <= this.limits.idleMs) break
      this.end(key)
    }
  }

  private end(key: string): void {
    const s = this.sessions.get(key)
    this.sessions.delete(key)
    for (const fn of s?.onEnd ?? []) fn()
  }
}

/** Whether `given` equals the session's CSRF token, in constant time. */
export function csrfMatches(session: DashboardSession, given: string | undefined): boolean {
  if (given === undefined) return false
  const a = Buffer.from(session.csrf)
  const b = Buffer.from(given)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}
