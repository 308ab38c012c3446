/**
 * The connection log lines operators know from Mosquitto, in one place so the broker and tests agree:
 *   New connection from 203.0.113.5:51234 on port 8883.
 *   New client connected from 203.0.113.5:51234 as phone-1 (p5, c1, k60, u'alice').
 *   Client phone-1 disconnected.            Client phone-1 closed its connection.
 *   Client phone-1 has exceeded timeout, disconnecting.
 * Passwords never appear; payloads are the caller's business and only at debug.
 */

export interface ConnectInfo {
  clientId: string
  remoteAddress: string
  remotePort: number | undefined
  /** 3 = MQTT 3.1, 4 = 3.1.1, 5 = 5.0 (the CONNECT protocol level). */
  protocolLevel: number
  cleanStart: boolean
  keepalive: number
  username: string | undefined
}

/** Mosquitto's p-number: 1 for MQTT 3.1, 2 for 3.1.1, 5 for 5.0. */
export function protocolTag(level: number): string {
  if (level === 3) return 'p1'
  if (level === 4) return 'p2'
  return `p${level}`
}

export function formatAddress(address: string, port: number | undefined): string {
  const host = address.includes(':') && !address.startsWith('[') ? `[${address}]` : address
  return port === undefined ? host : `${host}:${port}`
}

export function newConnectionMessage(remoteAddress: string, remotePort: number | undefined, listener: string): string {
  return `New connection from ${formatAddress(remoteAddress, remotePort)} on port ${listener}.`
}

export function clientConnectedMessage(c: ConnectInfo): string {
  const user = c.username === undefined ? '' : `, u'${c.username}'`
  return `New client connected from ${formatAddress(c.remoteAddress, c.remotePort)} as ${c.clientId} (${protocolTag(c.protocolLevel)}, c${c.cleanStart ? 1 : 0}, k${c.keepalive}${user}).`
}

export type DisconnectReason =
  | { kind: 'client' } // DISCONNECT received
  | { kind: 'closed' } // socket closed without DISCONNECT
  | { kind: 'timeout' }
  | { kind: 'protocol-error'; detail?: string }
  | { kind: 'taken-over' } // same client id connected again
  | { kind: 'not-authorised' }
  | { kind: 'server-shutdown' }
  | { kind: 'socket-error'; detail?: string }
  | { kind: 'other'; detail: string }

export function clientDisconnectedMessage(clientId: string, reason: DisconnectReason): string {
  switch (reason.kind) {
    case 'client': return `Client ${clientId} disconnected.`
    case 'closed': return `Client ${clientId} closed its connection.`
    case 'timeout': return `Client ${clientId} has exceeded timeout, disconnecting.`
    case 'protocol-error': return `Client ${clientId} disconnected due to protocol error${reason.detail === undefined ? '' : `: ${reason.detail}`}.`
    case 'taken-over': return `Client ${clientId} already connected, closing old connection.`
    case 'not-authorised': return `Client ${clientId} disconnected, not authorised.`
    case 'server-shutdown': return `Client ${clientId} disconnected: server shutting down.`
    case 'socket-error': return `Socket error on client ${clientId}, disconnecting${reason.detail === undefined ? '' : ` (${reason.detail})`}.`
    case 'other': return `Client ${clientId} disconnected: ${reason.detail}.`
  }
}

/** An authentication failure with the client's address; never the password. */
export function authFailedMessage(clientId: string, remoteAddress: string, remotePort: number | undefined, username: string | undefined, why: string): string {
  const user = username === undefined ? 'without a username' : `as u'${username}'`
  return `Client ${clientId === '' ? '<unknown>' : clientId} from ${formatAddress(remoteAddress, remotePort)} failed to authenticate ${user}: ${why}.`
}
