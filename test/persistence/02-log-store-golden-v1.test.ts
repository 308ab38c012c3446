/**
 * Format version 1 pinned by golden files (test/fixtures/persistence/, made by make-golden-v1.ts with
 * an encoder independent of src/persistence). The expected states below are written out by hand from
 * the operation list in golden-v1.ts, never computed by the code under test. If one of these fails
 * after a change to the store, the change broke version 1: keep a reader for it and bump the version.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { FormatVersion, LogStore } from '../../src/persistence/log-store.js'
import type { RecoveredState, Store } from '../../src/persistence/store.js'
import { goldenOpsV1, type Op } from './golden-v1.js'
import { tempDir } from './tmp-dir.js'
import type { TestContext } from 'node:test'

const fixtures = path.resolve(import.meta.dirname, '../../../test/fixtures/persistence')

/** Loads a copy of a fixture (load() rewrites its file) and returns the state and the directory. */
function loadCopy(t: TestContext, name: string): { state: RecoveredState; dir: string; store: LogStore } {
  const dir = tempDir(t)
  fs.copyFileSync(path.join(fixtures, name), path.join(dir, 'midge.db'))
  const store = new LogStore({ dir, file: 'midge.db', fsync: false })
  t.after(() => store.close())
  return { state: store.load(), dir, store }
}

/** A JSON-friendly view: Buffers as hex, Maps as sorted entries. */
function view(state: RecoveredState): unknown {
  return JSON.parse(JSON.stringify({
    sessions: state.sessions,
    retained: state.retained,
    messages: [...state.messages.entries()].sort((a, b) => a[0] - b[0]),
    nextMessageId: state.nextMessageId,
    nextOutgoingId: state.nextOutgoingId,
  }, (_k, v: unknown) => {
    if (v !== null && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      return `hex:${Buffer.from((v as { data: number[] }).data).toString('hex')}`
    }
    return v
  }))
}

const hex = (s: string): string => `hex:${Buffer.from(s).toString('hex')}`

// ---- the expected contents, by hand -------------------------------------------------------------

const sub1Subscriptions = [
  { key: 'sensors/+/temp', filter: 'sensors/+/temp', group: '', qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 1, subscriptionId: 42 },
  { key: '$share/grp/jobs/#', filter: 'jobs/#', group: 'grp', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0 },
]

const doorMessage = {
  id: 2, topic: 'status/door', payload: hex('open'), qos: 1, retain: true,
  properties: { payloadFormatIndicator: 1, messageExpiryInterval: 3600, contentType: 'text/plain', userProperties: [['k', 'v'], ['k', 'w']] },
  expiresAt: 1_900_000_000_000, origin: 'pub-2',
}

const message1 = { id: 1, topic: 'sensors/a/temp', payload: hex('21.5'), qos: 1, retain: false, expiresAt: 0, origin: 'pub-1' }
const message4 = { id: 4, topic: 'sensors/b/temp', payload: 'hex:00ff10', qos: 2, retain: false, expiresAt: 0, origin: 'pub-1' }

const sub1 = {
  clientId: 'sub-1', expiryInterval: 3600, username: 'alice', disconnectedAt: 1_700_000_000_000,
  subscriptions: sub1Subscriptions,
  outgoing: [
    { oid: 2, messageId: 4, qos: 2, retain: false, subscriptionIds: [42, 7], packetId: 10, released: true },
    { oid: 1, messageId: 1, qos: 1, retain: false, subscriptionIds: [42], packetId: 11, released: false },
    { oid: 4, messageId: 4, qos: 2, retain: true, packetId: 0, released: false },
  ],
  incomingQos2: [65535],
}

const willer = {
  clientId: 'willer', expiryInterval: 0xffffffff, disconnectedAt: 1_700_000_001_000, subscriptions: [], outgoing: [], incomingQos2: [],
  will: { will: { topic: 'wills/willer', payload: hex('offline'), qos: 1, retain: true, properties: { contentType: 'text/plain', willDelayInterval: 30 } }, dueAt: 1_700_000_031_000 },
}

const openWill = {
  clientId: 'open-will', expiryInterval: 600, username: 'bob', disconnectedAt: 0, subscriptions: [], outgoing: [], incomingQos2: [],
  will: { will: { topic: 'wills/open', payload: 'hex:', qos: 0, retain: false }, dueAt: 0 },
}

const noWill = { clientId: 'no-will', expiryInterval: 600, disconnectedAt: 0, subscriptions: [], outgoing: [], incomingQos2: [] }

const basicState = {
  sessions: [sub1, willer, openWill, noWill],
  retained: [doorMessage],
  messages: [[1, message1], [4, message4]],
  nextMessageId: 5,
  nextOutgoingId: 5,
}

