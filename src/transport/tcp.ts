/**
 * Plain TCP listeners: open the socket, set TCP_NODELAY, hand each connection to the broker.
 * No MQTT here. `max_connections` is enforced by refusing sockets beyond it.
 *
 * net.Server binds and listens (its errors, address() and close() are the ones every listener has), but the
 * connections it accepts are taken as bare libuv handles (tcp-handle.ts: ~60 % of the CPU and a third of the RSS of a
 * net.Socket per connection) unless this Node lacks the bindings, or `netSocket` asks for net.Socket.
 */
import net from 'node:net'
import { networkInterfaces } from 'node:os'
import type { Broker } from '../broker/broker.js'
import type { ListenerInfo } from '../broker/options.js'
import { hostPort, socketPeer } from './peer-address.js'
import { TcpHandleStream, tcpHandles, type TcpHandle } from './tcp-handle.js'

export interface TcpListenerOptions {
  host: string
  port: number
  /** TCP_NODELAY on accepted sockets (set_tcp_nodelay; Midge's default is on). */
  noDelay: boolean
  /** -1 = unlimited. */
  maxConnections: number
  info: ListenerInfo
  /** Accept into net.Socket even where bare handles are available (tests of both paths). */
  netSocket?: boolean
}

export interface RunningListener {
  readonly info: ListenerInfo
  address(): net.AddressInfo
  close(): Promise<void>
}

export function startTcpListener(broker: Broker, opts: TcpListenerOptions): Promise<RunningListener> {
  const server = net.createServer({ noDelay: opts.noDelay, keepAlive: false }, (socket) => {
    if (opts.noDelay) socket.setNoDelay(true)
    broker.handle(socket, opts.info, socketPeer(socket))
  })
  if (opts.maxConnections >= 0) server.maxConnections = opts.maxConnections
  const running = listen(server, opts.host, opts.port, opts.info)
  if (opts.netSocket === true || tcpHandles() === null) return running
  return running.then((l) => {
    acceptHandles(server, broker, opts)
    return l
  })
}

interface ListeningHandle { onconnection: ((this: unknown, err: number, handle: TcpHandle | undefined) => void) | null }

/**
 * Replaces net.Server's accept callback with one that wraps each accepted handle in a TcpHandleStream.
 * max_connections counts them as net.Server counts its sockets (0, like -1, is no limit there too).
 * Nothing changes (net.Socket stays) when the server's handle is not the TCP handle expected.
 */
function acceptHandles(server: net.Server, broker: Broker, opts: TcpListenerOptions): void {
  const listening = (server as unknown as { _handle?: ListeningHandle | null })._handle
  if (listening === undefined || listening === null || typeof listening.onconnection !== 'function') return
  const max = opts.maxConnections
  let open = 0
  const closed = (): void => { open-- }
  listening.onconnection = (err, handle) => {
    // An accept error (EMFILE is retried by libuv itself) leaves nothing to close; net.Server would emit
    // 'error' with no listener left, which would end the process.
    if (err !== 0 || handle === undefined) return
    if (max > 0 && open >= max) {
      handle.close()
      return
    }
    const stream = new TcpHandleStream(handle)
    if (opts.noDelay) stream.setNoDelay(true)
    if (max > 0) {
      open++
      stream.once('close', closed)
    }
    broker.handle(stream, opts.info, stream)
  }
}

/** Why `host:port` could not be bound, in the words the start and `midge check` (server/start-checks.ts) both use. */
export function describeListenError(host: string, port: number, err: NodeJS.ErrnoException): string {
  const where = hostPort(host, port)
  if (err.code === 'EADDRINUSE') return `cannot listen on ${where}: the address is already in use (is another broker running?)`
  if (err.code === 'EACCES') return `cannot listen on ${where}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)`
  if (err.code === 'EADDRNOTAVAIL') {
    const mine = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address))
    return `cannot listen on ${where}: no such local address (this machine has ${mine.join(', ')})`
  }
  return `cannot listen on ${where}: ${err.message}`
}

/** Listens and resolves once bound; rejects with an operator-readable error (EADDRINUSE, EACCES...). */
export function listen(server: net.Server, host: string, port: number, info: ListenerInfo): Promise<RunningListener> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(new Error(describeListenError(host, port, err), { cause: err }))
    server.once('error', onError)
    server.listen({ host, port, ipv6Only: host.includes(':') }, () => {
      server.off('error', onError)
      resolve({
        info,
        address: () => server.address() as net.AddressInfo,
        close: () => new Promise<void>((res) => server.close(() => res())),
      })
    })
  })
}
