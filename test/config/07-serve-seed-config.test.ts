import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { shareWithBrokerUser } from '../helpers/broker-user.js'
import { TestPki } from '../helpers/certs.js'
import { formatPasswordHash, hashPassword } from '../../src/auth/password-hash.js'
import { lookupUser } from '../../src/config/file-access.js'
import { writeSeedConfig } from './seed-config.js'
import { MidgeProcess } from '../helpers/midge-process.js'


test("midge -c <the seed's config.conf> starts, serves both listeners and enforces its password file", async () => {
  const pki = new TestPki()
  const dir = mkdtempSync(join(tmpdir(), 'midge-seed-'))
  const leaf = pki.issue('server')
  const le = pki.letsEncrypt('yourdomainname', leaf)
  const passwd = join(dir, 'passwd')
  writeFileSync(passwd, `alice:${formatPasswordHash(await hashPassword('secret', { iterations: 1000 }))}\n`)
  const conf = join(dir, 'config.conf')
  // Only the paths and ports change: port 0 lets the OS pick free ports for the test.
  writeSeedConfig(conf, { live: le.live, passwd, ports: { plain: 0, tls: 0 } })
  // The broker, once switched to its user, reads the certificates and the password file (as at every
  // reload and renewal), and rewrites persistence_file in the working directory.
  shareWithBrokerUser(pki.dir, dir)
  chmodSync(dir, 0o777)
  const midge = new MidgeProcess(['-c', conf], { cwd: dir })
  const clients: mqtt.MqttClient[] = []
  const connect = (url: string, opts: mqtt.IClientOptions): Promise<mqtt.MqttClient> =>
    midge.guard(mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...opts }), `connect ${url} as ${opts.clientId}`)
  try {
    const opened = await midge.opened(2)
    const plain = opened.find((o) => !o.tls && o.address === '127.0.0.1')
    const secure = opened.find((o) => o.tls)
    assert.ok(plain !== undefined && secure !== undefined, midge.lines.join('\n'))

    // allow_anonymous false and password_file are global (per_listener_settings false), as in Mosquitto.
    await assert.rejects(connect(`mqtt://127.0.0.1:${plain.port}`, { clientId: 'anon' }), /Not authorized|Connection refused/i)
    await assert.rejects(connect(`mqtts://localhost:${secure.port}`, { ca: readFileSync(pki.root.cert), username: 'alice', password: 'wrong', clientId: 'bad' }), /Bad username or password|Not authorized|Connection refused/i)

    const sub = await connect(`mqtts://localhost:${secure.port}`, { ca: readFileSync(pki.root.cert), username: 'alice', password: 'secret', clientId: 'phone-1' })
    clients.push(sub)
    await sub.subscribeAsync('home/#', { qos: 1 })
    const got = new Promise<string>((done) => sub.on('message', (topic, payload) => done(`${topic} ${payload.toString()}`)))
    const pub = await connect(`mqtt://127.0.0.1:${plain.port}`, { username: 'alice', password: 'secret', clientId: 'sensor-1' })
    clients.push(pub)
    await pub.publishAsync('home/temp', '21.5', { qos: 1 })
    assert.equal(await midge.guard(got, 'message home/temp'), 'home/temp 21.5')

    await midge.waitFor(/New client connected from 127\.0\.0\.1:\d+ as phone-1 \(p\d, c1, k60, u'alice'\)\./)
    assert.ok(!midge.lines.some((l) => l.includes('secret')), 'a password appeared in the log')
    assert.ok(midge.lines.some((l) => /Warning: .*config\.conf:19: 'allow_anonymous' applies to all listeners/.test(l)))
    // persistence true + persistence_file mosquitto.db: the store is in the working directory.
    assert.ok(existsSync(join(dir, 'mosquitto.db')), midge.lines.join('\n'))
    if (process.getuid?.() === 0) {
      // Started as root without a `user` line: like Mosquitto, the broker runs on as 'mosquitto' (or nobody).
      const expected = lookupUser('mosquitto') ?? lookupUser('nobody')
      const status = readFileSync(`/proc/${midge.child.pid}/status`, 'utf8')
      assert.match(status, new RegExp(`^Uid:\\s+${expected?.uid}\\s`, 'm'))
    }
  } finally {
    for (const c of clients) await c.endAsync()
    assert.equal(await midge.stop(), 0, midge.lines.join('\n'))
    pki.remove()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a config error ends midge with status 1 before any port is opened', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-bad-'))
  try {
    const conf = join(dir, 'bad.conf')
    writeFileSync(conf, 'listener 0 127.0.0.1\npersistance true\n')
    const midge = new MidgeProcess(['-c', conf])
    assert.equal(await midge.exited, 1)
    assert.ok(midge.lines.includes(`Error: ${conf}:2: unknown option 'persistance' (did you mean 'persistence'?)`), midge.lines.join('\n'))
    assert.ok(!midge.lines.some((l) => l.includes('listen socket')))

    // Files are checked before ports open too: a TLS listener whose key is missing.
    writeFileSync(conf, `listener 0 127.0.0.1\nallow_anonymous true\nlistener 0 127.0.0.1\ncertfile ${join(dir, 'cert.pem')}\nkeyfile ${join(dir, 'key.pem')}\n`)
    shareWithBrokerUser(dir)
    const second = new MidgeProcess(['-c', conf])
    assert.equal(await second.exited, 1)
    assert.ok(second.lines.some((l) => l.includes(`Error: ${conf}:4: certfile ${join(dir, 'cert.pem')}: not found`)), second.lines.join('\n'))
    assert.ok(!second.lines.some((l) => l.includes('listen socket')))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
