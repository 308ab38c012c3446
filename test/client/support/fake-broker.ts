/**
 * A scripted MQTT server for client tests, built on mqtt-packet (not on src/protocol, so a bug shared by our
 * encoder and decoder cannot hide). Each test drives it: it records every packet, answers CONNECT with the
 * CONNACK the test sets, and leaves every other answer to the test.
 */
import { EventEmitter, once } from 'node:events'
import net from 'node:net'
import http from 'node:http'
import type { Duplex } from 'node:stream'
import mqttPacket from 'mqtt-packet'
import type { Packet } from 'mqtt-packet'
import { WebSocketServer, createWebSocketStream } from 'ws'

export class FakeConn extends EventEmitter {
  readonly packets: Packet[] = []
  version = 4

  constructor (readonly stream: Duplex, private readonly broker: FakeBroker) {
    super()
    const parser = mqttPacket.parser({ protocolVersion: 5 })
    parser.on('packet', (p: Packet) => {
      if (p.cmd === 'connect') {
        this.version = p.protocolVersion ?? 4
        ;(parser as unknown as { settings: { protocolVersion: number } }).settings.protocolVersion = this.version
      }
      this.packets.push(p)
      this.emit('packet', p)
      this.broker.emit('packet', p, this)
      if (p.cmd === 'connect' && this.broker.autoConnack) this.send(this.broker.connack(this))
    })
    parser.on('error', (e: Error) => { this.emit('parse-error', e) })
    stream.on('data', (d: Buffer) => parser.parse(d))
    stream.on('error', () => {})
    stream.on('close', () => this.emit('close'))
  }

  send (p: Packet): void {
    this.stream.write(mqttPacket.generate(p, { protocolVersion: this.version }))
  }

  /** The next packet of this command (already received, or still to come). */
  async next (cmd: Packet['cmd'], after = 0): Promise<Packet> {
    const seen = this.packets.slice(after).find((p) => p.cmd === cmd)
    if (seen !== undefined) return seen
    while (true) {
      const [p] = await once(this, 'packet') as [Packet]
      if (p.cmd === cmd) return p
    }
  }

  count (cmd: Packet['cmd']): number {
    return this.packets.filter((p) => p.cmd === cmd).length
  }

  destroy (): void {
    this.stream.destroy()
  }
}

export class FakeBroker extends EventEmitter {
  readonly conns: FakeConn[] = []
  autoConnack = true
  /** The CONNACK sent for each CONNECT; tests replace it (refusals, properties, session present). */
  connack: (c: FakeConn) => Packet = (c) => c.version === 5
    ? { cmd: 'connack', sessionPresent: false, reasonCode: 0 }
    : { cmd: 'connack', sessionPresent: false, returnCode: 0 }

  private server: net.Server | http.Server | null = null
  private wss: WebSocketServer | null = null
  port = 0

  static async tcp (): Promise<FakeBroker> {
    const b = new FakeBroker()
    const server = net.createServer((s) => b.adopt(s))
    b.server = server
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    b.port = (server.address() as net.AddressInfo).port
    return b
  }

  /** MQTT over WebSocket on /mqtt, subprotocol 'mqtt'. */
  static async ws (): Promise<FakeBroker> {
    const b = new FakeBroker()
    const server = http.createServer()
    const wss = new WebSocketServer({ server, path: '/mqtt', handleProtocols: (ps) => (ps.has('mqtt') ? 'mqtt' : false) })
    wss.on('connection', (ws) => b.adopt(createWebSocketStream(ws)))
    b.server = server
    b.wss = wss
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    b.port = (server.address() as net.AddressInfo).port
    return b
  }

  private adopt (s: Duplex): void {
    const c = new FakeConn(s, this)
    this.conns.push(c)
    this.emit('conn', c)
  }

  /** The n-th connection (0-based), once it exists. */
  async conn (n = 0): Promise<FakeConn> {
    while (this.conns.length <= n) await once(this, 'conn')
    return this.conns[n]!
  }

  async close (): Promise<void> {
    for (const c of this.conns) c.destroy()
    if (this.wss !== null) {
      for (const ws of this.wss.clients) ws.terminate()
      this.wss.close()
    }
    const server = this.server
    if (server !== null) await new Promise((resolve) => server.close(resolve))
  }
}
