/**
 * Incremental MQTT decoder: framing, size guard, fixed-header checks, dispatch to decode-packets.ts.
 *
 * Feed it socket chunks of any size; it calls onPacket for each complete packet, in order. Data flow:
 *
 *   chunk ──► whole packets inside the chunk: decoded in place, payloads are subarray views of the chunk
 *        └──► a packet cut by the chunk end: its bytes are copied into a buffer of its own (allocated for
 *             that packet only, never reused), completed by the next chunks, then decoded from there
 *
 * Payload and binary-property views are therefore safe to keep (retained messages, queues): socket chunks
 * are never reused by Node, and each reassembled packet has its own buffer. A view does keep its whole
 * chunk alive, so long-term storage of many small payloads may prefer a copy.
 *
 * The size guard runs as soon as the fixed header is complete, before any body byte is held. Memory held
 * for a partial packet follows the bytes actually received: exact size up to 64 KiB, beyond that a buffer
 * that doubles as data arrives, so a peer announcing 256 MB and sending 10 bytes costs 64 KiB, not 256 MB.
 * Copying (rather than keeping a list of chunk views) also bounds the cost of a peer dripping 1-byte chunks.
 */
import { PacketType } from './constants.js'
import type { ProtocolVersion } from './constants.js'
import {
  decodeAck, decodeAuth, decodeConnack, decodeConnect, decodeDisconnect, decodePublish, decodeSuback,
  decodeSubscribe, decodeUnsuback, decodeUnsubscribe,
} from './decode-packets.js'
import { MqttProtocolError, malformed, tooLarge } from './errors.js'
import type { Packet } from './packets.js'
import { Reader } from './reader.js'
import { readVarint, VarintResult, VarintStatus } from './varint.js'

export interface DecoderOptions {
  /** Largest whole packet (fixed header included) accepted; 0/undefined = protocol max (268,435,460). */
  maxPacketSize?: number
  /** Version before a CONNECT is seen (client side: the version it connected with). Default 4. */
  protocolVersion?: ProtocolVersion
}

/** Static pieces of PINGREQ/PINGRESP: they carry nothing, so one frozen object each serves every ping. */
const Pingreq = Object.freeze({ type: PacketType.Pingreq } as const)
const Pingresp = Object.freeze({ type: PacketType.Pingresp } as const)

// Scratch shared by every decoder: decoding is synchronous and a packet's fields are read before
// onPacket runs, so one Reader and one VarintResult serve all connections (bytes per connection matter).
const sharedReader = new Reader()
const sharedVarint = new VarintResult()

export class Decoder {
  /** Starts at opts.protocolVersion ?? 4; set by a CONNECT as soon as its protocol level is read. */
  protocolVersion: ProtocolVersion
  /** May be changed between pushes (e.g. after CONNECT negotiates a smaller size). */
  maxPacketSize: number
  /** The Maximum Packet Size of the CONNECT being read (0 = none), or -1 until its properties have been read. */
  peerMaxPacketSize = -1

  private readonly onPacket: (this: unknown, packet: Packet) => void
  /** `this` for onPacket: a method on the owner's prototype instead of a closure per decoder. */
  private readonly receiver: unknown
  private error: MqttProtocolError | null = null
  private stopped = false
  /** Set by pause(): bytes not yet decoded wait in `rest` until resume(). */
  private pausedFlag = false
  private rest: Buffer | null = null
  /** Bytes of a split fixed header (at most 4 are ever held: the 5th byte completes or breaks it). */
  private hdrBuf: Buffer | null = null
  /** Allocated on the first split fixed header only: most connections never need it. */
  private get hdr (): Buffer {
    if (this.hdrBuf === null) this.hdrBuf = Buffer.alloc(5)
    return this.hdrBuf
  }
  /** The partial packet once its size is known: fresh per packet, because views into it are handed out. */
  private acc: Buffer | null = null
  /** Bytes of the current partial packet received so far (in hdr while need < 0, else in acc). */
  private held = 0
  /** Total size of the partial packet, or -1 while its fixed header is still incomplete. */
  private need = -1

  constructor (onPacket: (this: unknown, packet: Packet) => void, opts?: DecoderOptions, receiver?: unknown) {
    this.onPacket = onPacket
    this.receiver = receiver
    this.protocolVersion = opts?.protocolVersion ?? 4
    this.maxPacketSize = opts?.maxPacketSize ?? 0
  }

