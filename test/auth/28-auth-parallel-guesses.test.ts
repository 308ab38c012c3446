/**
 * Parallel guesses against the throttle (issue #12, item 4): CONNECTs sent at once all pass the ban check
 * before any of them has failed. The ban must also apply to the checks still running when it starts, and one
 * address may only have a bounded number of checks pending at once. The inner authenticator here is a gate
 * the test opens by hand, so the order of events is exact.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AuthThrottle, ThrottledAuthenticator } from '../../src/auth/throttle.js'
import type { AuthRequest, AuthResult, Authenticator } from '../../src/auth/types.js'

/** Holds every check until the test settles it. */
class Gate implements Authenticator {
  readonly held: Array<{ req: AuthRequest; settle: (r: AuthResult) => void }> = []
  calls = 0
  authenticate(req: AuthRequest): Promise<AuthResult> {
    this.calls++
    return new Promise((settle) => this.held.push({ req, settle }))
  }

  /** Settles the held check of `password` as the password file would. */
  settle(password: string, right: boolean): void {
    const i = this.held.findIndex((h) => h.req.password?.toString() === password)
    assert.ok(i >= 0, `no check of '${password}' is held`)
    const [h] = this.held.splice(i, 1)
    h!.settle(right ? { ok: true, username: 'alice' } : { ok: false, reason: 'bad-credentials', detail: 'wrong password' })
  }
}

function req(password: string, remoteAddress = '203.0.113.9'): AuthRequest {
  return { clientId: `c-${password}`, username: 'alice', password: Buffer.from(password), remoteAddress, listener: '1883', allowAnonymous: false }
}

// Built as variables: the options are checked by the throttle, not by the object literal.
const throttleOptions = { failLimit: 3, failWindowMs: 60_000, banTimeMs: 60_000, refusalDelayMs: 0, exemptLoopback: false, maxPendingPerAddress: 16 }

test('the ban applies to checks that were already running when it started: the right password is refused as banned', async () => {
  const gate = new Gate()
  const auth = new ThrottledAuthenticator(gate, new AuthThrottle(throttleOptions))
  // Four CONNECTs at once: all pass the ban check, all wait for their hash.
  const results = ['g1', 'g2', 'g3', 'right', 'g5'].map((pw) => auth.authenticate(req(pw)))
  assert.equal(gate.calls, 5)
  gate.settle('g1', false)
  gate.settle('g2', false)
  gate.settle('g3', false)
  assert.equal((await results[2]!).ok, false)
  // The third failure banned the address; the right password finishes its hash only now.
  gate.settle('right', true)
  gate.settle('g5', false)
  assert.deepEqual(await results[3], { ok: false, reason: 'banned', detail: 'address 203.0.113.9 is banned for 60 s after repeated failed authentications' })
  // A wrong guess that finished after the ban gets the same answer: the refusal tells nothing about the password.
  assert.deepEqual(await results[4], await results[3])
})

test('a check that finishes after the ban is held until the tarpit delay has passed since it started, right or wrong', async () => {
  const gate = new Gate()
  const auth = new ThrottledAuthenticator(gate, new AuthThrottle({ ...throttleOptions, failLimit: 1, refusalDelayMs: 300 }))
  const started = Date.now()
  const right = auth.authenticate(req('right'))
  const wrong = auth.authenticate(req('wrong-2'))
  const first = auth.authenticate(req('wrong-1'))
  gate.settle('wrong-1', false)
  await first
  gate.settle('right', true)
  gate.settle('wrong-2', false)
  const [r, w] = await Promise.all([right, wrong])
  assert.equal(r.ok, false)
  assert.deepEqual(r, w)
  // Timers never fire early by more than a millisecond of rounding.
  assert.ok(Date.now() - started >= 299, 'held for the tarpit delay')
})

test('one address has at most maxPendingPerAddress checks pending: more get busy at once, without a check', async () => {
  const gate = new Gate()
  const throttle = new AuthThrottle({ ...throttleOptions, failLimit: 100, maxPendingPerAddress: 2 } as typeof throttleOptions)
  const auth = new ThrottledAuthenticator(gate, throttle)
  const a = auth.authenticate(req('p1'))
  const b = auth.authenticate(req('p2'))
  const c = auth.authenticate(req('p3'))
  assert.ok(!(c instanceof Promise), 'refused at once, not queued')
  assert.deepEqual(c, { ok: false, reason: 'busy', detail: 'too many authentications from address 203.0.113.9 are in progress (auth_max_pending_per_address 2)' })
  assert.equal(gate.calls, 2, 'no password check for the refused one')
  // Other addresses are not affected.
  const other = auth.authenticate(req('q1', '198.51.100.4'))
  assert.ok(other instanceof Promise)
  assert.equal(gate.calls, 3)
  // Once one check is done, the address may start another.
  gate.settle('p1', false)
  await a
  const d = auth.authenticate(req('p4'))
  assert.ok(d instanceof Promise)
  assert.equal(gate.calls, 4)
  gate.settle('p2', false)
  gate.settle('p4', false)
  gate.settle('q1', true)
  await Promise.all([b, d, other])
  // A busy refusal is not a failed authentication: it never counts towards a ban.
  for (let i = 0; i < 5; i++) auth.authenticate(req(`x${i}`))
  assert.equal(throttle.check('203.0.113.9').banned, false)
})

test('a banned address whose pending share is used up is refused as banned at once, without the tarpit', async () => {
  const gate = new Gate()
  const throttle = new AuthThrottle({ ...throttleOptions, failLimit: 1, refusalDelayMs: 1000, maxPendingPerAddress: 1 } as typeof throttleOptions)
  const auth = new ThrottledAuthenticator(gate, throttle)
  const first = auth.authenticate(req('g1'))
  gate.settle('g1', false)
  await first
  const held = auth.authenticate(req('g2')) // held for the 1 s tarpit
  assert.ok(held instanceof Promise)
  const next = auth.authenticate(req('g3'))
  assert.ok(!(next instanceof Promise))
  assert.equal(next.ok, false)
  assert.equal(!next.ok && next.reason, 'banned')
  assert.equal((await held).ok, false)
})

test('loopback exempt from the throttle is not bounded per address either', () => {
  const gate = new Gate()
  const auth = new ThrottledAuthenticator(gate, new AuthThrottle({ ...throttleOptions, exemptLoopback: true, maxPendingPerAddress: 1 } as typeof throttleOptions))
  for (let i = 0; i < 5; i++) assert.ok(auth.authenticate(req(`l${i}`, '127.0.0.1')) instanceof Promise)
  assert.equal(gate.calls, 5)
})

test('configure() (SIGHUP) changes maxPendingPerAddress for the next CONNECT', () => {
  const gate = new Gate()
  const throttle = new AuthThrottle({ ...throttleOptions, maxPendingPerAddress: 1 } as typeof throttleOptions)
  const auth = new ThrottledAuthenticator(gate, throttle)
  assert.ok(auth.authenticate(req('a')) instanceof Promise)
  assert.ok(!(auth.authenticate(req('b')) instanceof Promise), 'second one busy')
  throttle.configure({ maxPendingPerAddress: 3 })
  assert.ok(auth.authenticate(req('c')) instanceof Promise)
  assert.ok(auth.authenticate(req('d')) instanceof Promise)
  assert.ok(!(auth.authenticate(req('e')) instanceof Promise), 'three in progress: the fourth is busy')
  throttle.configure({ maxPendingPerAddress: 0 })
  assert.ok(auth.authenticate(req('f')) instanceof Promise, '0 = no limit')
})
