/**
 * Names in certificates, as Mosquitto prints them: `use_subject_as_username` gives the subject in
 * RFC 2253 form (OpenSSL's XN_FLAG_RFC2253: last RDN first, comma-separated, specials escaped), and
 * `use_identity_as_username` gives the first CN, unescaped.
 */
import type { X509Certificate } from 'node:crypto'

/**
 * Node prints `X509Certificate#subject` one RDN per line, in certificate order, with values already
 * escaped per RFC 2253; reversing the lines and joining with commas is OpenSSL's RFC 2253 output.
 */
export function subjectRfc2253(subject: string): string {
  return subject.split('\n').filter((l) => l !== '').reverse().join(',')
}

/** The first CN of a certificate, unescaped, or undefined when it has none. */
export function commonName(cert: X509Certificate): string | undefined {
  const cn = cert.toLegacyObject().subject?.CN as string | string[] | undefined
  if (Array.isArray(cn)) return cn[0]
  return cn
}

/** A short label for messages: the CN when there is one, else the whole subject. */
export function certLabel(cert: X509Certificate): string {
  const cn = commonName(cert)
  return cn !== undefined ? `CN=${cn}` : subjectRfc2253(cert.subject)
}

/** The DNS names and IP addresses a certificate is for (subjectAltName, else the CN). */
export function certNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName
  if (san !== undefined && san !== '') {
    const names: string[] = []
    for (const entry of san.split(', ')) {
      if (entry.startsWith('DNS:')) names.push(entry.slice(4))
      else if (entry.startsWith('IP Address:')) names.push(entry.slice(11))
    }
    return names
  }
  const cn = commonName(cert)
  return cn === undefined ? [] : [cn]
}
