/**
 * The broker's Authenticator for a Mosquitto `password_file`.
 *
 * Cost model: an uncached `$7$` check is one PBKDF2 (about 7 ms at the default 10,000 iterations;
 * docs/security.md), run on a low-priority hashing thread (hash-threads.ts), never on the event loop nor on
 * libuv's pool. Three things keep that from hurting other clients:
 *  - at most `maxConcurrentHashes` (default 2) PBKDF2 jobs are handed to the hashing threads at once (which
 *    run one per core but one, at most two), the rest wait in a FIFO; the threads yield to the event loop;
 *  - a successful check is remembered as HMAC-SHA256(process-random key, password) per user, so a
 *    reconnect storm of valid clients costs one HMAC each. The key never leaves memory and the tag is
 *    useless for offline guessing without it. Reload and setUsers() drop the whole cache;
 *  - identical checks in flight (same user, same password) share one PBKDF2;
 *  - at most `maxQueuedHashes` checks wait for a slot: beyond that a CONNECT is refused at once as busy, so a
 *    flood of CONNECTs costs neither unbounded memory (each holds its packet) nor unbounded waiting.
 * Brute force across many attempts is AuthThrottle's job (throttle.ts), not this class's.
 *
 * Timing: a refusal must not tell which users exist, yet users' hashes may have different iteration counts
 * (101 from mosquitto_passwd, 10,000 from midge passwd, more by choice), and an unknown user is checked
 * against a decoy. So every refusal is held until the slowest hash in the file would have finished: from
 * the moment its own hash started (queueing is the same for every user), for the file's largest iteration
 * count times the measured cost of one iteration, with a margin. The cost per iteration is learnt from the
 * hashing threads' own timings, so the padding follows the machine's speed and load. The wait is a timer:
 * it costs no CPU and does not block the event loop. A right password is answered as soon as it is known.
 *
 * Usernames and passwords are compared exactly: no trimming, no case folding, every byte of the password.
 * PBKDF2 pads an HMAC key with zero bytes, so it cannot tell "pw" from "pw\0"; no password file entry
 * can hold a NUL (neither passwd tool writes one), so a password containing one is refused outright.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { AuthError, AuthErrorCode } from './errors.js'
import { setTimeout as timer } from 'node:timers/promises'
import { sharedHashThreads, type TimedKey } from './hash-threads.js'
import { loadPasswordFile } from './password-file.js'
import { DEFAULT_PBKDF2_ITERATIONS, HashAlgorithm, verifyPassword, type PasswordHash } from './password-hash.js'
import type { AuthRequest, AuthResult, Authenticator } from './types.js'

export type { TimedKey }

/** Where PBKDF2 runs (HashThreads; a fake in tests). */
export interface PasswordHasher {
  pbkdf2Timed(password: Buffer, salt: Buffer, iterations: number, keylen: number): Promise<TimedKey>
}

export interface PasswordFileAuthenticatorOptions {
  /** The file reload() reads again. */
  file?: string
  /** PBKDF2 computations handed to the hashing threads at once; the rest queue. Default 2. */
  maxConcurrentHashes?: number
  /** Checks that may wait for one of those slots; more are refused as busy. 0 = no limit. Default 256. */
  maxQueuedHashes?: number
  /** Where PBKDF2 runs; default the process's shared low-priority pool. */
  hashThreads?: PasswordHasher
  /** Clock and timer of the refusal padding (tests). */
  now?: () => number
  sleep?: (ms: number) => Promise<void>
}

export const DEFAULT_MAX_QUEUED_HASHES = 256

/** The cost of one PBKDF2-SHA512 iteration assumed before any has been measured (0.7 µs measured, docs/security.md). */
const InitialMsPerIteration = 0.001

/** Refusals are held this much longer than the slowest user's hash is expected to take. */
const PaddingMargin = 1.25

const OK_ANONYMOUS: AuthResult = { ok: true, username: undefined }
const REFUSED_ANONYMOUS: AuthResult = { ok: false, reason: 'not-authorized', detail: 'anonymous clients are not allowed on this listener' }

/** FIFO gate in front of the thread pool. */
class HashSlots {
  private active = 0
  private readonly waiting: Array<() => void> = []
  constructor(private readonly max: number) {}

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve))
    else this.active++
    try {
      return await job()
    } finally {
      const next = this.waiting.shift()
      // The slot passes straight to the next waiter, so `active` only drops when nobody waits.
      if (next !== undefined) next()
      else this.active--
    }
  }

  get queued(): number { return this.waiting.length }

  /** Whether one more job would have to wait behind `limit` others (0 = no limit). */
  full(limit: number): boolean {
    return limit > 0 && this.active >= this.max && this.waiting.length >= limit
  }
}

