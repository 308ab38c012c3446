/**
 * When the bytes a read causes are written (issue #18). Without a store, a delivery leaves at the end of the
 * callback of the read that caused it (a microtask), not in the next loop phase: a setImmediate queued before
 * the PUBLISH was sent has not run yet when the subscriber gets it. With a store, writes wait for the end of
 * the poll phase, so one store write (and fsync) commits the whole turn before its acknowledgements leave.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setup } from '../helpers/broker-harness.js'

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
