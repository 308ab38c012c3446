/**
 * The ACME manager against a real ACME server (pebble, started on loopback by test/helpers/pebble.ts):
 * first issuance, files and modes in the state directory, the chain checked against pebble's root, a
 * forced renewal hot-swapped into a running TLS listener, a failed validation that keeps the old
 * certificate, webroot mode, and the real cause when the directory cannot be used.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import mqtt from 'mqtt'
import { AcmeErrorCode, type AcmeError } from '../../src/acme/errors.js'
import { AcmeManager, type AcmeManagerOptions } from '../../src/acme/manager.js'
import { startPebble, type Pebble } from '../helpers/pebble.js'
import { freePort } from '../helpers/ports.js'
import { RecordingLogger, startTlsBroker } from '../helpers/tls-harness.js'

let pebble: Pebble
let tmp: string

before(async () => {
  pebble = await startPebble()
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-acme-'))
})
after(async () => {
  await pebble.stop()
  fs.rmSync(tmp, { recursive: true, force: true })
})

const fast = { pollMinMs: 50, pollMaxMs: 200, retryMinMs: 60_000, retryMaxMs: 60_000 }

function manager(name: string, logger: RecordingLogger, over: Partial<AcmeManagerOptions> = {}): AcmeManager {
  return new AcmeManager({
    directoryUrl: pebble.directoryUrl,
    email: 'admin@example.org',
    caFile: pebble.caFile,
    stateDir: path.join(tmp, name),
    challenge: { kind: 'responder', port: pebble.httpPort, host: '127.0.0.1', always: false },
    logger,
    timing: fast,
    ...over,
  })
}

function mode(p: string): string {
  return (fs.statSync(p).mode & 0o777).toString(8)
}

/** What a new TLS connection to `port` is served, verified against pebble's root. */
function connectInfo(port: number, root: string, servername = 'mqtt.test'): Promise<{ authorized: boolean; error: string | undefined; serial: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, ca: root, rejectUnauthorized: false }, () => {
      const serial = s.getPeerX509Certificate()?.serialNumber ?? ''
      resolve({ authorized: s.authorized, error: s.authorizationError === null ? undefined : String(s.authorizationError), serial })
      s.end()
    })
    s.once('error', reject)
    s.resume()
  })
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(false) })
    s.once('error', () => resolve(true))
  })
}

test('obtains a certificate on first start, keeps account and certificate 0600 in the state directory, and the chain verifies against pebble\'s root', async () => {
  const log = new RecordingLogger()
  const m = manager('first', log)
  const cert = m.add(['mqtt.test', 'broker.mqtt.test'])
  await m.prepare()
  const issued = new Promise<void>((resolve) => m.onCertificate(() => resolve()))
  m.start()
  await issued
  try {
    assert.equal(mode(m.state.dir), '700')
    for (const f of [m.state.accountKeyFile, cert.certfile, cert.keyfile, cert.statusFile]) assert.equal(mode(f), '600', f)
    assert.equal(cert.certfile, path.join(tmp, 'first', 'certs', 'mqtt.test', 'fullchain.pem'))
    await log.waitFor(/ACME: mqtt\.test validated\./)
    await log.waitFor(/ACME: broker\.mqtt\.test validated\./)
    await log.waitFor(/ACME: certificate for mqtt\.test, broker\.mqtt\.test issued by CN=Pebble Intermediate/)
    // The responder listened only while the challenges were pending.
    assert.equal(await refused(pebble.httpPort), true, 'the HTTP-01 port is still open')
    assert.deepEqual(fs.readdirSync(m.state.challengeDir), [])

    const tb = await startTlsBroker({ certfile: cert.certfile, keyfile: cert.keyfile, domain: 'mqtt.test' })
    try {
      const root = await pebble.root()
      for (const name of ['mqtt.test', 'broker.mqtt.test']) {
        const c = await connectInfo(tb.port, root, name)
        assert.equal(c.authorized, true, c.error)
      }
      // Against another root the chain does not verify: the check above means something.
      const other = fs.readFileSync(pebble.caFile, 'utf8')
      assert.equal((await connectInfo(tb.port, other)).authorized, false)
    } finally {
      await tb.close()
    }
    const [status] = m.status()
    assert.ok(status?.certificate !== undefined)
    assert.deepEqual(status.certificate.names.sort(), ['broker.mqtt.test', 'mqtt.test'])
    assert.equal(status.lastError, undefined)
    assert.ok(status.renewAt !== undefined && status.renewAt < status.certificate.notAfter)
    // A second check finds nothing due and orders nothing.
    const [again] = await m.renew()
    assert.equal(again?.outcome, 'not-due')
  } finally {
    await m.close()
  }
})

