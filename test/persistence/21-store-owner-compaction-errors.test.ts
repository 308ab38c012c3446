/**
 * The store and the broker's user (issue #12, item 6). Started as root, the broker reads and compacts its
 * store before dropping to `user`, then writes it as that user: every file and folder the store creates
 * while root must belong to that user, or the first write after the drop shuts the broker down (and every
 * later start refuses). And a compaction that fails (EACCES on <file>.new, a directory in its way) is logged
 * like a failed commit (file, user, what to do) while the broker keeps serving from its current log.
 *
 * Real Midge processes (bin/midge.js), killed with SIGKILL and restarted; raw packet-level clients.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lookupUser } from '../../src/config/file-access.js'
import { freePort } from '../helpers/ports.js'
import { MidgeProcess } from '../helpers/midge-process.js'
import { TestClient } from '../helpers/broker-harness.js'
import { LogStore } from '../../src/persistence/log-store.js'

const isRoot = process.getuid?.() === 0
/** The user a root-started broker drops to: Debian's mosquitto package provides `mosquitto`; else `nobody`. */
const dropUser = lookupUser('mosquitto') ?? lookupUser('nobody')
const needsRoot = isRoot && dropUser !== undefined ? false : 'needs root and a mosquitto or nobody account (the broker drops privileges only when started as root)'

interface Setup { dir: string; store: string; conf: string; port: number }

/** A persistence folder the broker's user owns, and a config using it. */
async function setup(name: string, userLine: string, extra = ''): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), `midge-${name}-`))
  if (dropUser !== undefined && isRoot) chownSync(dir, dropUser.uid, dropUser.gid)
  const port = await freePort()
  const conf = join(dir, 'midge.conf')
  writeFileSync(conf, `${userLine}\nlistener ${port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location ${dir}/\nlog_type all\n${extra}`)
  return { dir, store: join(dir, 'mosquitto.db'), conf, port }
}

async function start(s: Setup): Promise<MidgeProcess> {
  const midge = new MidgeProcess(['-c', s.conf], { cwd: s.dir })
  await midge.opened(1)
  return midge
}

async function client(midge: MidgeProcess, port: number, clientId: string, cleanStart: boolean): Promise<TestClient> {
  const socket = await midge.guard(new Promise<net.Socket>((resolve, reject) => {
    const sock = net.createConnection({ host: '127.0.0.1', port }, () => resolve(sock))
    sock.once('error', reject)
  }), `TCP connect for ${clientId}`)
  const c = new TestClient(socket, 4)
  const ack = await midge.guard(c.connect({ clientId, cleanStart, keepAlive: 0 }), `CONNECT ${clientId}`)
  assert.equal(ack.reasonCode, 0)
  return c
}

async function kill9(midge: MidgeProcess): Promise<void> {
  midge.child.kill('SIGKILL')
  await midge.exited
}

/** A persistent session plus enough history (subscribe/unsubscribe pairs) that the next start compacts the store. */
async function sessionWithHistory(midge: MidgeProcess, port: number): Promise<void> {
  const keeper = await client(midge, port, 'keeper', false)
  await midge.guard(keeper.subscribe('keep/#', { qos: 1 }), 'SUBSCRIBE keep/#')
  for (let i = 0; i < 600; i++) {
    await keeper.subscribe(`churn/${i}`, { qos: 1 })
    await keeper.unsubscribe(`churn/${i}`)
  }
  keeper.destroy()
}

test('started as root with `user`: after a kill -9, start-up compaction (as root) leaves the store to the broker user; a persistent QoS 1 publish is stored and the broker stays up', { skip: needsRoot, timeout: 60_000 }, async () => {
  const user = dropUser!
  const s = await setup('owner', `user ${user.name}`)
  let midge = await start(s)
  try {
    await midge.waitFor(new RegExp(`Changed user to '${user.name}'`))
    await sessionWithHistory(midge, s.port)
    await kill9(midge)

    midge = await start(s)
    await midge.waitFor(/Persistence: loaded 1 persistent sessions/)
    assert.equal(statSync(s.store).uid, user.uid, `the store after start-up compaction belongs to uid ${statSync(s.store).uid}`)
    assert.equal(statSync(s.store).gid, user.gid)

    const pub = await client(midge, s.port, 'publisher', false)
    const ack = await midge.guard(pub.publishAcked('keep/a', 'stored', { qos: 1 }), 'PUBACK after the restart')
    assert.equal(ack?.type, 4)
    const keeper = await client(midge, s.port, 'keeper', false)
    const got = await midge.guard(keeper.publishOn('keep/a', 5000), 'the queued message at the persistent subscriber')
    assert.equal(got.payload.toString(), 'stored')
    assert.ok(midge.child.exitCode === null, `midge exited:\n${midge.lines.join('\n')}`)
    assert.ok(!midge.lines.some((l) => /Persistence failed/.test(l)), midge.lines.join('\n'))
    pub.destroy()
    keeper.destroy()

    // The clean shutdown compacts again, now as the broker user; a later start (as root) accepts the store.
    assert.equal(await midge.stop(), 0, midge.lines.join('\n'))
    assert.equal(statSync(s.store).uid, user.uid)
    midge = await start(s)
    await midge.waitFor(/Persistence: loaded 2 persistent sessions/)
  } finally {
    await midge.stop()
    rmSync(s.dir, { recursive: true, force: true })
  }
})

