/**
 * Two attacks found in review, against real processes:
 * - whoever can write the broker user's folders (the broker itself once compromised, or that account)
 *   plants a symbolic link where a broker started as root will chown, append to or read its log file or
 *   store, aiming root at /etc/shadow: the start must refuse and leave the target as it was;
 * - a client sets a will on a topic the application's authorizePublish hook forbids and drops the
 *   connection, to publish there anyway: the CONNECT must be refused and the will never published.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'
import mqtt from 'mqtt'
import { lookupUser } from '../../src/transport/file-access.js'
import { MidgeProcess } from '../helpers/midge-process.js'
import { freePort } from '../helpers/ports.js'
import { packet, u16, utf8 } from '../helpers/wire.js'

for (const planted of ['log file', 'store'] as const) {
  test(`started as root: a ${planted} that is a planted link to a root-only file is refused; the file keeps its owner, mode and content`, async (t) => {
    assert.equal(process.getuid?.(), 0, 'this test plays a start as root: run it as root (a missing root is a failure, not a skip)')
    const user = lookupUser('mosquitto')
    assert.ok(user !== undefined, "the 'mosquitto' user (Debian package mosquitto) is needed")
    const dir = mkdtempSync(join(tmpdir(), 'midge-attack-links-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    chmodSync(dir, 0o755)
    const own = join(dir, 'own')
    mkdirSync(own, { mode: 0o755 })
    chownSync(own, user.uid, user.gid)
    const victim = join(dir, 'shadow')
    writeFileSync(victim, 'root:secret\n', { mode: 0o600 })
    const link = join(own, planted === 'log file' ? 'midge.log' : 'mosquitto.db')
    symlinkSync(victim, link)
    const conf = join(dir, 'midge.conf')
    const port = await freePort()
    writeFileSync(conf, [
      'user mosquitto', `listener ${port} 127.0.0.1`, 'allow_anonymous true',
      planted === 'log file' ? `log_dest file ${link}` : `persistence true\npersistence_location ${own}`,
    ].join('\n') + '\n')
    const r = await MidgeProcess.run(['-c', conf], { until: 'exit', timeoutMs: 20000 })
    assert.notEqual(r.code, 0, r.out)
    assert.match(r.out, /is a symbolic link/, r.out)
    const st = statSync(victim)
    assert.equal(st.uid, 0, 'the target was handed to the broker user')
    assert.equal(st.mode & 0o777, 0o600)
    assert.equal(readFileSync(victim, 'utf8'), 'root:secret\n')
  })
}

const INDEX = pathToFileURL(resolve(import.meta.dirname, '../../src/index.js')).href
const app = `
import { createBroker } from '${INDEX}'
const broker = await createBroker({ port: 0, authorizePublish: (client, m) => !m.topic.startsWith('forbidden/') })
console.log('port', broker.port)
`

/** A 3.1.1 CONNECT with a QoS 0 will on `topic`, built by hand. */
const connectWithWill = (id: string, topic: string): Buffer =>
  packet(0x10, utf8('MQTT'), [4, 0x06, 0, 0], utf8(id), utf8(topic), u16(4), [0x62, 0x6f, 0x6f, 0x6d])

test('a will on a topic authorizePublish forbids: CONNECT refused (not authorised), the will never published', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-attack-will-'))
  writeFileSync(join(dir, 'app.mjs'), app)
  const child = spawn(process.execPath, [join(dir, 'app.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => {
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  const port = Number(((await lines.next()).value as string).split(' ')[1])

  const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 })
  t.after(() => sub.end(true))
  const got: string[] = []
  sub.on('message', (topic) => got.push(topic))
  await sub.subscribeAsync('#')

  const attacker = net.connect(port, '127.0.0.1', () => attacker.write(connectWithWill('attacker', 'forbidden/x')))
  const connack = await new Promise<Buffer>((done, fail) => { attacker.once('data', done); attacker.once('error', fail) })
  assert.equal(connack[0], 0x20)
  // Dropped either way: refused, the broker closes it; accepted (the bug), this is the abnormal close that fires the will.
  attacker.destroy()
  assert.equal(connack[3], 5, `CONNACK return code ${connack[3]}: the CONNECT with a forbidden will was accepted`)

  // A marker published after the refused connection is gone: only it arrives, never the will.
  const marker = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 })
  await marker.publishAsync('allowed/marker', 'm', { qos: 1 })
  await marker.endAsync()
  while (!got.includes('allowed/marker')) await new Promise((r) => setTimeout(r, 10))
  assert.deepEqual(got, ['allowed/marker'])
})
