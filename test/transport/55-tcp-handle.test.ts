/**
 * Plain TCP listeners take their connections as bare libuv handles (transport/tcp-handle.ts) instead of
 * net.Socket: every test here runs against both, and checks which one it got. What a Connection relies on:
 * reads in order, a write the kernel cannot take at once finishing later (and 'drain' after it), the peer's
 * FIN answered with ours, a reset reported as one, our own close after a protocol error, max_connections,
 * the broker's shutdown closing every handle, and the peer's address.
 */
import { test } from 'node:test'
import { execFileSync } from 'node:child_process'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import { Broker } from '../../src/broker/broker.js'
import type { Connection } from '../../src/broker/connection.js'
import type { ListenerInfo } from '../../src/broker/options.js'
import type { BrokerHooks } from '../../src/broker/hooks.js'
import { startTcpListener, type RunningListener } from '../../src/transport/tcp.js'
import { TcpHandleStream, tcpHandles } from '../../src/transport/tcp-handle.js'
import { packet, u16, utf8 } from '../helpers/wire.js'

const info: ListenerInfo = { name: 'test', allowAnonymous: true, mountPoint: '', protocol: 'mqtt' }

const connect = (id: string): Buffer => packet(0x10, utf8('MQTT'), 4, 0x02, u16(60), utf8(id))
const subscribe = (topic: string): Buffer => packet(0x82, u16(1), utf8(topic), 0)
const publish = (topic: string, payload: Buffer, retain = false): Buffer => packet(retain ? 0x31 : 0x30, utf8(topic), payload)
const disconnect = Buffer.from([0xe0, 0x00])

/** Writes `bytes` in pieces of `size`, each after the previous has been handed to the kernel. */
async function writeInPieces(socket: net.Socket, bytes: Buffer, size: number): Promise<void> {
  for (let at = 0; at < bytes.length; at += size) {
    const piece = bytes.subarray(at, at + size)
    await new Promise<void>((resolve, reject) => socket.write(piece, (err) => (err ? reject(err) : resolve())))
  }
}

/** A raw MQTT peer: everything it has read, and a way to wait for a number of bytes. */
class Peer {
  readonly socket: net.Socket
  received = Buffer.alloc(0)
  private waiters: Array<{ n: number; resolve: () => void; reject: (err: Error) => void }> = []
  private closed = false

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1')
    this.socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d])
      const due = this.waiters.filter((w) => this.received.length >= w.n)
      this.waiters = this.waiters.filter((w) => this.received.length < w.n)
      for (const w of due) w.resolve()
    })
    this.socket.on('error', () => {})
    // A wait the connection's end leaves short fails rather than hangs.
    this.socket.on('close', () => {
      this.closed = true
      for (const w of this.waiters) w.reject(new Error(`closed after ${this.received.length} of ${w.n} bytes`))
      this.waiters = []
    })
  }

  bytes(n: number): Promise<void> {
    if (this.received.length >= n) return Promise.resolve()
    if (this.closed) return Promise.reject(new Error(`closed after ${this.received.length} of ${n} bytes`))
    return new Promise((resolve, reject) => this.waiters.push({ n, resolve, reject }))
  }

  async handshake(id: string, topic?: string): Promise<void> {
    this.socket.write(connect(id))
    await this.bytes(4)
    assert.deepEqual([...this.received.subarray(0, 4)], [0x20, 2, 0, 0])
    if (topic === undefined) return
    this.socket.write(subscribe(topic))
    await this.bytes(9)
    assert.deepEqual([...this.received.subarray(4, 9)], [0x90, 3, 0, 1, 0])
  }
}

