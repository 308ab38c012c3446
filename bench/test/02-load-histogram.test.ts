import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Histogram } from '../load/histogram.js'

test('histogram: small values are exact', () => {
  const h = new Histogram()
  for (let v = 1; v <= 100; v++) h.record(v)
  assert.equal(h.percentile(50), 50)
  assert.equal(h.percentile(99), 99)
  assert.equal(h.percentile(100), 100)
  assert.equal(h.min, 1)
  assert.equal(h.mean(), 50.5)
})

test('histogram: large values are within 0.4 % (nearest rank)', () => {
  const h = new Histogram()
  const values: number[] = []
  for (let i = 0; i < 10_000; i++) values.push(1000 + ((i * 7919) % 10_000_000))
  for (const v of values) h.record(v)
  values.sort((a, b) => a - b)
  for (const p of [50, 90, 99, 99.9]) {
    const exact = values[Math.ceil((p / 100) * values.length) - 1]!
    const got = h.percentile(p)
    assert.ok(Math.abs(got - exact) / exact < 0.004, `p${p}: ${got} vs ${exact}`)
  }
  assert.equal(h.percentile(100), values[values.length - 1])
})

test('histogram: values past 2^32 ns (4.3 s) are kept', () => {
  const h = new Histogram()
  h.record(10e9)
  assert.ok(Math.abs(h.percentile(50) - 10e9) / 10e9 < 0.004)
})

test('histogram: empty gives 0', () => {
  assert.equal(new Histogram().percentile(99), 0)
})
