/**
 * Bounds what a client that never finishes its TLS handshake can hold: each handshake ends after
 * `timeoutMs` (Node only reports the timeout as a tlsClientError and leaves the socket open, so it is
 * destroyed here), and at most `maxPending` handshakes per listener and `maxPendingPerAddress` per client
 * address are in progress at once. A connection past a bound is closed before any TLS state exists for
 * it: once a TLSSocket wraps the raw socket, destroying the raw one underneath crashes Node 20 (see tls.ts
 * close()).
 *
 * MQTT over TLS (guardHandshakes): a plain net.Server accepts and, within the bounds, hands the socket to
 * the tls.Server by emitting 'connection' on it (documented for injecting sockets). wss (boundHandshakes):
 * the https.Server must listen itself, so the check runs as its first 'connection' listener instead.
 *
 * Handshake failures are logged with the client's address and a sentence (tls-errors.ts) instead of
 * OpenSSL's error string; refusals are logged at most once per RefusalLogIntervalMs per listener.
 */
import net from 'node:net'
import type tls from 'node:tls'
import type { Logger } from '../observability/logger.js'
import { describeHandshakeFailure } from './tls-errors.js'
import { socketPeer } from './peer-address.js'

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

export interface GuardedTlsServer {
  /** The socket that listens; the tls.Server itself never does. */
  readonly front: net.Server
  /** Raw sockets whose handshake is still in progress. */
  pending(): net.Socket[]
}

/** The handshakes in progress on one listener, the bounds on them, and the log of their failures. */
class HandshakeCounter {
  private readonly inProgress = new Map<string, { raw: net.Socket; ip: string }>()
  private readonly perIp = new Map<string, number>()
  private readonly addresses = new WeakMap<net.Socket, string>()
  private readonly refused = new WeakSet<net.Socket>()
  private lastRefusalLog = 0
  private unlogged = 0

  constructor(private readonly label: string, private readonly limits: HandshakeLimits, private readonly log: Logger) {}

  pending(): net.Socket[] {
    return [...this.inProgress.values()].map((p) => p.raw)
  }

  /** Counts a new connection in, or closes it (true: admitted). */
  admit(raw: net.Socket): boolean {
    // Reset before it was accepted: nothing to hand on (and no address to count it under).
    if (raw.remoteAddress === undefined) { this.refuseQuietly(raw); return false }
    const ip = raw.remoteAddress
    const address = socketPeer(raw).remoteAddress
    const { maxPending, maxPendingPerAddress } = this.limits
    if (maxPending >= 0 && this.inProgress.size >= maxPending) {
      this.refuse(raw, address, `${this.inProgress.size} TLS handshakes are already in progress on this listener (max_handshakes ${maxPending})`)
      return false
    }
    const fromIp = this.perIp.get(ip) ?? 0
    if (maxPendingPerAddress >= 0 && fromIp >= maxPendingPerAddress) {
      this.refuse(raw, address, `${fromIp} TLS handshakes from ${ip} are already in progress (max_handshakes_per_address ${maxPendingPerAddress})`)
      return false
    }
    this.inProgress.set(address, { raw, ip })
    this.perIp.set(ip, fromIp + 1)
    this.addresses.set(raw, address)
    raw.once('close', () => this.finish(address))
    return true
  }

  /** Ends counting `tlsServer`'s handshakes when they succeed or fail; a failure closes and is logged. */
  watch(tlsServer: tls.Server): void {
    tlsServer.on('secureConnection', (socket: tls.TLSSocket) => this.finish(socketPeer(socket).remoteAddress))
    tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      // A timed-out handshake is only reported; every failure ends the connection here.
      socket.destroy()
      // After a reset the TLSSocket no longer knows its peer; the raw socket under it (Node's _parent) does.
      const parent = (socket as unknown as { _parent?: unknown })._parent
      const raw = parent instanceof net.Socket ? parent : undefined
      if (raw !== undefined && this.refused.has(raw)) return
      const address = (raw === undefined ? undefined : this.addresses.get(raw)) ?? socketPeer(socket).remoteAddress
      this.finish(address)
      const failure = describeHandshakeFailure(err, this.limits.timeoutMs)
      this.log.log(failure.notable ? 'notice' : 'information', `${this.label}: TLS handshake with ${address} failed: ${failure.reason}.`)
    })
  }

  private finish(address: string): void {
    const p = this.inProgress.get(address)
    if (p === undefined) return
    this.inProgress.delete(address)
    const n = (this.perIp.get(p.ip) ?? 1) - 1
    if (n <= 0) this.perIp.delete(p.ip)
    else this.perIp.set(p.ip, n)
  }

  private refuseQuietly(raw: net.Socket): void {
    this.refused.add(raw)
    raw.destroy()
  }

  private refuse(raw: net.Socket, address: string, why: string): void {
    this.refuseQuietly(raw)
    const now = Date.now()
    if (now - this.lastRefusalLog < RefusalLogIntervalMs) { this.unlogged++; return }
    const more = this.unlogged > 0 ? ` (${this.unlogged} more refused since the last message)` : ''
    this.lastRefusalLog = now
    this.unlogged = 0
    this.log.notice(`${this.label}: refusing ${address}: ${why}${more}.`)
  }
}

/**
 * Puts `tlsServer` behind a listening-ready net.Server that enforces `limits`. `label` names the listener in
 * logs (e.g. "TLS listener 8883"). The caller listens on `front`.
 */
export function guardHandshakes(tlsServer: tls.Server, label: string, limits: HandshakeLimits, log: Logger): GuardedTlsServer {
  const counter = new HandshakeCounter(label, limits, log)
  counter.watch(tlsServer)
  const front = net.createServer((raw) => { if (counter.admit(raw)) tlsServer.emit('connection', raw) })
  return { front, pending: () => counter.pending() }
}

/**
 * The same bounds for a TLS server that listens itself (an https.Server: its connection tracking and
 * header timeouts start only when it listens). Its first 'connection' listener runs before Node wraps the
 * socket in TLS, so a refused socket is closed while no TLS state shares its handle; Node then wraps the
 * closed socket and reports a reset, which is not logged.
 */
export function boundHandshakes(tlsServer: tls.Server, label: string, limits: HandshakeLimits, log: Logger): void {
  const counter = new HandshakeCounter(label, limits, log)
  counter.watch(tlsServer)
  tlsServer.prependListener('connection', (raw: net.Socket) => { counter.admit(raw) })
}
