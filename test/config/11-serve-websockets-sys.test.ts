/**
 * `protocol websockets` from a config file, end to end through `midge -c`, and the TLS certificate's
 * expiry published under $SYS/broker/tls/<listener>/certificate/.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { TestPki } from '../helpers/certs.js'
import { MidgeProcess } from '../helpers/midge-process.js'

test('a `protocol websockets` listener serves MQTT.js over ws:// beside a plain listener', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-ws-'))
  const conf = join(dir, 'midge.conf')
  writeFileSync(conf, [
    'user root',
    'listener 0 127.0.0.1',
    'listener 0 127.0.0.1',
    'protocol websockets',
    'allow_anonymous true',
    '',
  ].join('\n'))
  const midge = new MidgeProcess(['-c', conf], { cwd: dir })
  try {
    const opened = await midge.opened(2)
    assert.equal(opened.length, 2, midge.lines.join('\n'))
    const [tcp, ws] = opened as [typeof opened[0], typeof opened[0]]
    const sub = await midge.guard(mqtt.connectAsync(`mqtt://127.0.0.1:${tcp.port}`, { reconnectPeriod: 0, clientId: 'tcp-sub' }), 'tcp connect')
    const got = new Promise<string>((resolve) => sub.on('message', (_t, m) => resolve(m.toString())))
    await sub.subscribeAsync('ws/test', { qos: 1 })
    // The listener order in the log is not guaranteed: try ws:// on each port until one answers as WebSockets.
    let pub: mqtt.MqttClient | undefined
    for (const o of [ws, tcp]) {
      try {
        pub = await mqtt.connectAsync(`ws://127.0.0.1:${o.port}`, { reconnectPeriod: 0, clientId: 'ws-pub', connectTimeout: 3000 })
        break
      } catch { /* that was the plain listener */ }
    }
    assert.ok(pub !== undefined, `no listener answered ws://\n${midge.lines.join('\n')}`)
    await pub.publishAsync('ws/test', 'over websockets', { qos: 1 })
    assert.equal(await midge.guard(got, 'message over ws'), 'over websockets')
    await pub.endAsync()
    await sub.endAsync()
  } finally {
    await midge.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('$SYS/broker/tls/<listener>/certificate/days_left is published for a TLS listener', async () => {
  const pki = new TestPki()
  const dir = mkdtempSync(join(tmpdir(), 'midge-sys-tls-'))
  const leaf = pki.issue('localhost')
  const conf = join(dir, 'midge.conf')
  writeFileSync(conf, [
    'user root',
    'sys_interval 1',
    'listener 0 127.0.0.1',
    'allow_anonymous true',
    'listener 0 127.0.0.1',
    `certfile ${leaf.cert}`,
    `keyfile ${leaf.key}`,
    `cafile ${pki.intermediate.cert}`,
    'allow_anonymous true',
    '',
  ].join('\n'))
  const midge = new MidgeProcess(['-c', conf], { cwd: dir })
  try {
    const opened = await midge.opened(2)
    const plain = opened.find((o) => !o.tls)
    const secure = opened.find((o) => o.tls)
    assert.ok(plain !== undefined && secure !== undefined, midge.lines.join('\n'))
    const sub = await midge.guard(mqtt.connectAsync(`mqtt://127.0.0.1:${plain.port}`, { reconnectPeriod: 0 }), 'connect')
    const days = new Promise<[string, string]>((resolve) => sub.on('message', (t, m) => { if (t.endsWith('/certificate/days_left')) resolve([t, m.toString()]) }))
    await sub.subscribeAsync('$SYS/broker/tls/#')
    const [topic, value] = await midge.guard(days, '$SYS tls days_left')
    assert.equal(topic, `$SYS/broker/tls/${secure.listener.replace(/[+#/]/g, '_')}/certificate/days_left`)
    assert.ok(Number(value) > 14, `days_left ${value}`)
    await sub.endAsync()
  } finally {
    await midge.stop()
    rmSync(dir, { recursive: true, force: true })
    pki.remove()
  }
})

test('`protocol websockets` with certfile/keyfile serves wss:// to clients that trust its CA', async () => {
  const pki = new TestPki()
  const dir = mkdtempSync(join(tmpdir(), 'midge-wss-'))
  const leaf = pki.issue('localhost')
  const conf = join(dir, 'midge.conf')
  writeFileSync(conf, [
    'user root',
    'listener 0 127.0.0.1',
    'protocol websockets',
    `certfile ${leaf.cert}`,
    `keyfile ${leaf.key}`,
    `cafile ${pki.intermediate.cert}`,
    'allow_anonymous true',
    '',
  ].join('\n'))
  const midge = new MidgeProcess(['-c', conf], { cwd: dir })
  try {
    const [wss] = await midge.opened(1)
    assert.ok(wss?.tls, midge.lines.join('\n'))
    const ca = readFileSync(pki.root.cert)
    const c = await midge.guard(mqtt.connectAsync(`wss://localhost:${wss.port}`, { ca, reconnectPeriod: 0, clientId: 'wss-client' }), 'wss connect')
    const got = new Promise<string>((resolve) => c.on('message', (_t, m) => resolve(m.toString())))
    await c.subscribeAsync('wss/echo')
    await c.publishAsync('wss/echo', 'secure', { qos: 1 })
    assert.equal(await midge.guard(got, 'echo over wss'), 'secure')
    // An untrusted client is refused by the TLS handshake.
    await assert.rejects(mqtt.connectAsync(`wss://localhost:${wss.port}`, { reconnectPeriod: 0, connectTimeout: 3000 }))
    await c.endAsync()
  } finally {
    await midge.stop()
    rmSync(dir, { recursive: true, force: true })
    pki.remove()
  }
})
