/**
 * The HTTP side of an MQTT-over-WebSockets upgrade: which subprotocol to answer with, which requests
 * to refuse (and how to tell the client why), and who the peer is.
 *
 * Subprotocols, as Mosquitto 2 (libwebsockets) accepts them: `mqtt` (MQTT 3.1.1 and 5.0, the only name
 * in the spec [MQTT-6.0.0-3], [MQTT-6.0.0-4]) and `mqttv3.1` (MQTT 3.1; MQTT.js offers it for
 * protocolId MQIsdp); the name chosen changes nothing, as the CONNECT packet carries the protocol
 * version. A request offering neither, or none at all, is refused with 400: Mosquitto hangs up on
 * unknown names and leaves a client that offers none connected but unanswered, so no working client
 * depends on either.
 */
import net from 'node:net'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { socketPeer, type PeerAddress } from './peer-address.js'
export type { PeerAddress } from './peer-address.js'

export const WsSubprotocol = {
  Mqtt: 'mqtt',
  Mqtt31: 'mqttv3.1',
} as const

/**
 * The subprotocol to answer with: the first acceptable one in the client's order (its preference, as
 * Mosquitto picks), or undefined. Names are compared exactly: `MQTT` is not `mqtt`, for Mosquitto either.
 */
export function chooseSubprotocol(offered: Iterable<string>): string | undefined {
  for (const p of offered) if (p === WsSubprotocol.Mqtt || p === WsSubprotocol.Mqtt31) return p
  return undefined
}

/** Sec-WebSocket-Protocol as a list (RFC 6455 4.1: comma-separated tokens; repeated headers are joined by Node). */
export function offeredSubprotocols(header: string | undefined): string[] {
  if (header === undefined) return []
  return header.split(',').map((p) => p.trim()).filter((p) => p !== '')
}

export interface Refusal {
  status: number
  reason: string
}

/** Why this upgrade request is not served, or undefined when it may proceed to ws's own checks. */
export function refusal(req: IncomingMessage, path: string | undefined): Refusal | undefined {
  if (path !== undefined) {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const requested = q < 0 ? url : url.slice(0, q)
    if (requested !== path) return { status: 404, reason: `no MQTT endpoint at ${requested}; this listener serves ${path}` }
  }
  const offered = offeredSubprotocols(req.headers['sec-websocket-protocol'])
  if (chooseSubprotocol(offered) === undefined) {
    const got = offered.length === 0 ? 'none' : offered.join(', ')
    return { status: 400, reason: `MQTT over WebSockets needs the subprotocol mqtt (or mqttv3.1 for MQTT 3.1) in Sec-WebSocket-Protocol; offered: ${got}` }
  }
  return undefined
}

const StatusText: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' }

/** Answers an upgrade request with an HTTP error and closes the socket (as ws's own abortHandshake). */
export function refuseUpgrade(socket: Duplex, r: Refusal): void {
  if (socket.writable) {
    const body = r.reason + '\n'
    socket.end(
      `HTTP/1.1 ${r.status} ${StatusText[r.status] ?? 'Error'}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      '\r\n' + body,
    )
  }
  // A peer that never reads would keep the socket: end() flushes, destroy() follows once it has.
  socket.once('finish', () => socket.destroy())
}

/**
 * The client's address. With `trustForwardedFor` (a reverse proxy in front adds X-Forwarded-For), the
 * last address in the header is the one the proxy saw, and it replaces the socket's; entries before
 * it were written by the client or earlier hops and are not trusted. The log keeps the proxy's address.
 */
export function peerAddress(req: IncomingMessage, trustForwardedFor: boolean): PeerAddress {
  const direct = socketPeer(req.socket)
  if (trustForwardedFor) {
    const forwarded = lastForwardedFor(req.headers['x-forwarded-for'])
    if (forwarded !== undefined) return { remoteAddress: `${forwarded} via ${direct.remoteAddress}`, remoteIp: forwarded }
  }
  return direct
}

/** The right-most valid IP address of X-Forwarded-For, or undefined. */
export function lastForwardedFor(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined
  const joined = Array.isArray(header) ? header.join(',') : header
  const parts = joined.split(',')
  for (let i = parts.length - 1; i >= 0; i--) {
    let candidate = (parts[i] ?? '').trim()
    if (candidate === '') continue
    // Some proxies bracket IPv6 addresses.
    if (candidate.startsWith('[') && candidate.endsWith(']')) candidate = candidate.slice(1, -1)
    return net.isIP(candidate) === 0 ? undefined : candidate
  }
  return undefined
}
