/**
 * The checks a certificate passes before a listener serves it: validity window, the listener's domain,
 * and a chain that leads from the leaf to its issuer. Each failure is one sentence naming the file.
 */
import net from 'node:net'
import tls from 'node:tls'
import { X509Certificate } from 'node:crypto'
import { certLabel, certNames } from './cert-names.js'
import type { CheckSettings } from './cert-material.js'
import { TlsProblemCode, tlsError, tlsWarning, type TlsProblem } from './tls-errors.js'

const DAY_MS = 86_400_000

export function notBefore(cert: X509Certificate): Date { return new Date(cert.validFrom) }
export function notAfter(cert: X509Certificate): Date { return new Date(cert.validTo) }

export function isSelfSigned(cert: X509Certificate): boolean {
  return cert.checkIssued(cert) && safeVerify(cert, cert)
}

function safeVerify(cert: X509Certificate, issuer: X509Certificate): boolean {
  try { return cert.verify(issuer.publicKey) } catch { return false }
}

/** The certificate in `pool` that names itself as `cert`'s issuer and whose key signed it. */
export function findIssuer(cert: X509Certificate, pool: readonly X509Certificate[]): X509Certificate | undefined {
  return pool.find((c) => cert.checkIssued(c) && safeVerify(cert, c))
}

// Process-wide on purpose: Node's bundled root store is the same for every listener and never changes.
let systemRoots: X509Certificate[] | undefined
/** Node's bundled root store, parsed once, when a leaf's issuer is in none of the listener's files. */
function rootStore(): X509Certificate[] {
  if (systemRoots === undefined) {
    systemRoots = []
    for (const pem of tls.rootCertificates) {
      try { systemRoots.push(new X509Certificate(pem)) } catch { /* skip what this OpenSSL cannot parse */ }
    }
  }
  return systemRoots
}

const date = (d: Date): string => d.toISOString().replace(/\.000Z$/, 'Z')

export interface CertCheckInput {
  certfile: string
  /** Where the chain came from, for messages: 'certfile X' or 'cafile Y'. */
  chainSource: string
  /** cafile and capath certificates (the chain's candidates). */
  pool: X509Certificate[]
  settings: CheckSettings
}

export function checkCertificate(leaf: X509Certificate, chain: readonly X509Certificate[], input: CertCheckInput): TlsProblem[] {
  const problems: TlsProblem[] = []
  const { certfile, settings } = input
  const now = settings.now ?? new Date()
  const label = `the certificate in certfile ${certfile} (${certLabel(leaf)})`

  const from = notBefore(leaf)
  const until = notAfter(leaf)
  if (now < from) {
    problems.push(tlsError(TlsProblemCode.CertNotYetValid,
      `${label} is not valid before ${date(from)}: if that is a mistake, check this machine's clock (now ${date(now)})`, certfile))
  } else if (now > until) {
    problems.push(tlsError(TlsProblemCode.CertExpired,
      `${label} expired on ${date(until)}: renew it (e.g. certbot renew); Midge picks up the renewed files without a restart`, certfile))
  } else if (until.getTime() - now.getTime() < settings.expiryWarningDays * DAY_MS) {
    const days = Math.floor((until.getTime() - now.getTime()) / DAY_MS)
    problems.push(tlsWarning(TlsProblemCode.ExpiresSoon,
      `${label} expires on ${date(until)}, in ${days} day${days === 1 ? '' : 's'}: renew it; Midge picks up the renewed files without a restart`, certfile))
  }

  const domain = settings.domain
  if (domain !== undefined && domain !== '') {
    const ok = net.isIP(domain) !== 0 ? leaf.checkIP(domain) !== undefined : leaf.checkHost(domain) !== undefined
    if (!ok) {
      const names = certNames(leaf)
      problems.push(tlsError(TlsProblemCode.CertWrongName,
        `${label} is for ${names.length === 0 ? 'no host name' : names.join(', ')}, not for the listener's domain ${domain}: clients that check the name will refuse it`, certfile))
    }
  }

  problems.push(...checkChain(leaf, chain, input))
  for (const c of chain) {
    if (now > notAfter(c)) {
      problems.push(tlsWarning(TlsProblemCode.ChainExpired,
        `the chain certificate ${certLabel(c)} from ${input.chainSource} expired on ${date(notAfter(c))}: clients may refuse the chain; use the chain file of your current certificate`, certfile))
    }
  }
  return problems
}

function checkChain(leaf: X509Certificate, chain: readonly X509Certificate[], input: CertCheckInput): TlsProblem[] {
  const path = [leaf, ...chain]
  for (let i = 0; i + 1 < path.length; i++) {
    const cert = path[i] as X509Certificate
    const next = path[i + 1] as X509Certificate
    if (cert.checkIssued(next) && safeVerify(cert, next)) continue
    const what = i === 0 ? `the certificate in certfile ${input.certfile} (${certLabel(cert)})` : `chain certificate ${certLabel(cert)}`
    const why = cert.issuer === next.subject
      ? `the ${certLabel(next)} after it in ${input.chainSource} has that name but another key, so it did not sign it (the files come from different renewals or CAs)`
      : `the next certificate in ${input.chainSource} is ${certLabel(next)}, which did not issue it (wrong file, or the chain is out of order)`
    return [tlsError(TlsProblemCode.ChainBroken, `the chain does not lead to its issuer: ${what} was issued by ${issuerLabel(cert)}, but ${why}`, input.certfile)]
  }

  const top = path[path.length - 1] as X509Certificate
  if (top !== leaf || isSelfSigned(leaf)) return []
  // The leaf alone: its issuer must be somewhere a client can get it from. A root CA in cafile that signed
  // the leaf directly (mosquitto's usual private-CA set-up) is that issuer.
  if (findIssuer(leaf, input.pool) !== undefined) return []
  const namesake = input.pool.find((c) => c.subject === leaf.issuer)
  if (namesake !== undefined) {
    return [tlsError(TlsProblemCode.ChainBroken,
      `the chain does not lead to its issuer: the certificate in certfile ${input.certfile} (${certLabel(leaf)}) was issued by ${issuerLabel(leaf)}, and ${input.chainSource} holds a certificate of that name, but with another key (the files come from different renewals or CAs)`, input.certfile)]
  }
  if (findIssuer(leaf, rootStore()) !== undefined) return []
  if (input.pool.length > 0) {
    return [tlsError(TlsProblemCode.ChainBroken,
      `the chain does not lead to its issuer: the certificate in certfile ${input.certfile} (${certLabel(leaf)}) was issued by ${issuerLabel(leaf)}, which ${input.chainSource} does not hold (a chain file from another certificate or renewal?); clients that trust only the root CA cannot verify it`, input.certfile)]
  }
  return [tlsWarning(TlsProblemCode.ChainIncomplete,
    `the certificate in certfile ${input.certfile} (${certLabel(leaf)}) was issued by ${issuerLabel(leaf)}, which is in no configured file: clients that trust only the root CA cannot verify it; use the full chain as certfile (Let's Encrypt: fullchain.pem) or name the chain as cafile (chain.pem)`, input.certfile)]
}

function issuerLabel(cert: X509Certificate): string {
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.issuer)
  return cn !== null ? `CN=${cn[1]}` : cert.issuer.split('\n').reverse().join(',')
}
