/**
 * Hostile clients of a `protocol http` listener (server/http-listener.ts): slowloris sockets (headers
 * dripped forever, or nothing sent at all) are closed by the header timeout; sockets beyond max_connections
 * are closed on arrival; oversized headers are refused with 431; and through all of it the broker keeps
 * routing MQTT and the listener serves a well-behaved scraper once the slow sockets are gone.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { test } from 'node:test'
import mqtt from 'mqtt'
import { loadConfigText } from '../../src/config/load.js'
import { HttpLimits } from '../../src/server/http-listener.js'
import { startMidge } from '../../src/server/index.js'
import { closedWithin } from './harness.js'

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s))
    s.on('error', reject)
  })
}

function status(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject)
  })
}

test('slowloris and connection floods on an http listener are cut; MQTT keeps flowing meanwhile', async () => {
  const rt = await startMidge(loadConfigText('log_dest none\nallow_anonymous true\nlistener 0 127.0.0.1\nlistener 0 127.0.0.1\nprotocol http\nmax_connections 4\n'))
  const port = rt.listeners().find((l) => l.kind === 'http')?.addresses[0]?.port as number
  const mqttPort = rt.listeners().find((l) => l.kind === 'mqtt')?.addresses[0]?.port as number
  const drips: NodeJS.Timeout[] = []
  const held: net.Socket[] = []
  try {
    // Two drip headers one line a second, never finishing; two send nothing at all.
    for (let i = 0; i < 4; i++) {
      const s = await connect(port)
      s.on('error', () => {})
      held.push(s)
      if (i < 2) {
        s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n')
        drips.push(setInterval(() => { if (!s.destroyed) s.write('X-Slow: 1\r\n') }, 1000))
      }
    }
    // The listener is full: a fifth socket is closed on arrival.
    const extra = await connect(port)
    extra.on('error', () => {})
    await closedWithin(extra, 2000, 'a socket beyond max_connections')

    // The broker is not held: a publish reaches a subscriber while the slow sockets are open.
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { reconnectPeriod: 0 })
    const got = new Promise<string>((resolve) => c.on('message', (_t, m) => resolve(m.toString())))
    await c.subscribeAsync('alive')
    await c.publishAsync('alive', 'yes')
    assert.equal(await got, 'yes')
    await c.endAsync()

    // Every slow socket is closed by the header timeout (plus the server's 1 s check interval).
    await Promise.all(held.map((s, i) => closedWithin(s, HttpLimits.headersTimeoutMs + 3000, `slow socket ${i}`)))
    assert.equal(await status(port), 200)
  } finally {
    for (const d of drips) clearInterval(d)
    for (const s of held) s.destroy()
    await rt.close()
  }
})

test('oversized request headers get 431 and the socket closed; a stream of junk gets 400', async () => {
  const rt = await startMidge(loadConfigText('log_dest none\nallow_anonymous true\nlistener 0 127.0.0.1\nprotocol http\n'))
  const port = rt.listeners()[0]?.addresses[0]?.port as number
  try {
    for (const [request, expected] of [
      [`GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(HttpLimits.maxHeaderBytes * 3)}\r\n\r\n`, /^HTTP\/1\.1 431 /],
      [`\x16\x03\x01 not http at all ${'\x00'.repeat(1000)}\r\n\r\n`, /^HTTP\/1\.1 400 /],
    ] as const) {
      const s = await connect(port)
      let reply = ''
      s.setEncoding('latin1')
      s.on('data', (d: string) => { reply += d })
      s.on('error', () => {})
      s.write(request)
      await closedWithin(s, 3000, 'the refused request\'s socket')
      assert.match(reply, expected)
    }
    assert.equal(await status(port), 200)
  } finally {
    await rt.close()
  }
})
