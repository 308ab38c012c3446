/**
 * The VPS of the seed tutorial refuses anonymous clients and speaks TLS with a certificate: the bridge logs
 * in with remote_username/remote_password and verifies the VPS against bridge_cafile, optionally showing a
 * client certificate. Refusals (bad password, unknown CA, wrong name) keep the bridge retrying, with the
 * reason in the log, and never connect it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TestPki } from '../helpers/certs.js'
import { connected, LocalMidge, once, Peer, RemoteMosquitto } from './support.js'

/** Waits until the log has shown `count` failed attempts. */
async function failedAttempts (pi: LocalMidge, count: number): Promise<void> {
  while (pi.log.lines.filter((l) => l.includes('failed:')).length < count) {
    await once(pi.bridge, 'attempt-failed', 8000, `fewer than ${count} failed attempts:\n${pi.log.text}`)
  }
}

test('bridge to mosquitto: remote_username / remote_password against a password file; a wrong password is refused', async () => {
  const vps = await RemoteMosquitto.start({ users: { pi: 's3cret pass', app: 'app-pw' } })
  let good: LocalMidge | undefined
  let bad: LocalMidge | undefined
  const peers: Peer[] = []
  try {
    good = await LocalMidge.start(`
connection vps
address 127.0.0.1:${vps.port}
remote_username pi
remote_password s3cret pass
topic data/# out 1
`)
    await connected(good.bridge)
    const sensor = await Peer.connect('pi-sensor', good.port)
    const app = await Peer.connect('vps-app', vps.port, { username: 'app', password: Buffer.from('app-pw') })
    peers.push(sensor, app)
    await app.client.subscribe({ topicFilter: 'data/#', qos: 1 })
    await sensor.client.publish('data/t', '20', { qos: 1 })
    assert.equal((await app.waitFor('data/t')).payload.toString(), '20')

    bad = await LocalMidge.start(`
connection vps
address 127.0.0.1:${vps.port}
remote_clientid pi-bad
username pi
password wrong
restart_timeout 1
topic data/# out 1
`)
    await failedAttempts(bad, 2)
    assert.notEqual(bad.bridge.state, 2)
    assert.match(bad.log.text, /connection to 127\.0\.0\.1:\d+ failed: connection refused by the server \(code 5\)/)
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- VPS log ---\n${vps.output}`, { cause: err })
  } finally {
    for (const p of peers) await p.close().catch(() => {})
    await good?.close()
    await bad?.close()
    await vps.remove()
  }
})

test('bridge to mosquitto over TLS: bridge_cafile and a client certificate; unknown CA and wrong name refused; bridge_insecure skips the name', async () => {
  const pki = new TestPki()
  const server = pki.issue('vps', { sans: ['DNS:localhost', 'IP:127.0.0.1'] })
  const elsewhere = pki.issue('elsewhere', { sans: ['DNS:vps.example.org'] })
  const client = pki.issue('pi-bridge', { kind: 'client' })
  const stranger = pki.selfSigned('stranger', 'Someone Else CA')
  const cas = pki.bundle('cas.pem', pki.root.cert, pki.intermediate.cert)
  const tlsLines = (leaf: typeof server): string[] => [
    `certfile ${pki.bundle(`${leaf.name}-full.pem`, leaf.cert, pki.intermediate.cert)}`, `keyfile ${leaf.key}`,
    `cafile ${cas}`, 'require_certificate true',
  ]
  const vps = await RemoteMosquitto.start({ listener: tlsLines(server), plainListener: true })
  const misnamed = await RemoteMosquitto.start({ listener: tlsLines(elsewhere) })
  const clientFiles = `bridge_certfile ${pki.bundle('pi-full.pem', client.cert, pki.intermediate.cert)}\nbridge_keyfile ${client.key}`
  const bridge = (port: number, ca: string, extra = ''): string => `
connection vps
address 127.0.0.1:${port}
bridge_cafile ${ca}
${clientFiles}
restart_timeout 1
${extra}
topic data/# out 1
topic cmd/# in 1
`
  const running: LocalMidge[] = []
  const peers: Peer[] = []
  try {
    const pi = await LocalMidge.start(bridge(vps.port, pki.root.cert, 'bridge_tls_version tlsv1.2'))
    running.push(pi)
    await connected(pi.bridge)
    const sensor = await Peer.connect('pi-sensor', pi.port)
    const app = await Peer.connect('vps-app', vps.plainPort)
    peers.push(sensor, app)
    await sensor.client.subscribe({ topicFilter: 'cmd/#', qos: 1 })
    await app.client.subscribe({ topicFilter: 'data/#', qos: 1 })
    await sensor.client.publish('data/t', 'over tls', { qos: 1 })
    assert.equal((await app.waitFor('data/t')).payload.toString(), 'over tls')
    await app.client.publish('cmd/x', 'back', { qos: 1 })
    assert.equal((await sensor.waitFor('cmd/x')).payload.toString(), 'back')

    // A CA that did not sign the VPS certificate: refused, and retried.
    const untrusting = await LocalMidge.start(bridge(vps.port, stranger.cert))
    running.push(untrusting)
    await failedAttempts(untrusting, 1)
    assert.match(untrusting.log.text, /connection to 127\.0\.0\.1:\d+ failed: .*(issuer|self.signed|certificate)/i)

    // A certificate for another name: refused, unless bridge_insecure.
    const strict = await LocalMidge.start(bridge(misnamed.port, pki.root.cert))
    running.push(strict)
    await failedAttempts(strict, 1)
    assert.match(strict.log.text, /connection to 127\.0\.0\.1:\d+ failed: .*(altnames|does not match)/i)
    const insecure = await LocalMidge.start(bridge(misnamed.port, pki.root.cert, 'bridge_insecure true'))
    running.push(insecure)
    await connected(insecure.bridge)
    assert.equal(strict.bridge.state === 2, false)
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- Pi logs ---\n${running.map((m) => m.log.text).join('\n---\n')}\n--- VPS log ---\n${vps.output}`, { cause: err })
  } finally {
    for (const p of peers) await p.close().catch(() => {})
    for (const m of running) await m.close()
    await vps.remove()
    await misnamed.remove()
    pki.remove()
  }
})
