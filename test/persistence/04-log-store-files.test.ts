/**
 * LogStore specifics beyond the Store contract: group commit is one write() (and with fsync one
 * fdatasync) per commit however many records; nothing reaches the file before commit; compaction goes
 * through <file>.new and a rename; start-up keeps a snapshot-like file and rewrites a long history;
 * file modes; error messages that name the file and what to do.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import os from 'node:os'
import { LogStore, describeFileError } from '../../src/persistence/log-store.js'
import { Broker } from '../../src/broker/broker.js'
import { silentLogger } from '../../src/observability/logger.js'
import { tempDir } from './tmp-dir.js'
import { waitUntil } from '../helpers/broker-harness.js'

const File = 'midge.db'

/** Counts calls of fs.<name> (the default export object LogStore uses) while `body` runs. */
async function counting<K extends 'write' | 'fdatasync' | 'writeSync' | 'fdatasyncSync'>(t: TestContext, name: K, body: () => Promise<void> | void): Promise<number> {
  const original = fs[name]
  let calls = 0
  const wrapped = ((...args: unknown[]) => { calls++; return (original as (...a: unknown[]) => unknown)(...args) }) as unknown as typeof fs[K]
  fs[name] = wrapped
  t.after(() => { fs[name] = original })
  try {
    await body()
  } finally {
    fs[name] = original
  }
  return calls
}

function open(t: TestContext, dir: string, fsync = false): LogStore {
  const s = new LogStore({ dir, file: File, fsync })
  t.after(() => s.close())
  return s
}

const sub = (key: string) => ({ key, filter: key, group: '', qos: 1 as const, noLocal: false, retainAsPublished: false, retainHandling: 0 as const, subscriptionId: 0 })

test('group commit: 1,000 mutations become one write() at commit, and with fsync one fdatasync, both on the thread pool', async (t) => {
  for (const fsync of [false, true]) {
    const store = open(t, tempDir(t), fsync)
    store.load()
    for (let i = 0; i < 1000; i++) store.subscriptionAdded('c', sub(`t/${i}`))
    let blockingWrites = 0
    let blockingSyncs = 0
    const writes = await counting(t, 'write', async () => {
      const syncs = await counting(t, 'fdatasync', async () => {
        blockingWrites = await counting(t, 'writeSync', async () => {
          blockingSyncs = await counting(t, 'fdatasyncSync', () => store.commit())
        })
      })
      assert.equal(syncs, fsync ? 1 : 0, `fdatasync calls with fsync ${fsync}`)
    })
    assert.equal(writes, 1)
    assert.deepEqual([blockingWrites, blockingSyncs], [0, 0], 'nothing written or synced on the event loop')
    assert.equal(store.commit(), undefined, 'an empty commit does nothing')
  }
})

test('records buffered while a commit writes go to the next commit, in order', async (t) => {
  const dir = tempDir(t)
  const store = open(t, dir)
  store.load()
  store.sessionSaved('first', 60, undefined, 0)
  const writing = store.commit()
  store.sessionSaved('second', 60, undefined, 0)
  store.sessionEnded('first')
  assert.equal(store.dirty, true)
  await writing
  assert.deepEqual(open(t, dir).load().sessions.map((s) => s.clientId), ['first'], 'the first commit alone is on disk')
  await store.commit()
  assert.deepEqual(open(t, dir).load().sessions.map((s) => s.clientId), ['second'])
})

test('nothing reaches the file before commit(); everything does after it', async (t) => {
  const dir = tempDir(t)
  const store = open(t, dir)
  store.load()
  const size = fs.statSync(path.join(dir, File)).size
  store.sessionSaved('c', 60, undefined, 0)
  store.subscriptionAdded('c', sub('a'))
  assert.equal(fs.statSync(path.join(dir, File)).size, size)
  const before = open(t, dir).load()
  assert.deepEqual(before.sessions, [], 'a crash now loses the uncommitted turn, which nobody was told about')
  await store.commit()
  assert.ok(fs.statSync(path.join(dir, File)).size > size)
  assert.deepEqual(open(t, dir).load().sessions.map((s) => s.clientId), ['c'])
})