  /** Bytes held waiting for the rest of a packet. */
  get buffered (): number {
    return this.held
  }

  /** Stops emitting; safe to call from onPacket. Later pushes do nothing. */
  stop (): void {
    this.stopped = true
    this.rest = null
    this.reset()
  }

  /**
   * Stops emitting after the current packet, keeping the bytes that follow until resume(): lets the owner
   * yield the event loop mid-chunk. Safe to call from onPacket.
   */
  pause (): void {
    this.pausedFlag = true
  }

  get paused (): boolean {
    return this.pausedFlag
  }

  /** Decodes what pause() held back (and what was pushed since). Returns as push() does. */
  resume (): MqttProtocolError | null {
    this.pausedFlag = false
    const rest = this.rest
    this.rest = null
    return rest === null ? this.error : this.push(rest)
  }

  /**
   * Feeds bytes. Returns null, or the MqttProtocolError that ended decoding (also returned by every later
   * push). Never throws for any input; an exception thrown by onPacket propagates to the caller.
   */
  push (chunk: Buffer): MqttProtocolError | null {
    if (this.error !== null) return this.error
    if (this.stopped) return null
    if (this.pausedFlag) {
      this.rest = this.rest === null ? chunk : Buffer.concat([this.rest, chunk])
      return null
    }
    const len = chunk.length
    let pos = 0
    if (this.held > 0) {
      pos = this.continuePartial(chunk)
      if (pos < 0) return this.error // -1: error, or everything consumed into the partial packet
    }
    while (pos < len && !this.stopped) {
      if (this.pausedFlag) {
        this.rest = chunk.subarray(pos)
        return null
      }
      const st = readVarint(chunk, pos + 1, len, sharedVarint)
      if (st === VarintStatus.Incomplete) {
        // Split fixed header: at most 4 bytes here (first byte + 3 continuation bytes).
        chunk.copy(this.hdr, 0, pos, len)
        this.held = len - pos
        this.need = -1
        return null
      }
      if (st === VarintStatus.Malformed) return this.fail(malformed('remaining length longer than 4 bytes'))
      const bodyStart = pos + 1 + sharedVarint.length
      const total = bodyStart - pos + sharedVarint.value
      const max = this.maxPacketSize
      if (max > 0 && total > max) return this.fail(tooLarge(total, max))
      if (pos + total > len) {
        this.acc = allocPartial(total, len - pos)
        chunk.copy(this.acc, 0, pos, len)
        this.held = len - pos
        this.need = total
        return null
      }
      const err = this.decodeOne(chunk, pos, bodyStart, pos + total)
      if (err !== null) return err
      pos += total
    }
    return null
  }

  /**
   * Adds the start of chunk to the partial packet. Returns the offset of the first unused byte, or -1 when
   * the chunk was used up (still partial, or stopped) or decoding failed (this.error is then set).
   */
  private continuePartial (chunk: Buffer): number {
    const len = chunk.length
    let pos = 0
    if (this.need < 0) {
      const hdr = this.hdr
      while (true) {
        if (pos >= len) return -1
        hdr[this.held++] = chunk[pos++]!
        const st = readVarint(hdr, 1, this.held, sharedVarint)
        if (st === VarintStatus.Ok) break
        if (st === VarintStatus.Malformed) {
          this.fail(malformed('remaining length longer than 4 bytes'))
          return -1
        }
      }
      const total = this.held + sharedVarint.value
      const max = this.maxPacketSize
      if (max > 0 && total > max) {
        this.fail(tooLarge(total, max))
        return -1
      }
      this.acc = allocPartial(total, this.held)
      hdr.copy(this.acc, 0, 0, this.held)
      this.need = total
    }
    let acc = this.acc!
    const take = Math.min(this.need - this.held, len - pos)
    if (acc.length < this.held + take) {
      // Grow geometrically, never past the packet size: amortised O(1) copies per byte.
      const grown = Buffer.allocUnsafe(Math.min(this.need, Math.max(acc.length * 2, this.held + take)))
      acc.copy(grown, 0, 0, this.held)
      acc = this.acc = grown
    }
    chunk.copy(acc, this.held, pos, pos + take)
    this.held += take
    pos += take
    if (this.held < this.need) return -1
    const total = this.need
    this.reset()
    readVarint(acc, 1, total, sharedVarint) // validated when the header was first read
    const err = this.decodeOne(acc, 0, 1 + sharedVarint.length, total)
    if (err !== null || this.stopped) return -1
    return pos
  }

