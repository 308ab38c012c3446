/**
 * The host application's say in who connects, publishes, subscribes and receives (docs/embedding.md).
 *
 * Order: the broker's own rules first (password file, ACL, $SYS, limits), then the hook; both must allow, so a
 * hook can narrow what the files permit but never widen it. A hook may answer synchronously or with a Promise.
 * A hook that throws, rejects or answers nothing useful denies, and the broker logs why; one that does not
 * answer within `hookTimeoutMs` denies too. While a PUBLISH or SUBSCRIBE waits for its hook, the client's
 * following packets wait unread (in order; TCP pushes back), as its packets after CONNECT wait for CONNACK.
 * authorizeDeliver runs once per message and subscriber inside routing, so it is synchronous.
 *
 * Cost when unset: one property test per packet (or per delivery); no Promise, no allocation.
 */
import type { QoS } from '../protocol/constants.js'
import type { Properties } from '../protocol/packets.js'
import type { AuthRequest, AuthResult, Authenticator, ClientIdentity } from '../auth/types.js'
import { ThrottledAuthenticator, type AuthThrottle } from '../auth/throttle.js'
import type { Logger } from '../observability/logger.js'

/** Who a hook or event is about. `remoteAddress` is the peer's IP address; `listener` the listener's name. */
export type ClientInfo = Readonly<ClientIdentity>

/** A message as hooks and events see it (shared by every subscriber: never modify it). */
export interface MessageInfo {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: QoS
  readonly retain: boolean
  readonly properties: Properties | undefined
}

export interface AuthenticateRequest {
  clientId: string
  /** The username the broker will use (a certificate's, with use_identity_as_username); undefined = anonymous. */
  username: string | undefined
  password: Buffer | undefined
  /** The peer's IP address. */
  address: string
  listener: string
}

/** A refusal with the MQTT 5 reason code to send (3.1.1 clients get the nearest CONNACK return code or 0x80). */
export interface HookRefusal {
  reasonCode: number
}

type Answer<T> = T | Promise<T>

/** true lets the client in; false refuses it (v5 0x86 Bad User Name or Password, 3.1.1 4). */
export type AuthenticateHook = (req: AuthenticateRequest) => Answer<boolean | HookRefusal>
/** true routes the message; false refuses it (v5 PUBACK/PUBREC 0x87; 3.1.1: acknowledged and dropped, as mosquitto). */
export type AuthorizePublishHook = (client: ClientInfo, message: { topic: string; payload: Buffer; qos: QoS; retain: boolean }) => Answer<boolean | HookRefusal>
/**
 * true grants the QoS asked for; `{ qos }` grants at most that QoS; false refuses the filter (v5 0x87, 3.1.1 0x80).
 * `topic` is the filter after the listener's mount point, without a `$share/group/` prefix (which is `group`).
 */
export type AuthorizeSubscribeHook = (client: ClientInfo, subscription: { topic: string; qos: QoS; group: string | undefined }) => Answer<boolean | { qos: QoS } | HookRefusal>
/** false drops this message for this subscriber only. Synchronous: it runs inside routing. */
export type AuthorizeDeliverHook = (client: ClientInfo, message: MessageInfo) => boolean

export interface BrokerHooks {
  authenticate?: AuthenticateHook | undefined
  authorizePublish?: AuthorizePublishHook | undefined
  authorizeSubscribe?: AuthorizeSubscribeHook | undefined
  authorizeDeliver?: AuthorizeDeliverHook | undefined
}

/** How long a hook may take before its answer counts as a refusal. */
export const DefaultHookTimeoutMs = 10_000

function isThenable<T>(v: unknown): v is PromiseLike<T> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'
}

/**
 * Calls `hook` and hands its answer to `done`: synchronously when it answers synchronously (the common case
 * costs no Promise), else once it settles. An exception, a rejection or the timeout gives `done(undefined, why)`.
 * Returns whether `done` has run already.
 */
