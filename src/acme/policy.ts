/**
 * When to renew and how long to wait after a failure. Let's Encrypt issues 90-day certificates and asks
 * clients to renew with a third of the lifetime left; for long-lived certificates 30 days is plenty, for
 * short-lived ones (6-day profiles, pebble's test certificates) a third of their lifetime is.
 */

export const RenewalPolicy = {
  /** Every managed certificate is looked at this often (and at start). */
  checkIntervalMs: 12 * 3600_000,
  /** Renew when less than this remains... */
  renewBeforeMs: 30 * 86_400_000,
  /** ...or less than this fraction of the lifetime, whichever comes first. */
  renewFraction: 1 / 3,
  /** First retry after a failure; doubles each time. Let's Encrypt allows 5 failed validations per hour. */
  retryMinMs: 5 * 60_000,
  retryMaxMs: 12 * 3600_000,
} as const

/** The moment a certificate valid from `notBefore` to `notAfter` should be renewed. */
export function renewalTime(notBefore: Date, notAfter: Date): Date {
  const lifetime = Math.max(0, notAfter.getTime() - notBefore.getTime())
  const before = Math.min(RenewalPolicy.renewBeforeMs, lifetime * RenewalPolicy.renewFraction)
  return new Date(notAfter.getTime() - before)
}

/** Delay before retry number `failures` (1 = after the first failure): exponential, capped. */
export function retryDelay(failures: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.max(0, Math.min(30, failures - 1)))
}

/** acme_directory's default. */
export const LetsEncryptProduction = 'https://acme-v02.api.letsencrypt.org/directory'
export const LetsEncryptStaging = 'https://acme-staging-v02.api.letsencrypt.org/directory'
