/**
 * The one assembly point (server/runtime.ts) in process: one config text with an mqtt, a websockets, a TLS
 * and a wss listener gives one broker that MQTT.js reaches through all four; a TLS certificate changed on
 * disk is served after reload(); two runtimes in one process keep their own $SYS certificate values.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync } from 'node:fs'
import mqtt from 'mqtt'
import { loadConfigText } from '../../src/config/load.js'
import { startMidge, type MidgeRuntime } from '../../src/server/index.js'
import { TestPki, type Issued } from '../helpers/certs.js'
import { probe, readPem } from '../helpers/tls-harness.js'

let pki: TestPki
let first: Issued
let second: Issued
let chain: string

before(() => {
  pki = new TestPki()
  first = pki.issue('server-1', { cn: 'localhost' })
  second = pki.issue('server-2', { cn: 'localhost' })
  chain = pki.bundle('chain.pem', pki.intermediate.cert)
})
after(() => pki.remove())

/** Every listener on a free loopback port; the TLS ones serve `cert`. */
function fourListeners(cert: Issued): string {
  const tls = [`certfile ${cert.cert}`, `keyfile ${cert.key}`, `cafile ${chain}`]
  return [
    'log_dest none',
    'sys_interval 1',
    'allow_anonymous true',
    'listener 0 127.0.0.1',
    'listener 0 127.0.0.1', 'protocol websockets',
    'listener 0 127.0.0.1', ...tls,
    'listener 0 127.0.0.1', 'protocol websockets', ...tls,
  ].join('\n') + '\n'
}

function urlOf(rt: MidgeRuntime, kind: 'mqtt' | 'websockets' | 'tls' | 'wss'): string {
  const l = rt.listeners().find((x) => x.kind === kind)
  const port = l?.addresses[0]?.port
  assert.ok(port !== undefined, `no open ${kind} listener: ${JSON.stringify(rt.listeners().map((x) => [x.kind, x.state]))}`)
  const scheme = { mqtt: 'mqtt', websockets: 'ws', tls: 'mqtts', wss: 'wss' }[kind]
  return `${scheme}://127.0.0.1:${port}`
}

const clientOptions = (): mqtt.IClientOptions => ({ ca: readPem(pki.root.cert), servername: 'localhost', reconnectPeriod: 0, connectTimeout: 5000 })

/** The retained value of `topic` on the broker at `url` ($SYS values are published retained). */
async function retained(url: string, topic: string): Promise<string> {
  const c = await mqtt.connectAsync(url, clientOptions())
  try {
    const got = new Promise<string>((resolve) => c.on('message', (t, m) => { if (t === topic) resolve(m.toString()) }))
    await c.subscribeAsync(topic)
    return await got
  } finally {
    await c.endAsync()
  }
}

test('one config, one runtime: MQTT.js reaches the same broker over mqtt, websockets, TLS and wss', async () => {
  const rt = await startMidge(loadConfigText(fourListeners(first)))
  try {
    assert.deepEqual(rt.listeners().map((l) => [l.kind, l.state]), [['mqtt', 'open'], ['websockets', 'open'], ['tls', 'open'], ['wss', 'open']])
    const kinds = ['mqtt', 'websockets', 'tls', 'wss'] as const
    const sub = await mqtt.connectAsync(urlOf(rt, 'mqtt'), clientOptions())
    try {
      const seen: string[] = []
      const all = new Promise<void>((resolve) => sub.on('message', (_t, m) => { seen.push(m.toString()); if (seen.length === kinds.length) resolve() }))
      await sub.subscribeAsync('runtime/test', { qos: 1 })
      for (const kind of kinds) {
        const pub = await mqtt.connectAsync(urlOf(rt, kind), clientOptions())
        await pub.publishAsync('runtime/test', `from ${kind}`, { qos: 1 })
        await pub.endAsync()
      }
      await all
      assert.deepEqual(seen.sort(), kinds.map((k) => `from ${k}`).sort())
    } finally {
      await sub.endAsync()
    }
    assert.match(rt.status(), /^Running; listening on 127\.0\.0\.1:\d+, 127\.0\.0\.1:\d+, 127\.0\.0\.1:\d+ \(TLS\), 127\.0\.0\.1:\d+ \(TLS\)$/)
  } finally {
    await rt.close()
  }
})

test('reload(): a TLS certificate replaced on disk is served to the next connection and shows in $SYS', async () => {
  const live = { cert: pki.path('live.pem'), key: pki.path('live.key') }
  copyFileSync(first.cert, live.cert)
  copyFileSync(first.key, live.key)
  const text = fourListeners({ ...first, ...live })
  const rt = await startMidge(loadConfigText(text))
  try {
    const tlsPort = rt.listeners().find((l) => l.kind === 'tls')?.addresses[0]?.port as number
    const wssPort = rt.listeners().find((l) => l.kind === 'wss')?.addresses[0]?.port as number
    assert.equal((await probe(tlsPort)).fingerprint, first.fingerprint)
    const fingerprints = (): string[] => [...rt.broker.sysValues].filter(([k]) => k.endsWith('/fingerprint')).map(([, f]) => f())
    assert.deepEqual(fingerprints(), [first.fingerprint, first.fingerprint])

    copyFileSync(second.cert, live.cert)
    copyFileSync(second.key, live.key)
    const reloaded = new Promise<boolean>((resolve) => rt.on('reloaded', resolve))
    assert.equal(await rt.reload(() => loadConfigText(text)), true)
    assert.equal(await reloaded, true)
    assert.equal((await probe(tlsPort)).fingerprint, second.fingerprint)
    assert.equal((await probe(wssPort)).fingerprint, second.fingerprint)
    assert.deepEqual(fingerprints(), [second.fingerprint, second.fingerprint])
  } finally {
    await rt.close()
  }
})

test('a reload with a bad config resolves false and the running config keeps serving', async () => {
  const rt = await startMidge(loadConfigText('log_dest none\nlistener 0 127.0.0.1\nallow_anonymous true\n'))
  try {
    assert.equal(await rt.reload(() => loadConfigText('listener 0 127.0.0.1\nno_such_option 1\n')), false)
    const c = await mqtt.connectAsync(urlOf(rt, 'mqtt'), clientOptions())
    await c.endAsync()
  } finally {
    await rt.close()
  }
})

test('two runtimes in one process: each broker publishes only its own TLS certificate under $SYS', async () => {
  // Same listener layout, so the same $SYS keys (tls/0_2/certificate/…): with one process-wide table the
  // second runtime's values would overwrite the first's.
  const a = await startMidge(loadConfigText(fourListeners(first)))
  const b = await startMidge(loadConfigText(fourListeners(second)))
  try {
    const keysA = [...a.broker.sysValues.keys()]
    assert.deepEqual(keysA, [...b.broker.sysValues.keys()])
    const topic = `$SYS/broker/${keysA.find((k) => k.endsWith('/fingerprint'))}`
    assert.equal(await retained(urlOf(a, 'mqtt'), topic), first.fingerprint)
    assert.equal(await retained(urlOf(b, 'mqtt'), topic), second.fingerprint)
    await b.close()
    // Closing one runtime takes its values out of its own broker only.
    assert.deepEqual(b.broker.sysValues.size, 0)
    assert.equal(await retained(urlOf(a, 'tls'), topic), first.fingerprint)
  } finally {
    await a.close()
    await b.close()
  }
})
