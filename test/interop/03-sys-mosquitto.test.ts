/**
 * $SYS beside Mosquitto's (issue #16): Debian's `mosquitto` (package mosquitto) and Midge run side by side
 * with sys_interval 1, a client subscribes to $SYS/# on each and sends the same traffic, and every topic
 * Mosquitto publishes must exist in Midge's set with a value of the same shape ("N seconds", "<name> version
 * x.y.z", integers, "%.2f" load averages), so a dashboard or Home Assistant sensor made for one reads the other.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import { loadConfigText } from '../../src/config/load.js'
import { startMidge } from '../../src/server/index.js'
import { Mosquitto } from '../client/support/mosquitto.js'

/**
 * Names Mosquitto publishes that do not apply to Midge. None today: every name of Mosquitto 2.0's $SYS tree
 * has a Midge value (heap/* is the V8 heap; clients/active and inactive are Mosquitto 1.x's deprecated names,
 * still published by both). A future Mosquitto name that Midge cannot have goes here with the reason.
 */
const NotApplicable = new Set<string>()

/** The value's shape: what a dashboard parsing it relies on. */
function shape(v: string): string {
  if (/^\d+ seconds$/.test(v)) return 'N seconds'
  if (/^[a-z]+ version \d+\.\d+\.\d+\S*$/.test(v)) return '<name> version x.y.z'
  if (/^\d+$/.test(v)) return 'integer'
  if (/^\d+\.\d{2}$/.test(v)) return '%.2f'
  return `other: ${v}`
}

/** Subscribes to $SYS/# on `url`, sends a little traffic, and collects topic → last value for `ms`. */
async function collectSys(url: string, ms: number): Promise<Map<string, string>> {
  const values = new Map<string, string>()
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000 })
  try {
    c.on('message', (topic, payload) => { values.set(topic, payload.toString()) })
    await c.subscribeAsync('$SYS/#')
    await c.subscribeAsync('sys-test/#', { qos: 1 })
    for (let i = 0; i < 20; i++) await c.publishAsync('sys-test/t', `message ${i}`, { qos: 1 })
    await c.publishAsync('sys-test/retained', 'kept', { qos: 1, retain: true })
    await new Promise((r) => setTimeout(r, ms))
  } finally {
    await c.endAsync()
  }
  return values
}

test('every $SYS topic Debian\'s mosquitto publishes exists in Midge\'s $SYS, with the same value format', async () => {
  const mosquitto = await Mosquitto.start({ global: ['sys_interval 1'] })
  const rt = await startMidge(loadConfigText('log_dest none\nsys_interval 1\nallow_anonymous true\nlistener 0 127.0.0.1\n'))
  try {
    const port = rt.listeners()[0]?.addresses[0]?.port as number
    const [theirs, ours] = await Promise.all([collectSys(`mqtt://127.0.0.1:${mosquitto.port}`, 3000), collectSys(`mqtt://127.0.0.1:${port}`, 3000)])
    assert.ok(theirs.size >= 40, `mosquitto published ${theirs.size} $SYS topics: ${[...theirs.keys()].join(', ')}`)
    const missing = [...theirs.keys()].filter((t) => !NotApplicable.has(t) && !ours.has(t))
    assert.deepEqual(missing, [], 'Mosquitto $SYS topics missing from Midge')
    for (const [topic, value] of theirs) {
      if (NotApplicable.has(topic)) continue
      assert.equal(shape(ours.get(topic) as string), shape(value), `${topic}: Midge ${JSON.stringify(ours.get(topic))}, Mosquitto ${JSON.stringify(value)}`)
    }
    assert.match(ours.get('$SYS/broker/version') as string, /^midge version \d+\.\d+\.\d+/)
    // The traffic above shows in Midge's counters and load averages.
    assert.ok(Number(ours.get('$SYS/broker/publish/messages/received')) >= 21)
    assert.ok(Number(ours.get('$SYS/broker/load/publish/received/1min')) > 0)
    assert.ok(Number(ours.get('$SYS/broker/bytes/received')) > 21 * 9)
    assert.equal(ours.get('$SYS/broker/retained messages/count'), String(rt.broker.retained.size))
  } finally {
    await mosquitto.stop()
    await rt.close()
  }
})
