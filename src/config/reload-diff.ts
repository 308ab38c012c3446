/**
 * What a SIGHUP can and cannot apply: compares the running config with the newly loaded one, option by
 * option from the table, and lists the changed options that need a restart (listeners, user, pid_file,
 * persistence, …). Reloadable ones are applied by server/reload.ts.
 */
import { OptionTable } from './schema.js'
import type { ListenerConfig, MidgeConfig } from './types.js'

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

/** Listener fields a running listener cannot change (the security ones are reloadable). */
const ListenerFixed: ReadonlyArray<keyof ListenerConfig> = [
  'port', 'bindAddress', 'bindInterface', 'protocol', 'httpRequireAuth', 'httpAllowInsecureLogin', 'socketDomain', 'maxConnections', 'handshakeTimeout', 'maxHandshakes', 'maxHandshakesPerAddress', 'mountPoint', 'maxQos',
  'maxTopicAlias', 'certfile', 'keyfile', 'cafile', 'capath', 'crlfile', 'tlsVersion', 'ciphers', 'ciphersTls13',
  'requireCertificate', 'useIdentityAsUsername', 'useSubjectAsUsername', 'acmeDomains',
]

/** Option names whose new value will not take effect until a restart. */
export function restartNeeded(running: MidgeConfig, next: MidgeConfig): string[] {
  const out = new Set<string>()
  for (const o of OptionTable) {
    if (o.reload) continue
    const t = o.target
    if ('global' in t && !same(running.global[t.global], next.global[t.global])) out.add(o.name)
    if ('broker' in t && !same(running.broker[t.broker], next.broker[t.broker])) out.add(o.name)
  }
  // Bridges are started once; a changed `connection` block takes effect at the next start.
  if (!same(running.bridges, next.bridges)) out.add('connection')
  if (running.listeners.length !== next.listeners.length) {
    out.add('listener')
    return [...out]
  }
  for (let i = 0; i < running.listeners.length; i++) {
    const a = running.listeners[i] as ListenerConfig
    const b = next.listeners[i] as ListenerConfig
    for (const key of ListenerFixed) {
      if (same(a[key], b[key])) continue
      const o = OptionTable.find((x) => 'listener' in x.target && x.target.listener === key)
      out.add(key === 'port' || key === 'bindAddress' ? 'listener' : o?.name ?? key)
    }
  }
  return [...out]
}
