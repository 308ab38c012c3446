/**
 * A plain TCP connection driven through the libuv handle that net.Socket itself wraps (tcp_wrap's TCP,
 * stream_wrap's WriteWrap and ShutdownWrap), without the net.Socket around it. Measured with mqload, 10k
 * CONNECT + SUBSCRIBE against a server that answers CONNACK and SUBACK and nothing else: a net.Socket server
 * costs 122-125 µs of CPU and 4.4 KB of RSS per connection, the bare handle 68-78 µs and 1.45 KB (Mosquitto:
 * 100 µs, 1.0 KB). The difference is the Duplex around the handle: two stream states, the EventEmitter,
 * nextTick-deferred events, a Buffer per read wrapped and pushed through the readable machinery.
 *
 * TcpHandleStream implements the part of the Duplex interface that Connection uses (ClientStream in
 * broker/client-stream.ts), with Node's semantics where Connection depends on them: 'data' in flowing mode
 * once a data listener is added, 'end' at the peer's FIN followed by our own end (allowHalfOpen false),
 * writableLength counting what the kernel has not taken, 'drain' when it is back to 0, 'error' then 'close'
 * after the handle has closed, writes after end() or destroy() dropped.
 *
 * These bindings are internal to Node (process.binding is deprecated, DEP0111, though still present in Node
 * 20-24): tcpHandles() checks every piece it uses and returns undefined when one is missing or different, and
 * the TCP listener then falls back to net.Socket (transport/tcp.ts). TLS and WebSocket listeners always use
 * net.Socket.
 */
import { getSystemErrorName } from 'node:util'
import type { StreamListener } from '../broker/client-stream.js'
import { hostPort, type PeerAddress } from './peer-address.js'

/** The methods of tcp_wrap's TCP (and its StreamBase) used here. Each returns 0 or a negative libuv error. */
export interface TcpHandle {
  onread: ((this: TcpHandle, buf: ArrayBuffer | undefined) => void) | null
  readStart(): number
  readStop(): number
  writeBuffer(req: WriteReq, buf: Buffer): number
  writev(req: WriteReq, chunks: Buffer[], allBuffers: boolean): number
  shutdown(req: ShutdownReq): number
  close(cb?: (this: TcpHandle) => void): void
  setNoDelay(on: boolean): number
  getpeername(out: { address?: string; port?: number }): number
  useUserBuffer(buf: Uint8Array): void
  [kStream]?: TcpHandleStream
}
interface WriteReq {
  handle: TcpHandle
  oncomplete: (this: WriteReq, status: number) => void
  async: boolean
  stream?: TcpHandleStream
  buffer?: Buffer | Buffer[]
  bytes?: number
}
interface ShutdownReq {
  handle: TcpHandle
  oncomplete: (this: ShutdownReq, status: number) => void
  stream?: TcpHandleStream
}

interface Bindings {
  WriteWrap: new () => WriteReq
  ShutdownWrap: new () => ShutdownReq
  state: Int32Array
  kReadBytes: number
  kAsync: number
  eof: number
}

const kStream = Symbol('midge.tcpStream')

let bindings: Bindings | null | undefined

/**
 * The bindings, or null when this Node does not have them as expected (then net.Socket is used). An operator
 * who suspects them (a Node release that changed their behaviour) sets MIDGE_TCP_SOCKETS=net in the service's
 * environment to run every plain listener on net.Socket, at the memory and CPU cost measured above.
 */
export function tcpHandles(): Bindings | null {
  if (bindings !== undefined) return bindings
  bindings = null
  if (process.env.MIDGE_TCP_SOCKETS === 'net') return null
  try {
    const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding
    const tcp = binding('tcp_wrap')
    const sw = binding('stream_wrap')
    const uv = binding('uv')
    const TCP = tcp.TCP as ((new () => unknown) & { prototype: Record<string, unknown> }) | undefined
    const methods = ['readStart', 'readStop', 'writeBuffer', 'writev', 'shutdown', 'close', 'setNoDelay', 'getpeername', 'useUserBuffer']
    if (typeof TCP !== 'function' || !methods.every((m) => typeof TCP.prototype[m] === 'function')) return null
    const nums = [sw.kReadBytesOrError, sw.kLastWriteWasAsync, uv.UV_EOF]
    if (typeof sw.WriteWrap !== 'function' || typeof sw.ShutdownWrap !== 'function' || !(sw.streamBaseState instanceof Int32Array) || !nums.every((n) => typeof n === 'number')) return null
    bindings = {
      WriteWrap: sw.WriteWrap as Bindings['WriteWrap'],
      ShutdownWrap: sw.ShutdownWrap as Bindings['ShutdownWrap'],
      state: sw.streamBaseState,
      kReadBytes: sw.kReadBytesOrError as number,
      kAsync: sw.kLastWriteWasAsync as number,
      eof: uv.UV_EOF as number,
    }
  } catch {
    bindings = null
  }
  return bindings
}

