/**
 * `midge check` for bridges: the TLS files of each `connection` block must be readable by the user the
 * broker runs as (bridges start after the user switch and re-read them at every connection), and must
 * make a usable TLS client context (PEM that parses, a key that matches its certificate).
 */
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'
import type { BridgeOptions } from '../bridge/options.js'
import { tlsConnectionOptions } from '../bridge/remote-options.js'
import { bridgeOrigin } from './bridge-blocks.js'
import type { SourceLocation } from './errors.js'
import { checkRead, type UserIdentity } from './file-access.js'

export interface BridgeFileProblem {
  loc: SourceLocation
  message: string
  fix: string | undefined
}

export function checkBridgeFiles (b: BridgeOptions, user: UserIdentity, configFile: string): BridgeFileProblem[] {
  const t = b.tls
  if (t === undefined) return []
  const problems: BridgeFileProblem[] = []
  const at = (option: string): SourceLocation => bridgeOrigin(b, option) ?? { file: configFile, line: 0 }
  const files = [['bridge_cafile', t.cafile, 'file'], ['bridge_capath', t.capath, 'directory'], ['bridge_certfile', t.certfile, 'file'], ['bridge_keyfile', t.keyfile, 'file']] as const
  for (const [option, path, kind] of files) {
    if (path === undefined) continue
    const p = checkRead(`bridge ${b.name}: ${option} ${path}`, path, user, kind)
    if (p !== undefined) problems.push({ loc: at(option), message: p.message, fix: p.fix })
  }
  if (problems.length > 0) return problems
  // OpenSSL silently skips what is not a certificate in a CA list: a wrong file would only show at connection time.
  if (t.cafile !== undefined && countCertificates(readFileSync(t.cafile, 'latin1')) === 0) {
    problems.push({ loc: at('bridge_cafile'), message: `bridge ${b.name}: bridge_cafile ${t.cafile} holds no PEM certificate`, fix: 'point it at the PEM file of the CA that signed the remote broker\'s certificate' })
    return problems
  }
  try {
    createSecureContext(tlsConnectionOptions(t))
  } catch (err) {
    const option = t.keyfile !== undefined && /key/i.test((err as Error).message) ? 'bridge_keyfile' : t.certfile !== undefined ? 'bridge_certfile' : 'bridge_cafile'
    problems.push({ loc: at(option), message: `bridge ${b.name}: its TLS files cannot be used: ${(err as Error).message}`, fix: undefined })
  }
  return problems
}

function countCertificates (pem: string): number {
  let n = 0
  for (const m of pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)) {
    try {
      void new X509Certificate(m[0])
      n++
    } catch { /* not a certificate after all */ }
  }
  return n
}
