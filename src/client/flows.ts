/**
 * The client's side of the QoS flows, without I/O: packet identifiers, operations waiting for their
 * acknowledgement, and incoming QoS 2 messages held until PUBREL.
 *
 *   publish QoS 1:  PUBLISH ──► ◄── PUBACK                       (await: Puback)
 *   publish QoS 2:  PUBLISH ──► ◄── PUBREC   PUBREL ──► ◄── PUBCOMP (await: Pubrec, then Pubcomp)
 *   incoming QoS 2: ◄── PUBLISH  PUBREC ──►  ◄── PUBREL  PUBCOMP ──►  (delivered at PUBREL: exactly once)
 *
 * Outgoing QoS 1/2 PUBLISHes count against a quota, min(maxInflight, the server's Receive Maximum)
 * [MQTT-4.9.0-2]; SUBSCRIBE and UNSUBSCRIBE only need an identifier. Operations that cannot go yet wait in
 * one FIFO so their order on the wire is the order of the calls.
 */
import type { PublishPacket, SubscribePacket, UnsubscribePacket } from '../protocol/index.js'

export const Await = {
  /** Not sent yet (queued, or waiting for a connection). */
  Send: 0,
  Puback: 1,
  Pubrec: 2,
  Pubcomp: 3,
  Suback: 4,
  Unsuback: 5,
} as const
export type AwaitValue = (typeof Await)[keyof typeof Await]

/** One operation in progress. Fixed shape: created once per call, mutated through its life. */
export class Pending {
  state: AwaitValue = Await.Send
  constructor (
    readonly packet: PublishPacket | SubscribePacket | UnsubscribePacket,
    readonly resolve: (value: unknown) => void,
    readonly reject: (err: Error) => void,
  ) {}

  get isPublish (): boolean {
    return this.packet.type === 3
  }
}

export class Flows {
  /** Sent and awaiting an acknowledgement, by packet identifier. */
  readonly inflight = new Map<number, Pending>()
  /** Not sent yet, in call order. */
  readonly queue: Pending[] = []
  /** Incoming QoS 2 messages between PUBLISH and PUBREL. */
  readonly heldQos2 = new Map<number, PublishPacket>()
  /** QoS 1/2 PUBLISHes in inflight. */
  publishesInflight = 0
  /** min(maxInflight, server Receive Maximum); set at each CONNACK. */
  quota: number
  private nextId = 1

  constructor (quota: number) {
    this.quota = quota
  }

  /** A free identifier, or 0 when all 65,535 are in use. */
  allocateId (): number {
    for (let tries = 0; tries < 65535; tries++) {
      const id = this.nextId
      this.nextId = id === 65535 ? 1 : id + 1
      if (!this.inflight.has(id)) return id
    }
    return 0
  }

  /**
   * Takes the next queued operation that may be sent now, gives it an identifier and moves it in flight.
   * Returns undefined when the queue is empty or its head must wait for quota or an identifier.
   */
  takeSendable (): Pending | undefined {
    const head = this.queue[0]
    if (head === undefined) return undefined
    const p = head.packet
    const needsId = p.type !== 3 || p.qos > 0
    if (p.type === 3 && p.qos > 0 && this.publishesInflight >= this.quota) return undefined
    if (needsId) {
      const id = this.allocateId()
      if (id === 0) return undefined
      p.packetId = id
      this.inflight.set(id, head)
      if (p.type === 3) {
        this.publishesInflight++
        head.state = p.qos === 1 ? Await.Puback : Await.Pubrec
      } else {
        head.state = p.type === 8 ? Await.Suback : Await.Unsuback
      }
    } else {
      // QoS 0 carries no identifier on the wire; taking one anyway keeps the numbering of -d traces the same
      // as libmosquitto's, which gives every message an id.
      p.packetId = this.allocateId()
    }
    this.queue.shift()
    return head
  }

  /** Removes a finished operation; returns it if `id` was awaiting `state`. */
  complete (id: number, state: AwaitValue): Pending | undefined {
    const p = this.inflight.get(id)
    if (p === undefined || p.state !== state) return undefined
    this.inflight.delete(id)
    if (p.isPublish) this.publishesInflight--
    return p
  }

  /** Everything still open (in flight, then queued), emptied: for rejecting on a final close. */
  drain (): Pending[] {
    const all = [...this.inflight.values(), ...this.queue]
    this.inflight.clear()
    this.queue.length = 0
    this.publishesInflight = 0
    return all
  }
}