test('a forced renewal is hot-swapped: a new TLS connection gets a different serial while a client connected before keeps working', async () => {
  const log = new RecordingLogger()
  const m = manager('swap', log)
  const cert = m.add(['mqtt.test'])
  await m.prepare()
  const [first] = await m.renew()
  assert.equal(first?.outcome, 'issued', String((first?.error as Error | undefined)?.message))
  const root = await pebble.root()
  const tb = await startTlsBroker({ certfile: cert.certfile, keyfile: cert.keyfile, domain: 'mqtt.test', certCheckIntervalMs: 600_000, watch: false })
  m.onCertificate(() => { void tb.listener.reload() })
  const options = (id: string): mqtt.IClientOptions => ({ host: '127.0.0.1', port: tb.port, protocol: 'mqtts', ca: root, servername: 'mqtt.test', clientId: id, reconnectPeriod: 0 })
  try {
    const before = await connectInfo(tb.port, root)
    assert.equal(before.authorized, true, before.error)
    const sub = await mqtt.connectAsync(options('sub-before'))
    await sub.subscribeAsync('acme/#', { qos: 1 })
    const received: string[] = []
    sub.on('message', (_t, msg) => received.push(msg.toString()))

    const [renewed] = await m.renew({ force: true })
    assert.equal(renewed?.outcome, 'issued')
    assert.notEqual(renewed?.certificate?.serial, first?.certificate?.serial)
    await log.waitFor(/renewing the certificate for mqtt\.test \(renewal forced\)/)
    const afterSwap = await connectInfo(tb.port, root)
    assert.equal(afterSwap.authorized, true, afterSwap.error)
    assert.notEqual(afterSwap.serial, before.serial)
    assert.equal(afterSwap.serial.toLowerCase(), renewed?.certificate?.serial.toLowerCase())

    // The connection made before the swap still carries messages, to and from a new one.
    const fresh = await mqtt.connectAsync(options('pub-after'))
    await fresh.publishAsync('acme/x', 'after-swap', { qos: 1 })
    while (received.length < 1) await new Promise((resolve) => sub.once('message', resolve))
    assert.deepEqual(received, ['after-swap'])
    assert.equal(sub.connected, true)
    await Promise.all([sub.endAsync(), fresh.endAsync()])
  } finally {
    await tb.close()
    await m.close()
  }
})

