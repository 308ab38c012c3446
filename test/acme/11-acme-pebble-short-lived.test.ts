/**
 * Renewal by the schedule alone, against pebble issuing 6-second certificates: a third of the lifetime
 * before expiry the manager renews on its own (no 12-hour wait, no --force), and the TLS listener serves
 * the new certificate to the next connection without a restart.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { AcmeManager } from '../../src/acme/manager.js'
import { renewalTime } from '../../src/acme/policy.js'
import type { StoredCertificate } from '../../src/acme/state-dir.js'
import { startPebble, type Pebble } from '../helpers/pebble.js'
import { RecordingLogger, startTlsBroker } from '../helpers/tls-harness.js'

const LifetimeSeconds = 6

let pebble: Pebble
let tmp: string

before(async () => {
  pebble = await startPebble({ certificateValidityPeriod: LifetimeSeconds })
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-acme-short-'))
})
after(async () => {
  await pebble.stop()
  fs.rmSync(tmp, { recursive: true, force: true })
})

function servedSerial(port: number, root: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'short.test', ca: root }, () => {
      resolve(s.getPeerX509Certificate()?.serialNumber ?? '')
      s.end()
    })
    s.once('error', reject)
    s.resume()
  })
}

test('short-lived certificates are renewed by the schedule at two thirds of their lifetime and swapped in', async () => {
  const log = new RecordingLogger()
  const m = new AcmeManager({
    directoryUrl: pebble.directoryUrl,
    email: undefined,
    caFile: pebble.caFile,
    stateDir: path.join(tmp, 'state'),
    challenge: { kind: 'responder', port: pebble.httpPort, host: '127.0.0.1', always: false },
    logger: log,
    timing: { pollMinMs: 50, pollMaxMs: 200 },
  })
  const cert = m.add(['short.test'])
  const issued: StoredCertificate[] = []
  const waiters: Array<() => void> = []
  m.onCertificate((_c, info) => { issued.push(info); for (const w of waiters.splice(0)) w() })
  const nth = async (n: number): Promise<StoredCertificate> => {
    while (issued.length < n) await new Promise<void>((resolve) => waiters.push(resolve))
    return issued[n - 1] as StoredCertificate
  }
  await m.prepare()
  m.start()
  const first = await nth(1)
  const tb = await startTlsBroker({ certfile: cert.certfile, keyfile: cert.keyfile, domain: 'short.test', watch: false, certCheckIntervalMs: 0 })
  m.onCertificate(() => { void tb.listener.reload() })
  try {
    const root = await pebble.root()
    assert.equal((await servedSerial(tb.port, root)).toLowerCase(), first.serial.toLowerCase())
    const lifetime = first.notAfter.getTime() - first.notBefore.getTime()
    assert.ok(lifetime <= LifetimeSeconds * 1000, `lifetime ${lifetime} ms`)
    const dueAt = renewalTime(first.notBefore, first.notAfter)

    const second = await nth(2)
    assert.ok(Date.now() >= dueAt.getTime() - 50, 'renewed before it was due')
    assert.ok(Date.now() < first.notAfter.getTime(), 'renewed only after the certificate expired')
    assert.notEqual(second.serial, first.serial)
    await log.waitFor(/ACME: renewing the certificate for short\.test \(the current one expires on /)
    assert.equal((await servedSerial(tb.port, root)).toLowerCase(), second.serial.toLowerCase())
  } finally {
    await tb.close()
    await m.close()
  }
})
