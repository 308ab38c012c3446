/**
 * The certificate watcher in a busy folder: a log file beside the certificates that changes every 50 ms
 * must not postpone a renewal. Only events for the watched names count, and a burst of those is applied
 * within 2 s however long it lasts.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { CertWatcher } from '../../src/transport/cert-watch.js'
import { TestPki, type Issued } from '../helpers/certs.js'
import { probe, readPem, startTlsBroker, type TlsBroker } from '../helpers/tls-harness.js'

let pki: TestPki
let first: Issued

before(() => {
  pki = new TestPki()
  first = pki.issue('busy-1', { cn: 'localhost' })
})
after(() => pki.remove())

/** Appends to `files` every 50 ms until the returned function is called. */
function busy(files: string[]): () => void {
  let n = 0
  const timer = setInterval(() => { for (const f of files) fs.appendFileSync(f, `line ${n++}\n`) }, 50)
  return () => clearInterval(timer)
}

/** Probes new connections until one is served `fingerprint`; returns the ms it took, or throws past `limitMs`. */
async function servedWithin(tb: TlsBroker, fingerprint: string, limitMs: number): Promise<number> {
  const start = Date.now()
  for (;;) {
    const p = await probe(tb.port, { ca: readPem(pki.root.cert) })
    if (p.fingerprint === fingerprint) return Date.now() - start
    if (Date.now() - start > limitMs) throw new Error(`still serving ${p.fingerprint} after ${limitMs} ms, wanted ${fingerprint}; log:\n${tb.logger.lines.join('\n')}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

test('a certbot renewal is served within 2 s while a neighbour file in live/ and archive/ changes every 50 ms', async () => {
  const le = pki.letsEncrypt('busy.example.test', first)
  // A long poll interval: only the file watch can pick the renewal up in time.
  const tb = await startTlsBroker({ certfile: le.cert, keyfile: le.privkey, cafile: le.chain, certCheckIntervalMs: 600_000 })
  const stop = busy([path.join(le.live, 'renewal.log'), path.join(le.archive, 'renewal.log')])
  try {
    // Let the neighbours' events run for a while first, as a log that never goes quiet would.
    await new Promise((resolve) => setTimeout(resolve, 500))
    const second = pki.issue('busy-2', { cn: 'localhost' })
    le.renew(second)
    const took = await servedWithin(tb, second.fingerprint, 3000)
    assert.ok(took <= 2500, `took ${took} ms`)
  } finally {
    stop()
    await tb.close()
  }
})

test('a certificate replaced in place is served within 2 s while a log file in its folder changes every 50 ms', async () => {
  const dir = pki.path('busy-plain')
  fs.mkdirSync(dir)
  const certfile = path.join(dir, 'cert.pem')
  const keyfile = path.join(dir, 'key.pem')
  fs.copyFileSync(first.cert, certfile)
  fs.copyFileSync(first.key, keyfile)
  const tb = await startTlsBroker({ certfile, keyfile, cafile: pki.intermediate.cert, certCheckIntervalMs: 600_000 })
  const stop = busy([path.join(dir, 'broker.log')])
  try {
    await new Promise((resolve) => setTimeout(resolve, 500))
    const next = pki.issue('busy-3', { cn: 'localhost', key: first.key })
    fs.copyFileSync(next.cert, certfile)
    const took = await servedWithin(tb, next.fingerprint, 3000)
    assert.ok(took <= 2500, `took ${took} ms`)
  } finally {
    stop()
    await tb.close()
  }
})

test('events for a watched name that never stop are still applied within the maximum wait', async () => {
  const dir = pki.path('busy-watched')
  fs.mkdirSync(dir)
  const certfile = path.join(dir, 'cert.pem')
  fs.writeFileSync(certfile, 'x')
  const calls: number[] = []
  const start = Date.now()
  const w = new CertWatcher({ paths: [certfile], debounceMs: 250, maxWaitMs: 1000, pollIntervalMs: 0, watch: true, onChange: () => calls.push(Date.now() - start) })
  const stop = busy([certfile])
  try {
    const deadline = Date.now() + 3000
    while (calls.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    assert.ok(calls.length > 0, 'onChange never ran while the watched file kept changing')
    assert.ok((calls[0] as number) <= 2000, `first onChange after ${calls[0]} ms`)
  } finally {
    stop()
    w.close()
  }
})
