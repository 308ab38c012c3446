/**
 * Brute-force protection (beyond Mosquitto): failed authentications are counted per source address.
 * When an address reaches `failLimit` failures within `failWindowMs`, it is banned for `banTimeMs`:
 * every CONNECT from it is held for `refusalDelayMs` and then refused (CONNACK 0x8A Banned / v3 5)
 * without any password hashing. The ban is logged once, with the address; refusals during it at debug.
 *
 * Parallel guesses: CONNECTs sent at once all pass the ban check before any has failed. So (1) a check that
 * finishes while its address is banned is refused as banned, whatever its outcome, held until the tarpit
 * delay has passed since it started (a right password must look like a wrong one); and (2) one address may
 * have at most `maxPendingPerAddress` authentications in progress (hashing, waiting for a hash, padded or
 * held by the tarpit); more are refused at once as busy (v5 0x89, v3 3), which is not a failure. An attacker
 * therefore gets at most failLimit + maxPendingPerAddress - 1 guesses evaluated per ban.
 *
 * Only the address that failed is affected: a client from any other address is never delayed or refused.
 * Loopback (127.0.0.0/8, ::1, ::ffff:127.x.x.x) is exempt unless `exemptLoopback` is false, so local
 * health checks and tools cannot lock themselves out. A success does not clear the count: with one valid
 * account an attacker could otherwise reset the counter between guesses at another.
 *
 * Memory: one small record per address with recent failures, in a Map kept in least-recently-failed order;
 * expired records are swept from its front as new failures arrive, and it never holds more than `maxTracked`.
 * Time comes from an injectable clock so tests need no sleeps.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../observability/logger.js'
import type { AuthRequest, AuthResult, Authenticator } from './types.js'

export interface AuthThrottleOptions {
  /** Failures within the window that trigger a ban; 0 turns the throttle off. Default 10. */
  failLimit?: number
  /** Default 60 s. */
  failWindowMs?: number
  /** Default 300 s. */
  banTimeMs?: number
  /** How long a banned address waits before its refusal (tarpit). Default 1 s. */
  refusalDelayMs?: number
  /** Default true. */
  exemptLoopback?: boolean
  /** Authentications one address may have in progress at once; more are refused as busy. 0 = no limit. Default 8. */
  maxPendingPerAddress?: number
  /** Addresses tracked at once; the least recently failing one is forgotten beyond it. Default 100,000. */
  maxTracked?: number
  now?: () => number
}

export const AUTH_THROTTLE_DEFAULTS = {
  failLimit: 10,
  failWindowMs: 60_000,
  banTimeMs: 300_000,
  refusalDelayMs: 1_000,
  exemptLoopback: true,
  maxPendingPerAddress: 8,
  maxTracked: 100_000,
} as const

/** Fixed-shape record: failure times in a ring of `failLimit` slots. */
class AddressRecord {
  readonly times: Float64Array
  next = 0
  stored = 0
  bannedUntil = 0
  lastFailure = 0
  constructor(limit: number) {
    this.times = new Float64Array(limit)
  }
}

export type ThrottleVerdict =
  | { banned: false }
  | { banned: true; remainingMs: number }

const NOT_BANNED: ThrottleVerdict = { banned: false }

/** Strips the IPv4-mapped prefix so "::ffff:10.0.0.1" and "10.0.0.1" count as one address. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}

export function isLoopback(address: string): boolean {
  const a = normalizeAddress(address)
  return a === '::1' || a.startsWith('127.') || a === '0:0:0:0:0:0:0:1'
}

/** The settings SIGHUP may change on a running throttle (see configure()). */
export type AuthThrottleSettings = Pick<AuthThrottleOptions, 'failLimit' | 'failWindowMs' | 'banTimeMs' | 'refusalDelayMs' | 'exemptLoopback' | 'maxPendingPerAddress'>

export class AuthThrottle {
  // Not readonly: configure() changes them when the config is reloaded.
  failLimit: number
  failWindowMs: number
  banTimeMs: number
  refusalDelayMs: number
  exemptLoopback: boolean
  maxPendingPerAddress: number
  readonly maxTracked: number
  readonly now: () => number
  /** Failed authentications seen, loopback ones included (busy refusals are not failures); for $SYS and /metrics. */
  failures = 0
  /** Bans started. */
  bans = 0
  private readonly records = new Map<string, AddressRecord>()
  /** Authentications in progress per (normalised) address; only addresses with some are present. */
  private readonly pending = new Map<string, number>()