test('a LogStore given an owner hands the folders it creates, the store and its snapshots to that owner', { skip: needsRoot }, async () => {
  const user = dropUser!
  const dir = mkdtempSync(join(tmpdir(), 'midge-owner-dir-'))
  try {
    const nested = join(dir, 'state', 'db')
    const store = new LogStore({ dir: nested, file: 'mosquitto.db', fsync: false, owner: { uid: user.uid, gid: user.gid } })
    const state = store.load()
    for (const p of [join(dir, 'state'), nested, join(nested, 'mosquitto.db')]) assert.equal(statSync(p).uid, user.uid, p)
    assert.equal(statSync(dir).uid, 0, 'a folder that existed before keeps its owner')
    store.sessionSaved('c1', 60, undefined, 0)
    await store.commit()
    store.compact({ ...state, sessions: [{ clientId: 'c1', expiryInterval: 60, username: undefined, disconnectedAt: 0, subscriptions: [], outgoing: [], incomingQos2: [], will: undefined }] })
    assert.equal(statSync(join(nested, 'mosquitto.db')).uid, user.uid, 'the snapshot that replaced the store')
    store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('start-up compaction that cannot write <file>.new is logged with the file and what to do; the broker serves from its current log and loses nothing', { timeout: 60_000 }, async () => {
  const s = await setup('compact-fail', 'user root')
  let midge = await start(s)
  try {
    await sessionWithHistory(midge, s.port)
    await kill9(midge)
    // Something in the way of the snapshot: a directory where <file>.new goes.
    mkdirSync(`${s.store}.new`)
    writeFileSync(join(`${s.store}.new`, 'keep'), '')

    midge = await start(s)
    const line = await midge.waitFor(/Persistence: cannot compact.*/)
    assert.match(line[0], new RegExp(`${s.store.replace(/[.]/g, '\\.')}\\.new`))
    assert.match(line[0], /keeps appending to .*mosquitto\.db/)
    const pub = await client(midge, s.port, 'publisher', false)
    await midge.guard(pub.publishAcked('keep/a', 'after a failed compaction', { qos: 1 }), 'PUBACK')
    pub.destroy()
    await kill9(midge)

    rmSync(`${s.store}.new`, { recursive: true })
    midge = await start(s)
    const keeper = await client(midge, s.port, 'keeper', false)
    const got = await midge.guard(keeper.publishOn('keep/a', 5000), 'the message stored while compaction failed')
    assert.equal(got.payload.toString(), 'after a failed compaction')
    keeper.destroy()
    assert.equal(await midge.stop(), 0, midge.lines.join('\n'))
  } finally {
    await midge.stop()
    rmSync(s.dir, { recursive: true, force: true })
  }
})

test('autosave compaction hitting EACCES on <file>.new (the folder is read-only for the broker user) is logged with file, user and fix; the broker keeps serving', { skip: needsRoot, timeout: 30_000 }, async () => {
  const user = dropUser!
  const s = await setup('autosave-eacces', `user ${user.name}`, 'autosave_on_changes true\nautosave_interval 5\n')
  let midge: MidgeProcess | undefined
  try {
    midge = await start(s)
    await midge.waitFor(new RegExp(`Changed user to '${user.name}'`))
    const sub = await client(midge, s.port, 'keeper', false)
    await midge.guard(sub.subscribe('keep/#', { qos: 1 }), 'SUBSCRIBE')
    // The store file stays writable; only new files in the folder (the snapshot) are refused.
    chmodSync(s.dir, 0o500)
    const pub = await client(midge, s.port, 'publisher', false)
    for (let i = 0; i < 20; i++) await midge.guard(pub.publishAcked('keep/a', `m${i}`, { qos: 1 }), `PUBACK ${i}`)
    const line = await midge.waitFor(/Persistence: cannot compact.*/)
    assert.match(line[0], /mosquitto\.db\.new/)
    assert.match(line[0], new RegExp(`permission denied for user ${user.name}`))
    assert.match(line[0], /writable by that user/)
    for (let i = 0; i < 20; i++) await sub.ack(await midge.guard(sub.publishOn('keep/a', 5000), `message ${i}`))
    // Retried at most once a minute, not at every change.
    assert.equal(midge.lines.filter((l) => /Persistence: cannot compact/.test(l)).length, 1, midge.lines.join('\n'))
    await midge.guard(pub.publishAcked('keep/a', 'still serving', { qos: 1 }), 'PUBACK after the failure')
    assert.ok(midge.child.exitCode === null, `midge exited:\n${midge.lines.join('\n')}`)
    pub.destroy()
    sub.destroy()
    // The store is intact: the broker exits cleanly.
    assert.equal(await midge.stop(), 0, midge.lines.join('\n'))
    assert.ok(!existsSync(`${s.store}.new`))
  } finally {
    chmodSync(s.dir, 0o700)
    await midge?.stop()
    rmSync(s.dir, { recursive: true, force: true })
  }
})
