/**
 * WebSockets over TLS (`protocol websockets` with certfile/keyfile): one TlsCertificate (loaded, checked,
 * watched and hot-swapped exactly as for MQTT over TLS) shared by a ws listener per address. Returns the
 * same TlsListener shape as startTlsListener, so serve treats both alike (reload, $SYS, logs, close).
 */
import type { Broker } from '../broker/broker.js'
import type { ListenerInfo } from '../broker/options.js'
import type { TlsListener, TlsListenerOptions } from './tls.js'
import { TlsCertificate } from './tls-certificate.js'
import { startWsListener, type WsListener } from './ws.js'

export async function startWssListener(broker: Broker, opts: TlsListenerOptions & { name: string; info: ListenerInfo; noDelay: boolean; maxConnections: number }): Promise<TlsListener> {
  const loaded = TlsCertificate.load(opts)
  if (Array.isArray(loaded)) {
    const errors = loaded.filter((p) => p.severity === 'error')
    throw new Error(`wss listener ${opts.name}: ${(errors.length > 0 ? errors : loaded).map((p) => p.message).join('; ')}`)
  }
  const certificate = loaded
  const hosts = Array.isArray(opts.host) ? opts.host : [opts.host ?? '::']
  const listeners: WsListener[] = []
  try {
    for (const host of hosts) {
      listeners.push(await startWsListener(broker, {
        host,
        port: opts.port,
        noDelay: opts.noDelay,
        maxConnections: opts.maxConnections,
        info: opts.info,
        handshakeTimeoutMs: opts.handshakeTimeoutMs,
        tls: {
          certificate,
          requireCertificate: opts.requireCertificate,
          useIdentityAsUsername: opts.useIdentityAsUsername,
          useSubjectAsUsername: opts.useSubjectAsUsername,
          handshakeTimeoutMs: opts.handshakeTimeoutMs,
          maxHandshakes: opts.maxHandshakes,
          maxHandshakesPerAddress: opts.maxHandshakesPerAddress,
        },
      }))
    }
  } catch (err) {
    await Promise.all(listeners.map((l) => l.close()))
    certificate.close()
    throw err
  }
  certificate.start()
  return {
    address: () => listeners[0]!.address(),
    addresses: () => listeners.map((l) => l.address()),
    reload: async () => certificate.reload(),
    certificateInfo: () => certificate.info(),
    certificate,
    async close() {
      certificate.close()
      await Promise.all(listeners.map((l) => l.close()))
    },
  }
}