type Listener = StreamListener

/** Events Connection listens to; each slot holds one listener (Connection adds one of each) or a list. */
type Slot = Listener | Listener[] | null

/** An Error as net.Socket reports a failed syscall: code 'ECONNRESET', errno, syscall. */
function uvError(status: number, syscall: string): NodeJS.ErrnoException {
  let code: string
  try {
    code = getSystemErrorName(status)
  } catch {
    code = `UV${status}`
  }
  const err: NodeJS.ErrnoException = new Error(`${syscall} ${code}`)
  err.code = code
  err.errno = status
  err.syscall = syscall
  return err
}

/** TcpHandleStream's booleans, in one small integer (bytes per connection matter). */
const Reading = 1
const Paused = 2
const Writing = 4
const ReadEnded = 8
const WriteEnded = 16
const ShutDown = 32
const Destroyed = 64
/** Our shutdown (FIN) has completed. */
const FinSent = 128

/**
 * Every handle reads into this one buffer (useUserBuffer, as net.Socket's `onread: { buffer }`) and each read is
 * copied out at once: otherwise Node mallocs 64 KiB per read, reallocs it to the bytes read and wraps it in a new
 * ArrayBuffer (three of them per CONNECT + SUBSCRIBE + DISCONNECT). One buffer serves all handles because a read
 * callback runs to its end before libuv reads into it again.
 */
const ReadBufferBytes = 64 * 1024
let readBuffer: Buffer | undefined

/**
 * A read's bytes in a Buffer of their own, as a net.Socket hands them over: the decoder keeps views of it (a
 * payload, a partial packet). Exactly their size, as before: a will or a retained message received in a small
 * read would otherwise keep a whole 8 KiB slab of Node's Buffer pool alive (allocUnsafe), and measured no faster.
 */
/** Reads up to this size are copied byte by byte. */
const SmallRead = 64

function copyOut(n: number): Buffer {
  const out = Buffer.allocUnsafeSlow(n)
  const from = readBuffer!
  // A CONNECT, SUBSCRIBE or PINGREQ byte by byte: Buffer.copy would make a view of readBuffer to copy from.
  if (n <= SmallRead) for (let i = 0; i < n; i++) out[i] = from[i]!
  else from.copy(out, 0, 0, n)
  return out
}

/** getpeername's output, reused: it only sets address, family and port. */
const peerScratch: { address?: string; port?: number } = {}
/** Clients mostly come from a few addresses: one copy of each consecutive repeat is kept. */
let lastIp = 'unknown'

/** The stream is also its own PeerAddress (what Broker.handle is told): no object or string per connection. */
export class TcpHandleStream implements PeerAddress {
  /** The peer's IP ('unknown' when the socket was reset before we asked). */
  readonly remoteIp: string
  private readonly remotePort: number
  /** Bytes written but not yet taken by the kernel (an asynchronous write and what waits behind it). */
  writableLength = 0
  private readonly handle: TcpHandle
  private flags = 0
  private corks = 0
  private onData: Slot = null
  private onEnd: Slot = null
  private onError: Slot = null
  private onClose: Slot = null
  /** 'drain' and 'close' listeners added with once(), created on first use. */
  private onceList: Array<string | Listener> | null = null
  /** Chunks written while a write is in flight or the stream is corked. */
  private queue: Buffer[] | null = null
  private closeError: Error | null = null

  /** Only after tcpHandles() has returned the bindings. */
  constructor(handle: TcpHandle) {
    this.handle = handle
    handle[kStream] = this
    handle.onread = onHandleRead
    handle.useUserBuffer((readBuffer ??= Buffer.allocUnsafe(ReadBufferBytes)))
    peerScratch.address = undefined
    peerScratch.port = 0
    handle.getpeername(peerScratch)
    const ip = peerScratch.address
    this.remoteIp = ip === undefined ? 'unknown' : ip === lastIp ? lastIp : (lastIp = ip)
    this.remotePort = peerScratch.port ?? 0
  }

