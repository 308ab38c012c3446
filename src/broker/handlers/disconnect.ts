/** DISCONNECT from the client: a normal end discards the will; v5 0x04 keeps it [MQTT-3.14.4-3]. */
import type { DisconnectPacket } from '../../protocol/packets.js'
import { ReasonCode } from '../../protocol/constants.js'
import type { ClientLink } from '../client-link.js'
import { protocolViolation } from '../errors.js'

export function handleDisconnect(conn: ClientLink, p: DisconnectPacket): void {
  const session = conn.session!
  const expiry = p.properties?.sessionExpiryInterval
  if (conn.version === 5 && expiry !== undefined) {
    // [MQTT-3.14.2-2] a session that was to end with the connection can't be made persistent at DISCONNECT.
    if (session.connectExpiryInterval === 0 && expiry !== 0) {
      throw protocolViolation('DISCONNECT set a Session Expiry Interval after CONNECT set 0')
    }
    session.expiryInterval = expiry
  }
  conn.closeByClient(p.reasonCode !== ReasonCode.DisconnectWithWillMessage, p.reasonCode === 0 ? 'disconnected' : `disconnected (reason 0x${p.reasonCode.toString(16).padStart(2, '0')})`)
}
