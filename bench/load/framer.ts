/**
 * Splits a TCP byte stream into MQTT packets. Reads land in one buffer shared by every
 * connection of the process (net `onread`), so a packet cut by the end of a read is copied
 * into a small per-connection `pending` buffer and completed from the next read; whole
 * packets are handed to the sink in place, without a copy.
 */

export interface FrameSink {
  /** `first` is the fixed header's first byte; the body is `buf[start, end)`. */
  onFrame(first: number, buf: Buffer, start: number, end: number): void
}

export class MalformedError extends Error {
  readonly code = 'BENCH_ERR_MALFORMED'
}

/**
 * Offset of the body of the packet at `off`, or -1 while its fixed header is incomplete. The body
 * length (Remaining Length, section 2.2.3) is left in `headerLen`: two results, no allocation.
 */
function header(buf: Buffer, off: number, end: number): number {
  let len = 0
  let mul = 1
  let i = off + 1
  while (i < end) {
    const d = buf[i++]!
    len += (d & 0x7f) * mul
    if (d < 0x80) {
      headerLen = len
      return i
    }
    mul *= 128
    if (i - off > 4) throw new MalformedError('malformed remaining length')
  }
  return -1
}
let headerLen = 0

export class Framer {
  private pending: Buffer = Buffer.allocUnsafe(256)
  private pendingLen = 0

  feed(buf: Buffer, start: number, end: number, sink: FrameSink): void {
    let off = start
    if (this.pendingLen > 0) {
      off = this.completePending(buf, off, end, sink)
      if (this.pendingLen > 0) return
    }
    while (end - off >= 2) {
      const bodyStart = header(buf, off, end)
      if (bodyStart < 0) break
      const bodyEnd = bodyStart + headerLen
      if (bodyEnd > end) break
      sink.onFrame(buf[off]!, buf, bodyStart, bodyEnd)
      off = bodyEnd
    }
    if (off < end) this.stash(buf, off, end)
  }

  private stash(buf: Buffer, off: number, end: number): void {
    const n = end - off
    if (this.pending.length < this.pendingLen + n) this.grow(this.pendingLen + n)
    buf.copy(this.pending, this.pendingLen, off, end)
    this.pendingLen += n
  }

  private grow(min: number): void {
    let cap = this.pending.length * 2
    while (cap < min) cap *= 2
    const next = Buffer.allocUnsafe(cap)
    this.pending.copy(next, 0, 0, this.pendingLen)
    this.pending = next
  }

  /** Move bytes from the new read into `pending` until its packet is whole; returns the new offset. */
  private completePending(buf: Buffer, off: number, end: number, sink: FrameSink): number {
    let bodyStart = header(this.pending, 0, this.pendingLen)
    while (bodyStart < 0) {
      if (off >= end) return off
      this.stash(buf, off, off + 1) // the header itself was cut: at most 4 rounds
      off++
      bodyStart = header(this.pending, 0, this.pendingLen)
    }
    const total = bodyStart + headerLen
    const take = Math.min(total - this.pendingLen, end - off)
    if (take > 0) {
      this.stash(buf, off, off + take)
      off += take
    }
    if (this.pendingLen < total) return off
    this.pendingLen = 0
    sink.onFrame(this.pending[0]!, this.pending, bodyStart, total)
    return off
  }
}