export function askHook<T>(call: () => Answer<T>, timeoutMs: number, done: (answer: T | undefined, error: string | undefined) => void): boolean {
  let answer: Answer<T>
  try {
    answer = call()
  } catch (err) {
    done(undefined, `threw ${describe(err)}`)
    return true
  }
  if (!isThenable<T>(answer)) {
    done(answer, undefined)
    return true
  }
  let settled = false
  const timer = setTimeout(() => {
    if (settled) return
    settled = true
    done(undefined, `gave no answer within ${timeoutMs} ms`)
  }, timeoutMs)
  timer.unref()
  answer.then(
    (v) => { if (settled) return; settled = true; clearTimeout(timer); done(v, undefined) },
    (err: unknown) => { if (settled) return; settled = true; clearTimeout(timer); done(undefined, `rejected: ${describe(err)}`) },
  )
  return false
}

/** What an application's hook or listener threw, in words: it may throw anything, null included. */
export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** The code for a refusal: the hook's own when it names a failure code (>= 0x80), else `fallback`. */
export function refusalCode(answer: unknown, fallback: number): number {
  if (typeof answer === 'object' && answer !== null && 'reasonCode' in answer) {
    const rc = (answer as HookRefusal).reasonCode
    if (Number.isInteger(rc) && rc >= 0x80 && rc <= 0xff) return rc
  }
  return fallback
}

/** The 3.1.1 CONNACK return code nearest to a v5 CONNACK reason code. */
export function v3ConnackCode(v5: number): number {
  switch (v5) {
    case 0x84: return 1 // Unsupported Protocol Version
    case 0x85: return 2 // Client Identifier not valid
    case 0x86: return 4 // Bad User Name or Password
    case 0x88: case 0x89: return 3 // Server unavailable / busy
    default: return 5 // Not authorized
  }
}

/** Runs the authenticate hook after `inner` (the password file, or the anonymous rule) has let the client in. */
class HookAuthenticator implements Authenticator {
  constructor(
    private readonly inner: Authenticator,
    private readonly hook: AuthenticateHook,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
  ) {}

  authenticate(req: AuthRequest): AuthResult | Promise<AuthResult> {
    const first = this.inner.authenticate(req)
    if (first instanceof Promise) return first.then((r) => this.ask(req, r))
    return this.ask(req, first)
  }

  private ask(req: AuthRequest, first: AuthResult): AuthResult | Promise<AuthResult> {
    if (!first.ok) return first
    let result: AuthResult | undefined
    let resolve: ((r: AuthResult) => void) | undefined
    const request: AuthenticateRequest = { clientId: req.clientId, username: first.username, password: req.password, address: req.remoteAddress, listener: req.listener }
    askHook(() => this.hook(request), this.timeoutMs, (answer, error) => {
      const r = this.verdict(req, first, answer, error)
      if (resolve === undefined) result = r
      else resolve(r)
    })
    if (result !== undefined) return result
    return new Promise<AuthResult>((r) => { resolve = r })
  }

  private verdict(req: AuthRequest, first: AuthResult, answer: boolean | HookRefusal | undefined, error: string | undefined): AuthResult {
    if (error !== undefined) {
      this.logger.error(`The authenticate hook ${error} for client ${req.clientId} from ${req.remoteAddress}: refused.`)
      return { ok: false, reason: 'not-authorized', detail: `the authenticate hook ${error}` }
    }
    if (answer === true) return first
    if (answer === false || answer === undefined || answer === null) return { ok: false, reason: 'bad-credentials', detail: 'refused by the authenticate hook' }
    const reasonCode = refusalCode(answer, 0x87)
    return { ok: false, reason: reasonCode === 0x86 ? 'bad-credentials' : 'not-authorized', reasonCode, detail: `refused by the authenticate hook (reason 0x${reasonCode.toString(16)})` }
  }
}

/**
 * `base` with the authenticate hook after it, behind the same AuthThrottle: the hook's time counts towards
 * auth_max_pending_per_address, its refusals towards bans, and a banned address never reaches it.
 */
export function withAuthenticateHook(base: Authenticator, hook: AuthenticateHook, timeoutMs: number, logger: Logger, throttle: AuthThrottle | undefined): Authenticator {
  if (base instanceof ThrottledAuthenticator) return new ThrottledAuthenticator(new HookAuthenticator(base.inner, hook, timeoutMs, logger), base.throttle, logger)
  const hooked = new HookAuthenticator(base, hook, timeoutMs, logger)
  return throttle === undefined ? hooked : new ThrottledAuthenticator(hooked, throttle, logger)
}
