/**
 * The seed's port 8883 setup against the real `midge` process (bin/midge.js, built with tsc), driven
 * by mosquitto_sub / mosquitto_pub: Let's Encrypt-style files, a certbot renewal picked up without a
 * restart, SIGHUP, client-certificate auth, and `midge check` naming a mismatched key and an expired
 * certificate. Listeners use port 0; the port is read from midge's log.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { TestPki, type Issued, type LetsEncryptLayout } from '../helpers/certs.js'
import { MidgeProcess } from '../helpers/midge-process.js'
import { payloadLines, probe, readPem, runMosquitto, startSubscriber } from '../helpers/tls-harness.js'

let pki: TestPki
let first: Issued
let le: LetsEncryptLayout

before(() => {
  pki = new TestPki()
  first = pki.issue('midge-1', { cn: 'localhost' })
  le = pki.letsEncrypt('midge.example.test', first)
})
after(() => pki.remove())

/** midge -c CONF -v, once it has opened `listeners` TLS listeners; their ports in order. */
async function startMidge(conf: string, listeners: number): Promise<{ proc: MidgeProcess; ports: number[] }> {
  const file = pki.path(`midge-${Date.now()}.conf`)
  fs.writeFileSync(file, conf)
  const proc = new MidgeProcess(['-c', file, '-v'])
  const opened = await proc.guard(proc.opened(listeners), 'the listeners')
  assert.ok(opened.every((o) => o.tls), proc.lines.join('\n'))
  return { proc, ports: opened.map((o) => o.port) }
}

const target = (port: number): string[] => ['-h', 'localhost', '-p', String(port)]

test("[seed] listener 8883 with cert.pem/chain.pem/privkey.pem: mosquitto_sub and mosquitto_pub talk through the midge process; renewals and SIGHUP need no restart", async () => {
  const alice = pki.issue('alice', { kind: 'client', cn: 'alice' })
  const cas = pki.bundle('client-cas.pem', pki.intermediate.cert, pki.root.cert)
  const midge = await startMidge(`# the seed's configuration, on free ports
user root
allow_anonymous true

listener 0 127.0.0.1
certfile ${le.cert}
cafile ${le.chain}
keyfile ${le.privkey}

listener 0 127.0.0.1
certfile ${le.fullchain}
keyfile ${le.privkey}
cafile ${cas}
require_certificate true
use_identity_as_username true
`, 2)
  try {
    const [port, certPort] = midge.ports as [number, number]
    const tls = ['--cafile', pki.root.cert]
    const sub = await startSubscriber([...target(port), ...tls, '-t', 'test', '-C', '3', '-q', '1', '-i', 'seed-sub'])
    const hello = await runMosquitto('mosquitto_pub', [...target(port), ...tls, '-t', 'test', '-m', 'hello world'])
    assert.equal(hello.code, 0, hello.stderr)

    // A certbot renewal: the next connection gets the new certificate within 2 s, the subscriber stays.
    const second = pki.issue('midge-2', { cn: 'localhost' })
    const renewedAt = Date.now()
    le.renew(second)
    for (;;) {
      if ((await probe(port, { ca: readPem(pki.root.cert) })).fingerprint === second.fingerprint) break
      assert.ok(Date.now() - renewedAt < 2000, `the renewal was not served within 2 s:\n${midge.proc.lines.join('\n')}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const renewed = await runMosquitto('mosquitto_pub', [...target(port), ...tls, '-t', 'test', '-m', 'after renewal', '-q', '1'])
    assert.equal(renewed.code, 0, renewed.stderr)

    // Client certificates on the second listener (it serves fullchain.pem, renewed as well).
    const signed = await runMosquitto('mosquitto_pub', [...target(certPort), ...tls, '--cert', alice.cert, '--key', alice.key, '-t', 'test', '-m', 'from alice', '-q', '1'])
    assert.equal(signed.code, 0, signed.stderr)
    const unsigned = await runMosquitto('mosquitto_pub', [...target(certPort), ...tls, '-t', 'test', '-m', 'nobody'])
    assert.notEqual(unsigned.code, 0)

    assert.deepEqual(payloadLines((await sub.done).stdout), ['hello world', 'after renewal', 'from alice'])
    await midge.proc.waitFor(/alice/)

    // SIGHUP re-reads the files, and says so.
    const from = midge.proc.lines.length
    midge.proc.child.kill('SIGHUP')
    await midge.proc.waitFor(/reloaded the same certificate/, from)
  } finally {
    await midge.proc.stop()
  }
})

test('a broken renewal keeps the midge process serving the old certificate, and says why', async () => {
  const own = pki.letsEncrypt('broken-midge.example.test', first)
  const midge = await startMidge(`user root
allow_anonymous true
listener 0 127.0.0.1
certfile ${own.cert}
cafile ${own.chain}
keyfile ${own.privkey}
`, 1)
  try {
    const [port] = midge.ports as [number]
    const stray = pki.issue('midge-stray', { cn: 'localhost' })
    const from = midge.proc.lines.length
    own.renew(stray, { privkey: false })
    await midge.proc.waitFor(/the new ones are refused; still serving CN=localhost/, from)
    await midge.proc.waitFor(/does not match the certificate in certfile/, from)
    assert.equal((await probe(port)).fingerprint, first.fingerprint)
    const pub = await runMosquitto('mosquitto_pub', [...target(port), '--cafile', pki.root.cert, '-t', 'test', '-m', 'still fine'])
    assert.equal(pub.code, 0, pub.stderr)
  } finally {
    await midge.proc.stop()
  }
})

test('midge check names a key that does not match, and an expired certificate, each in its own sentence', async () => {
  const other = pki.issue('check-other')
  const expired = pki.issue('check-expired', { startDate: '200101000000Z', endDate: '200201000000Z' })
  const file = pki.path('check.conf')
  fs.writeFileSync(file, `user root
listener 8883
certfile ${first.cert}
keyfile ${other.key}
cafile ${pki.intermediate.cert}
allow_anonymous true

listener 8884
certfile ${expired.cert}
keyfile ${expired.key}
cafile ${pki.intermediate.cert}
allow_anonymous true
`)
  const { code, out } = await MidgeProcess.run(['check', '-c', file])
  assert.notEqual(code, 0, out)
  assert.ok(out.includes(`keyfile ${other.key} does not match the certificate in certfile ${first.cert}`), out)
  assert.ok(out.includes(`the certificate in certfile ${expired.cert} (CN=check-expired) expired on 2020-02-01T00:00:00Z`), out)
})
