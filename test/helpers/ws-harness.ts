/**
 * Test plumbing for the WebSocket transport: a Midge broker behind startWsListener on a loopback port,
 * and a raw WebSocket peer (the `ws` package as a client) that records every message, the HTTP status
 * of a refused handshake and the close code, so tests await events instead of sleeping.
 */
import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import { WebSocket, type ClientOptions } from 'ws'
import { Broker } from '../../src/broker/broker.js'
import type { BrokerOptions, ListenerInfo } from '../../src/broker/options.js'
import { silentLogger } from '../../src/observability/logger.js'
import { startWsListener, type WsListener, type WsListenerOptions } from '../../src/transport/ws.js'
import { ascii, packet, u16, utf8 } from './wire.js'

export const wsInfo: ListenerInfo = { name: 'ws', allowAnonymous: true, mountPoint: '', protocol: 'websockets' }

export interface WsBroker {
  broker: Broker
  listener: WsListener
  port: number
  /** ws://127.0.0.1:PORT (wss:// with tls). */
  url: string
  close(): Promise<void>
}

export async function startWsBroker (o: { broker?: Partial<BrokerOptions>; listener?: Partial<WsListenerOptions> } = {}): Promise<WsBroker> {
  const broker = new Broker({ logger: silentLogger(), sysInterval: 0, ...o.broker })
  let listener: WsListener
  try {
    listener = await startWsListener(broker, { host: '127.0.0.1', port: 0, noDelay: true, maxConnections: -1, info: wsInfo, ...o.listener })
  } catch (err) {
    broker.close()
    throw err
  }
  const port = listener.address().port
  return {
    broker,
    listener,
    port,
    url: `${o.listener?.tls !== undefined ? 'wss' : 'ws'}://127.0.0.1:${port}`,
    close: async () => {
      broker.close()
      await listener.close()
    },
  }
}

/** How a handshake ended: open (with the subprotocol chosen) or refused with an HTTP status. */
export type Handshake =
  | { kind: 'open'; protocol: string }
  | { kind: 'refused'; status: number; body: string }
  | { kind: 'error'; message: string }

export interface Closed { code: number; reason: string }

/** A raw WebSocket client: every binary message it receives, in order, and how it was closed. */
export class RawPeer {
  readonly ws: WebSocket
  readonly received: Buffer[] = []
  /** Text messages received (the broker must never send one). */
  textMessages = 0
  readonly handshake: Promise<Handshake>
  readonly closed: Promise<Closed>
  private waiters: Array<{ bytes: number; resolve: () => void }> = []

  constructor (url: string, protocols: string[] = ['mqtt'], opts: ClientOptions = {}) {
    this.ws = new WebSocket(url, protocols, opts)
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }))
    })
    this.handshake = new Promise((resolve) => {
      this.ws.once('open', () => resolve({ kind: 'open', protocol: this.ws.protocol }))
      this.ws.once('unexpected-response', (_req, res: IncomingMessage) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => { body += d })
        res.on('end', () => {
          resolve({ kind: 'refused', status: res.statusCode ?? 0, body })
          this.ws.terminate()
        })
      })
      this.ws.on('error', (err) => resolve({ kind: 'error', message: err.message }))
    })
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) this.textMessages++
      this.received.push(data)
      const total = this.bytesReceived()
      this.waiters = this.waiters.filter((w) => {
        if (total < w.bytes) return true
        w.resolve()
        return false
      })
    })
  }

  bytesReceived (): number {
    let n = 0
    for (const b of this.received) n += b.length
    return n
  }

  /** All bytes received so far, across messages. */
  stream (): Buffer {
    return Buffer.concat(this.received)
  }

  /** Resolves once at least `bytes` bytes have arrived in total. */
  waitForBytes (bytes: number, timeoutMs = 5000): Promise<Buffer> {
    if (this.bytesReceived() >= bytes) return Promise.resolve(this.stream())
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`waited for ${bytes} bytes, got ${this.bytesReceived()}: ${this.stream().toString('hex')}`)), timeoutMs)
      this.waiters.push({ bytes, resolve: () => { clearTimeout(timer); resolve(this.stream()) } })
    })
  }

  async open (): Promise<void> {
    const h = await this.handshake
    if (h.kind !== 'open') throw new Error(`handshake failed: ${JSON.stringify(h)}`)
  }

  send (data: Buffer | string, opts: { binary?: boolean; fin?: boolean } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.send(data, { binary: opts.binary ?? typeof data !== 'string', fin: opts.fin ?? true, compress: false }, (err) => err == null ? resolve() : reject(err))
    })
  }

  async terminate (): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return
    const gone = once(this.ws, 'close')
    this.ws.terminate()
    await gone
  }
}

// ---- Packets, built independently of src/protocol (see wire.ts) -------------------------------------

/** CONNECT, MQTT 3.1.1, clean session, keep alive 60. */
export function connect311 (clientId: string): Buffer {
  return packet(0x10,
    utf8('MQTT'), // protocol name
    0x04, // protocol level 4
    0x02, // clean session
    u16(60), // keep alive
    utf8(clientId))
}

/** CONNACK 3.1.1, session present 0, return code 0. */
export const Connack311Accepted = Buffer.from([0x20, 0x02, 0x00, 0x00])

/** SUBSCRIBE, packet id `id`, one filter at QoS 0. */
export function subscribe0 (id: number, filter: string): Buffer {
  return packet(0x82, u16(id), utf8(filter), 0x00)
}

/** SUBACK for subscribe0: granted QoS 0. */
export function suback0 (id: number): Buffer {
  return packet(0x90, u16(id), 0x00)
}

/** PUBLISH at QoS 0. */
export function publish0 (topic: string, payload: string): Buffer {
  return packet(0x30, utf8(topic), ascii(payload))
}

export const Pingreq = Buffer.from([0xc0, 0x00])
export const Pingresp = Buffer.from([0xd0, 0x00])

/** CONNECT, MQTT 3.1.1, clean session, with a QoS 0 will. */
export function connect311WithWill (clientId: string, willTopic: string, willMessage: string): Buffer {
  return packet(0x10,
    utf8('MQTT'),
    0x04,
    0x06, // clean session + will flag, will QoS 0, will retain 0
    u16(60),
    utf8(clientId),
    utf8(willTopic),
    u16(willMessage.length), ascii(willMessage))
}

export const Disconnect = Buffer.from([0xe0, 0x00])
