/**
 * Half-open TLS handshakes (issue #12, item 7): TCP connections to a TLS port that never send a
 * ClientHello, or only part of one, must be closed after `handshake_timeout`; the number held at once
 * is bounded per address (`max_handshakes_per_address`) and per listener (`max_handshakes`); failures are
 * logged with the client's address and a readable reason; a bystander still connects. Also: a plain MQTT
 * connection that never sends CONNECT is closed by the broker's connect timeout.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import net from 'node:net'
import tls from 'node:tls'
import { after, before, test } from 'node:test'
import { readFileSync } from 'node:fs'
import { WebSocket } from 'ws'
import { freePort } from '../helpers/ports.js'
import { TestPki, type Issued } from '../helpers/certs.js'
import { AttackTarget, closedWithin, sleep } from './harness.js'

let pki: TestPki
let server: Issued

before(() => {
  pki = new TestPki()
  server = pki.issue('half-open', { cn: 'localhost' })
})
after(() => pki.remove())

/** The start of a TLS record announcing a 200-byte ClientHello, of which only these bytes ever arrive. */
const PartialClientHello = Buffer.from('16030100c8010000c40303', 'hex')

async function tlsTarget(name: string, options: string): Promise<{ target: AttackTarget; tlsPort: number }> {
  const tlsPort = await freePort()
  const chain = pki.bundle(`${name}-fullchain.pem`, server.cert, pki.intermediate.cert)
  const target = await AttackTarget.start(name, `allow_anonymous true\nlog_type all\nlistener ${tlsPort} 127.0.0.1\ncertfile ${chain}\nkeyfile ${server.key}\n${options}`)
  await target.midge.waitFor(new RegExp(`TLS listen socket on 127\\.0\\.0\\.1 port ${tlsPort}`))
  return { target, tlsPort }
}

function raw(port: number, opened: net.Socket[], localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ host: '127.0.0.1', port, ...(localAddress === undefined ? {} : { localAddress }) })
    opened.push(s)
    s.on('error', () => { /* ECONNRESET when the broker drops it */ })
    s.once('connect', () => resolve(s))
    s.once('error', reject)
  })
}

/** A TLS client that trusts the test root: resolves once its MQTT CONNECT got a CONNACK. */
function tlsBystander(port: number, localAddress?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(pki.root.cert), ...(localAddress === undefined ? {} : { localAddress }) }, () => {
      // CONNECT v3.1.1, clean session, keep alive 60, client id "bystander"
      s.write(Buffer.from('101500044d5154540402003c000962797374616e646572', 'hex'))
    })
    s.once('data', (d: Buffer) => { s.destroy(); resolve(d) })
    s.once('error', reject)
    setTimeout(() => { s.destroy(); reject(new Error('no CONNACK over TLS within 5 s')) }, 5000).unref()
  })
}

test('TLS connections that send nothing or a partial ClientHello are closed after handshake_timeout, logged with their address; a bystander still connects', { timeout: 20_000 }, async () => {
  const { target, tlsPort } = await tlsTarget('tls-half-open', 'handshake_timeout 1\n')
  const opened: net.Socket[] = []
  try {
    const silent = await Promise.all(Array.from({ length: 30 }, () => raw(tlsPort, opened)))
    const port = (silent[0] as net.Socket).localPort
    const partial = await Promise.all(Array.from({ length: 5 }, () => raw(tlsPort, opened)))
    for (const s of partial) s.write(PartialClientHello)
    // One that trickles its ClientHello a byte at a time: an idle timer would never fire for it.
    const trickler = await raw(tlsPort, opened)
    let i = 0
    const trickle = setInterval(() => { if (!trickler.destroyed && i < PartialClientHello.length) trickler.write(PartialClientHello.subarray(i, ++i)) }, 200)
    const started = Date.now()
    try {
      await Promise.all([...silent, ...partial, trickler].map((s, n) => closedWithin(s, 6000, `half-open TLS connection ${n}`)))
    } finally {
      clearInterval(trickle)
    }
    const took = Date.now() - started
    assert.ok(took < 6000, `closed after ${took} ms`)

    const line = await target.midge.waitFor(new RegExp(`TLS handshake with 127\\.0\\.0\\.1:${port} failed: no handshake within 1 s`))
    assert.ok(line !== null)
    const connack = await tlsBystander(tlsPort)
    assert.equal(connack[0], 0x20, 'CONNACK')
    await target.assertServes(5000)
  } finally {
    for (const s of opened) s.destroy()
    await target.stop()
  }
})

