/**
 * When the bytes a read causes are written (issue #18). Without a store, a delivery leaves at the end of the
 * callback of the read that caused it (a microtask), not in the next loop phase: a setImmediate queued before
 * the PUBLISH was sent has not run yet when the subscriber gets it. With a store, the same for bytes that
 * depend on no record (QoS 0 and 1 copies included); acknowledgements wait for the turn's commit, started at
 * the end of the poll phase, so one store write (and fsync) covers the whole turn.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setup } from '../helpers/broker-harness.js'
import { PacketType } from '../../src/protocol/constants.js'
import { LogStore } from '../../src/persistence/log-store.js'

test('without a store, a delivery is written before the next loop phase (setImmediate) runs', async (t) => {
  const h = setup(t)
  const sub = await h.client(4, { clientId: 'sub' })
  await sub.subscribe('flush/now')
  const pub = await h.client(4, { clientId: 'pub' })
  let nextPhaseRan = false
  setImmediate(() => { nextPhaseRan = true })
  const got = sub.publishOn('flush/now').then((p) => ({ p, nextPhaseRan }))
  pub.publish('flush/now', 'x')
  const { p, nextPhaseRan: ranBeforeDelivery } = await got
  assert.equal(p.payload.toString(), 'x')
  assert.equal(ranBeforeDelivery, false, 'the delivery waited for the check phase')
})

test('with a store, bytes that depend on no store record (clean sessions, QoS 0/1 copies) still leave on the microtask; the PUBACK of a message queued for a persistent session waits for the group commit', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-flush-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const store = new LogStore({ dir, file: 'midge.db', fsync: false })
  const h = setup(t, { store })
  await h.broker.restore()
  const clean = await h.client(4, { clientId: 'clean-sub' })
  await clean.subscribe('flush/clean')
  const kept = await h.client(4, { clientId: 'kept-sub', cleanStart: false })
  await kept.subscribe('flush/kept', { qos: 1 })
  const pub = await h.client(4, { clientId: 'pub' })

  let nextPhaseRan = false
  setImmediate(() => { nextPhaseRan = true })
  const direct = clean.publishOn('flush/clean').then(() => nextPhaseRan)
  pub.publish('flush/clean', 'x')
  assert.equal(await direct, false, 'nothing to commit: written at the end of the read')

  nextPhaseRan = false
  setImmediate(() => { nextPhaseRan = true })
  const file = path.join(dir, 'midge.db')
  const sizeBefore = fs.statSync(file).size
  const delivered = kept.publishOn('flush/kept').then(() => nextPhaseRan)
  const acked = pub.waitFor(PacketType.Puback).then(() => ({ nextPhaseRan, size: fs.statSync(file).size }))
  pub.publish('flush/kept', 'y', { qos: 1 })
  assert.equal(await delivered, false, 'a QoS 1 copy needs no commit (a crash can only duplicate it): written at the end of the read')
  const ack = await acked
  assert.equal(ack.nextPhaseRan, true, 'the PUBACK waits for the commit (started at the end of the poll phase, written off the loop)')
  assert.ok(ack.size > sizeBefore, 'and the records it depends on are in the file when it leaves')
})
