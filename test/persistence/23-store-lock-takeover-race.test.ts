/**
 * Two brokers starting on one store at the same moment (persistence/store-lock.ts): the one that judged a
 * lock stale must not remove the lock the other made meanwhile, and a lock being made is never seen empty
 * (an empty one reads as unreadable, hence stale). The other broker's moves are played at the exact step
 * of the race, through the fs calls the lock makes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { StoreLock, StoreLockedError } from '../../src/persistence/store-lock.js'
import { tempDir } from './tmp-dir.js'

/** A lock line of a live process (this test's parent), as another broker would write it. */
function liveLock(): string {
  const stat = fs.readFileSync(`/proc/${process.ppid}/stat`, 'latin1')
  const started = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  return `${process.ppid} ${started} 2026-01-01T00:00:00.000Z\n`
}

test('a stale lock replaced by another broker\'s live one between our read and our removal is left in place', (t) => {
  const dir = tempDir(t, 'midge-lock-race-')
  const store = path.join(dir, 'mosquitto.db')
  const lock = `${store}.lock`
  fs.writeFileSync(lock, '999999999 1 2020-01-01T00:00:00.000Z\n')
  const other = liveLock()
  const realRead = fs.readFileSync
  let raced = false
  t.mock.method(fs, 'readFileSync', ((p: fs.PathOrFileDescriptor, o?: unknown) => {
    const got = realRead(p, o as never)
    if (p === lock && !raced) {
      // The other broker takes the stale lock over right after we read it.
      raced = true
      fs.rmSync(lock)
      fs.writeFileSync(lock, other)
    }
    return got
  }) as typeof fs.readFileSync)
  const takeovers: string[] = []
  assert.throws(() => StoreLock.acquire(store, { onTakeOver: (m) => takeovers.push(m) }), StoreLockedError)
  assert.ok(raced)
  assert.equal(realRead(lock, 'latin1'), other)
  assert.deepEqual(takeovers, [])
  assert.deepEqual(fs.readdirSync(dir), ['mosquitto.db.lock'])
})

test('the lock file appears with its content: a broker looking at it while it is made sees the holder, not an empty file', (t) => {
  const dir = tempDir(t, 'midge-lock-race-')
  const store = path.join(dir, 'mosquitto.db')
  const lock = `${store}.lock`
  const seen: string[] = []
  const realWrite = fs.writeSync
  t.mock.method(fs, 'writeSync', ((fd: number, ...rest: unknown[]) => {
    // The moment between the lock's creation and its content: what would another broker read now?
    seen.push(fs.existsSync(lock) ? fs.readFileSync(lock, 'latin1') : '(no lock yet)')
    return (realWrite as (fd: number, ...r: unknown[]) => number)(fd, ...rest)
  }) as typeof fs.writeSync)
  const held = StoreLock.acquire(store)
  t.mock.restoreAll()
  assert.deepEqual(seen, ['(no lock yet)'])
  assert.match(fs.readFileSync(lock, 'latin1'), new RegExp(`^${process.pid} `))
  assert.deepEqual(fs.readdirSync(dir), ['mosquitto.db.lock'])
  held.release()
  assert.deepEqual(fs.readdirSync(dir), [])
})
