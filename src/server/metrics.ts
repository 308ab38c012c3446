/**
 * What /metrics reports: every value is read when Prometheus scrapes (BrokerStats counters, the broker's
 * tables, the throttle, the TLS listeners' certificates, the bridges, the process), so the message path
 * pays nothing for it. Names follow Prometheus conventions (`_total` counters, base units, `midge_` prefix;
 * process_* and nodejs_* as the official client libraries name them); docs/monitoring.md lists them.
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks'
import type { MetricFamily } from '../observability/prometheus.js'
import { VERSION } from '../version.js'
import type { MidgeRuntime } from './runtime.js'

/** The event loop's delay between scrapes, sampled every 20 ms by Node (perf_hooks), off the message path. */
export class EventLoopLag {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 })
  constructor() {
    this.histogram.enable()
  }

  /** mean, p99 and max since the previous read, in seconds; then starts over. */
  read(): { mean: number; p99: number; max: number } {
    const h = this.histogram
    const ns = (v: number): number => (Number.isFinite(v) ? v / 1e9 : 0)
    const out = { mean: ns(h.mean), p99: ns(h.percentile(99)), max: ns(h.max) }
    h.reset()
    return out
  }

  stop(): void {
    this.histogram.disable()
  }
}

const BridgeConnected = 2

export function collectMetrics(rt: MidgeRuntime, lag: EventLoopLag): MetricFamily[] {
  const b = rt.broker
  const s = b.stats
  let connected = 0
  let queued = 0
  for (const sess of b.sessions.values()) {
    if (sess.connection !== null) connected++
    queued += sess.queueLength
  }
  const counter = (name: string, help: string, value: number): MetricFamily => ({ name, help, type: 'counter', samples: [{ value }] })
  const gauge = (name: string, help: string, value: number): MetricFamily => ({ name, help, type: 'gauge', samples: [{ value }] })
  const cpu = process.cpuUsage()
  const loop = lag.read()
  const certificates = rt.tlsListeners.map(({ index, listener }) => ({
    labels: { listener: rt.config.listeners[index]?.name ?? String(index) },
    value: Math.floor(listener.certificateInfo().notAfter.getTime() / 1000),
  }))
  const bridges = (rt.bridges?.bridges ?? []).map((br) => ({ labels: { bridge: br.options.name }, value: br.state === BridgeConnected ? 1 : 0 }))
  return [
    { name: 'midge_info', help: 'Midge version (always 1).', type: 'gauge', samples: [{ labels: { version: VERSION }, value: 1 }] },
    gauge('midge_clients_connected', 'Clients connected now.', connected),
    gauge('midge_clients_disconnected', 'Persistent sessions whose client is not connected.', b.sessions.size - connected),
    counter('midge_clients_expired_total', 'Sessions ended by their expiry interval.', s.clientsExpired),
    counter('midge_connections_total', 'CONNECTs accepted.', s.connectionsAccepted),
    counter('midge_sockets_total', 'Network connections handed to the broker (before CONNECT).', s.socketsAccepted),
    {
      name: 'midge_messages_received_total', help: 'PUBLISH packets received from clients, by QoS.', type: 'counter',
      samples: s.publishReceived.map((value, qos) => ({ labels: { qos: String(qos) }, value })),
    },
    counter('midge_messages_sent_total', 'PUBLISH packets sent to clients.', s.messagesSent),
    counter('midge_messages_dropped_total', 'Messages dropped because a queue was full.', s.messagesDropped),
    counter('midge_publish_bytes_received_total', 'Payload bytes of the PUBLISH packets received.', s.publishBytesReceived),
    counter('midge_publish_bytes_sent_total', 'Payload bytes of the PUBLISH packets sent.', s.publishBytesSent),
    counter('midge_packets_received_total', 'MQTT packets of any type received.', s.packetsReceived),
    counter('midge_packets_sent_total', 'MQTT packets of any type sent.', s.packetsSent),
    counter('midge_bytes_received_total', 'Bytes read from client connections.', s.bytesReceived),
    counter('midge_bytes_sent_total', 'Bytes written to client connections.', s.bytesSent),
    counter('midge_protocol_errors_total', 'Connections closed for a protocol violation.', s.protocolErrors),
    gauge('midge_subscriptions', 'Subscriptions, shared ones included.', b.subscriptions.size + b.shared.size),
    gauge('midge_shared_subscriptions', 'Shared subscriptions ($share/...).', b.shared.size),
    gauge('midge_retained_messages', 'Retained messages held.', b.retained.size),
    gauge('midge_queued_messages', 'Messages queued for sessions, not yet in flight.', queued),
    counter('midge_auth_failures_total', 'Failed authentications (MQTT and HTTP).', rt.throttle.failures),
    counter('midge_auth_bans_total', 'Addresses banned after repeated failed authentications.', rt.throttle.bans),
    gauge('midge_auth_banned_addresses', 'Addresses banned now.', rt.throttle.bannedNow()),
    { name: 'midge_tls_certificate_expiry_timestamp_seconds', help: 'When the certificate served by each TLS listener expires (Unix time).', type: 'gauge', samples: certificates },
    { name: 'midge_bridge_up', help: 'Whether each bridge is connected to its remote (1) or not (0).', type: 'gauge', samples: bridges },
    ...clusterMetrics(rt),
    counter('process_cpu_seconds_total', 'User and system CPU time spent, in seconds.', (cpu.user + cpu.system) / 1e6),
    gauge('process_resident_memory_bytes', 'Resident memory size, in bytes.', process.memoryUsage.rss()),
    gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch, in seconds.', Math.floor(performance.timeOrigin / 1000)),
    gauge('nodejs_heap_size_used_bytes', 'V8 heap in use, in bytes.', process.memoryUsage().heapUsed),
    gauge('nodejs_eventloop_lag_seconds', 'Mean event loop delay since the previous scrape, in seconds.', loop.mean),
    gauge('nodejs_eventloop_lag_p99_seconds', '99th percentile of the event loop delay since the previous scrape, in seconds.', loop.p99),
    gauge('nodejs_eventloop_lag_max_seconds', 'Longest event loop delay since the previous scrape, in seconds.', loop.max),
  ]
}

/** cluster_redis: whether Redis answers, the nodes seen, the messages crossing (none without a cluster). */
function clusterMetrics(rt: MidgeRuntime): MetricFamily[] {
  const c = rt.cluster
  if (c === undefined) return []
  const labels = { node: c.nodeId }
  return [
    { name: 'midge_cluster_up', help: 'Whether this node reaches the cluster\'s Redis (1) or serves its local clients only (0).', type: 'gauge', samples: [{ labels, value: c.up ? 1 : 0 }] },
    { name: 'midge_cluster_nodes', help: 'Live nodes of the cluster this node knows of, itself included.', type: 'gauge', samples: [{ labels, value: c.up ? c.nodes.length : 1 }] },
    { name: 'midge_cluster_forwarded_total', help: 'Message copies handed to Redis for other nodes (one per target node).', type: 'counter', samples: [{ labels, value: c.forwarded }] },
    { name: 'midge_cluster_received_total', help: 'Messages received from other nodes.', type: 'counter', samples: [{ labels, value: c.received }] },
    { name: 'midge_cluster_dropped_total', help: 'Message copies for other nodes dropped while Redis was unreachable.', type: 'counter', samples: [{ labels, value: c.dropped }] },
  ]
}
