import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pbkdf2Sync, createHash } from 'node:crypto'
import {
  DEFAULT_PBKDF2_ITERATIONS,
  formatPasswordHash,
  hashPassword,
  isPasswordHash,
  parsePasswordHash,
  verifyPassword,
  verifyPasswordSync,
} from '../../src/auth/password-hash.js'
import { AuthError } from '../../src/auth/errors.js'

// Written by mosquitto_passwd 2.0.11 (`-c -b f alice secret` and `-H sha512 -b f bob pw2`): golden bytes
// from the reference tool, not from the code under test.
const MOSQ_PBKDF2_ALICE = '$7$101$wzfc3E0JZD6FKX3q$v0OhhMClnnvvtnP6Vbo3ugBHyOu2X/4lo0MvHT354wnQSEg83oXqZniOCDiXh5AJ0tciyXzOVCN4bSr+xAbMgw=='
const MOSQ_SHA512_BOB = '$6$1CaSeM5UvGLahjn6$sSxooxq0OEaTusLNXqJKRm8lfeg1ExR+9QJtINb9dqRfh/9WnBfLrfOHZvuHjNxZhEnL5sAQh8OV91mIvwTAuw=='

test('a $7$ hash written by mosquitto_passwd verifies its password and no other', async () => {
  const h = parsePasswordHash(MOSQ_PBKDF2_ALICE)
  assert.equal(h.algorithm, 'sha512-pbkdf2')
  assert.equal(h.algorithm === 'sha512-pbkdf2' && h.iterations, 101)
  assert.equal(h.salt.length, 12)
  assert.equal(h.hash.length, 64)
  assert.equal(await verifyPassword(h, Buffer.from('secret')), true)
  assert.equal(await verifyPassword(h, Buffer.from('Secret')), false)
  assert.equal(await verifyPassword(h, Buffer.from('secrets')), false)
  assert.equal(await verifyPassword(h, Buffer.from('')), false)
  assert.equal(verifyPasswordSync(h, Buffer.from('secret')), true)
})

test('a $6$ hash (SHA-512 of password then salt) written by mosquitto_passwd -H sha512 verifies', async () => {
  const h = parsePasswordHash(MOSQ_SHA512_BOB)
  assert.equal(h.algorithm, 'sha512')
  assert.equal(await verifyPassword(h, Buffer.from('pw2')), true)
  assert.equal(await verifyPassword(h, Buffer.from('pw')), false)
})

test('formatting a parsed hash gives back the same text', () => {
  for (const text of [MOSQ_PBKDF2_ALICE, MOSQ_SHA512_BOB]) assert.equal(formatPasswordHash(parsePasswordHash(text)), text)
})

test('new hashes: $7$, default iterations, 12-byte salt, 64-byte PBKDF2-HMAC-SHA512 in padded base64', async () => {
  const h = await hashPassword('hunter2')
  const text = formatPasswordHash(h)
  const m = /^\$7\$(\d+)\$([A-Za-z0-9+/]{16})\$([A-Za-z0-9+/]{86}==)$/.exec(text)
  assert.ok(m, text)
  assert.equal(Number(m[1]), DEFAULT_PBKDF2_ITERATIONS)
  const salt = Buffer.from(m[2]!, 'base64')
  assert.equal(salt.length, 12)
  // Recomputed here with node:crypto directly, independent of the module's own digest code.
  assert.equal(m[3], pbkdf2Sync('hunter2', salt, DEFAULT_PBKDF2_ITERATIONS, 64, 'sha512').toString('base64'))
})

test('new $6$ hashes and chosen iteration counts', async () => {
  const salt = Buffer.from('000102030405060708090a0b', 'hex')
  const six = formatPasswordHash(await hashPassword('pw', { algorithm: 'sha512', salt }))
  const expected = createHash('sha512').update('pw').update(salt).digest('base64')
  assert.equal(six, `$6$${salt.toString('base64')}$${expected}`)
  const seven = formatPasswordHash(await hashPassword('pw', { iterations: 2000, salt }))
  assert.equal(seven, `$7$2000$${salt.toString('base64')}$${pbkdf2Sync('pw', salt, 2000, 64, 'sha512').toString('base64')}`)
  await assert.rejects(hashPassword('pw', { salt: Buffer.alloc(16) }), { code: 'AUTH_ERR_HASH_FORMAT' })
  await assert.rejects(hashPassword('pw', { iterations: 0 }), { code: 'AUTH_ERR_HASH_FORMAT' })
})

test('malformed hashes are refused with AUTH_ERR_HASH_FORMAT and a reason', () => {
  const salt12 = 'wzfc3E0JZD6FKX3q'
  const hash64 = 'v0OhhMClnnvvtnP6Vbo3ugBHyOu2X/4lo0MvHT354wnQSEg83oXqZniOCDiXh5AJ0tciyXzOVCN4bSr+xAbMgw=='
  const cases: Array<[string, RegExp]> = [
    ['secret', /not a hash/],
    ['$5$abc$def', /unknown hash type/],
    [`$7$0$${salt12}$${hash64}`, /outside/],
    [`$7$x1$${salt12}$${hash64}`, /not a positive integer/],
    [`$7$101$${salt12}`, /form/],
    [`$7$101$${Buffer.alloc(16).toString('base64')}$${hash64}`, /salt is 16 bytes/],
    [`$7$101$${salt12}$${Buffer.alloc(32).toString('base64')}`, /hash is 32 bytes/],
    [`$7$101$${salt12}$${hash64.slice(0, -2)}`, /hash is not valid base64/],
    [`$7$101$wzfc3E0J!D6FKX3q$${hash64}`, /salt is not valid base64/],
    [`$6$${salt12}`, /form/],
  ]
  for (const [text, reason] of cases) {
    assert.throws(() => parsePasswordHash(text), (err: unknown) => {
      assert.ok(err instanceof AuthError)
      assert.equal(err.code, 'AUTH_ERR_HASH_FORMAT')
      assert.match(err.message, reason, text)
      return true
    })
    assert.equal(isPasswordHash(text), false)
  }
  assert.equal(isPasswordHash(MOSQ_PBKDF2_ALICE), true)
})
