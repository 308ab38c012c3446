/**
 * The seed's port 8883 setup against the real `midge` process (bin/midge.js, built with tsc), driven
 * by mosquitto_sub / mosquitto_pub: Let's Encrypt-style files, a certbot renewal picked up without a
 * restart, SIGHUP, client-certificate auth, and `midge check` naming a mismatched key and an expired
 * certificate. Listeners use port 0; the port is read from midge's log.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { TestPki, type Issued, type LetsEncryptLayout } from '../helpers/certs.js'
import { payloadLines, probe, readPem, runMosquitto, startSubscriber } from '../helpers/tls-harness.js'

const MIDGE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/midge.js')

let pki: TestPki
let first: Issued
let le: LetsEncryptLayout

before(() => {
  pki = new TestPki()
  first = pki.issue('midge-1', { cn: 'localhost' })
  le = pki.letsEncrypt('midge.example.test', first)
})
after(() => pki.remove())

interface Midge { child: ChildProcess; output: () => string; ports: number[]; waitFor: (re: RegExp, from?: number) => Promise<void> }

async function startMidge(conf: string, listeners: number): Promise<Midge> {
  const file = pki.path(`midge-${Date.now()}.conf`)
  fs.writeFileSync(file, conf)
  const child = spawn(process.execPath, [MIDGE, '-c', file, '-v'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const waiters: Array<() => void> = []
  const onData = (d: Buffer): void => { out += d.toString(); for (const w of waiters.splice(0)) w() }
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  const waitFor = async (re: RegExp, from = 0): Promise<void> => {
    const deadline = Date.now() + 10_000
    while (!re.test(out.slice(from))) {
      if (child.exitCode !== null) throw new Error(`midge exited (${child.exitCode}) before logging ${re}:\n${out}`)
      if (Date.now() > deadline) throw new Error(`midge did not log ${re} within 10 s:\n${out}`)
      await new Promise<void>((resolve) => { waiters.push(resolve); setTimeout(resolve, 200) })
    }
  }
  const re = /TLS listen socket on 127\.0\.0\.1 port (\d+)/g
  await waitFor(new RegExp(`(${re.source}[\\s\\S]*){${listeners}}`))
  const ports = [...out.matchAll(re)].map((m) => Number(m[1]))
  return { child, output: () => out, ports, waitFor }
}

async function stopMidge(m: Midge): Promise<void> {
  if (m.child.exitCode !== null) return
  m.child.kill('SIGTERM')
  await once(m.child, 'exit')
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
      assert.ok(Date.now() - renewedAt < 2000, `the renewal was not served within 2 s:\n${midge.output()}`)
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
    await midge.waitFor(/alice/)

    // SIGHUP re-reads the files, and says so.
    const from = midge.output().length
    midge.child.kill('SIGHUP')
    await midge.waitFor(/reloaded the same certificate/, from)
  } finally {
    await stopMidge(midge)
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
    const from = midge.output().length
    own.renew(stray, { privkey: false })
    await midge.waitFor(/the new ones are refused; still serving CN=localhost/, from)
    await midge.waitFor(/does not match the certificate in certfile/, from)
    assert.equal((await probe(port)).fingerprint, first.fingerprint)
    const pub = await runMosquitto('mosquitto_pub', [...target(port), '--cafile', pki.root.cert, '-t', 'test', '-m', 'still fine'])
    assert.equal(pub.code, 0, pub.stderr)
  } finally {
    await stopMidge(midge)
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
  const child = spawn(process.execPath, [MIDGE, 'check', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  const [code] = await once(child, 'exit') as [number]
  assert.notEqual(code, 0, out)
  assert.ok(out.includes(`keyfile ${other.key} does not match the certificate in certfile ${first.cert}`), out)
  assert.ok(out.includes(`the certificate in certfile ${expired.cert} (CN=check-expired) expired on 2020-02-01T00:00:00Z`), out)
})
