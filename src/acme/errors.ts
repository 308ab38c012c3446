/**
 * What can go wrong while obtaining or renewing a certificate. Each failure is one sentence for the
 * operator (the ACME server's own `detail` when it sent one) plus a hint saying what to check; `code` is
 * stable, so callers and tests branch on it, never on the text.
 */

export const AcmeErrorCode = {
  /** The directory URL cannot be reached: DNS, connection refused, timeout. */
  DirectoryUnreachable: 'ACME_ERR_DIRECTORY_UNREACHABLE',
  /** The directory's TLS certificate is not trusted (a private ACME server without acme_ca_file). */
  DirectoryUntrusted: 'ACME_ERR_DIRECTORY_UNTRUSTED',
  /** The URL answers, but not with an ACME directory. */
  DirectoryInvalid: 'ACME_ERR_DIRECTORY_INVALID',
  /** The CA could not validate a name: DNS does not point here, port 80 unreachable, wrong answer. */
  Validation: 'ACME_ERR_VALIDATION',
  /** The CA refuses for now: too many certificates or failed validations. */
  RateLimited: 'ACME_ERR_RATE_LIMITED',
  /** The built-in HTTP-01 responder cannot listen on acme_challenge_port. */
  ChallengePort: 'ACME_ERR_CHALLENGE_PORT',
  /** The challenge file cannot be written under acme_webroot. */
  Webroot: 'ACME_ERR_WEBROOT',
  /** Any other refusal from the ACME server (its detail is in the message). */
  Server: 'ACME_ERR_SERVER',
  /** The account key or certificate cannot be written to or read from the state directory. */
  State: 'ACME_ERR_STATE',
} as const
export type AcmeErrorCode = (typeof AcmeErrorCode)[keyof typeof AcmeErrorCode]

export class AcmeError extends Error {
  readonly code: AcmeErrorCode
  /** What to check or change; shown after the message. */
  readonly hint: string | undefined

  constructor (code: AcmeErrorCode, message: string, opts: { hint?: string | undefined; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'AcmeError'
    this.code = code
    this.hint = opts.hint
  }
}

/** "message (hint: …)" for one log line. */
export function describeAcmeError(err: unknown): string {
  if (err instanceof AcmeError) return err.hint === undefined ? err.message : `${err.message} (hint: ${err.hint})`
  return err instanceof Error ? err.message : String(err)
}