  /** `ip:port` for logs, written when asked for (connection logs are mostly off). */
  get remoteAddress(): string {
    return hostPort(this.remoteIp, this.remotePort)
  }

  get destroyed(): boolean {
    return (this.flags & Destroyed) !== 0
  }

  get writableEnded(): boolean {
    return (this.flags & WriteEnded) !== 0
  }

  get writable(): boolean {
    return (this.flags & (Destroyed | WriteEnded)) === 0
  }

  setNoDelay(on: boolean): void {
    this.handle.setNoDelay(on)
  }

  /** 'data', 'end', 'error' and 'close' as Node's; the only other event, 'drain', is delivered once either way. */
  on(event: string, fn: Listener): this {
    switch (event) {
      case 'data':
        this.onData = add(this.onData, fn)
        if ((this.flags & Paused) === 0) this.startReading()
        break
      case 'end': this.onEnd = add(this.onEnd, fn); break
      case 'error': this.onError = add(this.onError, fn); break
      case 'close': this.onClose = add(this.onClose, fn); break
      default: this.once(event, fn)
    }
    return this
  }

  once(event: string, fn: Listener): this {
    ;(this.onceList ??= []).push(event, fn)
    return this
  }

  pause(): this {
    if ((this.flags & Reading) !== 0) this.handle.readStop()
    this.flags = (this.flags | Paused) & ~Reading
    return this
  }

  resume(): this {
    this.flags &= ~Paused
    this.startReading()
    return this
  }

  isPaused(): boolean {
    return (this.flags & Paused) !== 0
  }

  private startReading(): void {
    if ((this.flags & (Reading | Destroyed | ReadEnded)) !== 0 || this.onData === null) return
    this.flags |= Reading
    const err = this.handle.readStart()
    if (err !== 0) this.destroy(uvError(err, 'read'))
  }

  write(chunk: Buffer): boolean {
    if ((this.flags & (Destroyed | WriteEnded)) !== 0) return false
    if ((this.flags & Writing) !== 0 || this.corks > 0) {
      ;(this.queue ??= []).push(chunk)
      this.writableLength += chunk.length
      return false
    }
    this.send(chunk, null, chunk.length, false)
    return this.writableLength === 0
  }

  cork(): void {
    this.corks++
  }

  uncork(): void {
    if (this.corks > 0 && --this.corks === 0 && (this.flags & Writing) === 0) this.sendQueued()
  }

  /** Sends our FIN once everything written has left; the handle closes when the peer's FIN has come too. */
  end(): this {
    if ((this.flags & (Destroyed | WriteEnded)) !== 0) return this
    this.flags |= WriteEnded
    if ((this.flags & Writing) !== 0 || this.queue !== null) return this
    // The peer has sent its FIN and all it sent is read: close() sends ours, a shutdown() first would only
    // cost a syscall and a turn.
    if ((this.flags & ReadEnded) !== 0) this.destroy()
    else this.shutdown()
    return this
  }

  /**
   * After the client's DISCONNECT: with nothing of ours waiting, the handle closes now, and the kernel sends
   * what it still holds and then our FIN, as Mosquitto closes. No shutdown, no wait for the peer's FIN, no
   * further read: a third of the syscalls and callbacks of a connection's end. Otherwise as end().
   */
  endAfterDisconnect(): void {
    if ((this.flags & (Writing | Destroyed | WriteEnded)) !== 0 || this.queue !== null) {
      this.end()
      return
    }
    this.flags |= WriteEnded
    this.destroy()
  }

  destroy(err?: Error): this {
    if ((this.flags & Destroyed) !== 0) return this
    this.flags = (this.flags | Destroyed) & ~Reading
    this.closeError = err ?? null
    this.queue = null
    this.handle.close(onHandleClose)
    return this
  }

  /**
   * One write of `chunk` or of `chunks` (`bytes` in all; `queued`: already counted in writableLength). True
   * when the kernel took everything at once; otherwise the write completes in afterWrite.
   */
  private send(chunk: Buffer | null, chunks: Buffer[] | null, bytes: number, queued: boolean): boolean {
    const b = bindings!
    const req = new b.WriteWrap()
    req.handle = this.handle
    req.oncomplete = afterWrite
    req.async = false
    const err = chunk !== null ? this.handle.writeBuffer(req, chunk) : this.handle.writev(req, chunks!, true)
    if (err !== 0) {
      this.destroy(uvError(err, 'write'))
      return false
    }
    if (b.state[b.kAsync] !== 0) {
      this.flags |= Writing
      req.stream = this
      // Held until the write completes: the kernel reads from these bytes.
      req.buffer = chunk ?? chunks!
      req.bytes = bytes
      if (!queued) this.writableLength += bytes
      return false
    }
    if (queued) this.writableLength -= bytes
    return true
  }