  private reset (): void {
    this.acc = null
    this.held = 0
    this.need = -1
  }

  private fail (err: MqttProtocolError): MqttProtocolError {
    this.error = err
    this.reset()
    return err
  }

  /** Decodes buf[start, end) (body from bodyStart) and emits it. Returns the error, if any. */
  private decodeOne (buf: Buffer, start: number, bodyStart: number, end: number): MqttProtocolError | null {
    let packet: Packet
    try {
      packet = this.decodeBody(buf[start]!, buf, bodyStart, end)
    } catch (e) {
      // Only our own MqttProtocolErrors are expected; anything else is a decoder bug surfaced as malformed.
      return this.fail(e instanceof MqttProtocolError ? e : malformed(`undecodable packet: ${String(e)}`))
    }
    this.onPacket.call(this.receiver, packet)
    return null
  }

  private decodeBody (first: number, buf: Buffer, start: number, end: number): Packet {
    const type = first >> 4
    const flags = first & 15
    const r = sharedReader
    r.reset(buf, start, end)
    const v = this.protocolVersion
    switch (type) {
      case PacketType.Publish:
        if ((flags & 6) === 6) throw malformed('PUBLISH with QoS 3') // [MQTT-3.3.1-4]
        if (v === 5 && (flags & 0x0e) === 8) throw malformed('PUBLISH with QoS 0 and DUP set') // [MQTT-3.3.1-2]
        return decodePublish(r, flags, v)
      case PacketType.Puback:
      case PacketType.Pubrec:
      case PacketType.Pubcomp:
        if (flags !== 0) throw badFlags(type)
        return decodeAck(r, type, v)
      case PacketType.Pubrel:
        if (flags !== 2 && v !== 3) throw badFlags(type) // [MQTT-3.6.1-1]
        return decodeAck(r, type, v)
      case PacketType.Subscribe:
        if (flags !== 2 && v !== 3) throw badFlags(type) // [MQTT-3.8.1-1]
        return decodeSubscribe(r, v)
      case PacketType.Unsubscribe:
        if (flags !== 2 && v !== 3) throw badFlags(type) // [MQTT-3.10.1-1]
        return decodeUnsubscribe(r, v)
      case PacketType.Connect:
        if (flags !== 0) throw badFlags(type)
        return decodeConnect(r, this)
      case PacketType.Connack:
        if (flags !== 0) throw badFlags(type)
        return decodeConnack(r, v)
      case PacketType.Suback:
        if (flags !== 0) throw badFlags(type)
        return decodeSuback(r, v)
      case PacketType.Unsuback:
        if (flags !== 0) throw badFlags(type)
        return decodeUnsuback(r, v)
      case PacketType.Pingreq:
      case PacketType.Pingresp:
        if (flags !== 0) throw badFlags(type)
        if (end !== start) throw malformed('PINGREQ/PINGRESP with a body')
        return type === PacketType.Pingreq ? Pingreq : Pingresp
      case PacketType.Disconnect:
        if (flags !== 0) throw badFlags(type)
        return decodeDisconnect(r, v)
      case PacketType.Auth:
        if (v !== 5) throw malformed('AUTH before MQTT 5.0')
        if (flags !== 0) throw badFlags(type)
        return decodeAuth(r)
      default:
        throw malformed('reserved packet type 0')
    }
  }
}

/** Up to 64 KiB a partial packet gets its exact size at once; larger ones start at 64 KiB or twice what came. */
const ExactUpTo = 65_536

function allocPartial (total: number, have: number): Buffer {
  return Buffer.allocUnsafe(total <= ExactUpTo ? total : Math.min(total, Math.max(ExactUpTo, have * 2)))
}

/** [MQTT-2.2.2-2]: reserved fixed-header flags must be exactly as the spec lists them. */
function badFlags (type: number): MqttProtocolError {
  return malformed(`reserved fixed-header flags set on packet type ${type}`)
}