  constructor(opts: AuthThrottleOptions = {}) {
    this.failLimit = opts.failLimit ?? AUTH_THROTTLE_DEFAULTS.failLimit
    this.failWindowMs = opts.failWindowMs ?? AUTH_THROTTLE_DEFAULTS.failWindowMs
    this.banTimeMs = opts.banTimeMs ?? AUTH_THROTTLE_DEFAULTS.banTimeMs
    this.refusalDelayMs = opts.refusalDelayMs ?? AUTH_THROTTLE_DEFAULTS.refusalDelayMs
    this.exemptLoopback = opts.exemptLoopback ?? AUTH_THROTTLE_DEFAULTS.exemptLoopback
    this.maxPendingPerAddress = opts.maxPendingPerAddress ?? AUTH_THROTTLE_DEFAULTS.maxPendingPerAddress
    this.maxTracked = Math.max(1, opts.maxTracked ?? AUTH_THROTTLE_DEFAULTS.maxTracked)
    this.now = opts.now ?? Date.now
  }

  /**
   * Applies new settings (config reload). Counts and bans stay; when failLimit changes, the failure counts
   * are dropped (each record's ring is sized by it) but running bans are kept until they end. An ongoing
   * ban keeps its end time: a new auth_ban_time applies to bans that start afterwards.
   */
  configure(s: AuthThrottleSettings): void {
    const limit = s.failLimit ?? this.failLimit
    if (limit !== this.failLimit) {
      const now = this.now()
      for (const [key, rec] of this.records) {
        if (rec.bannedUntil <= now || limit === 0) {
          this.records.delete(key)
          continue
        }
        const kept = new AddressRecord(limit)
        kept.bannedUntil = rec.bannedUntil
        kept.lastFailure = rec.lastFailure
        this.records.set(key, kept)
      }
      this.failLimit = limit
    }
    this.failWindowMs = s.failWindowMs ?? this.failWindowMs
    this.banTimeMs = s.banTimeMs ?? this.banTimeMs
    this.refusalDelayMs = s.refusalDelayMs ?? this.refusalDelayMs
    this.exemptLoopback = s.exemptLoopback ?? this.exemptLoopback
    this.maxPendingPerAddress = s.maxPendingPerAddress ?? this.maxPendingPerAddress
  }

  get enabled(): boolean { return this.failLimit > 0 }
  /** Addresses with a record (recent failures or a ban). */
  get tracked(): number { return this.records.size }

  private exempt(address: string): boolean {
    return !this.enabled || (this.exemptLoopback && isLoopback(address))
  }

  /** Before authenticating: is this address banned right now? */
  check(address: string): ThrottleVerdict {
    if (this.exempt(address)) return NOT_BANNED
    const rec = this.records.get(normalizeAddress(address))
    if (rec === undefined || rec.bannedUntil === 0) return NOT_BANNED
    const remaining = rec.bannedUntil - this.now()
    if (remaining > 0) return { banned: true, remainingMs: remaining }
    // Ban over: the address starts again from zero.
    this.records.delete(normalizeAddress(address))
    return NOT_BANNED
  }

  /**
   * After a failed authentication. Returns true when this failure starts a ban (the caller logs it).
   */
  recordFailure(address: string): boolean {
    if (this.exempt(address)) return false
    const key = normalizeAddress(address)
    const now = this.now()
    this.sweep(now)
    let rec = this.records.get(key)
    // A ban that ended without a check() in between: start from zero.
    if (rec !== undefined && rec.bannedUntil !== 0 && rec.bannedUntil <= now) {
      this.records.delete(key)
      rec = undefined
    }
    if (rec === undefined) {
      rec = new AddressRecord(this.failLimit)
    } else {
      // Re-insert so the Map stays in least-recently-failed order for sweep().
      this.records.delete(key)
    }
    this.records.set(key, rec)
    if (this.records.size > this.maxTracked) {
      const oldest = this.records.keys().next().value
      if (oldest !== undefined && oldest !== key) this.records.delete(oldest)
    }
    rec.lastFailure = now
    if (rec.bannedUntil > now) return false
    rec.times[rec.next] = now
    rec.next = (rec.next + 1) % this.failLimit
    if (rec.stored < this.failLimit) rec.stored++
    if (rec.stored < this.failLimit) return false
    // The ring is full: its oldest entry (now at `next`) decides whether all fell within the window.
    const oldest = rec.times[rec.next]!
    if (now - oldest >= this.failWindowMs) return false
    rec.bannedUntil = now + this.banTimeMs
    this.bans++
    return true
  }

  /** Addresses banned right now (walks the records: for $SYS and /metrics, not the connection path). */
  bannedNow(): number {
    const now = this.now()
    let n = 0
    for (const rec of this.records.values()) if (rec.bannedUntil > now) n++
    return n
  }

  /** The addresses banned right now and when each ban ends (ms since the epoch), for the dashboard. */
  bannedList(): Array<{ address: string; until: number }> {
    const now = this.now()
    const out: Array<{ address: string; until: number }> = []
    for (const [address, rec] of this.records) if (rec.bannedUntil > now) out.push({ address, until: rec.bannedUntil })
    return out
  }

