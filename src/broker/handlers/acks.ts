/** PUBACK, PUBREC, PUBREL, PUBCOMP from the client: the QoS 1 and QoS 2 state machines (MQTT 5 section 4.3). */
import type { AckPacket } from '../../protocol/packets.js'
import { PacketType, ReasonCode } from '../../protocol/constants.js'
import type { Connection } from '../connection.js'
import { pump } from '../delivery.js'

export function handlePuback(conn: Connection, p: AckPacket): void {
  const session = conn.session!
  const o = session.inflight.get(p.packetId)
  if (o === undefined || o.qos !== 1) return // a stray PUBACK changes nothing
  session.inflight.delete(p.packetId)
  conn.broker.persistAcked(session, o)
  pump(session, conn.broker.now())
}

export function handlePubrec(conn: Connection, p: AckPacket): void {
  const session = conn.session!
  const o = session.inflight.get(p.packetId)
  if (o === undefined || o.qos !== 2) {
    // [MQTT-4.3.3] answer an unknown PUBREC with PUBREL so the client can finish its state.
    conn.sendPacket({ type: PacketType.Pubrel, packetId: p.packetId, reasonCode: conn.version === 5 ? ReasonCode.PacketIdentifierNotFound : 0 })
    return
  }
  if (p.reasonCode >= 0x80) {
    // v5: a failed PUBREC ends the exchange; the packet id is free again [MQTT-4.3.3-?].
    session.inflight.delete(p.packetId)
    conn.broker.persistAcked(session, o)
    pump(session, conn.broker.now())
    return
  }
  if (!o.released) {
    o.released = true
    conn.broker.persistReleased(session, o)
  }
  conn.sendPacket({ type: PacketType.Pubrel, packetId: p.packetId, reasonCode: 0 })
}

export function handlePubrel(conn: Connection, p: AckPacket): void {
  const session = conn.session!
  const known = session.incomingQos2.delete(p.packetId)
  if (known) conn.broker.persistIncomingReleased(session, p.packetId)
  conn.sendPacket({
    type: PacketType.Pubcomp,
    packetId: p.packetId,
    reasonCode: known || conn.version !== 5 ? 0 : ReasonCode.PacketIdentifierNotFound,
  })
}

export function handlePubcomp(conn: Connection, p: AckPacket): void {
  const session = conn.session!
  const o = session.inflight.get(p.packetId)
  if (o === undefined || o.qos !== 2) return
  session.inflight.delete(p.packetId)
  conn.broker.persistAcked(session, o)
  pump(session, conn.broker.now())
}
