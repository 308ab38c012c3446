/**
 * Mosquitto's `tls_version` names and Node's. Apart from tls-context.ts because the config's value types
 * need them at every start, and importing `node:tls` for them costs ~2 MB of idle RSS (issue #18) in a
 * broker without a TLS listener.
 */
export const TlsVersions = {
  'tlsv1.3': 'TLSv1.3',
  'tlsv1.2': 'TLSv1.2',
  'tlsv1.1': 'TLSv1.1',
} as const
export type TlsVersionName = keyof typeof TlsVersions
