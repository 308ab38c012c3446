/**
 * The public API of src/index.ts over real sockets with MQTT.js: createBroker on a free port, hooks composed
 * after a password file and an ACL given as config text (both must allow), publish() from the application,
 * handle() of a custom stream, events, argument checks and close().
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import { createBroker, type CreateBrokerOptions, type MidgeBroker } from '../../src/index.js'
import { writePasswordFile } from '../auth/e2e-broker.js'
import { duplexPair, TestClient } from '../helpers/broker-harness.js'
import { PacketType } from '../../src/protocol/constants.js'

async function start(t: TestContext, opts: CreateBrokerOptions): Promise<MidgeBroker> {
  const broker = await createBroker({ port: 0, ...opts })
  t.after(() => broker.close())
  return broker
}

async function client(t: TestContext, broker: MidgeBroker, opts: IClientOptions): Promise<MqttClient> {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { protocolVersion: 5, reconnectPeriod: 0, ...opts })
  t.after(() => c.endAsync(true))
  return c
}

/** The v5 acknowledgement code of a QoS 1 publish (MQTT.js rejects failure codes with the code as `code`). */
function ackCode(c: MqttClient, topic: string, payload = 'x'): Promise<number> {
  return c.publishAsync(topic, payload, { qos: 1 }).then((ack) => (ack as { reasonCode?: number } | undefined)?.reasonCode ?? 0, (err: { code?: number }) => err.code ?? -1)
}

/** Resolves with the first message `c` receives on `topic`. */
function nextMessage(c: MqttClient, topic: string): Promise<string> {
  return new Promise((resolve) => {
    const on = (t: string, payload: Buffer): void => {
      if (t !== topic) return
      c.off('message', on)
      resolve(payload.toString())
    }
    c.on('message', on)
  })
}

test('createBroker on port 0: broker.port is the bound port; anonymous clients get in; the application publishes to them', async (t) => {
  const broker = await start(t, {})
  assert.ok(broker.port > 0)
  const c = await client(t, broker, { clientId: 'anon' })
  await c.subscribeAsync('app/#', { qos: 1 })
  const got = nextMessage(c, 'app/hello')
  assert.equal(broker.publish({ topic: 'app/hello', payload: 'world', qos: 1, properties: { contentType: 'text/plain' } }), true)
  assert.equal(await got, 'world')
  assert.equal(broker.publish({ topic: 'app/nobody-here-2', payload: new Uint8Array([1, 2]) }), true, 'app/# matches')
  assert.equal(broker.publish({ topic: 'other', payload: '' }), false)
  assert.throws(() => broker.publish({ topic: 'a/+', payload: 'x' }), /invalid topic name 'a\/\+'/)
  assert.throws(() => broker.publish({ topic: 'a', payload: 'x', qos: 3 as 0 }), /QoS must be 0, 1 or 2/)
})

test('config text: password_file and acl_file decide first, then the hooks; both must allow', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-api-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  await writePasswordFile(join(dir, 'passwd'), { alice: 'a-pw', bob: 'b-pw' })
  writeFileSync(join(dir, 'acl'), 'user alice\ntopic readwrite shared/#\ntopic readwrite alice/#\n\nuser bob\ntopic readwrite shared/#\n')
  const asked: string[] = []
  const broker = await start(t, {
    config: `password_file ${join(dir, 'passwd')}\nacl_file ${join(dir, 'acl')}\n`,
    authenticate: ({ username }) => { asked.push(`auth ${username}`); return username !== 'bob' },
    authorizePublish: (c, m) => { asked.push(`pub ${c.username} ${m.topic}`); return m.topic !== 'shared/hook-denied' },
    authorizeSubscribe: (c, s) => { asked.push(`sub ${c.username} ${s.topic}`); return true },
  })
  await assert.rejects(client(t, broker, { clientId: 'x', username: 'alice', password: 'wrong' }), /Bad User Name or Password/i)
  await assert.rejects(client(t, broker, { clientId: 'b', username: 'bob', password: 'b-pw' }), /Bad User Name or Password/i)
  await assert.rejects(client(t, broker, { clientId: 'anon' }), /Not authorized/i)
  const alice = await client(t, broker, { clientId: 'a', username: 'alice', password: 'a-pw' })
  assert.ok((await ackCode(alice, 'shared/ok')) < 0x80) // allowed by both
  assert.equal(await ackCode(alice, 'shared/hook-denied'), 0x87)
  assert.equal(await ackCode(alice, 'elsewhere'), 0x87) // the ACL: the hook is not asked
  await alice.subscribeAsync('alice/#', { qos: 1 })
  await assert.rejects(alice.subscribeAsync('forbidden/#', { qos: 1 }), /Not authorized/) // the ACL: the hook is not asked
  assert.deepEqual(asked, ['auth bob', 'auth alice', 'pub alice shared/ok', 'pub alice shared/hook-denied', 'sub alice alice/#'])
})

