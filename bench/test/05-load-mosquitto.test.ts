/** Every scenario of the generator, small, against a real mosquitto started for the test. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { mosquitto } from '../brokers/mosquitto.js'
import { freePort, stopProcess, waitForMqtt, type Spawned } from '../brokers/process.js'
import { Controller } from '../load/controller.js'
import { defaults, type LoadOptions, type Scenario } from '../load/options.js'

let broker: Spawned | null = null
let port = 0
const dir = mkdtempSync(join(os.tmpdir(), 'midge-bench-test-'))

before(async () => {
  const missing = mosquitto.missing()
  if (missing !== null) throw new Error(missing)
  port = await freePort()
  broker = mosquitto.start({ port, dir, core: -1, nofile: 0 })
  await waitForMqtt(broker, port, 10_000)
})

after(async () => {
  if (broker) await stopProcess(broker)
  rmSync(dir, { recursive: true, force: true })
})

function load(scenario: Scenario, o: Partial<LoadOptions>): Promise<Record<string, unknown>> {
  return new Controller({ ...defaults(scenario), port, pid: broker!.pid, timeout: 30, ...o }).run()
}

test('fanin QoS 0: every message delivered once, broker CPU and RSS read', async () => {
  const r = await load('fanin', { msgs: 5000, pubs: 4 })
  assert.equal(r.status, 'ok')
  assert.equal(r.received, 5000)
  assert.equal(r.loss, 0)
  assert.equal(r.dups, 0)
  assert.ok((r.rate as number) > 0)
  assert.ok((r.broker_rss_kb as number) > 0)
  assert.equal(r.samples, 5000)
})

test('fanin QoS 1: window of 8, every PUBACK matched', async () => {
  const r = await load('fanin', { msgs: 3000, pubs: 3, qos: 1, window: 8 })
  assert.equal(r.status, 'ok')
  assert.equal(r.received, 3000)
  assert.equal(r.pub_rate !== 0, true)
})

test('fanout: each subscriber gets every message', async () => {
  const r = await load('fanout', { msgs: 300, subs: 7 })
  assert.equal(r.status, 'ok')
  assert.equal(r.expected, 2100)
  assert.equal(r.received, 2100)
})

test('latency: paced publishing keeps the rate, samples only after the warm-up', async () => {
  const r = await load('latency', { pairs: 4, rate: 2000, duration: 0.5, warmup: 0.25 })
  assert.equal(r.status, 'ok')
  assert.equal(r.sent, 1500)
  assert.ok((r.samples as number) >= 900 && (r.samples as number) <= 1100, `samples ${String(r.samples)}`)
  assert.ok((r.p50_us as number) > 0 && (r.p50_us as number) <= (r.p99_us as number))
})

test('conns: every connection subscribed, RSS per connection reported', async () => {
  const r = await load('conns', { conns: 200, duration: 0.2 })
  assert.equal(r.status, 'ok')
  assert.equal(r.ready, 200)
  assert.equal(r.failed, 0)
  assert.equal(typeof r.rss_per_conn_b, 'number')
})
