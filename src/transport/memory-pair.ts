/**
 * Two connected in-memory Duplex streams: what one end writes, the other reads. The bridge's local side
 * speaks MQTT to this broker through broker.handle() over such a pair, so the local session gets QoS flows,
 * queueing and persistence exactly as a network client would.
 *
 * Like a net.Socket with allowHalfOpen false: end() on one side is an EOF on the other, which then ends its
 * own side; destroy() is an EOF for the peer. (node:stream's duplexPair does not pass destroy() across.)
 */
import { Duplex } from 'node:stream'

class MemoryEnd extends Duplex {
  peer: MemoryEnd | undefined = undefined
  private eof = false

  constructor () {
    super({ allowHalfOpen: false })
  }

  override _read (): void {}

  override _write (chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.peer!.deliver(chunk)
    cb()
  }

  override _final (cb: (err?: Error | null) => void): void {
    this.peer!.pushEof()
    cb()
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    this.peer!.pushEof()
    cb(err)
  }

  deliver (chunk: Buffer): void {
    if (this.eof || this.destroyed) return
    this.push(chunk)
  }

  pushEof (): void {
    if (this.eof || this.destroyed) return
    this.eof = true
    this.push(null)
  }
}

export function memoryPair (): [Duplex, Duplex] {
  const a = new MemoryEnd()
  const b = new MemoryEnd()
  a.peer = b
  b.peer = a
  return [a, b]
}
