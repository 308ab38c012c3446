/**
 * How addresses are written in logs, the one formatter for peers (TCP, TLS, WebSocket, the handshake guard) and for
 * the addresses Midge listens on or connects to (listeners, bridges): `host:port`, or `[host]:port` when the host
 * is an IPv6 address, whose own colons would otherwise run into the port's (mosquitto writes them so too).
 */

/** What Broker.handle is told about a connection's peer. */
export interface PeerAddress {
  /** `ip:port` / `[ip]:port` for logs (a WebSocket behind a trusted proxy: `CLIENT via PROXY`). */
  remoteAddress: string
  /** The bare IP, for the auth throttle and hooks. */
  remoteIp: string
}

/** `host:port`, or `[host]:port` for IPv6 (a host name never holds ':'). An undefined port prints as 0. */
export function hostPort (host: string, port: number | undefined): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port ?? 0}` : `${host}:${port ?? 0}`
}

/** The peer of a socket; a socket already closed has no address and reads `unknown:0`. */
export function socketPeer (socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): PeerAddress {
  const ip = socket.remoteAddress ?? 'unknown'
  return { remoteAddress: hostPort(ip, socket.remotePort), remoteIp: ip }
}
