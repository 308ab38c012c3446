import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AuthThrottle } from '../../src/auth/throttle.js'

test('configure() (SIGHUP) keeps running bans with their end time; a new failLimit drops the counts only', () => {
  const t = 1_000_000
  const th = new AuthThrottle({ failLimit: 2, failWindowMs: 60_000, banTimeMs: 10_000, now: () => t })
  th.recordFailure('203.0.113.1')
  assert.equal(th.recordFailure('203.0.113.1'), true, 'banned')
  th.recordFailure('203.0.113.2') // one failure: a count, no ban

  th.configure({ failLimit: 2, banTimeMs: 99_000 })
  assert.deepEqual(th.check('203.0.113.1'), { banned: true, remainingMs: 10_000 }, 'the running ban keeps its end')
  assert.equal(th.recordFailure('203.0.113.2'), true, 'an unchanged limit keeps the counts')
  assert.deepEqual(th.check('203.0.113.2'), { banned: true, remainingMs: 99_000 }, 'a new ban uses the new ban time')

  th.recordFailure('203.0.113.3')
  th.configure({ failLimit: 3 })
  assert.deepEqual(th.check('203.0.113.1'), { banned: true, remainingMs: 10_000 }, 'bans survive a new limit')
  assert.equal(th.recordFailure('203.0.113.3'), false)
  assert.equal(th.recordFailure('203.0.113.3'), false, 'the count started again from zero')
  assert.equal(th.recordFailure('203.0.113.3'), true, 'and the new limit applies')

  th.configure({ failLimit: 0 })
  assert.deepEqual(th.check('203.0.113.1'), { banned: false }, '0 turns the protection off, bans included')
  assert.equal(th.tracked, 0)
})

test('configure() switches the loopback exemption', () => {
  const th = new AuthThrottle({ failLimit: 1, now: () => 1_000_000 })
  assert.equal(th.recordFailure('127.0.0.1'), false, 'exempt by default')
  th.configure({ exemptLoopback: false })
  assert.equal(th.recordFailure('127.0.0.1'), true)
  th.configure({ exemptLoopback: true })
  assert.deepEqual(th.check('127.0.0.1'), { banned: false })
})
