/**
 * The set-up against the real `midge` process and pebble: a listener with acme_domain and no
 * certificate starts once one is obtained while the plain listener already serves; `midge cert status`
 * prints the names, issuer, expiry and next renewal; `midge cert renew --force` (run beside the broker,
 * which keeps the challenge port with acme_challenge_always and answers for it) installs a new
 * certificate that the running broker swaps in: a new connection sees a new serial, an old one keeps
 * working. Then a failed renewal leaves the served certificate in place.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import mqtt from 'mqtt'
import { MidgeProcess } from '../helpers/midge-process.js'
import { startPebble, type Pebble } from '../helpers/pebble.js'

let pebble: Pebble
let tmp: string

before(async () => {
  pebble = await startPebble()
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-acme-proc-'))
})
after(async () => {
  await pebble.stop()
  fs.rmSync(tmp, { recursive: true, force: true })
})

const runCli = (args: string[]): ReturnType<typeof MidgeProcess.run> => MidgeProcess.run(args)

function serial(port: number, root: string): Promise<{ authorized: boolean; error: unknown; serial: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'mqtt.test', ca: root, rejectUnauthorized: false }, () => {
      resolve({ authorized: s.authorized, error: s.authorizationError, serial: s.getPeerX509Certificate()?.serialNumber ?? '' })
      s.end()
    })
    s.once('error', reject)
    s.resume()
  })
}

function httpStatus(port: number, urlPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject)
  })
}

test('midge obtains the certificate of an acme_domain listener at start, `cert status` shows it, and `cert renew --force` is swapped into the running broker', async () => {
  const conf = path.join(tmp, 'midge.conf')
  fs.writeFileSync(conf, [
    // Stay root when the tests run as root: the temporary directories are 0700.
    'user root',
    'listener 0 127.0.0.1',
    'allow_anonymous true',
    'listener 0 127.0.0.1',
    'acme_domain mqtt.test www.mqtt.test   # one or more names',
    'acme_email admin@example.org',
    `acme_directory ${pebble.directoryUrl}`,
    `acme_ca_file ${pebble.caFile}`,
    `acme_challenge_port ${pebble.httpPort}`,
    'acme_challenge_always true',
    `acme_state_dir ${path.join(tmp, 'state')}`,
    '',
  ].join('\n'))
  const midge = new MidgeProcess(['-c', conf, '-v'])
  try {
    const [plainLine, waitLine, tlsLine] = await Promise.all([
      midge.waitFor(/Opening ipv4 listen socket on 127\.0\.0\.1 port (\d+) \(listener 0#0\)/),
      midge.waitFor(/TLS listener 0#1 waits for its certificate for mqtt\.test, www\.mqtt\.test/),
      midge.waitFor(/Opening ipv4 TLS listen socket on 127\.0\.0\.1 port (\d+) \(listener 0#1\)/),
    ])
    // The plain listener served while the certificate was being obtained.
    assert.ok(midge.lines.findIndex((l) => l === plainLine.input) < midge.lines.findIndex((l) => l === tlsLine.input))
    assert.ok(midge.lines.findIndex((l) => l === waitLine.input) < midge.lines.findIndex((l) => /ACME: mqtt\.test validated/.test(l)))
    const tlsPort = Number(tlsLine[1])
    const root = await pebble.root()
    const first = await serial(tlsPort, root)
    assert.equal(first.authorized, true, String(first.error))

    // acme_challenge_always: the responder stays up, and answers nothing but challenge tokens.
    assert.equal(await httpStatus(pebble.httpPort, '/'), 404)
    assert.equal(await httpStatus(pebble.httpPort, '/.well-known/acme-challenge/unknown-token'), 404)
    assert.equal(await httpStatus(pebble.httpPort, '/.well-known/acme-challenge/../../midge.conf'), 404)

    const status = await runCli(['cert', 'status', '-c', conf])
    assert.equal(status.code, 0, status.stderr)
    assert.match(status.stdout, /^mqtt\.test\n {2}names: {9}mqtt\.test, www\.mqtt\.test\n {2}issuer: {8}CN=Pebble Intermediate CA/m)
    assert.match(status.stdout, new RegExp(` {2}serial: {8}${first.serial}`, 'i'))
    assert.match(status.stdout, / {2}expires: {7}\d{4}-.*\(in \d+ days\)/)
    assert.match(status.stdout, / {2}next renewal: {2}\d{4}-.*\(in \d+ days\)/)
    for (const f of ['fullchain.pem', 'privkey.pem']) assert.equal(fs.statSync(path.join(tmp, 'state', 'certs', 'mqtt.test', f)).mode & 0o777, 0o600)

    const sub = await mqtt.connectAsync({ host: '127.0.0.1', port: tlsPort, protocol: 'mqtts', ca: root, servername: 'mqtt.test', clientId: 'old', reconnectPeriod: 0 })
    await sub.subscribeAsync('t/#', { qos: 1 })
    const got: string[] = []
    sub.on('message', (_t, m) => got.push(m.toString()))

    const from = midge.lines.length
    const notDue = await runCli(['cert', 'renew', '-c', conf])
    assert.equal(notDue.code, 0, notDue.stderr)
    assert.match(notDue.stdout, /mqtt\.test, www\.mqtt\.test: not due yet/)
    const renew = await runCli(['cert', 'renew', '-c', conf, '--force'])
    assert.equal(renew.code, 0, `${renew.stdout}\n${renew.stderr}`)
    assert.match(renew.stdout, /mqtt\.test, www\.mqtt\.test: renewed, serial/)
    // The broker held the port and answered the CLI's challenges from the shared state directory.
    assert.match(renew.stderr, /is held by another Midge process/)
    await midge.waitFor(/TLS listener 0#1 now serves a new certificate/, from)
    const second = await serial(tlsPort, root)
    assert.equal(second.authorized, true, String(second.error))
    assert.notEqual(second.serial, first.serial)

    const pub = await mqtt.connectAsync({ host: '127.0.0.1', port: tlsPort, protocol: 'mqtts', ca: root, servername: 'mqtt.test', clientId: 'new', reconnectPeriod: 0 })
    await pub.publishAsync('t/1', 'after renewal', { qos: 1 })
    while (got.length < 1) await midge.guard(new Promise((resolve) => sub.once('message', resolve)), 'message to the old connection')
    assert.deepEqual(got, ['after renewal'])
    await Promise.all([sub.endAsync(), pub.endAsync()])

    // A renewal that cannot validate (the name's DNS is broken) changes nothing the broker serves.
    await pebble.servfail('mqtt.test')
    try {
      const failed = await runCli(['cert', 'renew', '-c', conf, '--force'])
      assert.equal(failed.code, 1, failed.stdout)
      assert.match(failed.stdout, /failed: validation of mqtt\.test failed \(\w+\): .*could not resolve.*\(hint: the CA cannot resolve mqtt\.test/)
    } finally {
      await pebble.clearServfail('mqtt.test')
    }
    assert.equal((await serial(tlsPort, root)).serial, second.serial)
    const after = await runCli(['cert', 'status', '-c', conf])
    assert.match(after.stdout, /last error: {4}validation of mqtt\.test failed/)
  } finally {
    assert.equal(await midge.stop(), 0)
  }

  // A restart finds the certificate in the state directory: the listener opens at once, nothing is ordered.
  const again = new MidgeProcess(['-c', conf, '-v'])
  try {
    const tlsLine = await again.waitFor(/Opening ipv4 TLS listen socket on 127\.0\.0\.1 port (\d+) \(listener 0#1\)/)
    await again.waitFor(/ACME: certificate for mqtt\.test, www\.mqtt\.test is valid until .*; renewal due /)
    assert.equal(again.lines.some((l) => /waits for its certificate|ACME: (obtaining|renewing)/.test(l)), false, again.lines.join('\n'))
    const served = await serial(Number(tlsLine[1]), await pebble.root())
    assert.equal(served.authorized, true, String(served.error))
  } finally {
    assert.equal(await again.stop(), 0)
  }
})
