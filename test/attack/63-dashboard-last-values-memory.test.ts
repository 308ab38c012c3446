/**
 * While a dashboard is open, the last value of every topic published is kept for its topic tree
 * (server/dashboard/last-values.ts). A topic may be 64 KiB long: a client publishing to many long,
 * distinct topics must not make the broker hold more than LastValuesMaxBytes for them, whatever the count.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import mqtt from 'mqtt'
import { LastValuesMaxBytes } from '../../src/server/dashboard/last-values.js'
import { Browser, startDashboard, Users } from '../helpers/dashboard.js'

const TopicChars = 30_000
const Topics = Math.ceil((LastValuesMaxBytes / TopicChars) * 1.5)

test(`${Topics} distinct topics of ${TopicChars} characters: the last values kept hold at most ${LastValuesMaxBytes} bytes`, async () => {
  const d = await startDashboard()
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${d.mqttPort}`, { username: 'device', password: Users.device, clientId: 'long-topics', protocolVersion: 5, reconnectPeriod: 0 })
  try {
    const b = new Browser(d.base)
    assert.equal((await b.login('admin', Users.admin)).status, 200)
    const stream = await b.events()
    await stream.next((e) => e.event === 'stats', 'the stream open (last values are kept from now on)')
    const pad = 'x'.repeat(TopicChars)
    for (let i = 0; i < Topics; i++) c.publish(`devices/${String(i).padStart(5, '0')}-${pad}`, 'v', { qos: 0 })
    // Acknowledged after the QoS 0 ones before it were routed (and recorded).
    await c.publishAsync('devices/last', 'done', { qos: 1 })
    const level = await b.get<Array<{ topic: string; last?: unknown }>>('/api/topics?prefix=devices')
    const kept = level.filter((t) => t.last !== undefined && t.topic.length > TopicChars)
    assert.ok(kept.length > 0, 'the latest long topics are kept')
    const held = kept.reduce((n, t) => n + t.topic.length, 0)
    assert.ok(held <= LastValuesMaxBytes, `${kept.length} long topics kept, ${held} characters of topic alone: over ${LastValuesMaxBytes} bytes`)
    assert.ok(level.some((t) => t.topic === 'devices/last' && t.last !== undefined), 'the newest value is kept')
    stream.close()
  } finally {
    await c.endAsync()
    await d.close()
  }
})