async function setUp(netSocket: boolean, maxConnections = -1, hooks: BrokerHooks = {}): Promise<{ broker: Broker; listener: RunningListener; port: number; conn(id: string): Connection }> {
  const broker = new Broker({ maxQueuedMessages: 100_000, hooks })
  const listener = await startTcpListener(broker, { host: '127.0.0.1', port: 0, noDelay: true, maxConnections, info, netSocket })
  const conn = (id: string): Connection => {
    const c = [...broker.connections].find((x) => x.clientId === id)
    assert.ok(c, `client ${id} is connected`)
    return c
  }
  return { broker, listener, port: listener.address().port, conn }
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5))
  assert.ok(cond(), what)
}

test('this Node has the bindings, so plain TCP listeners use bare handles', () => {
  assert.notEqual(tcpHandles(), null)
})

test('MIDGE_TCP_SOCKETS=net in the environment turns the bare handles off (the operator\'s way back to net.Socket)', () => {
  const module = new URL('../../src/transport/tcp-handle.js', import.meta.url).href
  const script = `import(${JSON.stringify(module)}).then((m) => process.stdout.write(String(m.tcpHandles() === null)))`
  const ask = (env: NodeJS.ProcessEnv): string => execFileSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' })
  assert.equal(ask({ MIDGE_TCP_SOCKETS: 'net' }), 'true')
  assert.equal(ask({ MIDGE_TCP_SOCKETS: '' }), 'false')
})

