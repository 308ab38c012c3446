/**
 * createBroker (src/index.ts), the embedded start of the same runtime: port 0 picks a free port and
 * broker.port tells it; config text is read as a file would be (errors name the line); the host
 * application publishes and hands over its own streams; the process keeps its identity and signals.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import { createBroker, ConfigInvalidError, type MidgeBroker } from '../../src/index.js'
import { memoryPair } from '../../src/transport/memory-pair.js'

const opts = (): mqtt.IClientOptions => ({ reconnectPeriod: 0, connectTimeout: 5000 })

/** Subscribes; once the SUBACK is in, returns the first message's payload to come (a promise in a box, not awaited here). */
async function subscribed(c: mqtt.MqttClient, topic: string): Promise<{ first: Promise<string> }> {
  const first = new Promise<string>((resolve) => c.on('message', (t, m) => { if (t === topic) resolve(m.toString()) }))
  await c.subscribeAsync(topic, { qos: 1 })
  return { first }
}

test('createBroker({ port: 0 }): a free port, MQTT.js connects, publish() from the application reaches it', async () => {
  const hups = process.listenerCount('SIGHUP')
  const terms = process.listenerCount('SIGTERM')
  const uid = process.getuid?.()
  const b = await createBroker({ port: 0 })
  try {
    assert.ok(b.port > 0)
    assert.deepEqual(b.listeners().map((l) => [l.kind, l.addresses.map((a) => `${a.address}:${a.port}`)]), [['mqtt', [`127.0.0.1:${b.port}`]]])
    // Embedded: no signal handlers, no user switch (these tests run as root, where `midge` would switch).
    assert.equal(process.listenerCount('SIGHUP'), hups)
    assert.equal(process.listenerCount('SIGTERM'), terms)
    assert.equal(process.getuid?.(), uid)
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.port}`, opts())
    try {
      const got = await subscribed(c, 'app/news')
      assert.equal(b.publish({ topic: 'app/news', payload: 'hello from the host', qos: 1 }), true)
      assert.equal(await got.first, 'hello from the host')
    } finally {
      await c.endAsync()
    }
  } finally {
    await b.close()
  }
})

test('handle(stream): a client on the application\'s own transport shares the broker with TCP clients', async () => {
  const b = await createBroker({ port: 0 })
  let inner: mqtt.MqttClient | undefined
  try {
    const [server, client] = memoryPair()
    b.handle(server, { remoteAddress: 'in-process' })
    inner = new mqtt.MqttClient(() => client as never, { ...opts(), clientId: 'inner' })
    await new Promise<void>((resolve, reject) => { inner?.once('connect', () => resolve()); inner?.once('error', reject) })
    const tcp = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.port}`, opts())
    try {
      const got = await subscribed(tcp, 'from/inside')
      await inner.publishAsync('from/inside', 'over a duplex', { qos: 1 })
      assert.equal(await got.first, 'over a duplex')
    } finally {
      await tcp.endAsync()
    }
  } finally {
    await inner?.endAsync()
    await b.close()
  }
})

test('config text: read like a file (a bad line is named), its listeners served; reload() takes new text', async () => {
  await assert.rejects(createBroker({ config: 'listener 0 127.0.0.1\nallow_anonymous maybe\n' }), (err: unknown) => {
    assert.ok(err instanceof ConfigInvalidError)
    assert.match(err.message, /\(config text\):2: .*allow_anonymous/)
    return true
  })
  let b: MidgeBroker | undefined
  try {
    const lines: string[] = []
    b = await createBroker({ config: 'log_dest none\nlistener 0 127.0.0.1\nallow_anonymous false\n', log: (line) => lines.push(line) })
    const port = b.port
    assert.ok(lines.some((l) => l.endsWith(`Opening ipv4 listen socket on 127.0.0.1 port ${port} (listener 0#0).`)), lines.join('\n'))
    await assert.rejects(mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, opts()), /Not authorized|Bad User Name or Password|refused/i)
    assert.equal(await b.reload('log_dest none\nlistener 0 127.0.0.1\nallow_anonymous true\n'), true)
    assert.ok(lines.some((l) => l.endsWith('Configuration reloaded.')), lines.join('\n'))
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, opts())
    await c.endAsync()
  } finally {
    await b?.close()
  }
})
