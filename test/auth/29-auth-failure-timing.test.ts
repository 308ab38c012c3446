/**
 * What a refused password check reveals (issue #12, items 10 and 5):
 *  - its duration must not depend on the user: every refusal is held until the cost of the slowest hash in the
 *    file has passed since its hash started. Tested with a fake hasher and a fake clock: the durations are
 *    exact numbers, not measurements;
 *  - every byte of the password counts: a trailing NUL (which PBKDF2's HMAC key padding ignores) is refused;
 *  - the queue of password checks waiting for a hashing thread is bounded: beyond it, busy at once.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pbkdf2Sync, randomBytes } from 'node:crypto'
import { PasswordFileAuthenticator, type PasswordHasher, type TimedKey } from '../../src/auth/password-authenticator.js'
import { HashAlgorithm, hashPassword, type PasswordHash } from '../../src/auth/password-hash.js'
import type { AuthRequest, AuthResult } from '../../src/auth/types.js'

function req(username: string, password: string | Buffer, remoteAddress = '192.0.2.1'): AuthRequest {
  return { clientId: 'c1', username, password: typeof password === 'string' ? Buffer.from(password) : password, remoteAddress, listener: '1883', allowAnonymous: false }
}

/** A `$7$` entry no password matches (random hash), at the given iteration count. */
function entry(iterations: number): PasswordHash {
  return { algorithm: HashAlgorithm.Sha512Pbkdf2, iterations, salt: randomBytes(12), hash: randomBytes(64) }
}

/** A clock that only moves when told, and a sleep that moves it: every duration is exact. */
class FakeTime {
  t = 1_000_000
  readonly sleeps: number[] = []
  readonly now = (): number => this.t
  readonly sleep = async (ms: number): Promise<void> => {
    this.sleeps.push(ms)
    this.t += ms
  }
}

/** Hashes "take" msPerIteration x iterations on the fake clock and report that time, as the threads do. */
class FakeHasher implements PasswordHasher {
  constructor(private readonly time: FakeTime, public msPerIteration: number) {}
  async pbkdf2Timed(password: Buffer, salt: Buffer, iterations: number, keylen: number): Promise<TimedKey> {
    const ms = iterations * this.msPerIteration
    this.time.t += ms
    const key = iterations <= 10_000 ? pbkdf2Sync(password, salt, iterations, keylen, 'sha512') : randomBytes(keylen)
    return { key, ms }
  }
}

async function refusalTime(auth: PasswordFileAuthenticator, time: FakeTime, r: AuthRequest): Promise<{ ms: number; result: AuthResult }> {
  const start = time.t
  const result = await auth.authenticate(r)
  return { ms: time.t - start, result }
}

test('a wrong password takes as long for a 101-iteration user as for a 100,000-iteration one, and for an unknown user', async () => {
  const time = new FakeTime()
  const users = new Map([['u101', entry(101)], ['u10k', entry(10_000)], ['u10k-b', entry(10_000)], ['u100k', entry(100_000)]])
  // The fake reports the authenticator's starting estimate, so the padding is exactly 100,000 iterations' worth.
  const perIteration = PasswordFileAuthenticator.InitialMsPerIteration
  const auth = new PasswordFileAuthenticator(users, { hashThreads: new FakeHasher(time, perIteration), now: time.now, sleep: time.sleep })
  const times: Record<string, number> = {}
  for (const user of ['u101', 'u10k', 'u100k', 'nobody']) {
    const { ms, result } = await refusalTime(auth, time, req(user, 'guess'))
    assert.equal(result.ok, false)
    times[user] = ms
  }
  const slowest = 100_000 * perIteration
  for (const [user, ms] of Object.entries(times)) {
    assert.ok(ms >= slowest, `${user}: refused after ${ms} ms, before the slowest user's hash (${slowest} ms) would have finished`)
  }
  assert.equal(new Set(Object.values(times)).size, 1, `every refusal takes the same time: ${JSON.stringify(times)}`)
})

