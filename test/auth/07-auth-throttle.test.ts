import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AuthThrottle, ThrottledAuthenticator, isLoopback, normalizeAddress } from '../../src/auth/throttle.js'
import { Logger, type LogType } from '../../src/observability/logger.js'
import type { AuthRequest, AuthResult, Authenticator } from '../../src/auth/types.js'

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms) => { t += ms } }
}

test('an address is banned when it reaches the failure limit within the window, and only that address', () => {
  const c = clock()
  const th = new AuthThrottle({ failLimit: 3, failWindowMs: 10_000, banTimeMs: 60_000, now: c.now })
  assert.equal(th.recordFailure('203.0.113.5'), false)
  c.advance(1000)
  assert.equal(th.recordFailure('203.0.113.5'), false)
  assert.deepEqual(th.check('203.0.113.5'), { banned: false })
  c.advance(1000)
  assert.equal(th.recordFailure('203.0.113.5'), true, 'the third failure within 10 s starts the ban')
  assert.deepEqual(th.check('203.0.113.5'), { banned: true, remainingMs: 60_000 })
  assert.deepEqual(th.check('203.0.113.6'), { banned: false }, 'a neighbour is not affected')
  c.advance(59_999)
  assert.deepEqual(th.check('203.0.113.5'), { banned: true, remainingMs: 1 })
  c.advance(1)
  assert.deepEqual(th.check('203.0.113.5'), { banned: false }, 'the ban ends')
  assert.equal(th.recordFailure('203.0.113.5'), false, 'and the count starts from zero')
})

test('the window slides: failures spread wider than the window never ban', () => {
  const c = clock()
  const th = new AuthThrottle({ failLimit: 3, failWindowMs: 10_000, now: c.now })
  for (let i = 0; i < 20; i++) {
    assert.equal(th.recordFailure('198.51.100.1'), false, `failure ${i}`)
    c.advance(5_000)
  }
  c.advance(-4_000)
  assert.equal(th.recordFailure('198.51.100.1'), true, 'three within 10 s: 5 s apart, then 1 s')
})

test('loopback is exempt by default; exemptLoopback false counts it too', () => {
  for (const a of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a)
  for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '2001:db8::1', '128.0.0.1']) assert.equal(isLoopback(a), false, a)
  const c = clock()
  const exempt = new AuthThrottle({ failLimit: 1, now: c.now })
  assert.equal(exempt.recordFailure('127.0.0.1'), false)
  assert.deepEqual(exempt.check('::1'), { banned: false })
  const strict = new AuthThrottle({ failLimit: 1, exemptLoopback: false, now: c.now })
  assert.equal(strict.recordFailure('127.0.0.1'), true)
  assert.equal(strict.check('127.0.0.1').banned, true)
})

test('IPv4-mapped IPv6 addresses count as their IPv4 address', () => {
  assert.equal(normalizeAddress('::ffff:192.0.2.7'), '192.0.2.7')
  const th = new AuthThrottle({ failLimit: 2, now: clock().now })
  th.recordFailure('::ffff:192.0.2.7')
  assert.equal(th.recordFailure('192.0.2.7'), true)
  assert.equal(th.check('::ffff:192.0.2.7').banned, true)
})

test('failLimit 0 turns the throttle off', () => {
  const th = new AuthThrottle({ failLimit: 0, now: clock().now })
  for (let i = 0; i < 100; i++) assert.equal(th.recordFailure('192.0.2.1'), false)
  assert.equal(th.check('192.0.2.1').banned, false)
  assert.equal(th.tracked, 0)
})

test('memory stays bounded: old records are swept, at most maxTracked are kept', () => {
  const c = clock()
  const th = new AuthThrottle({ failLimit: 5, failWindowMs: 1_000, banTimeMs: 1_000, maxTracked: 100, now: c.now })
  for (let i = 0; i < 50; i++) th.recordFailure(`192.0.2.${i}`)
  assert.equal(th.tracked, 50)
  c.advance(1_000)
  th.recordFailure('198.51.100.1')
  assert.equal(th.tracked, 1, 'records older than the window are swept')
  for (let i = 0; i < 500; i++) th.recordFailure(`10.0.${i >> 8}.${i & 255}`)
  assert.equal(th.tracked, 100)
})

function recordingLogger(): { logger: Logger; lines: Array<[LogType, string]> } {
  const lines: Array<[LogType, string]> = []
  const logger = new Logger({ types: ['warning', 'debug'], timestamp: false, sinks: [{ write: (line, type) => { lines.push([type, line]) } }] })
  return { logger, lines }
}

class FakeAuthenticator implements Authenticator {
  calls = 0
  authenticate(req: AuthRequest): AuthResult {
    this.calls++
    return req.password?.toString() === 'right' ? { ok: true, username: req.username } : { ok: false, reason: 'bad-credentials' }
  }
}

function request(address: string, password: string): AuthRequest {
  return { clientId: 'cid', username: 'u', password: Buffer.from(password), remoteAddress: address, listener: '1883', allowAnonymous: false }
}

test('ThrottledAuthenticator bans after the limit, logs the address once, and refuses without asking the inner authenticator', async () => {
  const c = clock()
  const inner = new FakeAuthenticator()
  const { logger, lines } = recordingLogger()
  const auth = new ThrottledAuthenticator(inner, new AuthThrottle({ failLimit: 2, failWindowMs: 60_000, banTimeMs: 300_000, refusalDelayMs: 0, now: c.now }), logger)
  assert.deepEqual(await auth.authenticate(request('203.0.113.9', 'wrong')), { ok: false, reason: 'bad-credentials' })
  assert.deepEqual(await auth.authenticate(request('203.0.113.9', 'wrong')), { ok: false, reason: 'bad-credentials' })
  assert.deepEqual(lines.filter(([t]) => t === 'warning').map(([, l]) => l), [
    "Banning address 203.0.113.9 for 300 s after 2 failed authentications within 60 s (last: client cid, user 'u').",
  ])
  const callsBefore = inner.calls
  const banned = await auth.authenticate(request('203.0.113.9', 'right'))
  assert.equal(banned.ok, false)
  assert.equal(!banned.ok && banned.reason, 'banned', 'even the right password is refused while banned')
  assert.equal(inner.calls, callsBefore, 'no hashing for a banned address')
  assert.ok(lines.some(([t, l]) => t === 'debug' && l.includes('banned address 203.0.113.9')))

  const other = auth.authenticate(request('198.51.100.20', 'right'))
  assert.ok(!(other instanceof Promise), 'a synchronous (cached) success stays synchronous')
  assert.deepEqual(other, { ok: true, username: 'u' }, 'a valid client from another address is never affected')

  c.advance(300_000)
  assert.deepEqual(await auth.authenticate(request('203.0.113.9', 'right')), { ok: true, username: 'u' }, 'the ban ends')
})

test('a banned address waits refusalDelayMs before its refusal', async () => {
  const auth = new ThrottledAuthenticator(new FakeAuthenticator(), new AuthThrottle({ failLimit: 1, refusalDelayMs: 50 }))
  await auth.authenticate(request('192.0.2.99', 'wrong'))
  const started = performance.now()
  const r = await auth.authenticate(request('192.0.2.99', 'wrong'))
  assert.equal(!r.ok && r.reason, 'banned')
  assert.ok(performance.now() - started >= 45, 'held for the tarpit delay')
})