test('max_handshakes_per_address: connections past the bound are closed at once; another address still completes its handshake', { timeout: 20_000 }, async () => {
  const { target, tlsPort } = await tlsTarget('tls-per-address', 'handshake_timeout 10\nmax_handshakes_per_address 10\n')
  const opened: net.Socket[] = []
  try {
    const held = await Promise.all(Array.from({ length: 10 }, () => raw(tlsPort, opened)))
    await sleep(200)
    const extra = await Promise.all(Array.from({ length: 10 }, () => raw(tlsPort, opened)))
    // Well before the 10 s handshake timeout: refused for the bound, not timed out.
    await Promise.all(extra.map((s, n) => closedWithin(s, 3000, `connection ${n + 11} from one address`)))
    assert.ok(held.every((s) => !s.destroyed), 'the first 10 are still waiting for their handshake')
    await target.midge.waitFor(/TLS listener \S+: refusing 127\.0\.0\.1:\d+: 10 TLS handshakes from 127\.0\.0\.1 are already in progress \(max_handshakes_per_address 10\)/)
    // Another address gets its handshake while 127.0.0.1 is at its bound.
    const connack = await tlsBystander(tlsPort, '127.0.0.2')
    assert.equal(connack[0], 0x20, 'CONNACK')
  } finally {
    for (const s of opened) s.destroy()
    await target.stop()
  }
})

test('max_handshakes bounds the handshakes in progress on a listener; once they time out, new clients connect', { timeout: 20_000 }, async () => {
  const { target, tlsPort } = await tlsTarget('tls-global', 'handshake_timeout 2\nmax_handshakes 8\n')
  const opened: net.Socket[] = []
  try {
    const held = await Promise.all(Array.from({ length: 8 }, (_, n) => raw(tlsPort, opened, `127.0.0.${n + 2}`)))
    await sleep(200)
    const extra = await raw(tlsPort, opened, '127.0.0.20')
    await closedWithin(extra, 1500, 'the connection past max_handshakes')
    await target.midge.waitFor(/refusing 127\.0\.0\.20:\d+: 8 TLS handshakes are already in progress on this listener \(max_handshakes 8\)/)
    await Promise.all(held.map((s, n) => closedWithin(s, 6000, `held handshake ${n}`)))
    const connack = await tlsBystander(tlsPort)
    assert.equal(connack[0], 0x20, 'CONNACK')
  } finally {
    for (const s of opened) s.destroy()
    await target.stop()
  }
})

