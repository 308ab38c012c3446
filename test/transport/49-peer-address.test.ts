/**
 * The one address formatter (transport/peer-address.ts): peers of TCP, TLS and WebSocket connections, the addresses
 * listeners bind and bridges connect to. IPv6 gets brackets so its colons do not run into the port's.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import { hostPort, socketPeer } from '../../src/transport/peer-address.js'

test('host:port, [ipv6]:port, names as written, an already bracketed address left alone', () => {
  assert.equal(hostPort('192.0.2.1', 1883), '192.0.2.1:1883')
  assert.equal(hostPort('2001:db8::1', 8883), '[2001:db8::1]:8883')
  assert.equal(hostPort('::ffff:192.0.2.1', 1), '[::ffff:192.0.2.1]:1')
  assert.equal(hostPort('broker.example', 1883), 'broker.example:1883')
  assert.equal(hostPort('[::1]', 1883), '[::1]:1883')
  assert.equal(hostPort('127.0.0.1', undefined), '127.0.0.1:0')
})

test('a closed socket without an address reads unknown:0', () => {
  assert.deepEqual(socketPeer({}), { remoteAddress: 'unknown:0', remoteIp: 'unknown' })
})

test('the peer of a real IPv4 and IPv6 loopback connection', async () => {
  for (const host of ['127.0.0.1', '::1']) {
    const seen: Array<ReturnType<typeof socketPeer>> = []
    const server = net.createServer((s) => { seen.push(socketPeer(s)); s.end() })
    server.listen(0, host)
    await once(server, 'listening')
    const client = net.connect((server.address() as net.AddressInfo).port, host)
    await once(client, 'connect')
    const local = client.localPort
    await once(client, 'close')
    server.close()
    assert.deepEqual(seen, [{ remoteAddress: host === '::1' ? `[::1]:${local}` : `127.0.0.1:${local}`, remoteIp: host }])
  }
})
