/**
 * Fetching the ACME directory ourselves before acme-client does. When the directory is unreachable or
 * its certificate untrusted, acme-client retries for over a minute and then throws a TypeError that
 * names neither (publishlab/node-acme-client#101); this request fails fast and says which it was.
 */
import http from 'node:http'
import https from 'node:https'
import { AcmeError, AcmeErrorCode } from './errors.js'

export interface AcmeDirectory {
  newNonce: string
  newAccount: string
  newOrder: string
  meta?: { termsOfService?: string; externalAccountRequired?: boolean }
}

const TlsTrustCodes = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED',
])

export async function fetchDirectory(url: string, ca: string | undefined, timeoutMs = 10_000): Promise<AcmeDirectory> {
  let target: URL
  try {
    target = new URL(url)
  } catch {
    throw new AcmeError(AcmeErrorCode.DirectoryInvalid, `acme_directory '${url}' is not a URL`)
  }
  const get = target.protocol === 'http:' ? http.get : https.get
  const text = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = get(target, { timeout: timeoutMs, agent: false, ...(ca === undefined ? {} : { ca }) }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { if (body.length < 1_000_000) body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })))
    req.on('error', reject)
  }).catch((err: NodeJS.ErrnoException) => { throw explainFetchError(url, err, ca !== undefined) })
  if (text.status !== 200) {
    throw new AcmeError(AcmeErrorCode.DirectoryInvalid, `the ACME directory ${url} answered HTTP ${text.status}`, { hint: 'check acme_directory' })
  }
  let dir: unknown
  try { dir = JSON.parse(text.body) } catch { dir = undefined }
  const d = dir as Partial<AcmeDirectory> | undefined
  if (d === undefined || typeof d.newOrder !== 'string' || typeof d.newAccount !== 'string' || typeof d.newNonce !== 'string') {
    throw new AcmeError(AcmeErrorCode.DirectoryInvalid, `${url} is not an ACME directory (no newOrder/newAccount/newNonce in its JSON)`, { hint: 'check acme_directory: Let\'s Encrypt\'s is https://acme-v02.api.letsencrypt.org/directory' })
  }
  return d as AcmeDirectory
}

export function explainFetchError(url: string, err: NodeJS.ErrnoException, hasCa: boolean): AcmeError {
  const code = err.code ?? ''
  const host = (() => { try { return new URL(url).host } catch { return url } })()
  if (TlsTrustCodes.has(code)) {
    return new AcmeError(AcmeErrorCode.DirectoryUntrusted, `the ACME server ${host} presented a certificate this machine does not trust (${code}: ${err.message})`, {
      cause: err,
      hint: hasCa ? 'acme_ca_file does not hold the CA that issued the ACME server\'s certificate' : 'for a private ACME server, name its CA in acme_ca_file; for a public one, check the system clock and CA store (ca-certificates)',
    })
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new AcmeError(AcmeErrorCode.DirectoryUnreachable, `cannot resolve the ACME server's name ${host} (${code})`, { cause: err, hint: 'check DNS on this machine and acme_directory' })
  }
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    return new AcmeError(AcmeErrorCode.DirectoryUnreachable, `cannot reach the ACME server ${host} (${code}: ${err.message})`, { cause: err, hint: 'check outgoing HTTPS (a firewall or proxy?) and acme_directory' })
  }
  return new AcmeError(AcmeErrorCode.DirectoryUnreachable, `cannot fetch the ACME directory ${url}: ${err.message}`, { cause: err })
}
