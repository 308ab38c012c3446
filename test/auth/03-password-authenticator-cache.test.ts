import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PasswordFileAuthenticator } from '../../src/auth/password-authenticator.js'
import { formatPasswordHash, hashPassword, type PasswordHash } from '../../src/auth/password-hash.js'
import { AuthError } from '../../src/auth/errors.js'
import type { AuthRequest, AuthResult } from '../../src/auth/types.js'

function req(username: string | undefined, password: string | undefined, extra: Partial<AuthRequest> = {}): AuthRequest {
  return {
    clientId: 'c1', username, password: password === undefined ? undefined : Buffer.from(password),
    remoteAddress: '192.0.2.1', listener: '1883', allowAnonymous: false, ...extra,
  }
}

// Few iterations: these tests are about behaviour, not cost.
async function users(entries: Record<string, string>, iterations = 1000): Promise<Map<string, PasswordHash>> {
  const m = new Map<string, PasswordHash>()
  for (const [u, p] of Object.entries(entries)) m.set(u, await hashPassword(p, { iterations }))
  return m
}

test('a missing username is refused unless the listener allows anonymous clients', async () => {
  const auth = new PasswordFileAuthenticator(await users({ alice: 'secret' }))
  assert.deepEqual(await auth.authenticate(req(undefined, undefined)), {
    ok: false, reason: 'not-authorized', detail: 'anonymous clients are not allowed on this listener',
  })
  assert.deepEqual(await auth.authenticate(req(undefined, undefined, { allowAnonymous: true })), { ok: true, username: undefined })
})

test('a certificate identity is accepted without a password (use_identity_as_username)', async () => {
  const auth = new PasswordFileAuthenticator(await users({}))
  assert.deepEqual(await auth.authenticate(req(undefined, undefined, { certificateUsername: 'device-7' })), { ok: true, username: 'device-7' })
})

test('usernames and passwords are compared exactly; every refusal is bad-credentials', async () => {
  const auth = new PasswordFileAuthenticator(await users({ alice: 'secret' }))
  assert.deepEqual(await auth.authenticate(req('alice', 'secret')), { ok: true, username: 'alice' })
  const refused: Array<[string, string | undefined, RegExp]> = [
    ['alice', 'Secret', /wrong password/],
    ['alice', 'secret ', /wrong password/],
    ['alice', undefined, /no password/],
    ['Alice', 'secret', /unknown user/],
    [' alice', 'secret', /unknown user/],
    ['bob', 'secret', /unknown user/],
  ]
  for (const [u, p, detail] of refused) {
    const r = await auth.authenticate(req(u, p, { allowAnonymous: true }))
    assert.equal(r.ok, false, `${u}/${p}`)
    assert.equal(!r.ok && r.reason, 'bad-credentials')
    assert.match(!r.ok ? r.detail ?? '' : '', detail)
  }
})

test('a repeated valid login is answered from the cache, synchronously; a wrong password still hashes', async () => {
  const auth = new PasswordFileAuthenticator(await users({ alice: 'secret', bob: 'pw' }))
  const first = auth.authenticate(req('alice', 'secret'))
  assert.ok(first instanceof Promise, 'the first check hashes')
  assert.deepEqual(await first, { ok: true, username: 'alice' })
  assert.equal(auth.cachedUsers, 1)
  const again = auth.authenticate(req('alice', 'secret'))
  assert.ok(!(again instanceof Promise), 'a cache hit costs no hashing')
  assert.deepEqual(again, { ok: true, username: 'alice' })
  const wrong = auth.authenticate(req('alice', 'guess'))
  assert.ok(wrong instanceof Promise)
  assert.equal((await wrong).ok, false)
  assert.deepEqual(auth.authenticate(req('alice', 'secret')), { ok: true, username: 'alice' }, 'a failure does not evict')
})

test('identical checks in flight share one PBKDF2; distinct ones queue behind the concurrency limit', async () => {
  const auth = new PasswordFileAuthenticator(await users({ alice: 'secret' }, 20_000), { maxConcurrentHashes: 2 })
  const same = Array.from({ length: 20 }, () => auth.authenticate(req('alice', 'secret')) as Promise<AuthResult>)
  assert.equal(auth.queuedHashes, 0, 'twenty identical checks start one job')
  const distinct = Array.from({ length: 10 }, (_, i) => auth.authenticate(req('alice', `guess${i}`)) as Promise<AuthResult>)
  assert.equal(auth.queuedHashes, 9, 'the first job holds one slot, one more runs, nine wait')
  for (const r of await Promise.all(same)) assert.deepEqual(r, { ok: true, username: 'alice' })
  for (const r of await Promise.all(distinct)) assert.equal(r.ok, false)
  assert.equal(auth.queuedHashes, 0)
})

test('a burst of wrong passwords hashes off the event loop and never delays a cached valid client', async () => {
  const auth = new PasswordFileAuthenticator(await users({ alice: 'secret', eve: 'x' }, 10_000))
  assert.deepEqual(await auth.authenticate(req('alice', 'secret')), { ok: true, username: 'alice' })
  const burst = Array.from({ length: 30 }, (_, i) => auth.authenticate(req('eve', `wrong${i}`)) as Promise<AuthResult>)
  assert.ok(auth.queuedHashes > 0)
  // While the burst is being hashed, the valid client is answered at once.
  assert.deepEqual(auth.authenticate(req('alice', 'secret')), { ok: true, username: 'alice' })
  // And the event loop keeps turning: were the hashing on the main thread, no setImmediate could run in between.
  let turns = 0
  let done = false
  const all = Promise.all(burst).finally(() => { done = true })
  await new Promise<void>((resolve) => {
    const spin = (): void => { if (done) resolve(); else { turns++; setImmediate(spin) } }
    setImmediate(spin)
  })
  for (const r of await all) assert.equal(r.ok, false)
  assert.ok(turns > 10, `event loop turned ${turns} times during the burst`)
})

test('reload() reads the file again and drops the cache; a broken file leaves the old users in force', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'midge-auth-'))
  const file = join(dir, 'pw')
  try {
    const line = async (u: string, p: string): Promise<string> => `${u}:${formatPasswordHash(await hashPassword(p, { iterations: 1000 }))}\n`
    await writeFile(file, await line('alice', 'old'))
    const auth = await PasswordFileAuthenticator.fromFile(file)
    assert.equal(auth.userCount, 1)
    assert.deepEqual(await auth.authenticate(req('alice', 'old')), { ok: true, username: 'alice' })
    assert.equal(auth.cachedUsers, 1)

    await writeFile(file, (await line('alice', 'new')) + (await line('bob', 'pw')))
    assert.equal(await auth.reload(), 2)
    assert.equal(auth.cachedUsers, 0)
    assert.equal((await auth.authenticate(req('alice', 'old'))).ok, false, 'the old password no longer works')
    assert.deepEqual(await auth.authenticate(req('alice', 'new')), { ok: true, username: 'alice' })

    await writeFile(file, 'alice:plaintext\n')
    await assert.rejects(auth.reload(), (err: unknown) => err instanceof AuthError && err.code === 'AUTH_ERR_PASSWORD_FILE' && err.line === 1)
    assert.deepEqual(await auth.authenticate(req('bob', 'pw')), { ok: true, username: 'bob' }, 'old users still in force')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a check that was hashing during a reload is decided against the new file', async () => {
  const auth = new PasswordFileAuthenticator(await users({ alice: 'old' }, 20_000))
  const next = await users({ alice: 'new' }, 1000)
  const pending = auth.authenticate(req('alice', 'old'))
  auth.setUsers(next)
  assert.equal((await pending).ok, false)
})
