/**
 * A dashboard login needs only read access to $SYS/#: a monitoring account whose ACL keeps it out of
 * `secret/#` must not read those messages through the dashboard either — not their retained payloads in
 * the topic tree, not the branch's names, not the live `message` events. It sees what its own MQTT client
 * would. And a live stream, which answers no request that would check, closes once its user loses the
 * dashboard.
 */
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { test } from 'node:test'
import mqtt from 'mqtt'
import { Browser, startDashboard, Users } from '../helpers/dashboard.js'

const Acl = [
  'user admin', 'topic read $SYS/#', 'topic write $CONTROL/#', 'topic readwrite #',
  '', 'user viewer', 'topic read $SYS/#', 'topic read public/#',
  '', 'user device', 'topic readwrite devices/#',
].join('\n') + '\n'

test('a viewer whose ACL denies secret/# sees neither its retained payloads, its branch, nor its live messages', async () => {
  const d = await startDashboard({ acl: Acl })
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${d.mqttPort}`, { username: 'admin', password: Users.admin, clientId: 'leaker', protocolVersion: 5, reconnectPeriod: 0 })
  try {
    await c.publishAsync('secret/door', 'code 4711', { qos: 1, retain: true })
    await c.publishAsync('public/weather', 'sunny', { qos: 1, retain: true })
    const viewer = new Browser(d.base)
    assert.equal((await viewer.login('viewer', Users.viewer)).status, 200)
    const admin = new Browser(d.base)
    assert.equal((await admin.login('admin', Users.admin)).status, 200)

    const top = await viewer.get<Array<{ name: string }>>('/api/topics')
    assert.deepEqual(top.map((t) => t.name).filter((n) => n !== '$SYS'), ['public'])
    const hidden = await viewer.get<Array<Record<string, unknown>>>('/api/topics?prefix=secret')
    assert.deepEqual(hidden, [])
    const shown = await viewer.get<Array<{ topic: string; retained?: { payload: string } }>>('/api/topics?prefix=public')
    assert.deepEqual(shown.map((t) => [t.topic, t.retained?.payload]), [['public/weather', 'sunny']])
    // The admin, allowed everything, still sees the secret branch.
    const all = await admin.get<Array<{ topic: string; retained?: { payload: string } }>>('/api/topics?prefix=secret')
    assert.deepEqual(all.map((t) => [t.topic, t.retained?.payload]), [['secret/door', 'code 4711']])

    const vs = await viewer.events()
    const as = await admin.events()
    await vs.next((e) => e.event === 'stats', 'the viewer stream open')
    await as.next((e) => e.event === 'stats', 'the admin stream open')
    await c.publishAsync('secret/door', 'code 0815', { qos: 1 })
    await c.publishAsync('public/weather', 'rain', { qos: 1 })
    // One stream keeps the order of its events: once the later public message is there, the secret one would be too.
    await vs.next((e) => e.event === 'message' && (e.data as { topic: string }).topic === 'public/weather', 'the public message (viewer)')
    await as.next((e) => e.event === 'message' && (e.data as { topic: string }).topic === 'secret/door', 'the secret message (admin)')
    assert.deepEqual(vs.events.filter((e) => e.event === 'message' && (e.data as { topic: string }).topic.startsWith('secret/')), [])
    const last = await viewer.get<Array<Record<string, unknown>>>('/api/topics?prefix=secret')
    assert.deepEqual(last, [])
    vs.close()
    as.close()
  } finally {
    await c.endAsync()
    await d.close()
  }
})

test('a live stream closes once its user loses $SYS/# in the ACL or is removed from the password file: it answers no request that would check', async () => {
  const d = await startDashboard({ acl: Acl })
  try {
    const admin = new Browser(d.base)
    assert.equal((await admin.login('admin', Users.admin)).status, 200)
    const viewer = new Browser(d.base)
    assert.equal((await viewer.login('viewer', Users.viewer)).status, 200)
    const vs = await viewer.events()
    await vs.next((e) => e.event === 'stats', 'the viewer stream open')
    const revoked = Acl.replace('user viewer\ntopic read $SYS/#\n', 'user viewer\n')
    assert.equal((await admin.request('PUT', '/api/acl', { text: revoked })).status, 200)
    await vs.closed('the ACL no longer lets the viewer read $SYS/#')
    assert.equal((await viewer.request('GET', '/api/session')).status, 401, 'the session ended with the stream')

    const device = new Browser(d.base)
    assert.equal((await admin.request('PUT', '/api/acl', { text: `${Acl}topic read $SYS/#\n` })).status, 200)
    assert.equal((await device.login('device', Users.device)).status, 200)
    const ds = await device.events()
    await ds.next((e) => e.event === 'stats', 'the device stream open')
    // Removed on disk, as `midge passwd -D` does, and reloaded as a change seen there would be.
    writeFileSync(d.passwd, readFileSync(d.passwd, 'utf8').split('\n').filter((l) => !l.startsWith('device:')).join('\n'))
    assert.equal(await d.rt.security.reloadFile(d.passwd), true)
    await ds.closed('the device removed from the password file')
  } finally {
    await d.close()
  }
})
