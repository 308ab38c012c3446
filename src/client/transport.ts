/**
 * Opens the byte stream a client speaks MQTT over: TCP, TLS, or WebSocket (ws/wss, binary frames, the
 * 'mqtt' subprotocol). No MQTT here; the client only ever sees a Duplex.
 */
import net from 'node:net'
import tls from 'node:tls'
import type { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'
import { ClientError, ClientErrorCode, classifySocketError } from './errors.js'
import type { ResolvedOptions } from './options.js'

export interface OpenTransport {
  /** Resolves once bytes can flow (TCP connected, TLS verified, WebSocket open). */
  ready: Promise<Duplex>
  /** Aborts an attempt still in progress. */
  abort(): void
}

export function openTransport (o: ResolvedOptions): OpenTransport {
  switch (o.transport) {
    case 'tls': return openTls(o)
    case 'ws':
    case 'wss': return openWs(o)
    default: return openTcp(o)
  }
}

function settle (socket: Duplex, readyEvent: string, isTls: boolean): Promise<Duplex> {
  return new Promise<Duplex>((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.removeListener(readyEvent, onReady)
      reject(classifySocketError(err, isTls))
    }
    const onReady = (): void => {
      socket.removeListener('error', onError)
      resolve(socket)
    }
    socket.once('error', onError)
    socket.once(readyEvent, onReady)
  })
}

function openTcp (o: ResolvedOptions): OpenTransport {
  const socket = o.unixPath !== undefined
    ? net.connect({ path: o.unixPath })
    : net.connect({ host: o.host, port: o.port, localAddress: o.localAddress })
  if (o.unixPath === undefined) socket.setNoDelay(true)
  return { ready: settle(socket, 'connect', false), abort: () => socket.destroy() }
}

function openTls (o: ResolvedOptions): OpenTransport {
  const opts: tls.ConnectionOptions = { host: o.host, port: o.port, ...o.tls }
  // SNI carries names only; an IP literal there is a protocol violation some servers reject.
  if (opts.servername === undefined && net.isIP(o.host) === 0) opts.servername = o.host
  // tls.connect passes net.connect options through, though its type does not list them.
  if (o.localAddress !== undefined) (opts as tls.ConnectionOptions & { localAddress?: string }).localAddress = o.localAddress
  const socket = tls.connect(opts)
  socket.setNoDelay(true)
  return { ready: settle(socket, 'secureConnect', true), abort: () => socket.destroy() }
}

/**
 * `ws` is imported on first use: loading it costs more than the rest of `midge pub` together, and most
 * connections are TCP or TLS.
 */
function openWs (o: ResolvedOptions): OpenTransport {
  const secure = o.transport === 'wss'
  const host = net.isIPv6(o.host) ? `[${o.host}]` : o.host
  const url = `${secure ? 'wss' : 'ws'}://${host}:${o.port}${o.wsPath.startsWith('/') ? '' : '/'}${o.wsPath}`
  const wsOpts: ConstructorParameters<typeof WebSocket>[2] = { ...(secure ? o.tls : {}) }
  if (o.localAddress !== undefined) wsOpts.localAddress = o.localAddress
  let ws: WebSocket | null = null
  let aborted = false
  const ready = import('ws').then(({ WebSocket, createWebSocketStream }) => new Promise<Duplex>((resolve, reject) => {
    if (aborted) { reject(new ClientError(ClientErrorCode.Closed, 'connection attempt aborted')); return }
    const socket = new WebSocket(url, ['mqtt'], wsOpts)
    ws = socket
    const onError = (err: Error): void => {
      socket.removeListener('open', onOpen)
      reject(classifySocketError(err as Error & { code?: string }, secure) satisfies ClientError)
    }
    const onOpen = (): void => {
      socket.removeListener('error', onError)
      resolve(createWebSocketStream(socket))
    }
    socket.once('error', onError)
    socket.once('open', onOpen)
  }))
  return { ready, abort: () => { aborted = true; ws?.terminate() } }
}
