/**
 * A publisher. Messages are cut from a pre-encoded batch (one memcpy), then each gets its
 * stamp, publisher index, sequence number and, at QoS 1, packet id patched in. Unpaced QoS 0
 * writes 64 KiB batches while the socket takes them and waits for 'drain' when it does not;
 * QoS 1 keeps at most `window` messages unacknowledged and tops the window up once per read.
 */
import { Client, State } from './client.js'
import { publishTemplate, repeatTemplate, type PublishTemplate } from './packets.js'
import type { Host } from './host.js'

const BATCH_BYTES = 64 * 1024
/** Batches written per turn before yielding, so that subscribers in the same loop get read. */
const BATCHES_PER_TURN = 4

export class Publisher extends Client {
  readonly tmpl: PublishTemplate
  private readonly batch: Buffer
  private readonly perBatch: number
  private readonly pktLen: number
  quota = 0
  sent = 0
  acked = 0
  inflight = 0
  done = false
  /** Queued for the controller's deferred window top-up. */
  topUpPending = false
  /** Packet ids in flight (QoS 1): a PUBACK for anything else is a broker error. */
  private readonly inflightIds: Uint8Array
  private readonly pumpBound: () => void
  private readonly onFlushed: () => void

  constructor(ctl: Host, idx: number, topic: string, clientId: string) {
    super(ctl, idx, topic, clientId)
    this.tmpl = publishTemplate(topic, ctl.opts.qos, ctl.opts.size)
    this.pktLen = this.tmpl.bytes.length
    this.perBatch = Math.max(1, Math.floor(BATCH_BYTES / this.pktLen))
    this.batch = repeatTemplate(this.tmpl, this.perBatch)
    this.inflightIds = new Uint8Array(ctl.opts.qos > 0 ? 65536 : 0)
    this.pumpBound = () => this.pump()
    this.onFlushed = () => {
      this.done = true
      this.ctl.onPublisherDone(this)
    }
  }

  protected onConnack(): void {
    this.state = State.Ready
    this.socket!.on('drain', this.pumpBound)
    this.ctl.onReady(this)
  }

  /** Encode `n` messages stamped with the given send time (hrtime ns split in 32-bit halves). */
  private fill(n: number, hi: number, lo: number): Buffer {
    const len = this.pktLen
    const out = Buffer.allocUnsafe(n * len)
    this.batch.copy(out, 0, 0, n * len)
    const pidOff = this.tmpl.packetIdOffset
    const plOff = this.tmpl.payloadOffset
    const idx = this.idx
    for (let k = 0, p = 0; k < n; k++, p += len) {
      const seq = this.sent++
      if (pidOff >= 0) {
        const pid = (seq % 65535) + 1 // never 0 [MQTT-2.3.1-1]
        out[p + pidOff] = pid >>> 8
        out[p + pidOff + 1] = pid & 0xff
        this.inflightIds[pid] = 1
        this.inflight++
      }
      const q = p + plOff
      out.writeUInt32LE(lo, q)
      out.writeUInt32LE(hi, q + 4)
      out.writeUInt32LE(idx, q + 8)
      out.writeUInt32LE(seq, q + 12)
    }
    this.ctl.sent += n
    return out
  }

  /** Unpaced QoS 0: write batches until the socket pushes back, the turn ends, or all is sent. */
  pump(): void {
    const ctl = this.ctl
    if (this.state !== State.Ready || this.done || !ctl.running()) return
    for (let turn = 0; this.sent < this.quota; turn++) {
      if (turn === BATCHES_PER_TURN) {
        setImmediate(this.pumpBound)
        return
      }
      ctl.stampSend()
      const n = Math.min(this.perBatch, this.quota - this.sent)
      const last = this.sent + n === this.quota
      const ok = last ? this.writeLast(this.fill(n, ctl.txHi, ctl.txLo)) : this.send(this.fill(n, ctl.txHi, ctl.txLo))
      if (!ok) return // 'drain' calls pump again
    }
  }

  private writeLast(buf: Buffer): boolean {
    this.lastTx = this.ctl.coarseNow
    return this.socket!.write(buf, this.onFlushed)
  }

  /** QoS 1: fill the window (and, paced, no further than `limit`). */
  topUp(limit: number): void {
    if (this.state !== State.Ready) return
    const room = this.ctl.opts.window - this.inflight
    const n = Math.min(room, limit - this.sent)
    if (n <= 0) return
    const ctl = this.ctl
    ctl.stampSend()
    this.send(this.fill(n, ctl.txHi, ctl.txLo))
  }

  /** Paced sending: everything due up to message `limit` goes out in one write. */
  sendUpTo(limit: number): void {
    if (this.ctl.opts.qos > 0) {
      this.topUp(limit)
      return
    }
    const n = limit - this.sent
    if (n <= 0) return
    const ctl = this.ctl
    const last = limit === this.quota
    const buf = this.fill(n, ctl.txHi, ctl.txLo)
    if (last) this.writeLast(buf)
    else this.send(buf)
  }

  protected override onPuback(buf: Buffer, start: number, end: number): void {
    const pid = end - start >= 2 ? (buf[start]! << 8) | buf[start + 1]! : 0
    if (this.inflightIds.length === 0 || this.inflightIds[pid] !== 1) {
      this.fail(`unexpected PUBACK for packet id ${pid}`)
      return
    }
    this.inflightIds[pid] = 0
    this.inflight--
    this.acked++
    this.ctl.acked++
  }

  protected override afterRead(): void {
    const ctl = this.ctl
    if (ctl.opts.qos === 0 || this.done) return
    if (this.acked === this.quota) {
      this.done = true
      ctl.onPublisherDone(this)
    } else if (ctl.opts.rate <= 0 && ctl.running()) {
      ctl.deferTopUp(this)
    }
  }
}