  private sendQueued(): void {
    const q = this.queue
    if (q === null) {
      this.wrote()
      return
    }
    this.queue = null
    let bytes = 0
    for (const c of q) bytes += c.length
    if (this.send(q.length === 1 ? q[0]! : null, q.length === 1 ? null : q, bytes, true)) this.wrote()
  }

  /** A write completed: send what queued behind it, or shut down, or tell whoever waits for 'drain'. */
  wrote(): void {
    this.flags &= ~Writing
    if ((this.flags & Destroyed) !== 0) return
    if (this.queue !== null) {
      if (this.corks === 0) this.sendQueued()
      return
    }
    if ((this.flags & WriteEnded) !== 0) {
      if ((this.flags & ReadEnded) !== 0) this.destroy()
      else this.shutdown()
      return
    }
    if (this.writableLength === 0) this.emitOnce('drain')
  }

  private shutdown(): void {
    if ((this.flags & (ShutDown | Destroyed)) !== 0) return
    this.flags |= ShutDown
    const req = new bindings!.ShutdownWrap()
    req.handle = this.handle
    req.oncomplete = afterShutdown
    req.stream = this
    const err = this.handle.shutdown(req)
    if (err !== 0) this.destroy()
  }

  /** Our FIN is out: the handle closes once the peer's has arrived (or at once when it already has). */
  shutdownDone(): void {
    this.flags |= FinSent
    if ((this.flags & ReadEnded) !== 0) this.destroy()
  }

  /** From the handle's onread: `n` bytes in readBuffer, 0 (nothing), or a negative libuv error (UV_EOF). */
  read(n: number): void {
    if (n > 0) {
      if ((this.flags & Destroyed) === 0) emit(this.onData, this, copyOut(n))
      return
    }
    if (n === 0) return
    this.flags &= ~Reading
    if (n !== bindings!.eof) {
      this.destroy(uvError(n, 'read'))
      return
    }
    this.flags |= ReadEnded
    this.handle.readStop()
    emit(this.onEnd, this)
    const f = this.flags
    if ((f & Destroyed) !== 0) return
    // As a net.Socket with allowHalfOpen false: the peer's FIN ends our side too.
    if ((f & WriteEnded) === 0) this.end()
    else if ((f & FinSent) !== 0) this.destroy()
  }

  closed(): void {
    const err = this.closeError
    if (err !== null && this.onError !== null) emit(this.onError, this, err)
    emit(this.onClose, this)
    this.emitOnce('close')
  }

  /** Calls and removes the once() listeners of `event`; one added meanwhile waits for the next time (as Node). */
  private emitOnce(event: string): void {
    const list = this.onceList
    if (list === null) return
    let due: Listener[] | null = null
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] !== event) continue
      ;(due ??= []).push(list[i + 1] as Listener)
      list.splice(i, 2)
      i -= 2
    }
    if (list.length === 0 && this.onceList === list) this.onceList = null
    if (due !== null) for (const fn of due) fn.call(this)
  }

}

function add(slot: Slot, fn: Listener): Slot {
  if (slot === null) return fn
  return Array.isArray(slot) ? [...slot, fn] : [slot, fn]
}

function emit(slot: Slot, stream: TcpHandleStream, arg?: unknown): void {
  if (slot === null) return
  if (typeof slot === 'function') {
    ;(slot as (this: TcpHandleStream, a?: unknown) => void).call(stream, arg)
    return
  }
  for (const fn of slot) (fn as (this: TcpHandleStream, a?: unknown) => void).call(stream, arg)
}

/** Returns nothing: a value returned here would become the handle's next read buffer. */
function onHandleRead(this: TcpHandle): void {
  const b = bindings!
  this[kStream]?.read(b.state[b.kReadBytes]!)
}

function afterWrite(this: WriteReq, status: number): void {
  const stream = this.stream
  if (stream === undefined) return
  stream.writableLength -= this.bytes ?? 0
  this.buffer = undefined
  if (status < 0) {
    stream.destroy(uvError(status, 'write'))
    return
  }
  stream.wrote()
}

function afterShutdown(this: ShutdownReq, _status: number): void {
  this.stream?.shutdownDone()
}

function onHandleClose(this: TcpHandle): void {
  this[kStream]?.closed()
}
