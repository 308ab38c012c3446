/**
 * Memory before authentication over WebSockets: ws assembles a whole message before the broker's decoder sees
 * a byte of it, so without a limit of its own an anonymous peer could make Midge buffer up to max_packet_size
 * (256 MB by default) per connection. Until CONNACK, a message may be at most the pre-auth packet bound (512 KiB);
 * after it, max_packet_size applies as before.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import WebSocket from 'ws'
import { freePort } from '../helpers/ports.js'
import { packet, u16, utf8 } from '../helpers/wire.js'
import { AttackTarget } from './harness.js'

/** A v3.1.1 CONNECT (clean session, keep alive 30) for clientId. */
function connectPacket(clientId: string): Buffer {
  return packet(0x10, utf8('MQTT'), 4, 0x02, u16(30), utf8(clientId))
}

function open(port: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, 'mqtt', { maxPayload: 1024 * 1024 })
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })
}

function closeCode(ws: WebSocket, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`still open after ${timeoutMs} ms`)), timeoutMs)
    ws.once('close', (code) => { clearTimeout(t); resolve(code) })
  })
}

test('attack: a WebSocket message larger than 512 KiB before CONNECT is refused as it starts (1009), not buffered; after CONNACK a 2 MB PUBLISH passes', async () => {
  const wsPort = await freePort()
  const t = await AttackTarget.start('ws-preauth', `allow_anonymous true\nlistener ${wsPort} 127.0.0.1\nprotocol websockets\n`)
  try {
    await t.midge.opened(2)
    // The frame header announces 64 MB; only its first 256 KiB are sent. A broker that waits for the rest
    // holds the connection open (and would buffer all of it).
    const attacker = await open(wsPort)
    const sock = (attacker as unknown as { _socket: import('node:net').Socket })._socket
    const header = Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0x04, 0, 0, 0, 1, 2, 3, 4]) // FIN, binary, masked, 64-bit length 64 MiB
    sock.write(header)
    sock.write(Buffer.alloc(256 * 1024))
    assert.equal(await closeCode(attacker, 3000), 1009, 'closed with 1009 Message Too Big')

    // A client that has authenticated may still send what max_packet_size allows.
    const client = await open(wsPort)
    const frames: Buffer[] = []
    client.on('message', (d: Buffer) => frames.push(d))
    client.send(connectPacket('ws-big'))
    await t.midge.guard(new Promise<void>((r) => { const i = setInterval(() => { if (frames.length > 0) { clearInterval(i); r() } }, 10) }), 'CONNACK')
    assert.equal(frames[0]![0], 0x20, 'CONNACK')
    const payload = Buffer.alloc(2 * 1024 * 1024, 7)
    client.send(packet(0x30, utf8('big/one'), payload))
    client.send(packet(0xc0))
    await t.midge.guard(new Promise<void>((r) => { const i = setInterval(() => { if (frames.some((f) => f[0] === 0xd0)) { clearInterval(i); r() } }, 10) }), 'PINGRESP after the 2 MB PUBLISH')
    assert.equal(client.readyState, WebSocket.OPEN)
    client.close()
    await t.assertServes(5000)
  } finally {
    await t.stop()
  }
})
