/**
 * What the dashboard's GET endpoints return, read from the runtime when asked (nothing is kept up to date on
 * the message path for them): the overview, the connected clients, counters for the live stream.
 */
import type { CertificateStatus } from '../../acme/manager.js'
import type { Connection } from '../../broker/connection.js'
import type { Session } from '../../broker/session.js'
import { hostPort } from '../../transport/peer-address.js'
import { VERSION } from '../../version.js'
import type { MidgeRuntime } from '../runtime.js'
import type { DashboardHub } from './hub.js'

/** Clients listed by GET /api/clients at most; `total` says how many are connected. */
export const ClientListMax = 1000

const BridgeStateNames = ['idle', 'connecting', 'connected', 'waiting', 'stopped'] as const

export interface ClientRow {
  clientId: string
  address: string
  username: string | null
  protocol: number
  listener: string
  connectedAt: number
  queued: number
  inflight: number
  subscriptions: string[]
}

export function clientRow(s: Session, c: Connection): ClientRow {
  return {
    clientId: s.clientId, address: c.meta.remoteAddress, username: c.username ?? null, protocol: c.version,
    listener: c.listener.name, connectedAt: c.connectedAt, queued: s.queueLength, inflight: s.inflight.size,
    subscriptions: [...s.subscriptions.keys()],
  }
}

export function clientList(rt: MidgeRuntime): { clients: ClientRow[]; total: number } {
  const clients: ClientRow[] = []
  let total = 0
  for (const s of rt.broker.sessions.values()) {
    const c = s.connection
    if (c === null) continue
    total++
    if (clients.length < ClientListMax) clients.push(clientRow(s, c))
  }
  return { clients, total }
}

export function counters(rt: MidgeRuntime): Record<string, number> {
  const b = rt.broker
  const s = b.stats
  let connected = 0
  for (const sess of b.sessions.values()) if (sess.connection !== null) connected++
  return {
    connected, sessions: b.sessions.size, subscriptions: b.subscriptions.size + b.shared.size, retained: b.retained.size,
    messagesReceived: s.messagesReceived, messagesSent: s.messagesSent, messagesDropped: s.messagesDropped,
    bytesReceived: s.bytesReceived, bytesSent: s.bytesSent, authFailures: rt.throttle.failures,
  }
}

export function overview(rt: MidgeRuntime, hub: DashboardHub): Record<string, unknown> {
  const b = rt.broker
  const sys: Record<string, string> = {}
  b.retained.match('$SYS/#', (msg, topic) => { sys[topic] = msg.payload.toString('utf8') })
  const acmeStatus = rt.acme?.manager.status() ?? []
  const listeners = rt.listeners().map((l, i) => {
    const row: Record<string, unknown> = { name: l.name, kind: l.kind, addresses: l.addresses, state: l.state }
    const tls = rt.tlsListeners.find((t) => t.index === i)
    const managed = rt.acme?.files.get(i)
    if (tls !== undefined || managed !== undefined) {
      const info = tls?.listener.certificateInfo()
      const st = managed === undefined ? undefined : acmeStatus.find((a) => a.id === managed.id)
      row.tls = {
        subject: info?.subject ?? null, issuer: info?.issuer ?? null, notAfter: info?.notAfter.toISOString() ?? null,
        ...(managed === undefined ? {} : { acme: acmeState(st) }),
      }
    }
    return row
  })
  const bridges = (rt.bridges?.bridges ?? []).map((br) => ({
    name: br.options.name,
    state: BridgeStateNames[br.state] ?? String(br.state),
    address: hostPort(br.address.host, br.address.port),
    queued: b.sessions.get(br.options.localClientId)?.queueLength ?? 0,
    lastError: hub.bridgeErrors.get(br.options.name) ?? null,
  }))
  return {
    version: VERSION,
    uptime: Math.floor((Date.now() - b.startedAt) / 1000),
    sys,
    rates: hub.currentRates(),
    listeners,
    bridges,
    authFailures: rt.throttle.failures,
    bans: rt.throttle.bannedList(),
  }
}

function acmeState(st: CertificateStatus | undefined): { state: string; nextRenewal: string | null; lastError: string | null } {
  if (st === undefined) return { state: 'unknown', nextRenewal: null, lastError: null }
  const state = st.certificate === undefined ? (st.lastError === undefined ? 'obtaining' : 'failing') : st.lastError === undefined ? 'valid' : 'renewal failing'
  const next = st.renewAt ?? st.nextAttempt
  return { state, nextRenewal: next?.toISOString() ?? null, lastError: st.lastError ?? null }
}

