/**
 * Plain TCP listeners: open the socket, set TCP_NODELAY, hand each connection to the broker.
 * No MQTT here. `max_connections` is enforced by refusing sockets beyond it.
 */
import net from 'node:net'
import type { Broker } from '../broker/broker.js'
import type { ListenerInfo } from '../broker/options.js'
import { hostPort, socketPeer } from './peer-address.js'

export interface TcpListenerOptions {
  host: string
  port: number
  /** TCP_NODELAY on accepted sockets (set_tcp_nodelay; Midge's default is on). */
  noDelay: boolean
  /** -1 = unlimited. */
  maxConnections: number
  info: ListenerInfo
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
  return listen(server, opts.host, opts.port, opts.info)
}

/** Listens and resolves once bound; rejects with an operator-readable error (EADDRINUSE, EACCES...). */
export function listen(server: net.Server, host: string, port: number, info: ListenerInfo): Promise<RunningListener> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const where = hostPort(host, port)
      if (err.code === 'EADDRINUSE') reject(new Error(`cannot listen on ${where}: the address is already in use (is another broker running?)`, { cause: err }))
      else if (err.code === 'EACCES') reject(new Error(`cannot listen on ${where}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)`, { cause: err }))
      else if (err.code === 'EADDRNOTAVAIL') reject(new Error(`cannot listen on ${where}: no such local address`, { cause: err }))
      else reject(new Error(`cannot listen on ${where}: ${err.message}`, { cause: err }))
    }
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
