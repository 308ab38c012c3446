/** The attack suite's own check: a fresh target serves a bystander and reports its RSS. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { AttackTarget } from './harness.js'

test('attack harness: a fresh Midge serves a bystander, RSS readable', async () => {
  const t = await AttackTarget.start('harness')
  try {
    const ms = await t.assertServes(5000)
    assert.ok(ms < 5000)
    const rss = t.rss()
    assert.ok(rss > 1024 * 1024 && rss < 1024 * 1024 * 1024, `rss ${rss}`)
  } finally {
    await t.stop()
  }
})