/** The outcome of one hash comparison, and when its hash started (the refusal padding counts from there). */
interface Check {
  ok: boolean
  startedAt: number
}

const sleepMs = (ms: number): Promise<void> => timer(ms)

export class PasswordFileAuthenticator implements Authenticator {
  readonly file: string | undefined
  private users: Map<string, PasswordHash>
  /** Bumped by every setUsers(); a check that started before it is redone against the new entries. */
  private generation = 0
  private readonly cacheKey = randomBytes(32)
  private readonly verified = new Map<string, Buffer>()
  private readonly inflight = new Map<string, Promise<Check>>()
  private readonly slots: HashSlots
  private readonly maxQueuedHashes: number
  private readonly threads: PasswordHasher
  private readonly now: () => number
  private readonly sleep: (ms: number) => Promise<void>
  /** Checked for unknown users so that "no such user" costs what "wrong password" does. */
  private decoy: PasswordHash
  /** The largest PBKDF2 iteration count of the file (or the decoy's): what every refusal is padded to. */
  private maxIterations: number
  // Measured cost of one iteration: decayed sums of the threads' timings, weighted by iterations so that a
  // 101-iteration hash (whose time is mostly overhead) hardly moves it. Starts as one 10,000-iteration hash
  // at InitialMsPerIteration.
  private hashedMs = DEFAULT_PBKDF2_ITERATIONS * InitialMsPerIteration
  private hashedIterations = DEFAULT_PBKDF2_ITERATIONS

  static readonly InitialMsPerIteration = InitialMsPerIteration

  constructor(users: Map<string, PasswordHash>, opts: PasswordFileAuthenticatorOptions = {}) {
    this.file = opts.file
    this.slots = new HashSlots(Math.max(1, opts.maxConcurrentHashes ?? 2))
    this.maxQueuedHashes = opts.maxQueuedHashes ?? DEFAULT_MAX_QUEUED_HASHES
    this.threads = opts.hashThreads ?? sharedHashThreads()
    this.now = opts.now ?? performance.now.bind(performance)
    this.sleep = opts.sleep ?? sleepMs
    this.users = users
    this.decoy = makeDecoy(users)
    this.maxIterations = maxIterations(users, this.decoy)
  }

  static async fromFile(file: string, opts: Omit<PasswordFileAuthenticatorOptions, 'file'> = {}): Promise<PasswordFileAuthenticator> {
    return new PasswordFileAuthenticator(await loadPasswordFile(file), { ...opts, file })
  }

  get userCount(): number { return this.users.size }
  /** Whether the file (as last loaded) has this user: the dashboard ends the sessions of users removed. */
  hasUser(username: string): boolean { return this.users.has(username) }
  /** Users whose last successful password is cached (for $SYS / tests). */
  get cachedUsers(): number { return this.verified.size }
  /** PBKDF2 jobs waiting for a slot. */
  get queuedHashes(): number { return this.slots.queued }

  /**
   * Reads the file again. On any error the current users stay in force and the AuthError is thrown for the
   * caller to log: a broken edit must neither lock everyone out nor let anyone in. Returns the user count.
   */
  async reload(): Promise<number> {
    if (this.file === undefined) throw new AuthError(AuthErrorCode.FileAccess, 'this authenticator was not loaded from a file')
    this.setUsers(await loadPasswordFile(this.file))
    return this.users.size
  }

  setUsers(users: Map<string, PasswordHash>): void {
    this.users = users
    this.decoy = makeDecoy(users)
    this.maxIterations = maxIterations(users, this.decoy)
    this.generation++
    this.verified.clear()
    this.inflight.clear()
  }

  authenticate(req: AuthRequest): AuthResult | Promise<AuthResult> {
    if (req.certificateUsername !== undefined) return { ok: true, username: req.certificateUsername }
    const username = req.username
    if (username === undefined) return req.allowAnonymous ? OK_ANONYMOUS : REFUSED_ANONYMOUS
    const password = req.password
    if (password === undefined) return { ok: false, reason: 'bad-credentials', detail: `no password given for user '${username}'` }
    const tag = createHmac('sha256', this.cacheKey).update(password).digest()
    const known = this.verified.get(username)
    // Fast path: same user, same password as a check that already succeeded since the last reload.
    if (known !== undefined && timingSafeEqual(known, tag)) return { ok: true, username }
    const entry = this.users.get(username)
    if ((entry === undefined || entry.algorithm === HashAlgorithm.Sha512Pbkdf2) && this.slots.full(this.maxQueuedHashes)) {
      return { ok: false, reason: 'busy', detail: `the queue of password checks is full (auth_max_queued_hashes ${this.maxQueuedHashes})` }
    }
    return this.check(username, password, tag)
  }

