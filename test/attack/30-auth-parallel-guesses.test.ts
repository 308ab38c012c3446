/**
 * Attack: password guesses sent in parallel to get past the brute-force throttle (issue #12, item 4).
 * 400 CONNECTs from one address at once, auth_fail_exempt_loopback false, the right password at #266. Before
 * the fix every guess passed the ban check before any had failed: all 399 wrong ones were evaluated and the
 * right one was accepted after the address had been banned. Now at most auth_max_pending_per_address checks
 * are in progress per address (the others get Server busy at once), and a check that ends after the ban is
 * refused as banned whatever its outcome, so at most auth_fail_limit guesses get an answer.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type net from 'node:net'
import { formatPasswordHash, hashPassword } from '../../src/auth/password-hash.js'
import { AttackTarget } from './harness.js'

const Guesses = 400
const Right = 265 // the 266th
const FailLimit = 10

function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8')
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b])
}

/** MQTT 3.1.1 CONNECT with username and password, built by hand (the codec is not what is under test). */
function connect(clientId: string, user: string, password: string): Buffer {
  const body = Buffer.concat([str('MQTT'), Buffer.from([4, 0xc2, 0, 60]), str(clientId), str(user), str(password)])
  return Buffer.concat([Buffer.from([0x10, body.length]), body])
}

/** The CONNACK return code the socket gets, or -1 if it closes without one. */
function connack(s: net.Socket): Promise<number> {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0)
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d])
      if (got.length >= 4) resolve(got[0] === 0x20 ? got[3]! : -1)
    })
    s.on('close', () => resolve(-1))
  })
}

test(`${Guesses} parallel guesses from one address: at most auth_fail_limit are answered, the right one (#${Right + 1}) is not let in`, { timeout: 60_000 }, async (tc) => {
  // 50,000 iterations (~35 ms a hash): the guesses arrive long before the first few checks are done.
  const entry = formatPasswordHash(await hashPassword('the-right-one', { iterations: 50_000 }))
  const t = await AttackTarget.start('parallel-guesses', `allow_anonymous false\npassword_file passwd\nauth_fail_limit ${FailLimit}\nauth_fail_exempt_loopback false\n`, { passwd: `alice:${entry}\n` })
  try {
    const sockets = await Promise.all(Array.from({ length: Guesses }, () => t.socket()))
    const codes = sockets.map(connack)
    // All at once, in one turn of our event loop.
    sockets.forEach((s, i) => s.write(connect(`guess-${i}`, 'alice', i === Right ? 'the-right-one' : `wrong-${i}`)))
    const got = await t.midge.guard(Promise.all(codes), 'a CONNACK for every guess', 20_000)
    const count = (c: number): number => got.filter((x) => x === c).length
    const summary = `CONNACK codes: 0 x${count(0)}, 4 (bad password) x${count(4)}, 5 (banned) x${count(5)}, 3 (busy) x${count(3)}, none x${count(-1)}`
    tc.diagnostic(summary)
    assert.notEqual(got[Right], 0, `the right password was let in; ${summary}`)
    assert.ok(count(0) + count(4) <= FailLimit, `guesses answered: ${count(0) + count(4)}, at most auth_fail_limit ${FailLimit}; ${summary}`)
    assert.equal(count(0) + count(4) + count(5) + count(3), Guesses, summary)
    assert.ok(count(3) > 0, `the per-address bound refused some at once; ${summary}`)
    // Another address is not affected by the ban, and the broker serves it.
    const other = await t.client(4, '127.0.0.2')
    const ack = await t.midge.guard(other.connect({ clientId: 'other', username: 'alice', password: Buffer.from('the-right-one') }), 'CONNECT from another address', 10_000)
    assert.equal(ack.reasonCode, 0)
    assert.ok(t.alive)
  } finally {
    await t.stop()
  }
})

test('auth_max_pending_per_address from the config: 10 CONNECTs at once with a bound of 2 give 8 Server busy at once', { timeout: 60_000 }, async (tc) => {
  const entry = formatPasswordHash(await hashPassword('pw', { iterations: 50_000 }))
  const t = await AttackTarget.start('pending-bound', 'allow_anonymous false\npassword_file passwd\nauth_fail_exempt_loopback false\nauth_max_pending_per_address 2\n', { passwd: `alice:${entry}\n` })
  try {
    const sockets = await Promise.all(Array.from({ length: 10 }, () => t.socket()))
    const codes = sockets.map(connack)
    sockets.forEach((s, i) => s.write(connect(`p-${i}`, 'alice', `wrong-${i}`)))
    const got = await t.midge.guard(Promise.all(codes), 'a CONNACK for every CONNECT', 20_000)
    tc.diagnostic(`CONNACK codes: ${got.join(' ')}`)
    assert.equal(got.filter((c) => c === 3).length, 8, 'eight refused as busy (3.1.1: 3, Server unavailable)')
    assert.equal(got.filter((c) => c === 4).length, 2, 'two checked: bad user name or password')
    await t.midge.waitFor(/Client p-\d+ from 127\.0\.0\.1:\d+ \(u'alice'\) refused: too many authentications from address 127\.0\.0\.1 are in progress \(auth_max_pending_per_address 2\)\./)
  } finally {
    await t.stop()
  }
})