test('the padding follows the measured hashing speed, and a reload that adds a slower user raises it', async () => {
  const time = new FakeTime()
  const hasher = new FakeHasher(time, PasswordFileAuthenticator.InitialMsPerIteration)
  const auth = new PasswordFileAuthenticator(new Map([['u1k', entry(1000)]]), { hashThreads: hasher, now: time.now, sleep: time.sleep })
  const before = (await refusalTime(auth, time, req('u1k', 'x'))).ms
  // The machine gets four times slower: the estimate follows.
  hasher.msPerIteration *= 4
  for (let i = 0; i < 30; i++) await auth.authenticate(req('u1k', `x${i}`))
  const slower = (await refusalTime(auth, time, req('u1k', 'y'))).ms
  assert.ok(slower > 3 * before, `padding ${before} ms -> ${slower} ms after the hashes got 4x slower`)
  auth.setUsers(new Map([['u1k', entry(1000)], ['u50k', entry(50_000)]]))
  const withSlowUser = (await refusalTime(auth, time, req('u1k', 'z'))).ms
  assert.ok(withSlowUser >= 50_000 * hasher.msPerIteration, `after the reload a refusal takes the 50,000-iteration user's time (${withSlowUser} ms)`)
})

test('a right password is not padded', async () => {
  const time = new FakeTime()
  const users = new Map([['alice', await hashPassword('secret', { iterations: 1000 })], ['slow', entry(100_000)]])
  const auth = new PasswordFileAuthenticator(users, { hashThreads: new FakeHasher(time, PasswordFileAuthenticator.InitialMsPerIteration), now: time.now, sleep: time.sleep })
  const { ms, result } = await refusalTime(auth, time, req('alice', 'secret'))
  assert.deepEqual(result, { ok: true, username: 'alice' })
  assert.equal(ms, 1000 * PasswordFileAuthenticator.InitialMsPerIteration)
  assert.deepEqual(time.sleeps, [])
})

test('every byte of the password counts: a trailing NUL is refused, before and after the right password was cached', async () => {
  const auth = new PasswordFileAuthenticator(new Map([['alice', await hashPassword('secret', { iterations: 1000 })]]))
  const withNul = Buffer.from('secret\0')
  assert.deepEqual(await auth.authenticate(req('alice', withNul)), { ok: false, reason: 'bad-credentials', detail: "wrong password for user 'alice'" })
  assert.deepEqual(await auth.authenticate(req('alice', 'secret')), { ok: true, username: 'alice' })
  assert.equal((await auth.authenticate(req('alice', withNul))).ok, false)
  assert.equal((await auth.authenticate(req('alice', Buffer.from('secret\0\0\0')))).ok, false)
  assert.equal((await auth.authenticate(req('alice', Buffer.from('sec\0ret')))).ok, false)
})

test('the queue of checks waiting for a hashing thread is bounded: beyond maxQueuedHashes, busy at once', async () => {
  const release: Array<() => void> = []
  const stuck: PasswordHasher = {
    pbkdf2Timed: (_pw, _salt, _it, keylen) => new Promise<TimedKey>((resolve) => release.push(() => resolve({ key: randomBytes(keylen), ms: 1 }))),
  }
  const opts = { hashThreads: stuck, maxConcurrentHashes: 1, maxQueuedHashes: 2, sleep: async () => {} }
  const auth = new PasswordFileAuthenticator(new Map([['alice', entry(1000)]]), opts)
  const running = auth.authenticate(req('alice', 'a1'))
  const queued = [auth.authenticate(req('alice', 'a2')), auth.authenticate(req('nobody', 'a3'))]
  assert.equal(auth.queuedHashes, 2)
  const refused = auth.authenticate(req('alice', 'a4'))
  assert.ok(!(refused instanceof Promise), 'refused at once')
  assert.deepEqual(refused, { ok: false, reason: 'busy', detail: 'the queue of password checks is full (auth_max_queued_hashes 2)' })
  // An unknown user costs a hash too (the decoy), so it is refused the same way.
  assert.deepEqual(auth.authenticate(req('nobody', 'a5')), refused)
  while (release.length > 0 || auth.queuedHashes > 0) {
    release.shift()?.()
    await new Promise((r) => setImmediate(r))
  }
  for (const r of await Promise.all([running, ...queued])) assert.equal(r.ok, false)
})
