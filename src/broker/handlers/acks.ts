/** PUBACK, PUBREC, PUBREL, PUBCOMP from the client: the QoS 1 and QoS 2 state machines (MQTT 5 section 4.3). */
import type { AckPacket } from '../../protocol/packets.js'
import { PacketType, ReasonCode } from '../../protocol/constants.js'
import type { ClientLink } from '../client-link.js'
import type { Outgoing } from '../session.js'
import { protocolViolation } from '../errors.js'
import { pump } from '../delivery.js'

/**
 * An ack of the wrong kind for a message we have in flight is a protocol violation [MQTT-4.8.0-1]: the
 * connection ends and the message stays in the session, to be sent again when the client resumes it.
 */
function wrongAck(p: AckPacket, o: Outgoing): never {
  const name = p.type === PacketType.Puback ? 'PUBACK' : p.type === PacketType.Pubrec ? 'PUBREC' : 'PUBCOMP'
  const state = o.qos === 1 ? 'a QoS 1 message' : o.released ? 'a released QoS 2 message' : 'a QoS 2 message not yet PUBREC\'d'
  throw protocolViolation(`sent ${name} for packet id ${p.packetId}, which is ${state}`)
}

export function handlePuback(conn: ClientLink, p: AckPacket): void {
  const session = conn.session!
  const o = session.inflight.get(p.packetId)
  if (o === undefined) return // a stray PUBACK changes nothing
  if (o.qos !== 1) wrongAck(p, o)
  session.removeInflight(o)
  conn.broker.persistAcked(session, o)
  pump(session, conn.broker.now())
}

export function handlePubrec(conn: ClientLink, p: AckPacket): void {
  const session = conn.session!
  const o = session.inflight.get(p.packetId)
  if (o === undefined) {
    // An unknown id is a session mismatch, not an error: PUBREL (v5: 0x92 Packet Identifier not found) lets
    // the client finish its side (MQTT 5 section 3.6.2.1).
    conn.sendPacket({ type: PacketType.Pubrel, packetId: p.packetId, reasonCode: conn.version === 5 ? ReasonCode.PacketIdentifierNotFound : 0 })
    return
  }
  if (o.qos !== 2) wrongAck(p, o)
  if (p.reasonCode >= 0x80) {
    // v5: a failed PUBREC ends the exchange; the packet id is free again (MQTT 5 section 4.3.3).
    session.removeInflight(o)
    conn.broker.persistAcked(session, o)
    pump(session, conn.broker.now())
    return
  }
  // A PUBREC for a message already released is answered again: the client may not have had our PUBREL.
  if (!o.released) {
    o.released = true
    conn.broker.persistReleased(session, o)
  }
  conn.sendPacket({ type: PacketType.Pubrel, packetId: p.packetId, reasonCode: 0 })
}

export function handlePubrel(conn: ClientLink, p: AckPacket): void {
  const session = conn.session!
  const known = session.incomingQos2.delete(p.packetId)
  if (known) conn.broker.persistIncomingReleased(session, p.packetId)
  conn.sendPacket({
    type: PacketType.Pubcomp,
    packetId: p.packetId,
    reasonCode: known || conn.version !== 5 ? 0 : ReasonCode.PacketIdentifierNotFound,
  })
}

export function handlePubcomp(conn: ClientLink, p: AckPacket): void {
  const session = conn.session!
  const o = session.inflight.get(p.packetId)
  if (o === undefined) return
  // Only a released QoS 2 message may complete [MQTT-4.3.3-1]: a PUBCOMP before PUBREC would lose it.
  if (o.qos !== 2 || !o.released) wrongAck(p, o)
  session.removeInflight(o)
  conn.broker.persistAcked(session, o)
  pump(session, conn.broker.now())
}