test('the authenticate hook runs behind the config\'s auth_* bounds: auth_max_pending_per_address refuses one more as busy', async (t) => {
  let release!: () => void
  const gate = new Promise<void>((r) => { release = r })
  let calls = 0
  const broker = await start(t, {
    config: 'allow_anonymous true\nauth_fail_exempt_loopback false\nauth_max_pending_per_address 1\n',
    authenticate: async () => { calls++; await gate; return true },
  })
  const first = client(t, broker, { clientId: 'first' })
  await new Promise<void>((r) => { const wait = (): void => { if (calls === 1) r(); else setImmediate(wait) }; wait() })
  await assert.rejects(client(t, broker, { clientId: 'second' }), /busy/i)
  assert.equal(calls, 1)
  release()
  await first
})

test('config text: a bad line is an error naming it', async () => {
  await assert.rejects(createBroker({ port: 0, config: 'max_queued_messages lots\n' }), /\(config text\):1: option 'max_queued_messages'/)
})

test('handle(): a custom stream gets the listener\'s hooks, with the remote address given', async (t) => {
  const seen: string[] = []
  const broker = await start(t, { authenticate: ({ address, clientId }) => { seen.push(`${clientId}@${address}`); return true } })
  const connected = new Promise<string>((resolve) => broker.on('connected', (c) => resolve(c.clientId)))
  const [server, end] = duplexPair()
  broker.handle(server, { remoteAddress: '10.1.2.3' })
  const c = new TestClient(end, 5)
  assert.equal((await c.connect({ clientId: 'custom' })).reasonCode, 0)
  assert.equal(await connected, 'custom')
  assert.deepEqual(seen, ['custom@10.1.2.3'])
  await c.subscribe('x')
  broker.publish({ topic: 'x', payload: 'over a custom stream' })
  assert.equal((await c.next(PacketType.Publish)).payload.toString(), 'over a custom stream')
})

test('a runtime event listener that throws is logged; the reload still resolves and nothing is left unhandled', async (t) => {
  const lines: string[] = []
  const unhandled: unknown[] = []
  const onUnhandled = (why: unknown): void => { unhandled.push(why) }
  process.on('unhandledRejection', onUnhandled)
  t.after(() => { process.off('unhandledRejection', onUnhandled) })
  const broker = await start(t, { log: (line) => { lines.push(line) } })
  const seen: boolean[] = []
  broker.on('reloaded', () => { throw new Error('app bug') })
  broker.on('reloaded', (ok) => { seen.push(ok) })
  assert.equal(await broker.reload(), true)
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(seen, [true])
  assert.deepEqual(unhandled, [])
  assert.ok(lines.some((l) => l.includes("A 'reloaded' listener threw") && l.includes('app bug')), lines.join('\n'))
})

test('on() returns the broker and off() stops a listener; close() is idempotent and tells v5 clients', async (t) => {
  const broker = await createBroker({ port: 0 })
  const events: string[] = []
  const listener = (c: { clientId: string }): void => { events.push(c.clientId) }
  assert.equal(broker.on('connected', listener), broker)
  const c1 = await client(t, broker, { clientId: 'one' })
  broker.off('connected', listener)
  await client(t, broker, { clientId: 'two' })
  const told = new Promise<number | undefined>((resolve) => c1.once('disconnect', (p) => resolve(p.reasonCode)))
  await Promise.all([broker.close(), broker.close()])
  assert.equal(await told, 0x8b)
  assert.deepEqual(events, ['one'])
})

test('log: the broker\'s lines go to the given function, nowhere without it', async (t) => {
  const lines: string[] = []
  const broker = await start(t, { log: (line, type) => lines.push(`${type}: ${line}`), authenticate: () => false })
  await assert.rejects(client(t, broker, { clientId: 'nope' }))
  assert.ok(lines.some((l) => l.startsWith('notice: ') && l.includes('Client nope') && l.includes('refused by the authenticate hook')), lines.join('\n'))
})

test('src/index.ts exports what docs/embedding.md documents, and nothing else at run time', async () => {
  assert.deepEqual(Object.keys(await import('../../src/index.js')).sort(), ['ConfigError', 'ConfigInvalidError', 'MidgeRuntime', 'StartFailure', 'createBroker', 'loadConfig', 'loadConfigText', 'startMidge'])
})
