import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pbkdf2Sync } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { HASH_THREAD_NICE, HashThreads } from '../../src/auth/hash-threads.js'

/** nice value of each thread of this process (Linux /proc), by thread id. */
function threadNices(): Map<number, number> {
  const out = new Map<number, number>()
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
    // Fields after the `(comm)` one; nice is field 19 of stat(5), the 17th after it.
    out.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]))
  }
  return out
}

test('the hashing threads compute PBKDF2-HMAC-SHA512 as crypto does, queue beyond their size, and run at a lower priority', async () => {
  const pool = new HashThreads(1)
  const salt = Buffer.from('0123456789ab')
  const jobs = Array.from({ length: 5 }, (_, i) => pool.pbkdf2(Buffer.from(`pw${i}`), salt, 2000, 64))
  assert.equal(pool.queued, 4, 'one thread: one job runs, four wait')
  const keys = await Promise.all(jobs)
  keys.forEach((k, i) => assert.deepEqual(k, pbkdf2Sync(Buffer.from(`pw${i}`), salt, 2000, 64, 'sha512')))
  assert.equal(pool.queued, 0)
  const lowered = [...threadNices().values()].filter((n) => n === HASH_THREAD_NICE)
  assert.equal(lowered.length, 1, `exactly the one hashing thread runs at nice ${HASH_THREAD_NICE}: ${JSON.stringify([...threadNices()])}`)
  // The pool's idle thread does not keep this test process alive: the run ending is the check.
})

test('a pool of two runs two jobs at once', async () => {
  const pool = new HashThreads(2)
  const jobs = Array.from({ length: 4 }, (_, i) => pool.pbkdf2(Buffer.from(`x${i}`), Buffer.alloc(12), 1000, 64))
  assert.equal(pool.queued, 2, 'two run, two wait')
  const keys = await Promise.all(jobs)
  keys.forEach((k, i) => assert.deepEqual(k, pbkdf2Sync(Buffer.from(`x${i}`), Buffer.alloc(12), 1000, 64, 'sha512')))
  assert.equal(pool.queued, 0)
})
