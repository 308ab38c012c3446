/**
 * `midge init --domain` against pebble (Let's Encrypt's test server, as test/acme/12 runs it): the
 * config asks ACME for the name, the broker started as root on it obtains the certificate, switches to
 * mosquitto, and serves TLS pub/sub with the obtained certificate to the user init created. The ACME
 * state lands in the data folder, owned by the broker's user.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import mqtt from 'mqtt'
import { MidgeProcess } from '../helpers/midge-process.js'
import { startPebble, type Pebble } from '../helpers/pebble.js'
import { freePort } from '../helpers/ports.js'
import { initArgs, layout, runMidge, tempRoot, waitForLogLine } from './init-harness.js'

let pebble: Pebble
let root: string

before(async () => {
  pebble = await startPebble()
  root = tempRoot('midge-init-acme-')
})
after(async () => {
  await pebble.stop()
  fs.rmSync(root, { recursive: true, force: true })
})

test('midge init --domain: the broker obtains the certificate by ACME (pebble) and serves TLS pub/sub to the user', async () => {
  const l = layout(root)
  // pebble's own folder is root's 0700; the broker's user reads the trust file at each renewal.
  const acmeCa = path.join(root, 'pebble-ca.pem')
  fs.copyFileSync(pebble.caFile, acmeCa)
  fs.chmodSync(acmeCa, 0o644)
  const [port, tlsPort] = [await freePort(), await freePort()]
  const init = await runMidge([...initArgs(l), '--domain', 'mqtt.test', '--email', 'admin@example.org', '--user', 'bob',
    '--port', String(port), '--tls-port', String(tlsPort),
    '--acme-directory', pebble.directoryUrl, '--acme-ca-file', acmeCa, '--acme-challenge-port', String(pebble.httpPort)], 'bob-secret\n')
  assert.equal(init.code, 0, init.stdout + init.stderr)
  assert.equal(fs.existsSync(path.join(l.etc, 'ca.key')), false, 'no LAN CA with a domain')
  const conf = fs.readFileSync(l.config, 'utf8')
  for (const line of ['acme_domain mqtt.test', 'acme_email admin@example.org', `acme_directory ${pebble.directoryUrl}`, `acme_ca_file ${acmeCa}`, `acme_challenge_port ${pebble.httpPort}`]) {
    assert.ok(conf.split('\n').includes(line), `${line} missing from\n${conf}`)
  }
  assert.match(init.stdout, new RegExp(`  midge sub -h mqtt\\.test -p ${tlsPort} --capath /etc/ssl/certs -u bob -P 'PASSWORD' -t test -v`))
  assert.match(init.stdout, /midge init: wrote\n/)

  const broker = new MidgeProcess(['-c', l.config])
  const dead = (): boolean => broker.child.exitCode !== null
  try {
    await waitForLogLine(l.logFile, new RegExp(`Opening ipv4 TLS listen socket on 0\\.0\\.0\\.0 port ${tlsPort}`), 30_000, dead)
    const log = fs.readFileSync(l.logFile, 'utf8')
    assert.match(log, /Changed user to 'mosquitto'/)
    assert.match(log, /ACME: certificate for mqtt\.test issued by CN=Pebble Intermediate CA/)
    const certDir = path.join(l.lib, 'acme', 'certs', 'mqtt.test')
    const st = fs.statSync(path.join(certDir, 'privkey.pem'))
    assert.equal(st.mode & 0o777, 0o600)
    assert.equal(st.uid, Number(fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((x) => x.startsWith('mosquitto:'))!.split(':')[2]))

    const ca = await pebble.root()
    const tlsOpts = { host: '127.0.0.1', port: tlsPort, protocol: 'mqtts' as const, ca, servername: 'mqtt.test', reconnectPeriod: 0 }
    await assert.rejects(mqtt.connectAsync({ ...tlsOpts, clientId: 'anon' }), /Not authorized|not authorised/i)
    const sub = await mqtt.connectAsync({ ...tlsOpts, clientId: 'sub', username: 'bob', password: 'bob-secret' })
    await sub.subscribeAsync('test', { qos: 1 })
    const got = new Promise<string>((resolve) => sub.once('message', (_t, m) => resolve(m.toString())))
    const pub = await mqtt.connectAsync({ ...tlsOpts, clientId: 'pub', username: 'bob', password: 'bob-secret' })
    await pub.publishAsync('test', 'hello world', { qos: 1 })
    assert.equal(await got, 'hello world')
    await Promise.all([sub.endAsync(), pub.endAsync()])
  } finally {
    broker.child.kill('SIGTERM')
    await broker.exited
  }
})
