/**
 * $SYS/broker/load/... averages (broker/sys-load.ts), computed as Mosquitto's: the change per interval
 * scaled to a rate per minute, folded into averages damped with time constants of 1, 5 and 15 minutes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LoadAverage } from '../../src/broker/sys-load.js'

test('a steady 60 per minute: after one minute the 1min average is 60*(1-1/e), and all three converge to 60 within three hours', () => {
  const load = new LoadAverage(0)
  let total = 0
  for (let s = 0; s < 60; s++) load.update(++total, 1)
  assert.ok(Math.abs((load.values[0] as number) - 60 * (1 - Math.exp(-1))) < 1e-9)
  assert.ok(Math.abs((load.values[1] as number) - 60 * (1 - Math.exp(-60 / 300))) < 1e-9)
  assert.ok(Math.abs((load.values[2] as number) - 60 * (1 - Math.exp(-60 / 900))) < 1e-9)
  for (let s = 0; s < 3 * 3600; s++) load.update(++total, 1)
  for (const v of load.values) assert.ok(Math.abs(v - 60) < 0.1, String(v))
})

test('the interval\'s length is taken from the clock: one late 10 s update equals ten 1 s ones of the same rate', () => {
  const a = new LoadAverage(0)
  const b = new LoadAverage(0)
  a.update(100, 10)
  for (let i = 1; i <= 10; i++) b.update(i * 10, 1)
  a.values.forEach((v, i) => assert.ok(Math.abs(v - (b.values[i] as number)) < 1e-9))
})

test('idle: the averages decay toward 0 and a counter that starts non-zero counts only what came after', () => {
  const load = new LoadAverage(1000)
  load.update(1000, 5)
  assert.deepEqual(load.values, [0, 0, 0])
  load.update(1060, 60)
  const peak = load.values[0] as number
  load.update(1060, 60)
  assert.ok(Math.abs((load.values[0] as number) - peak * Math.exp(-1)) < 1e-9)
})
