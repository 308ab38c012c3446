/**
 * One Broker with its store and its plain TCP and websockets listeners, from a ServerPlan: the lower layer
 * of the runtime (runtime.ts builds the plan from a MidgeConfig and adds TLS, wss, ACME and bridges), also
 * used directly by tests and benchmarks.
 */
import path from 'node:path'
import { Broker } from '../broker/broker.js'
import type { BrokerOptions, ListenerInfo } from '../broker/options.js'
import { startTcpListener, type RunningListener } from '../transport/tcp.js'
// ws (the package), the store and the Mosquitto importer are loaded only by a plan that uses them: together
// they are about half of the start-up time and 10 MB of RSS (docs/performance.md). startServer runs before
// the broker drops root, so whatever it loads is loaded while every installed file is still readable.

export interface ListenerPlan {
  host: string
  port: number
  protocol: 'mqtt' | 'websockets'
  maxConnections: number
  /** handshake_timeout (websockets: the upgrade request); default 10 s. */
  handshakeTimeoutMs?: number
  info: ListenerInfo
}

export interface ServerPlan {
  broker: Partial<BrokerOptions>
  listeners: ListenerPlan[]
  /** TCP_NODELAY on accepted sockets. */
  noDelay: boolean
  /**
   * persistence true: where the store lives (persistence_location, persistence_file), whether to fsync, and
   * (started as root) the user the broker will run as, who must own what the store creates.
   */
  persistence?: { dir: string; file: string; fsync: boolean; owner?: { uid: number; gid: number } | undefined }
  /** Runs after the store is read and before any listener opens (a cluster joins there: src/cluster/). */
  beforeListen?: (broker: Broker) => Promise<void>
}

export interface RunningServer {
  broker: Broker
  listeners: RunningListener[]
  close(): Promise<void>
}

/** The embedded default: 127.0.0.1 and ::1 on `port`, anonymous, like mosquitto 2 with no listener configured. */
export function localOnlyPlan(port = 1883): ServerPlan {
  const info: ListenerInfo = { name: String(port), allowAnonymous: true, mountPoint: '', protocol: 'mqtt' }
  return {
    broker: {},
    noDelay: true,
    listeners: [
      { host: '127.0.0.1', port, protocol: 'mqtt', maxConnections: -1, info },
      { host: '::1', port, protocol: 'mqtt', maxConnections: -1, info },
    ],
  }
}

export async function startServer(plan: ServerPlan): Promise<RunningServer> {
  const options = { ...plan.broker }
  let broker: Broker | undefined
  const persistence = plan.persistence === undefined ? undefined : await Promise.all([import('../persistence/log-store.js'), import('../persistence/mosquitto-db/import.js'), import('../persistence/store-lock.js')])
  const ws = plan.listeners.some((l) => l.protocol === 'websockets') ? await import('../transport/ws.js') : undefined
  // Held for the broker's life, taken before anything reads the store: a second broker on the same store
  // refuses to start (persistence/store-lock.ts).
  if (plan.persistence !== undefined && persistence !== undefined) persistence[0].makeStoreDir(plan.persistence.dir, plan.persistence.owner)
  const lock = plan.persistence === undefined || persistence === undefined
    ? undefined
    : persistence[2].StoreLock.acquire(path.resolve(plan.persistence.dir, plan.persistence.file), { owner: plan.persistence.owner, onTakeOver: (m) => options.logger?.notice(m) })
  if (plan.persistence !== undefined && persistence !== undefined) options.store = new persistence[0].LogStore({ ...plan.persistence, onError: (message) => broker?.options.logger.error(message) })
  broker = new Broker(options)
  const listeners: RunningListener[] = []
  try {
    // A switch from Mosquitto: its mosquitto.db becomes a Midge store before the store is read.
    if (plan.persistence !== undefined && persistence !== undefined) persistence[1].importMosquittoOnStart(plan.persistence, broker.options.logger)
    // Restore before any listener opens, so no client sees a half-loaded broker.
    // The first line says what was loaded; any further line reports damage that was set aside.
    ;(await broker.restore()).forEach((line, i) => {
      if (i === 0) broker.options.logger.notice(`Persistence: ${line}.`)
      else broker.options.logger.warning(`Persistence: ${line}.`)
    })
    await plan.beforeListen?.(broker)
    for (const l of plan.listeners) {
      try {
        const lo = { host: l.host, port: l.port, noDelay: plan.noDelay, maxConnections: l.maxConnections, info: l.info, handshakeTimeoutMs: l.handshakeTimeoutMs }
        listeners.push(await (l.protocol === 'websockets' && ws !== undefined ? ws.startWsListener(broker, lo) : startTcpListener(broker, lo)))
      } catch (err) {
        // ::1 is optional for the local-only default: a host without IPv6 still gets 127.0.0.1.
        if (l.host === '::1' && (err as Error).message.includes('no such local address')) continue
        throw err
      }
    }
  } catch (err) {
    for (const l of listeners) await l.close()
    await broker.close()
    lock?.release()
    throw err
  }
  return {
    broker,
    listeners,
    async close() {
      // The lock goes once the last commit is written and the store closed.
      await broker.close()
      lock?.release()
      await Promise.all(listeners.map((l) => l.close()))
    },
  }
}