for (const netSocket of [false, true]) {
  const kind = netSocket ? 'net.Socket' : 'bare handle'

  test(`${kind}: CONNECT, SUBSCRIBE, PUBLISH in order; the address of the peer`, async () => {
    const { broker, listener, port, conn } = await setUp(netSocket)
    const sub = new Peer(port)
    await sub.handshake('s', 't')
    const c = conn('s')
    assert.equal(c.stream instanceof TcpHandleStream, !netSocket)
    assert.equal(c.meta.remoteIp, '127.0.0.1')
    assert.equal(c.meta.remoteAddress, `127.0.0.1:${sub.socket.localPort}`)
    const pub = new Peer(port)
    await pub.handshake('p')
    const sent: Buffer[] = []
    for (let i = 0; i < 200; i++) sent.push(publish('t', Buffer.from(`message ${i}`)))
    pub.socket.write(Buffer.concat(sent))
    const expected = Buffer.concat(sent)
    await sub.bytes(9 + expected.length)
    assert.deepEqual(sub.received.subarray(9), expected)
    sub.socket.destroy()
    pub.socket.destroy()
    broker.close()
    await listener.close()
  })

  test(`${kind}: a subscriber that does not read: writes finish later, 'drain' resumes its queue, nothing lost`, async () => {
    const { broker, listener, port, conn } = await setUp(netSocket)
    const sub = new Peer(port)
    await sub.handshake('s', 't')
    sub.socket.pause()
    const pub = new Peer(port)
    await pub.handshake('p')
    const payload = (i: number): Buffer => Buffer.alloc(64 * 1024, i & 0xff)
    const n = 160 // 10 MiB: more than the kernel's buffers and the broker's 1 MiB socket high-water mark
    let expected = 0
    for (let i = 0; i < n; i++) {
      const p = publish('t', payload(i))
      expected += p.length
      pub.socket.write(p)
    }
    const c = conn('s')
    await until('the socket holds unsent bytes', () => c.stream.writableLength > 0)
    sub.socket.resume()
    await sub.bytes(9 + expected)
    assert.equal(sub.received.length, 9 + expected)
    // In order: each PUBLISH's payload is filled with its index.
    let at = 9
    for (let i = 0; i < n; i++) {
      const p = publish('t', payload(i))
      assert.ok(sub.received.subarray(at, at + p.length).equals(p), `message ${i} in place`)
      at += p.length
    }
    await until('everything written has left', () => c.stream.writableLength === 0)
    sub.socket.destroy()
    pub.socket.destroy()
    broker.close()
    await listener.close()
  })

  test(`${kind}: the peer's FIN closes the connection and is answered with ours`, async () => {
    const { broker, listener, port, conn } = await setUp(netSocket)
    const peer = new Peer(port)
    await peer.handshake('f')
    const c = conn('f')
    peer.socket.end()
    await once(peer.socket, 'end')
    await until('the broker has closed the connection', () => !broker.connections.has(c))
    assert.equal(c.closeReason, 'closed its connection')
    await until('the stream is destroyed', () => c.stream.destroyed)
    broker.close()
    await listener.close()
  })

  test(`${kind}: a reset by the peer is reported as one`, async () => {
    const { broker, listener, port, conn } = await setUp(netSocket)
    const peer = new Peer(port)
    await peer.handshake('r')
    const c = conn('r')
    // Unread bytes at the broker make the reset visible to its read (an RST, not a FIN).
    peer.socket.write(publish('t', Buffer.alloc(10)))
    peer.socket.resetAndDestroy()
    await until('the broker has closed the connection', () => !broker.connections.has(c))
    // Linux reports the RST that follows data to the read as an error or as an end, depending on timing.
    assert.match(c.closeReason, /^(connection reset by peer|closed its connection)$/)
    await until('the stream is destroyed', () => c.stream.destroyed)
    broker.close()
    await listener.close()
  })

  test(`${kind}: a protocol error closes from our side; the peer reads to EOF`, async () => {
    const { broker, listener, port } = await setUp(netSocket)
    const peer = new Peer(port)
    await peer.handshake('e')
    const closed = once(peer.socket, 'close')
    peer.socket.write(Buffer.from([0xf0, 0x00])) // reserved packet type 15 without AUTH: malformed for 3.1.1
    await closed
    assert.equal(peer.received.length, 4) // the CONNACK, nothing more
    assert.equal(broker.connections.size, 0)
    broker.close()
    await listener.close()
  })

  test(`${kind}: max_connections 2 turns the third away, and admits again after a close`, async () => {
    const { broker, listener, port } = await setUp(netSocket, 2)
    const a = new Peer(port)
    await a.handshake('a')
    const b = new Peer(port)
    await b.handshake('b')
    const c = new Peer(port)
    c.socket.write(connect('c'))
    await once(c.socket, 'close')
    assert.equal(c.received.length, 0)
    const aClosed = once(a.socket, 'close')
    a.socket.end()
    await aClosed
    await until('a is gone', () => broker.connections.size === 1)
    // The listener counts a connection out when its socket has closed, which follows the broker's close.
    await new Promise((r) => setTimeout(r, 50))
    const d = new Peer(port)
    await d.handshake('d')
    b.socket.destroy()
    d.socket.destroy()
    broker.close()
    await listener.close()
  })

  test(`${kind}: packets split across reads, and packets larger than the read buffer, arrive whole; a retained message keeps its bytes after later reads`, async () => {
    const { broker, listener, port } = await setUp(netSocket)
    const sub = new Peer(port)
    await sub.handshake('s', 'big')
    const pub = new Peer(port)
    // The CONNECT a few bytes at a time: the decoder joins what several reads brought.
    await writeInPieces(pub.socket, connect('p'), 3)
    await pub.bytes(4)
    // Bare handles read into one shared 64 KiB buffer: the retained payload must be a copy, not a view of it,
    // or the reads below would overwrite it.
    const kept = Buffer.from('the retained payload, read before 600 KiB more')
    pub.socket.write(publish('keep', kept, true))
    const big = (fill: number): Buffer => publish('big', Buffer.alloc(300 * 1024, fill))
    await writeInPieces(pub.socket, Buffer.concat([big(1), big(2)]), 7777)
    const expected = Buffer.concat([big(1), big(2)])
    await sub.bytes(9 + expected.length)
    assert.ok(sub.received.subarray(9).equals(expected), 'both 300 KiB PUBLISHes arrived whole and in order')
    const late = new Peer(port)
    await late.handshake('late', 'keep')
    const retained = packet(0x31, utf8('keep'), kept)
    await late.bytes(9 + retained.length)
    assert.ok(late.received.subarray(9).equals(retained), 'the retained message as it was published')
    for (const p of [sub, pub, late]) p.socket.destroy()
    broker.close()
    await listener.close()
  })

  test(`${kind}: reading pauses while an asynchronous authenticate hook decides, and resumes in order after it`, async () => {
    let letIn: () => void = () => {}
    const decided = new Promise<boolean>((resolve) => { letIn = () => resolve(true) })
    let asked = false
    const { broker, listener, port } = await setUp(netSocket, -1, { authenticate: () => { asked = true; return decided } })
    const peer = new Peer(port)
    // CONNECT, SUBSCRIBE and a PUBLISH to itself in one write: the last two wait for the hook's answer.
    peer.socket.write(Buffer.concat([connect('a'), subscribe('self'), publish('self', Buffer.from('after auth'))]))
    await until('the hook was asked', () => asked)
    // More of the client's packets meanwhile: they wait in the socket (the stream is paused).
    await writeInPieces(peer.socket, publish('self', Buffer.from('sent while paused')), 5)
    assert.equal(peer.received.length, 0, 'nothing answered before the hook has')
    letIn()
    const first = publish('self', Buffer.from('after auth'))
    const second = publish('self', Buffer.from('sent while paused'))
    await peer.bytes(4 + 5 + first.length + second.length)
    assert.deepEqual([...peer.received.subarray(0, 9)], [0x20, 2, 0, 0, 0x90, 3, 0, 1, 0])
    assert.ok(peer.received.subarray(9).equals(Buffer.concat([first, second])), 'both PUBLISHes, in order')
    peer.socket.destroy()
    broker.close()
    await listener.close()
  })

  test(`${kind}: DISCONNECT closes the connection without waiting for the peer's FIN; bytes still being written arrive first`, async () => {
    const { broker, listener, port, conn } = await setUp(netSocket)
    const quick = new Peer(port)
    await quick.handshake('q')
    const q = conn('q')
    // The peer does not end its side: the broker's FIN comes without it.
    quick.socket.write(disconnect)
    await once(quick.socket, 'end')
    await until('the stream is destroyed', () => q.stream.destroyed)
    assert.equal(q.closeReason, 'disconnected')
    // A subscriber that does not read holds megabytes in the broker's socket when it sends DISCONNECT: they
    // still arrive, whole, before the broker's FIN.
    const sub = new Peer(port)
    await sub.handshake('s', 't')
    sub.socket.pause()
    const pub = new Peer(port)
    await pub.handshake('p')
    const message = publish('t', Buffer.alloc(64 * 1024, 7))
    for (let i = 0; i < 160; i++) pub.socket.write(message)
    const s = conn('s')
    await until('the socket holds unsent bytes', () => s.stream.writableLength > 0)
    sub.socket.write(disconnect)
    await until('the broker has closed the connection', () => !broker.connections.has(s))
    const ended = once(sub.socket, 'end')
    sub.socket.resume()
    await ended
    const got = sub.received.length - 9
    assert.ok(got >= message.length, `at least one message arrived (${got} bytes)`)
    assert.equal(got % message.length, 0, 'only whole PUBLISHes: nothing cut off by the close')
    assert.ok(sub.received.subarray(9).equals(Buffer.concat(new Array<Buffer>(got / message.length).fill(message))))
    pub.socket.destroy()
    broker.close()
    await listener.close()
  })

  test(`${kind}: the broker's shutdown closes every connection`, async () => {
    const { broker, listener, port } = await setUp(netSocket)
    const peers = [new Peer(port), new Peer(port), new Peer(port)]
    await Promise.all(peers.map((p, i) => p.handshake(`x${i}`, 't')))
    const streams = [...broker.connections].map((c) => c.stream)
    const closed = peers.map((p) => once(p.socket, 'close'))
    broker.close()
    await listener.close()
    await Promise.all(closed)
    await until('every stream is destroyed', () => streams.every((s) => s.destroyed))
  })
}
