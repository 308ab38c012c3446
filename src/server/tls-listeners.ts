/**
 * TLS listeners of a config (MQTT over TLS and WebSockets over TLS): their options from a listener block,
 * opening one (one TlsListener per config block over all its addresses: one certificate, one watcher, one
 * log line), and the $SYS values of its certificate, which belong to the broker the listener serves.
 */
import type net from 'node:net'
import type tls from 'node:tls'
import type { Broker } from '../broker/broker.js'
import type { ListenerInfo } from '../broker/options.js'
import type { ListenerConfig } from '../config/types.js'
import type { Logger } from '../observability/logger.js'
import type { TlsListener, TlsListenerOptions } from '../transport/tls.js'
import type { HttpListener } from './http-listener.js'
import { loaded, type OptionalModules } from './optional-modules.js'
import { socketPeer } from '../transport/peer-address.js'

export type TlsFileOptions = Omit<TlsListenerOptions, 'logger' | 'port'> & { name: string; certfile: string; keyfile: string }

/** A TLS listener block's options (certfile/keyfile may be replaced by ACME's files). */
export function tlsOptions(l: ListenerConfig): TlsFileOptions {
  return {
    name: l.name,
    host: l.bindAddress,
    certfile: l.certfile as string,
    keyfile: l.keyfile as string,
    cafile: l.cafile,
    capath: l.capath,
    crlfile: l.crlfile,
    tlsVersion: l.tlsVersion,
    ciphers: l.ciphers,
    ciphersTls13: l.ciphersTls13,
    requireCertificate: l.requireCertificate,
    useIdentityAsUsername: l.useIdentityAsUsername,
    useSubjectAsUsername: l.useSubjectAsUsername,
    handshakeTimeoutMs: l.handshakeTimeout * 1000,
    maxHandshakes: l.maxHandshakes,
    maxHandshakesPerAddress: l.maxHandshakesPerAddress,
  }
}

export interface TlsOpenContext {
  modules: OptionalModules
  broker: Broker
  logger: Logger
  noDelay: boolean
  /** A `protocol http` block's server, which takes this listener's sockets once their handshake is done. */
  http?: HttpListener | undefined
}

/** Opens a TLS (or wss) listener block on each of its addresses and adds its certificate to the broker's $SYS. */
export async function openTlsListener(ctx: TlsOpenContext, l: ListenerConfig, info: ListenerInfo, hosts: string[], files: TlsFileOptions): Promise<TlsListener> {
  const { broker } = ctx
  const options = { ...files, host: hosts, port: l.port, name: l.name, logger: ctx.logger, noDelay: ctx.noDelay }
  const http = ctx.http
  const listener = l.protocol === 'http' && http !== undefined
    ? await loaded(ctx.modules.tls, 'tls').startTlsListener({ ...options, alpnProtocols: ['http/1.1'] }, (socket: tls.TLSSocket) => { http.accept(socket) })
    : l.protocol === 'websockets'
    ? await loaded(ctx.modules.wss, 'wss').startWssListener(broker, { ...options, info, maxConnections: l.maxConnections })
    : await loaded(ctx.modules.tls, 'tls').startTlsListener(options, (socket: tls.TLSSocket, certUser) => {
      const meta = socketPeer(socket as unknown as net.Socket)
      broker.handle(socket, info, certUser === undefined ? meta : { ...meta, certificateUsername: certUser })
    })
  // $SYS/broker/tls/<listener>/certificate/{expires,days_left,subject,fingerprint}
  for (const [k, f] of loaded(ctx.modules.tls, 'tls').tlsSysValues(l.name, listener)) broker.sysValues.set(k, f)
  return listener
}

/** Closes a listener opened by openTlsListener and takes its certificate out of the broker's $SYS. */
export async function closeTlsListener(ctx: TlsOpenContext, l: ListenerConfig, listener: TlsListener): Promise<void> {
  await listener.close()
  for (const [k] of loaded(ctx.modules.tls, 'tls').tlsSysValues(l.name, listener)) ctx.broker.sysValues.delete(k)
}