/** Every record before the first OutQueued (record 13): sub-1 with its subscriptions, message 4 read, nothing queued. */
const beforeQueueState = {
  sessions: [{ clientId: 'sub-1', expiryInterval: 3600, username: 'alice', disconnectedAt: 1_700_000_000_000, subscriptions: sub1Subscriptions, outgoing: [], incomingQos2: [] }],
  retained: [doorMessage],
  messages: [],
  nextMessageId: 5,
  nextOutgoingId: 1,
}

// ---- tests --------------------------------------------------------------------------------------

test('the format version this build writes is 1 (the golden files below are version 1)', () => {
  assert.equal(FormatVersion, 1)
  const head = fs.readFileSync(path.join(fixtures, 'v1-basic.db')).subarray(0, 12)
  assert.equal(head.toString('hex'), '4d494447454442' + '00' + '00000001') // "MIDGEDB\0", u32 1
})

test('golden v1-basic.db: every record type loads into the expected state', (t) => {
  const { state } = loadCopy(t, 'v1-basic.db')
  assert.deepEqual(view(state), basicState)
  assert.deepEqual(state.report.filter((l) => /damaged|bad|torn|unreadable|not a Midge/.test(l)), [])
})

test('golden v1-basic.db: LogStore writes exactly these bytes for the same operations (the writer is pinned too)', (t) => {
  const dir = tempDir(t)
  const store = new LogStore({ dir, file: 'midge.db', fsync: false })
  store.load()
  for (const op of goldenOpsV1) replay(store, op)
  store.close()
  const written = fs.readFileSync(path.join(dir, 'midge.db'))
  const golden = fs.readFileSync(path.join(fixtures, 'v1-basic.db'))
  if (!written.equals(golden)) {
    let i = 0
    while (i < written.length && written[i] === golden[i]) i++
    assert.fail(`LogStore's bytes differ from v1-basic.db first at byte ${i} (written ${written.length} bytes, golden ${golden.length})`)
  }
})

test('golden v1-basic.db: a second load of the rewritten file gives the same state', (t) => {
  const { dir, store } = loadCopy(t, 'v1-basic.db')
  store.close()
  const again = new LogStore({ dir, file: 'midge.db', fsync: false })
  t.after(() => again.close())
  assert.deepEqual(view(again.load()), basicState)
})

test('golden v1-torn-tail.db: a record cut short by a crash is dropped and set aside; everything before it loads', (t) => {
  const { state, dir } = loadCopy(t, 'v1-torn-tail.db')
  const noWillKept = { ...noWill, will: { will: { topic: 'wills/none', payload: hex('n'), qos: 2, retain: false }, dueAt: 0 } }
  assert.deepEqual(view(state), { ...basicState, sessions: [sub1, willer, openWill, noWillKept] })
  const aside = assertSetAside(dir, state, /torn record at byte 1339/)
  // The WillClear record of 'no-will' (body: type 15, u32 7, "no-will" = 12 bytes) without its last 3 bytes.
  assert.equal(aside.length, 17)
  assert.equal(aside.subarray(0, 4).toString('hex'), '0000000c')
  assert.equal(aside.subarray(8, 17).toString('hex'), '0f000000076e6f2d77')
})

test('golden v1-garbage-tail.db: junk after the last record is set aside; every record loads', (t) => {
  const { state, dir } = loadCopy(t, 'v1-garbage-tail.db')
  assert.deepEqual(view(state), basicState)
  const aside = assertSetAside(dir, state, /at byte 1359/)
  assert.equal(aside.toString(), 'this is not a record, just junk!')
})

test('golden v1-bad-crc.db: a flipped bit in a middle record drops it and everything after; what came before loads', (t) => {
  const { state, dir } = loadCopy(t, 'v1-bad-crc.db')
  assert.deepEqual(view(state), beforeQueueState)
  const aside = assertSetAside(dir, state, /bad checksum at byte 611/)
  assert.equal(aside.length, 1359 - 611)
})

test('golden v1-unknown-record.db: a record of an unknown type (CRC correct) stops the load there', (t) => {
  const { state, dir } = loadCopy(t, 'v1-unknown-record.db')
  assert.deepEqual(view(state), {
    sessions: [{ clientId: 'sub-1', expiryInterval: 3600, username: 'alice', disconnectedAt: 1_700_000_000_000, subscriptions: sub1Subscriptions, outgoing: [], incomingQos2: [] }],
    retained: [doorMessage],
    messages: [],
    nextMessageId: 3,
    nextOutgoingId: 1,
  })
  const aside = assertSetAside(dir, state, /unreadable record at byte 440 \(unknown record type 99\)/)
  assert.equal(aside.length, 1371 - 440)
  assert.equal(aside.subarray(0, 4).toString('hex'), '00000004')
  assert.equal(aside.subarray(8, 12).toString('hex'), '63010203')
})