  /** Forgets records whose failures are older than the window and whose ban (if any) is over. */
  sweep(now = this.now()): void {
    for (const [key, rec] of this.records) {
      const live = rec.bannedUntil > now || now - rec.lastFailure < this.failWindowMs
      if (live) break
      this.records.delete(key)
    }
  }

  /** Whether this address already has its share of authentications in progress. */
  pendingFull(address: string): boolean {
    if (this.maxPendingPerAddress <= 0 || this.exempt(address)) return false
    return (this.pending.get(normalizeAddress(address)) ?? 0) >= this.maxPendingPerAddress
  }

  /** Counts `p` as in progress for `address` until it settles; returns what the caller should await. */
  track<T>(address: string, p: Promise<T>): Promise<T> {
    if (this.exempt(address)) return p
    const key = normalizeAddress(address)
    this.pending.set(key, (this.pending.get(key) ?? 0) + 1)
    return p.finally(() => {
      const n = (this.pending.get(key) ?? 1) - 1
      if (n <= 0) this.pending.delete(key)
      else this.pending.set(key, n)
    })
  }

  /** Lifts a ban and forgets the failures of one address (an operator action). */
  forgive(address: string): void {
    this.records.delete(normalizeAddress(address))
  }
}

/**
 * Wraps an Authenticator with an AuthThrottle: banned addresses are refused (after the tarpit delay)
 * before the inner authenticator runs; every refusal by the inner one counts as a failure.
 * A result the inner authenticator gives synchronously (e.g. a cache hit) stays synchronous.
 */
export class ThrottledAuthenticator implements Authenticator {
  constructor(
    readonly inner: Authenticator,
    readonly throttle: AuthThrottle,
    private readonly logger: Logger | undefined = undefined,
  ) {}

  authenticate(req: AuthRequest): AuthResult | Promise<AuthResult> {
    const t = this.throttle
    const address = req.remoteAddress
    const verdict = t.check(address)
    const full = t.pendingFull(address)
    if (verdict.banned) {
      // Already holding its share of tarpitted CONNECTs: refuse the rest at once rather than hold them too.
      if (full) return banned(address, verdict.remainingMs)
      return t.track(address, this.refuseBanned(req, verdict.remainingMs, t.now()))
    }
    if (full) {
      return { ok: false, reason: 'busy', detail: `too many authentications from address ${address} are in progress (auth_max_pending_per_address ${t.maxPendingPerAddress})` }
    }
    const started = t.now()
    const result = this.inner.authenticate(req)
    if (result instanceof Promise) return t.track(address, result.then((r) => this.settle(req, r, started)))
    return this.after(req, result)
  }

  /** Holds a banned address's CONNECT until refusalDelayMs after `since`, then refuses it. */
  private async refuseBanned(req: AuthRequest, remainingMs: number, since: number): Promise<AuthResult> {
    if (this.logger?.enabled('debug') === true) {
      this.logger.debug(`Refusing client ${req.clientId} from banned address ${req.remoteAddress} (${Math.ceil(remainingMs / 1000)} s of ban left).`)
    }
    const wait = since + this.throttle.refusalDelayMs - this.throttle.now()
    if (wait > 0) await sleep(wait)
    return banned(req.remoteAddress, remainingMs)
  }

  /** An asynchronous check has finished: if the address was banned meanwhile, the ban decides. */
  private settle(req: AuthRequest, result: AuthResult, started: number): AuthResult | Promise<AuthResult> {
    if (!result.ok && (result.reason === 'busy' || result.reason === 'banned')) return result
    const verdict = this.throttle.check(req.remoteAddress)
    if (!verdict.banned) return this.after(req, result)
    return this.refuseBanned(req, verdict.remainingMs, started)
  }

  private after(req: AuthRequest, result: AuthResult): AuthResult {
    if (!result.ok && result.reason !== 'busy') this.throttle.failures++
    if (!result.ok && result.reason !== 'busy' && this.throttle.recordFailure(req.remoteAddress)) {
      const t = this.throttle
      this.logger?.warning(
        `Banning address ${req.remoteAddress} for ${Math.round(t.banTimeMs / 1000)} s after ${t.failLimit} failed authentications ` +
        `within ${Math.round(t.failWindowMs / 1000)} s (last: client ${req.clientId}, user ${req.username === undefined ? '(none)' : `'${req.username}'`}).`,
      )
    }
    return result
  }
}

function banned(address: string, remainingMs: number): AuthResult {
  return { ok: false, reason: 'banned', detail: `address ${address} is banned for ${Math.ceil(remainingMs / 1000)} s after repeated failed authentications` }
}
