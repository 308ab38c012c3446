/**
 * Bounds what a client that never finishes its TLS handshake can hold: each handshake ends after
 * `timeoutMs` (Node only reports the timeout as a tlsClientError and leaves the socket open, so it is
 * destroyed here), and at most `maxPending` handshakes per listener and `maxPendingPerAddress` per client
 * address are in progress at once. Connections past a bound are closed before any TLS state exists for them.
 *
 * A plain net.Server accepts and, within the bounds, hands the socket to the tls.Server by emitting
 * 'connection' on it (documented for injecting sockets). Refusing there is the only safe place: once a
 * TLSSocket wraps the raw socket, destroying the raw one underneath it crashes Node 20 (see tls.ts close()).
 *
 * Handshake failures are logged with the client's address and a sentence (tls-errors.ts) instead of
 * OpenSSL's error string; refusals are logged at most once per RefusalLogIntervalMs per listener.
 */
import net from 'node:net'
import type tls from 'node:tls'
import type { Logger } from '../observability/logger.js'
import { describeHandshakeFailure } from './tls-errors.js'

export const HandshakeDefaults = {
  /** handshake_timeout, seconds. */
  timeoutSeconds: 10,
  /** max_handshakes: per listener; -1 = unlimited. */
  maxPending: 1000,
  /** max_handshakes_per_address; -1 = unlimited. */
  maxPendingPerAddress: 64,
} as const

export interface HandshakeLimits {
  timeoutMs: number
  /** -1 = unlimited. */
  maxPending: number
  /** -1 = unlimited. */
  maxPendingPerAddress: number
}

export function handshakeLimits(o: { handshakeTimeoutMs?: number | undefined; maxHandshakes?: number | undefined; maxHandshakesPerAddress?: number | undefined }): HandshakeLimits {
  return {
    timeoutMs: o.handshakeTimeoutMs ?? HandshakeDefaults.timeoutSeconds * 1000,
    maxPending: o.maxHandshakes ?? HandshakeDefaults.maxPending,
    maxPendingPerAddress: o.maxHandshakesPerAddress ?? HandshakeDefaults.maxPendingPerAddress,
  }
}

const RefusalLogIntervalMs = 10_000

/** `ip:port`, or `[ip]:port` for IPv6, as the broker's connection logs write addresses. */
export function formatAddress(ip: string | undefined, port: number | undefined): string {
  if (ip === undefined) return 'an unknown address'
  return ip.includes(':') ? `[${ip}]:${port ?? 0}` : `${ip}:${port ?? 0}`
}

export interface GuardedTlsServer {
  /** The socket that listens; the tls.Server itself never does. */
  readonly front: net.Server
  /** Raw sockets whose handshake is still in progress. */
  pending(): net.Socket[]
}

/**
 * Puts `tlsServer` behind a listening-ready net.Server that enforces `limits`. `label` names the listener in
 * logs (e.g. "TLS listener 8883"). The caller listens on `front`.
 */
export function guardHandshakes(tlsServer: tls.Server, label: string, limits: HandshakeLimits, log: Logger): GuardedTlsServer {
  const pending = new Map<string, { raw: net.Socket; ip: string }>()
  const perIp = new Map<string, number>()
  const addresses = new WeakMap<net.Socket, string>()
  let lastRefusalLog = 0
  let unlogged = 0

  const finish = (address: string): void => {
    const p = pending.get(address)
    if (p === undefined) return
    pending.delete(address)
    const n = (perIp.get(p.ip) ?? 1) - 1
    if (n <= 0) perIp.delete(p.ip)
    else perIp.set(p.ip, n)
  }

  const refuse = (raw: net.Socket, address: string, why: string): void => {
    raw.destroy()
    const now = Date.now()
    if (now - lastRefusalLog < RefusalLogIntervalMs) { unlogged++; return }
    const more = unlogged > 0 ? ` (${unlogged} more refused since the last message)` : ''
    lastRefusalLog = now
    unlogged = 0
    log.notice(`${label}: refusing ${address}: ${why}${more}.`)
  }

  const front = net.createServer((raw) => {
    // Reset before it was accepted: nothing to hand on (and no address to count it under).
    if (raw.remoteAddress === undefined) { raw.destroy(); return }
    const ip = raw.remoteAddress
    const address = formatAddress(raw.remoteAddress, raw.remotePort)
    if (limits.maxPending >= 0 && pending.size >= limits.maxPending) {
      refuse(raw, address, `${pending.size} TLS handshakes are already in progress on this listener (max_handshakes ${limits.maxPending})`)
      return
    }
    const fromIp = perIp.get(ip) ?? 0
    if (limits.maxPendingPerAddress >= 0 && fromIp >= limits.maxPendingPerAddress) {
      refuse(raw, address, `${fromIp} TLS handshakes from ${ip} are already in progress (max_handshakes_per_address ${limits.maxPendingPerAddress})`)
      return
    }
    pending.set(address, { raw, ip })
    perIp.set(ip, fromIp + 1)
    addresses.set(raw, address)
    raw.once('close', () => finish(address))
    tlsServer.emit('connection', raw)
  })

  tlsServer.on('secureConnection', (socket: tls.TLSSocket) => finish(formatAddress(socket.remoteAddress, socket.remotePort)))
  tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
    // A timed-out handshake is only reported; every failure ends the connection here.
    socket.destroy()
    // After a reset the TLSSocket no longer knows its peer; the raw socket under it (Node's _parent) does.
    const parent = (socket as unknown as { _parent?: unknown })._parent
    const address = (parent instanceof net.Socket ? addresses.get(parent) : undefined) ?? formatAddress(socket.remoteAddress, socket.remotePort)
    finish(address)
    const failure = describeHandshakeFailure(err, limits.timeoutMs)
    log.log(failure.notable ? 'notice' : 'information', `${label}: TLS handshake with ${address} failed: ${failure.reason}.`)
  })

  return { front, pending: () => [...pending.values()].map((p) => p.raw) }
}