test('compaction writes <file>.new and renames it: no .new is left, a stale one from a crash is replaced, modes are 0600 / 0700', async (t) => {
  const dir = path.join(tempDir(t), 'not', 'yet')
  const store = open(t, dir)
  store.load()
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700, 'persistence_location is created private')
  fs.writeFileSync(path.join(dir, `${File}.new`), 'left over by a crash in the middle of a compaction')
  store.sessionSaved('c', 60, undefined, 0)
  await store.commit()
  store.compact({ sessions: [{ clientId: 'c', expiryInterval: 60, username: undefined, disconnectedAt: 0, subscriptions: [], outgoing: [], incomingQos2: [], will: undefined }], retained: [], messages: new Map(), nextMessageId: 1, nextOutgoingId: 1, report: [] })
  assert.deepEqual(fs.readdirSync(dir), [File])
  assert.equal(fs.statSync(path.join(dir, File)).mode & 0o777, 0o600)
  assert.deepEqual(open(t, dir).load().sessions.map((s) => s.clientId), ['c'])
})

test('start-up keeps a file that is mostly live records (appends continue after it) and rewrites one that is mostly history', async (t) => {
  const dir = tempDir(t)
  const file = path.join(dir, File)
  const w = open(t, dir)
  w.load()
  for (let i = 0; i < 500; i++) w.sessionSaved(`c${i}`, 60, undefined, 0)
  w.close()
  const snapshotLike = fs.readFileSync(file)
  const a = open(t, dir)
  a.load()
  assert.ok(fs.readFileSync(file).equals(snapshotLike), 'a snapshot-like file is not rewritten at start-up')
  a.sessionSaved('late', 60, undefined, 0)
  await a.commit()
  assert.ok(fs.readFileSync(file).subarray(0, snapshotLike.length).equals(snapshotLike), 'new records are appended after it')
  a.close()
  // 5,000 saves of one session: one live record, a long history.
  const h = open(t, dir)
  h.load()
  for (let i = 0; i < 5000; i++) h.sessionSaved('busy', i + 1, undefined, 0)
  h.close()
  const longSize = fs.statSync(file).size
  const b = open(t, dir)
  const state = b.load()
  assert.ok(fs.statSync(file).size < longSize / 5, `a long history is compacted at start-up (${longSize} -> ${fs.statSync(file).size} bytes)`)
  assert.equal(b.changesSinceCompaction, 0)
  assert.equal(state.sessions.find((s) => s.clientId === 'busy')?.expiryInterval, 5000)
  assert.equal(state.sessions.length, 502)
})

test('a store file that cannot be read is an error naming the file (here: a directory in its place)', (t) => {
  const dir = tempDir(t)
  fs.mkdirSync(path.join(dir, File))
  assert.throws(() => new LogStore({ dir, file: File, fsync: false }).load(), (err: Error) => err.message.includes(path.join(dir, File)) && /cannot read the persistence file/.test(err.message))
})

test('file errors say which file, which user, and what to do', () => {
  const eacces = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' })
  const m = describeFileError(eacces, '/var/lib/midge/midge.db', 'write').message
  assert.match(m, /cannot write the persistence file \/var\/lib\/midge\/midge\.db: permission denied for user .+ \(uid \d+\); make \/var\/lib\/midge\/midge\.db and its directory \/var\/lib\/midge writable/)
  assert.match(describeFileError(Object.assign(new Error('x'), { code: 'ENOSPC' }), '/d/f', 'write').message, /the disk is full/)
  assert.match(describeFileError(Object.assign(new Error('x'), { code: 'EROFS' }), '/d/f', 'write').message, /read-only/)
  assert.equal(describeFileError(eacces, '/d/f', 'write').cause, eacces)
})

test('autosave compacts only once the log has grown as large as the live state (at least 1000 records)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-autosave-'))
  try {
    const store = new LogStore({ dir, file: 'a.db', fsync: false })
    const broker = new Broker({ logger: silentLogger(), sysInterval: 0, store, autosaveInterval: 0 })
    await broker.restore()
    const autosave = (): void => (broker as unknown as { autosave(): void }).autosave()
    for (let i = 0; i < 1500; i++) broker.publish(`r/${i}`, Buffer.from('x'), 0, true, undefined)
    await broker.commitStore()
    assert.equal(store.changesSinceCompaction, 3000, 'a message and a retained record per publish')
    autosave()
    assert.equal(store.compacting, true, 'the log was larger than the live state: compacting in the background')
    await waitUntil(() => !store.compacting, 'the background compaction to finish')
    assert.equal(store.changesSinceCompaction, 0, 'compacted')
    assert.equal(store.recordsAtCompaction, 3000)
    for (let i = 0; i < 10; i++) broker.publish(`r/${i}`, Buffer.from('y'), 0, true, undefined)
    await broker.commitStore()
    autosave()
    assert.equal(store.changesSinceCompaction, 20, 'a few changes to a large store: no rewrite')
    broker.close()
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