test('a failed validation (the name resolves elsewhere) is logged with the CA\'s detail and a hint, retried later, and the old certificate stays', async () => {
  const log = new RecordingLogger()
  const m = manager('fail', log)
  const cert = m.add(['fail.test'])
  await m.prepare()
  const [first] = await m.renew()
  assert.equal(first?.outcome, 'issued')
  const before = fs.readFileSync(cert.certfile, 'utf8')
  const tb = await startTlsBroker({ certfile: cert.certfile, keyfile: cert.keyfile, domain: 'fail.test' })
  try {
    const served = tb.listener.certificateInfo().serial
    // DNS now points at an address where nothing answers port 80: pebble's validation cannot connect.
    await pebble.setA('fail.test', '127.0.0.2')
    try {
      const [r] = await m.renew({ force: true })
      assert.equal(r?.outcome, 'failed')
      const err = r?.error as AcmeError
      assert.equal(err.code, AcmeErrorCode.Validation)
      assert.match(err.message, /validation of fail\.test failed \(connection\): .*127\.0\.0\.2/)
      assert.match(err.hint ?? '', /port 80/)
    } finally {
      await pebble.clearA('fail.test')
    }
    await log.waitFor(/ACME: renewing the certificate for fail\.test failed: validation of fail\.test failed \(connection\).*\(hint: the CA could not connect/)
    await log.waitFor(/ACME: the listener keeps serving the current certificate \(serial .*\); next attempt at .* \(attempt 2\)\./)
    assert.equal(fs.readFileSync(cert.certfile, 'utf8'), before)
    assert.equal(tb.listener.certificateInfo().serial, served)
    const [status] = m.status()
    assert.match(status?.lastError ?? '', /validation of fail\.test failed/)
    assert.ok(status?.nextAttempt !== undefined && status.nextAttempt.getTime() > Date.now() + 30_000, 'a retry is scheduled with a delay')
  } finally {
    await tb.close()
    await m.close()
  }
})

test('webroot mode: the challenge file is written where an existing web server serves it, and removed afterwards', async () => {
  const log = new RecordingLogger()
  const webroot = path.join(tmp, 'www')
  const hits: string[] = []
  // The "existing web server" on the challenge port, serving files from webroot.
  const server = http.createServer((req, res) => {
    hits.push(req.url ?? '')
    try {
      const body = fs.readFileSync(path.join(webroot, path.normalize(req.url ?? '/').replace(/^(\.\.[/\\])+/, '')))
      res.writeHead(200).end(body)
    } catch {
      res.writeHead(404).end()
    }
  })
  await new Promise<void>((resolve) => server.listen(pebble.httpPort, '127.0.0.1', resolve))
  const m = manager('webroot', log, { challenge: { kind: 'webroot', dir: webroot } })
  try {
    const cert = m.add(['web.test'])
    await m.prepare()
    const [r] = await m.renew()
    assert.equal(r?.outcome, 'issued', String((r?.error as Error | undefined)?.message))
    assert.ok(hits.some((h) => h.startsWith('/.well-known/acme-challenge/')), hits.join(' '))
    assert.deepEqual(fs.readdirSync(path.join(webroot, '.well-known', 'acme-challenge')), [])
    assert.equal(mode(cert.keyfile), '600')
    await log.waitFor(/answering the HTTP-01 challenge with files under .*www\/\.well-known\/acme-challenge/)
  } finally {
    await m.close()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
})

test('an unreachable or untrusted directory is reported with its real cause at once, not after acme-client\'s minute of retries', async () => {
  const log = new RecordingLogger()
  const port = await freePort()
  const down = manager('down', log, { directoryUrl: `https://127.0.0.1:${port}/dir` })
  down.add(['down.test'])
  const untrusted = manager('untrusted', log, { caFile: undefined })
  untrusted.add(['untrusted.test'])
  try {
    const start = Date.now()
    const [a] = await down.renew()
    const [b] = await untrusted.renew()
    assert.ok(Date.now() - start < 5000, `took ${Date.now() - start} ms`)
    assert.equal((a?.error as AcmeError).code, AcmeErrorCode.DirectoryUnreachable)
    assert.match((a?.error as Error).message, /cannot reach the ACME server 127\.0\.0\.1:\d+ \(ECONNREFUSED/)
    assert.equal((b?.error as AcmeError).code, AcmeErrorCode.DirectoryUntrusted)
    assert.match(log.lines.join('\n'), /does not trust .*\(hint: for a private ACME server, name its CA in acme_ca_file/)
  } finally {
    await down.close()
    await untrusted.close()
  }
})

test('a certificate obtained from another acme_directory (staging, then production) is replaced at the next check', async () => {
  const log = new RecordingLogger()
  const staging = manager('switch', log, { directoryUrl: `${pebble.directoryUrl}?staging` })
  staging.add(['switch.test'])
  await staging.prepare()
  const [first] = await staging.renew()
  assert.equal(first?.outcome, 'issued')
  await staging.close()

  const production = manager('switch', log)
  production.add(['switch.test'])
  try {
    const [second] = await production.renew()
    assert.equal(second?.outcome, 'issued')
    assert.notEqual(second?.certificate?.serial, first?.certificate?.serial)
    await log.waitFor(/renewing the certificate for switch\.test \(the current one comes from https:\/\/127\.0\.0\.1:\d+\/dir\?staging\)/)
    const [third] = await production.renew()
    assert.equal(third?.outcome, 'not-due')
  } finally {
    await production.close()
  }
})
