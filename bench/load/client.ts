/**
 * One MQTT connection of the load generator: TCP connect, CONNECT/CONNACK, then the role's
 * work. Reads go straight into the controller's shared buffer (net `onread`), are split by a
 * Framer and dispatched here without copies; the per-connection closures are made once, at open.
 */
import net from 'node:net'
import { Framer, type FrameSink } from './framer.js'
import { encodeConnect, PINGREQ, Type } from './packets.js'
import type { Host } from './host.js'

export const State = { Idle: 0, Tcp: 1, Connack: 2, Suback: 3, Ready: 4, Closed: 5 } as const

export abstract class Client implements FrameSink {
  socket: net.Socket | null = null
  state: number = State.Idle
  /** Coarse time (controller ticks) of the last write, for keepalive. */
  lastTx = 0
  /** When the TCP connect started, in ms (performance.now()). */
  tOpen = 0
  protected readonly framer = new Framer()

  constructor(
    readonly ctl: Host,
    readonly idx: number,
    readonly topic: string,
    readonly clientId: string,
  ) {}

  /** The broker port this client connects to (subscribers may use another node's: --sub-port). */
  protected get port(): number {
    return this.ctl.opts.port
  }

  open(localAddress: string | undefined): void {
    const ctl = this.ctl
    this.tOpen = performance.now()
    this.state = State.Tcp
    const s = net.connect({
      host: ctl.opts.host,
      port: this.port,
      localAddress,
      noDelay: true,
      onread: { buffer: ctl.readBuffer, callback: (n: number, buf: Uint8Array) => this.onRead(buf as Buffer, n) },
    })
    s.on('connect', () => {
      this.state = State.Connack
      this.send(encodeConnect(this.clientId, ctl.opts.keepalive))
    })
    s.on('error', (err) => this.fail(err.message))
    s.on('close', () => this.fail('connection closed by broker'))
    this.socket = s
  }

  send(buf: Buffer): boolean {
    this.lastTx = this.ctl.coarseNow
    return this.socket!.write(buf)
  }

  ping(): void {
    this.send(PINGREQ)
  }

  /** Returning false would pause the socket; the generator always takes what arrives. */
  onRead(buf: Buffer, n: number): boolean {
    try {
      this.framer.feed(buf, 0, n, this)
    } catch (err) {
      this.fail((err as Error).message)
      return true
    }
    if (this.state !== State.Closed) this.afterRead()
    return true
  }

  onFrame(first: number, buf: Buffer, start: number, end: number): void {
    switch (first >> 4) {
      case Type.Publish:
        this.onPublish(first, buf, start, end)
        break
      case Type.Puback:
        this.onPuback(buf, start, end)
        break
      case Type.Connack:
        if (this.state !== State.Connack || end - start < 2) this.fail('unexpected CONNACK')
        else if (buf[start + 1] !== 0) this.fail(`CONNACK refused: return code ${buf[start + 1]}`)
        else this.onConnack()
        break
      case Type.Suback:
        this.onSuback(buf, start, end)
        break
      case Type.Pingresp:
        break
      default:
        this.fail(`unexpected packet type ${first >> 4}`)
    }
  }

  protected onPublish(_first: number, _buf: Buffer, _start: number, _end: number): void {
    this.fail('unexpected PUBLISH')
  }

  protected onPuback(_buf: Buffer, _start: number, _end: number): void {
    this.fail('unexpected PUBACK')
  }

  protected onSuback(_buf: Buffer, _start: number, _end: number): void {
    this.fail('unexpected SUBACK')
  }

  protected abstract onConnack(): void

  /** Once per read, after its packets: acknowledgements and window top-ups go out batched. */
  protected afterRead(): void {}

  fail(msg: string): void {
    if (this.state === State.Closed) return
    const wasReady = this.state === State.Ready
    this.state = State.Closed
    this.socket?.destroy()
    this.ctl.onClientError(this, msg, wasReady)
  }

  /** Polite end: DISCONNECT, then close. */
  close(): void {
    if (this.state === State.Closed) return
    const s = this.socket
    if (this.state === State.Ready && s !== null && s.writable) s.end(Buffer.from([0xe0, 0]))
    else s?.destroy()
    this.state = State.Closed
  }
}
