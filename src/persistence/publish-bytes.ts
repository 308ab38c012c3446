/**
 * A stored message or will body as the bytes of an MQTT v5 PUBLISH packet: the codec already writes and
 * checks every property, so a store never grows a second serialization of them. The packet id is a
 * placeholder (1 for QoS > 0) and never read back.
 */
import type { QoS } from '../protocol/constants.js'
import { Decoder } from '../protocol/decoder.js'
import { encodePublish } from '../protocol/encoder.js'
import type { Properties, PublishPacket, WillMessage } from '../protocol/packets.js'

export function publishBytes(topic: string, payload: Buffer, qos: QoS, retain: boolean, properties: Properties | undefined): Buffer {
  return encodePublish(storedPublish(topic, payload, qos, retain, properties), StoredVersion)
}

/** The version of the stored PUBLISH bytes: v5, so every property a message may carry has its place. */
export const StoredVersion = 5

/** The packet publishBytes encodes, for writing it in place (RecordWriter.publish). */
export function storedPublish(topic: string, payload: Buffer, qos: QoS, retain: boolean, properties: Properties | undefined): PublishPacket {
  return { type: 3, topic, payload, qos, retain, dup: false, packetId: qos > 0 ? 1 : 0, properties }
}

/** A will as PUBLISH bytes; Will Delay Interval is a CONNECT property, not a PUBLISH one, so it goes beside. */
export function willBytes(will: WillMessage): { delay: number; bytes: Buffer } {
  const { willDelayInterval, ...props } = will.properties ?? {}
  return { delay: willDelayInterval ?? 0, bytes: publishBytes(will.topic, will.payload, will.qos, will.retain, Object.keys(props).length > 0 ? props : undefined) }
}

/** Decodes bodies written by publishBytes; one instance reused (the decoder holds nothing between whole packets). */
export class PublishBytesReader {
  private decoder: Decoder
  private decoded: PublishPacket | undefined

  constructor() {
    this.decoder = this.fresh()
  }

  private fresh(): Decoder {
    return new Decoder((p) => { this.decoded = p as PublishPacket }, { protocolVersion: 5 })
  }

  /** Throws a RangeError for bytes that are not one whole PUBLISH packet. */
  read(bytes: Buffer): PublishPacket {
    this.decoded = undefined
    const err = this.decoder.push(bytes)
    if (err !== null || this.decoded === undefined || this.decoder.buffered !== 0) {
      // A decoder that failed (or holds a partial packet) stays failed: the next body gets a new one.
      this.decoder = this.fresh()
      throw new RangeError(`stored message does not decode${err !== null ? `: ${err.message}` : ''}`)
    }
    return this.decoded
  }

  /** The will willBytes() wrote. */
  readWill(delay: number, bytes: Buffer): WillMessage {
    const p = this.read(bytes)
    const will: WillMessage = { topic: p.topic, payload: p.payload, qos: p.qos, retain: p.retain, properties: p.properties }
    if (delay > 0) will.properties = { ...will.properties, willDelayInterval: delay }
    return will
  }
}