  private async check(username: string, password: Buffer, tag: Buffer): Promise<AuthResult> {
    for (;;) {
      const generation = this.generation
      const entry = this.users.get(username)
      if (entry === undefined) {
        const decoy = await this.slots.run(() => this.pbkdf2Matches(this.decoy, password))
        await this.padRefusal(decoy.startedAt)
        return { ok: false, reason: 'bad-credentials', detail: `unknown user '${username}'` }
      }
      const key = `${generation}\0${username}\0${tag.toString('base64')}`
      let pending = this.inflight.get(key)
      if (pending === undefined) {
        const p = this.verify(entry, password)
        this.inflight.set(key, p)
        p.then(() => { if (this.inflight.get(key) === p) this.inflight.delete(key) }, () => { this.inflight.delete(key) })
        pending = p
      }
      const checked = await pending
      // The file was reloaded while we hashed: the entry we checked may be gone or changed, so check again.
      if (generation !== this.generation) continue
      if (!checked.ok || password.includes(0)) {
        await this.padRefusal(checked.startedAt)
        return { ok: false, reason: 'bad-credentials', detail: `wrong password for user '${username}'` }
      }
      this.verified.set(username, tag)
      return { ok: true, username }
    }
  }

  private async verify(entry: PasswordHash, password: Buffer): Promise<Check> {
    if (entry.algorithm === HashAlgorithm.Sha512) {
      const startedAt = this.now()
      return { ok: await verifyPassword(entry, password), startedAt }
    }
    return this.slots.run(() => this.pbkdf2Matches(entry, password))
  }

  /** Constant-time comparison of a `$7$` entry with the password, hashed on the low-priority threads. */
  private async pbkdf2Matches(entry: PasswordHash, password: Buffer): Promise<Check> {
    const startedAt = this.now()
    if (entry.algorithm !== HashAlgorithm.Sha512Pbkdf2) return { ok: await verifyPassword(entry, password), startedAt }
    const { key, ms } = await this.threads.pbkdf2Timed(password, entry.salt, entry.iterations, entry.hash.length)
    this.observe(entry.iterations, ms)
    return { ok: key.length === entry.hash.length && timingSafeEqual(key, entry.hash), startedAt }
  }

  private observe(iterations: number, ms: number): void {
    if (!(ms >= 0) || iterations <= 0) return
    // Decay old samples so the estimate follows the machine's load within a few dozen hashes.
    this.hashedMs = this.hashedMs * 0.9 + ms
    this.hashedIterations = this.hashedIterations * 0.9 + iterations
  }

  /** Expected time of the file's slowest hash on this machine now, with the margin. */
  get refusalPaddingMs(): number {
    return this.maxIterations * (this.hashedMs / this.hashedIterations) * PaddingMargin
  }

  /** Holds a refusal until the slowest user's hash, started when this one's did, would have finished. */
  private async padRefusal(startedAt: number): Promise<void> {
    const wait = startedAt + this.refusalPaddingMs - this.now()
    if (wait > 0) await this.sleep(wait)
  }
}

function maxIterations(users: Map<string, PasswordHash>, decoy: PasswordHash): number {
  let max = decoy.algorithm === HashAlgorithm.Sha512Pbkdf2 ? decoy.iterations : 0
  for (const h of users.values()) if (h.algorithm === HashAlgorithm.Sha512Pbkdf2 && h.iterations > max) max = h.iterations
  return max
}

/** A `$7$` hash with the iteration count most users have, so unknown users cost the same time. */
function makeDecoy(users: Map<string, PasswordHash>): PasswordHash {
  const counts = new Map<number, number>()
  for (const h of users.values()) {
    if (h.algorithm === HashAlgorithm.Sha512Pbkdf2) counts.set(h.iterations, (counts.get(h.iterations) ?? 0) + 1)
  }
  let iterations = DEFAULT_PBKDF2_ITERATIONS
  let best = 0
  for (const [it, n] of counts) if (n > best) { best = n; iterations = it }
  return { algorithm: HashAlgorithm.Sha512Pbkdf2, iterations, salt: randomBytes(12), hash: randomBytes(64) }
}