test('TLS failures are logged with the client address and a readable reason: plain MQTT on the TLS port, a client that does not trust the certificate', { timeout: 20_000 }, async () => {
  const { target, tlsPort } = await tlsTarget('tls-reasons', 'handshake_timeout 5\n')
  const opened: net.Socket[] = []
  try {
    const plain = await raw(tlsPort, opened)
    const port = plain.localPort
    // CONNECT v3.1.1 sent in clear text to the TLS port.
    plain.write(Buffer.from('101000044d5154540402003c000461626364', 'hex'))
    await closedWithin(plain, 3000, 'plain MQTT on the TLS port')
    await target.midge.waitFor(new RegExp(`TLS handshake with 127\\.0\\.0\\.1:${port} failed: the client did not speak TLS \\(plain MQTT or HTTP sent to a TLS port\\?\\)`))

    // openssl s_client trusting another CA sends alert 48 (unknown ca), as mosquitto_sub does.
    const other = new TestPki()
    try {
      const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${tlsPort}`, '-servername', 'localhost', '-CAfile', other.root.cert, '-verify_return_error'], { input: '', timeout: 5000, encoding: 'utf8' })
      assert.notEqual(r.status, 0, r.stdout)
    } finally {
      other.remove()
    }
    await target.midge.waitFor(/TLS handshake with 127\.0\.0\.1:\d+ failed: the client does not trust our certificate \(alert 48 unknown ca\)/)
    assert.ok(!target.midge.lines.some((l) => /SSL routines|error:0A/.test(l)), `raw OpenSSL text in the log:\n${target.midge.lines.join('\n')}`)
  } finally {
    for (const s of opened) s.destroy()
    await target.stop()
  }
})

test('a plain MQTT connection that never sends CONNECT is closed by the connect timeout', { timeout: 20_000 }, async () => {
  const target = await AttackTarget.start('no-connect', 'allow_anonymous true\nlog_type all\n')
  try {
    const s = await target.socket()
    s.on('error', () => {})
    await closedWithin(s, 15_000, 'a connection that sent no CONNECT')
    await target.midge.waitFor(/sent no CONNECT within 10 s/)
    await target.assertServes(5000)
  } finally {
    await target.stop()
  }
})

test('websockets: a connection that never sends its upgrade request is closed after handshake_timeout; an upgraded one stays up', { timeout: 20_000 }, async () => {
  const wsPort = await freePort()
  const target = await AttackTarget.start('ws-upgrade', `allow_anonymous true\nlog_type all\nlistener ${wsPort} 127.0.0.1\nprotocol websockets\nhandshake_timeout 1\n`)
  const opened: net.Socket[] = []
  const ws = new WebSocket(`ws://127.0.0.1:${wsPort}/mqtt`, 'mqtt')
  try {
    const messages: Buffer[] = []
    let arrived: (() => void) | undefined
    ws.on('message', (d: Buffer) => { messages.push(d); arrived?.() })
    const next = async (): Promise<Buffer> => {
      const deadline = Date.now() + 5000
      while (messages.length === 0) {
        if (Date.now() > deadline) throw new Error('no WebSocket message within 5 s')
        await new Promise<void>((resolve) => { arrived = resolve; setTimeout(resolve, 200) })
      }
      return messages.shift() as Buffer
    }
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
    ws.send(Buffer.from('101500044d5154540402003c000962797374616e646572', 'hex'))
    assert.equal((await next())[0], 0x20, 'CONNACK')

    const silent = await raw(wsPort, opened)
    await closedWithin(silent, 4000, 'a WebSocket connection that sent no upgrade request')
    // Longer than handshake_timeout: the upgraded connection is past the HTTP timeouts.
    await sleep(2000)
    ws.send(Buffer.from('c000', 'hex'))
    assert.equal((await next())[0], 0xd0, 'PINGRESP over the upgraded connection')
    await target.assertServes(5000)
  } finally {
    ws.terminate()
    for (const s of opened) s.destroy()
    await target.stop()
  }
})

test('wss: handshakes past max_handshakes_per_address are closed at once, the others after handshake_timeout; another address still gets its handshake', { timeout: 20_000 }, async () => {
  const wssPort = await freePort()
  const chain = pki.bundle('wss-fullchain.pem', server.cert, pki.intermediate.cert)
  const target = await AttackTarget.start('wss-half-open', `allow_anonymous true\nlog_type all\nlistener ${wssPort} 127.0.0.1\nprotocol websockets\ncertfile ${chain}\nkeyfile ${server.key}\nhandshake_timeout 2\nmax_handshakes_per_address 5\n`)
  const opened: net.Socket[] = []
  try {
    await target.midge.waitFor(new RegExp(`TLS listen socket on 127\\.0\\.0\\.1 port ${wssPort}`))
    const held = await Promise.all(Array.from({ length: 5 }, () => raw(wssPort, opened)))
    await sleep(200)
    const extra = await Promise.all(Array.from({ length: 5 }, () => raw(wssPort, opened)))
    await Promise.all(extra.map((s, n) => closedWithin(s, 1500, `wss connection ${n + 6} from one address`)))
    await target.midge.waitFor(/WebSocket listener \S+: refusing 127\.0\.0\.1:\d+: 5 TLS handshakes from 127\.0\.0\.1 are already in progress \(max_handshakes_per_address 5\)/)
    const secured = await new Promise<boolean>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: wssPort, servername: 'localhost', ca: readFileSync(pki.root.cert), ...{ localAddress: '127.0.0.2' } }, () => { s.destroy(); resolve(true) })
      s.once('error', reject)
    })
    assert.ok(secured)
    const port = (held[0] as net.Socket).localPort
    await Promise.all(held.map((s, n) => closedWithin(s, 6000, `held wss handshake ${n}`)))
    await target.midge.waitFor(new RegExp(`WebSocket listener \\S+: TLS handshake with 127\\.0\\.0\\.1:${port} failed: no handshake within 2 s`))
    await target.assertServes(5000)
  } finally {
    for (const s of opened) s.destroy()
    await target.stop()
  }
})
