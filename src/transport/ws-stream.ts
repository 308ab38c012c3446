/**
 * A server-side WebSocket as the byte stream broker.handle() reads and writes (MQTT 5.0 section 6).
 * Each binary message's bytes are pushed as they come: a message may hold several MQTT packets or a
 * part of one [MQTT-6.0.0-2], and the broker's incremental decoder reassembles them. Each write leaves
 * as one binary message (the broker writes once per event-loop turn, so packets are already batched).
 *
 * Lighter than ws's createWebSocketStream: text frames are refused here instead of being passed on as
 * bytes, and a write completes when the socket takes it (waiting for 'drain' only past the socket's
 * high-water mark) rather than after each message's own socket callback.
 *
 * Ending: end() starts the close handshake (1000); a text frame gets close code 1003; protocol errors
 * (oversized message: 1009, bad framing: 1002) are answered by ws itself. A peer that does not answer
 * the close handshake is cut off after CloseGraceMs. destroy() cuts the connection at once.
 */
import { Duplex } from 'node:stream'
import type net from 'node:net'
import { WebSocket } from 'ws'

/** How long a started close handshake may take before the socket is dropped. */
export const CloseGraceMs = 2000

/** RFC 6455 section 7.4.1 close codes used here. */
export const WsCloseCode = {
  NormalClosure: 1000,
  GoingAway: 1001,
  UnsupportedData: 1003,
} as const

export class WebSocketTextFrameError extends Error {
  readonly code = 'WS_ERR_TEXT_FRAME'
  constructor() {
    super('sent a WebSocket text frame; MQTT travels in binary frames only [MQTT-6.0.0-1]')
    this.name = 'WebSocketTextFrameError'
  }
}

const BinaryFrame = { binary: true, compress: false, fin: true } as const

/** The part of ws's Receiver read here: the message size limit, checked as each frame header arrives. */
interface ReceiverLimit { _maxPayload: number }

export class WebSocketDuplex extends Duplex {
  readonly ws: WebSocket
  private readonly socket: net.Socket
  /** Why the connection is ending, reported once the WebSocket has closed. */
  private failure: Error | undefined = undefined
  private graceTimer: NodeJS.Timeout | undefined = undefined
  /** The message size limit once the client has authenticated; 0 = no pre-auth limit was set. */
  private postAuthLimit = 0

  /**
   * `socket` is the upgraded request's socket, watched for write backpressure. With `preAuthLimit`, messages
   * are held to that size until the broker calls liftPreAuthLimit(): ws buffers a whole message before we
   * see a byte of it, so the decoder's pre-auth bound alone would come too late.
   */
  constructor(ws: WebSocket, socket: net.Socket, preAuthLimit = 0) {
    super({ allowHalfOpen: false })
    this.ws = ws
    this.socket = socket
    const receiver = (ws as unknown as { _receiver?: ReceiverLimit })._receiver
    if (preAuthLimit > 0 && receiver !== undefined && typeof receiver._maxPayload === 'number') {
      this.postAuthLimit = receiver._maxPayload
      if (receiver._maxPayload === 0 || receiver._maxPayload > preAuthLimit) receiver._maxPayload = preAuthLimit
    }
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary))
    // ws has already sent its close frame (1002, 1009...) when it reports an error.
    ws.on('error', (err: Error) => this.fail(err))
    ws.on('close', () => this.onWsClose())
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.failure !== undefined) return
    if (!isBinary) {
      // [MQTT-6.0.0-1] any other data frame than binary closes the network connection.
      this.ws.close(WsCloseCode.UnsupportedData, 'MQTT needs binary frames')
      this.fail(new WebSocketTextFrameError())
      return
    }
    if (!this.push(data)) this.ws.pause()
  }

  private fail(err: Error): void {
    this.failure ??= err
    this.closeWithin(CloseGraceMs)
  }

  private closeWithin(ms: number): void {
    if (this.graceTimer !== undefined) return
    this.graceTimer = setTimeout(() => this.ws.terminate(), ms)
    this.graceTimer.unref()
  }

  private onWsClose(): void {
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer)
    if (this.destroyed) return
    if (this.failure !== undefined) this.destroy(this.failure)
    else this.push(null)
  }

  /** Called by the broker's connection once CONNACK has accepted the client. */
  liftPreAuthLimit(): void {
    if (this.postAuthLimit === 0) return
    const receiver = (this.ws as unknown as { _receiver?: ReceiverLimit })._receiver
    if (receiver !== undefined) receiver._maxPayload = this.postAuthLimit
    this.postAuthLimit = 0
  }

  override _read(): void {
    if (this.ws.isPaused) this.ws.resume()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // Bytes queued after the close handshake started have no one to go to.
    if (this.ws.readyState !== WebSocket.OPEN) {
      callback()
      return
    }
    this.ws.send(chunk, BinaryFrame)
    if (this.socket.writableNeedDrain) this.socket.once('drain', callback)
    else callback()
  }

  /** Starts the close handshake (if not already under way); the socket goes within CloseGraceMs. */
  closeGracefully(code: number, reason?: string): void {
    if (this.ws.readyState === WebSocket.CLOSED) return
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason)
    this.closeWithin(CloseGraceMs)
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.closeGracefully(WsCloseCode.NormalClosure)
    callback()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer)
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate()
    callback(err)
  }
}