test('golden v1-header-only.db: an empty version 1 store loads as empty', (t) => {
  const { state } = loadCopy(t, 'v1-header-only.db')
  assert.deepEqual(view(state), { sessions: [], retained: [], messages: [], nextMessageId: 1, nextOutgoingId: 1 })
})

test('golden bad-magic.db: a file that is not a Midge store is moved aside whole and the store starts empty', (t) => {
  const { state, dir } = loadCopy(t, 'bad-magic.db')
  assert.deepEqual(view(state), { sessions: [], retained: [], messages: [], nextMessageId: 1, nextOutgoingId: 1 })
  const aside = assertSetAside(dir, state, /not a Midge store/)
  assert.equal(aside.toString('latin1'), 'SQLite format 3\0 and then some bytes')
})

test('golden v2-header.db: a newer format version is refused with a message naming both versions, and the file is left alone', (t) => {
  const dir = tempDir(t)
  const file = path.join(dir, 'midge.db')
  fs.copyFileSync(path.join(fixtures, 'v2-header.db'), file)
  const before = fs.readFileSync(file)
  const store = new LogStore({ dir, file: 'midge.db', fsync: false })
  assert.throws(() => store.load(), /version 2.*version 1/)
  assert.ok(fs.readFileSync(file).equals(before), 'a file this build cannot read must not be modified')
  assert.deepEqual(fs.readdirSync(dir), ['midge.db'])
})

// ---- helpers ------------------------------------------------------------------------------------

/** Checks the report names the damage and the file it went to; returns that file's bytes. */
function assertSetAside(dir: string, state: RecoveredState, damage: RegExp): Buffer {
  const line = state.report.find((l) => damage.test(l))
  assert.ok(line !== undefined, `no report line matches ${damage}: ${JSON.stringify(state.report)}`)
  const asides = fs.readdirSync(dir).filter((f) => f.startsWith('midge.db.damaged-'))
  assert.equal(asides.length, 1, `one damaged-* file expected, found ${asides.join(', ') || 'none'}`)
  assert.ok(line.includes(asides[0]!), `the report line names the file the damaged bytes went to: ${line}`)
  return fs.readFileSync(path.join(dir, asides[0]!))
}

function replay(s: Store, op: Op): void {
  const pub = (p: Extract<Op, ['messageSaved', ...unknown[]]>[4]) => {
    const props: Record<string, unknown> = {}
    if (p.payloadFormatIndicator !== undefined) props.payloadFormatIndicator = p.payloadFormatIndicator
    if (p.messageExpiryInterval !== undefined) props.messageExpiryInterval = p.messageExpiryInterval
    if (p.contentType !== undefined) props.contentType = p.contentType
    if (p.userProperties !== undefined) props.userProperties = p.userProperties
    return Object.keys(props).length > 0 ? props : undefined
  }
  switch (op[0]) {
    case 'sessionSaved': s.sessionSaved(op[1], op[2], op[3], op[4]); return
    case 'sessionEnded': s.sessionEnded(op[1]); return
    case 'subscriptionAdded': s.subscriptionAdded(op[1], op[2]); return
    case 'subscriptionRemoved': s.subscriptionRemoved(op[1], op[2]); return
    case 'messageSaved': {
      const p = op[4]
      s.messageSaved({ id: op[1], expiresAt: op[2], origin: op[3], topic: p.topic, payload: p.payload, qos: p.qos, retain: p.retain, properties: pub(p) })
      return
    }
    case 'retainedSet': s.retainedSet(op[1], op[2]); return
    case 'retainedCleared': s.retainedCleared(op[1]); return
    case 'outgoingQueued': s.outgoingQueued(op[1], { oid: op[2], messageId: op[3], qos: op[4], retain: op[5], subscriptionIds: op[6], packetId: 0, released: false }); return
    case 'outgoingSent': s.outgoingSent(op[1], op[2], op[3]); return
    case 'outgoingReleased': s.outgoingReleased(op[1], op[2]); return
    case 'outgoingDone': s.outgoingDone(op[1], op[2]); return
    case 'incomingQos2Added': s.incomingQos2Added(op[1], op[2]); return
    case 'incomingQos2Released': s.incomingQos2Released(op[1], op[2]); return
    case 'willSaved': {
      const p = op[4]
      const props = { ...pub(p), ...(op[3] > 0 ? { willDelayInterval: op[3] } : {}) }
      s.willSaved(op[1], { will: { topic: p.topic, payload: p.payload, qos: p.qos, retain: p.retain, properties: Object.keys(props).length > 0 ? props : undefined }, dueAt: op[2] })
      return
    }
    case 'willCleared': s.willSaved(op[1], undefined)
  }
}

