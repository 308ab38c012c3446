/**
 * A subscriber: SUBSCRIBE after CONNACK, then every PUBLISH is checked against a bitmap of
 * message ids (publisher base + sequence), so loss and duplicates are exact; each delivery
 * also gives a latency sample from the stamp in its payload.
 */
import { Client, State } from './client.js'
import { encodeSubscribe, PAYLOAD_HEADER, putPuback } from './packets.js'
import type { Controller } from './controller.js'

const TWO32 = 4294967296

function u32le(b: Buffer, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 16777216
}

export class Subscriber extends Client {
  protected override get port(): number {
    return this.ctl.opts.subPort > 0 ? this.ctl.opts.subPort : this.ctl.opts.port
  }

  constructor(
    override readonly ctl: Controller,
    idx: number,
    topic: string,
    clientId: string,
  ) {
    super(ctl, idx, topic, clientId)
  }

  /** One bit per message id of the run. */
  seen: Uint32Array = new Uint32Array(0)
  rx = 0
  /** QoS 1 deliveries acknowledged by this read, written as one buffer after it. */
  private acks = 0

  allocateBitmap(total: number): void {
    this.seen = new Uint32Array(Math.ceil(total / 32))
  }

  protected onConnack(): void {
    this.state = State.Suback
    this.send(encodeSubscribe(1, this.topic, this.ctl.opts.qos))
  }

  protected override onSuback(buf: Buffer, start: number, end: number): void {
    const rc = end - start >= 3 ? buf[start + 2]! : 0x80
    if (this.state !== State.Suback) this.fail('unexpected SUBACK')
    else if (rc === 0x80) this.fail(`SUBSCRIBE ${this.topic} refused (SUBACK 0x80)`)
    else if (rc < this.ctl.opts.qos) this.fail(`SUBSCRIBE ${this.topic} granted QoS ${rc} < ${this.ctl.opts.qos}`)
    else {
      this.state = State.Ready
      this.ctl.onReady(this)
    }
  }

  override onRead(buf: Buffer, n: number): boolean {
    this.ctl.stampReceive()
    return super.onRead(buf, n)
  }

  protected override onPublish(first: number, buf: Buffer, start: number, end: number): void {
    const ctl = this.ctl
    const qos = (first >> 1) & 3
    let off = start + 2 + ((buf[start]! << 8) | buf[start + 1]!)
    if (qos === 1) {
      const scratch = ctl.ackScratch
      if ((this.acks + 1) * 4 > scratch.length) this.flushAcks()
      putPuback(scratch, this.acks * 4, buf[off]!, buf[off + 1]!)
      this.acks++
      off += 2
    } else if (qos !== 0) {
      this.fail(`unexpected QoS ${qos} delivery`)
      return
    }
    if (off > end) {
      this.fail('malformed PUBLISH')
      return
    }
    if (end - off < PAYLOAD_HEADER) {
      ctl.foreign++
      return
    }
    const lo = u32le(buf, off)
    const hi = u32le(buf, off + 4)
    const pub = u32le(buf, off + 8)
    const seq = u32le(buf, off + 12)
    if (pub >= ctl.npub || seq >= ctl.quotas[pub]!) {
      ctl.foreign++
      return
    }
    const id = ctl.bases[pub]! + seq
    const word = Math.floor(id / 32)
    const bit = 1 << (id & 31)
    const seen = this.seen
    if ((seen[word]! & bit) !== 0) {
      ctl.dups++
      return
    }
    seen[word] = seen[word]! | bit
    this.rx++
    ctl.rx++
    if ((hi - ctl.t0Hi) * TWO32 + (lo - ctl.t0Lo) >= ctl.warmNs) {
      ctl.latency.record((ctl.rxHi - hi) * TWO32 + (ctl.rxLo - lo))
    }
  }

  protected override afterRead(): void {
    if (this.acks > 0) this.flushAcks()
    this.ctl.afterDeliveries()
  }

  private flushAcks(): void {
    const n = this.acks * 4
    const out = Buffer.allocUnsafe(n)
    this.ctl.ackScratch.copy(out, 0, 0, n)
    this.acks = 0
    this.send(out)
  }
}
