/**
 * One certificate order, step by step (RFC 8555 §7.4), on acme-client's low-level calls rather than its
 * auto() helper: each step is logged, authorizations the CA already holds as valid are skipped, no
 * self-check goes through the system resolver and port 80 (the CA may resolve names differently, as
 * pebble does), and a failed validation is reported with the CA's problem type and detail plus a hint.
 *
 *   account ─▶ order ─▶ for each name: authorization ─▶ http-01 challenge ─▶ valid
 *          ─▶ new key + CSR ─▶ finalize ─▶ certificate chain (PEM)
 */
import https from 'node:https'
import { fetchDirectory } from './directory.js'
import { AcmeError, AcmeErrorCode } from './errors.js'
import type { Http01Challenges } from './http-01.js'
import type { Logger } from '../observability/logger.js'

type AcmeModule = typeof import('acme-client')
type AcmeClient = InstanceType<AcmeModule['Client']>
type AcmeOrder = Awaited<ReturnType<AcmeClient['createOrder']>>

export interface OrderRequest {
  directoryUrl: string
  /** PEM CA certificates trusted for the ACME server (acme_ca_file); undefined = the system's. */
  ca: string | undefined
  /** PEM private key of the account. */
  accountKey: string
  /** The account's URL at this server, from an earlier registration; undefined registers (or finds) it. */
  accountUrl: string | undefined
  /** Called with the account URL after a registration, to be passed as accountUrl next time. */
  onAccount?: (url: string) => void
  email: string | undefined
  domains: readonly string[]
  challenges: Http01Challenges
  logger: Logger
  /** How fast to poll a pending challenge or order (doubling from min to max). */
  pollMinMs?: number
  pollMaxMs?: number
  /** Aborts the order between requests (the broker is stopping). */
  signal?: AbortSignal
}

export interface IssuedCertificate {
  /** Leaf followed by intermediates. */
  fullchain: string
  /** PKCS#8 PEM. */
  key: string
}

// Process-wide on purpose: acme-client's axios defaults (and so these settings and interceptor) are global to
// the process, and an agent per ACME server serves every runtime that talks to that server.
let acmeModule: Promise<AcmeModule> | undefined
const agents = new Map<string, https.Agent>()

/** acme-client, loaded on first use (it pulls in node-forge) and set up once per process. */
export function loadAcme(): Promise<AcmeModule> {
  acmeModule ??= import('acme-client').then((acme) => {
    const settings = (acme.axios.defaults as unknown as { acmeSettings: Record<string, number> }).acmeSettings
    // Its own retries sleep on unref'd-less timers for up to a Retry-After (hours when rate limited) and
    // end in a TypeError; the renewal schedule retries instead, with the real cause logged.
    settings['retryMaxAttempts'] = 0
    acme.axios.defaults.timeout = 30_000
    // Per ACME server: its trust (acme_ca_file) and no kept-alive sockets holding the process open.
    acme.axios.interceptors.request.use((config) => {
      try {
        const agent = agents.get(new URL(config.url ?? '').origin)
        if (agent !== undefined) config.httpsAgent = agent
      } catch { /* relative URL: none used by acme-client */ }
      return config
    })
    return acme
  })
  return acmeModule
}

/** A fresh PEM private key for an ACME account. */
export async function newAccountKey(): Promise<string> {
  const acme = await loadAcme()
  return (await acme.crypto.createPrivateEcdsaKey('P-256')).toString()
}

export async function orderCertificate(req: OrderRequest): Promise<IssuedCertificate> {
  const log = req.logger
  const names = req.domains.join(', ')
  const acme = await loadAcme()
  await fetchDirectory(req.directoryUrl, req.ca)
  agents.set(new URL(req.directoryUrl).origin, new https.Agent({ keepAlive: false, ...(req.ca === undefined ? {} : { ca: req.ca }) }))
  const newClient = (accountUrl: string | undefined): AcmeClient => new acme.Client({
    directoryUrl: req.directoryUrl,
    accountKey: req.accountKey,
    ...(accountUrl === undefined ? {} : { accountUrl }),
    backoffAttempts: 12,
    backoffMin: req.pollMinMs ?? 1000,
    backoffMax: req.pollMaxMs ?? 10_000,
  })
  // Registering again with a known key makes acme-client send an account update, which servers refuse
  // when it changes nothing: the URL from the first registration is kept instead.
  const register = async (c: AcmeClient): Promise<void> => {
    await c.createAccount({ termsOfServiceAgreed: true, ...(req.email === undefined ? {} : { contact: [`mailto:${req.email}`] }) })
    log.info(`ACME: account ${c.getAccountUrl()} registered.`)
    req.onAccount?.(c.getAccountUrl())
  }
  let client = newClient(req.accountUrl)
  try {
    if (req.accountUrl === undefined) await register(client)
    const identifiers = req.domains.map((value) => ({ type: 'dns', value }))
    let order: AcmeOrder
    try {
      order = await client.createOrder({ identifiers })
    } catch (err) {
      if (req.accountUrl === undefined || !/account/i.test(err instanceof Error ? err.message : '')) throw err
      log.info(`ACME: the server does not know the stored account ${req.accountUrl} (${(err as Error).message}); registering again.`)
      client = newClient(undefined)
      await register(client)
      order = await client.createOrder({ identifiers })
    }
    log.info(`ACME: order for ${names} placed.`)
    for (const authz of await client.getAuthorizations(order)) {
      const name = authz.identifier.value
      if (authz.status === 'valid') {
        log.info(`ACME: ${name} is already validated for this account; no challenge needed.`)
        continue
      }
      const challenge = authz.challenges.find((c) => c.type === 'http-01')
      if (challenge === undefined) {
        throw new AcmeError(AcmeErrorCode.Server, `the ACME server offers no http-01 challenge for ${name} (only ${authz.challenges.map((c) => c.type).join(', ')})`,
          { hint: 'Midge answers HTTP-01 only; wildcard names need DNS-01' })
      }
      checkAborted(req.signal)
      const keyAuthorization = await client.getChallengeKeyAuthorization(challenge)
      await req.challenges.present(challenge.token, keyAuthorization)
      try {
        log.info(`ACME: ${name}: answering the HTTP-01 challenge with ${req.challenges.describe()}.`)
        await client.completeChallenge(challenge)
        await waitForValidation(client, order, name, req)
        log.info(`ACME: ${name} validated.`)
      } finally {
        await req.challenges.remove(challenge.token).catch(() => undefined)
      }
    }
    checkAborted(req.signal)
    const key = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString()
    const [, csr] = await acme.crypto.createCsr({ commonName: req.domains[0] as string, altNames: [...req.domains] }, key)
    log.info(`ACME: finalizing the order for ${names}.`)
    const finalized = await client.finalizeOrder(order, csr)
    const fullchain = await client.getCertificate(finalized)
    return { fullchain, key }
  } catch (err) {
    throw await explainOrderError(err, req)
  }
}

/** Hints for the problem types a validation ends with (RFC 8555 §6.7). */
const ValidationHints: Record<string, string> = {
  dns: 'the CA cannot resolve NAME: give it an A/AAAA record pointing at this machine',
  connection: 'the CA could not connect to NAME on port 80: open port 80 in the firewall (or forward it here) and check that DNS points at this machine',
  unauthorized: 'the CA reached NAME but got a wrong answer: DNS may point at another machine, or another web server answers on port 80 (set acme_webroot to its document root)',
  incorrectResponse: 'the CA reached NAME but got a wrong answer: DNS may point at another machine, or another web server answers on port 80 (set acme_webroot to its document root)',
  caa: 'a CAA record of NAME does not allow this CA to issue for it',
  rateLimited: 'the CA limits validations; Midge retries later with a growing delay',
}

/** Stops the order when the broker stops: acme-client's own polling would hold the process for minutes. */
function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new AcmeError(AcmeErrorCode.Server, 'the order was abandoned: Midge is stopping')
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => { clearTimeout(timer); reject(new AcmeError(AcmeErrorCode.Server, 'the order was abandoned: Midge is stopping')) }
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Polls the name's authorization (RFC 8555 §7.5.1) until the CA has decided; throws the CA's reason when invalid. */
async function waitForValidation(client: AcmeClient, order: AcmeOrder, name: string, req: OrderRequest): Promise<void> {
  let delay = req.pollMinMs ?? 1000
  const deadline = Date.now() + 120_000
  for (;;) {
    checkAborted(req.signal)
    const authz = (await client.getAuthorizations(order)).find((a) => a.identifier.value === name)
    if (authz?.status === 'valid') return
    if (authz === undefined || authz.status !== 'pending') throw validationError(authz, name)
    if (Date.now() > deadline) throw new AcmeError(AcmeErrorCode.Server, `the CA did not finish validating ${name} within 2 minutes`, { hint: 'an outage of the CA? Midge retries later' })
    await sleep(delay, req.signal)
    delay = Math.min(delay * 2, req.pollMaxMs ?? 10_000)
  }
}

type AcmeAuthorization = Awaited<ReturnType<AcmeClient['getAuthorizations']>>[number]

function validationError(authz: AcmeAuthorization | undefined, name: string): AcmeError {
  let type = ''
  let detail = authz === undefined ? 'the order no longer lists it' : `its authorization is ${authz.status}`
  for (const c of authz?.challenges ?? []) {
    const e = (c as { error?: { type?: string; detail?: string } }).error
    if (e === undefined) continue
    type = (e.type ?? '').replace('urn:ietf:params:acme:error:', '')
    detail = e.detail ?? detail
  }
  // Pebble and Boulder report a name that does not resolve as a connection problem; the hint is DNS's.
  const key = /could not resolve|NXDOMAIN|no such host|SERVFAIL|no valid A records/i.test(detail) ? 'dns' : type
  const hint = (ValidationHints[key] ?? 'check that NAME resolves to this machine and port 80 reaches Midge (or the web server of acme_webroot)').replace(/NAME/g, name)
  const code = type === 'rateLimited' ? AcmeErrorCode.RateLimited : AcmeErrorCode.Validation
  return new AcmeError(code, `validation of ${name} failed${type === '' ? '' : ` (${type})`}: ${detail}`, { hint })
}

async function explainOrderError(err: unknown, req: OrderRequest): Promise<AcmeError> {
  if (err instanceof AcmeError) return err
  const message = err instanceof Error ? err.message : String(err)
  // acme-client's symptom of a request that got no response at all (issue #101): ask the directory why.
  if (err instanceof TypeError && /reading 'status'|reading 'headers'|reading 'data'/.test(message)) {
    try {
      await fetchDirectory(req.directoryUrl, req.ca)
    } catch (real) {
      if (real instanceof AcmeError) return real
    }
    return new AcmeError(AcmeErrorCode.Server, `the ACME server ${new URL(req.directoryUrl).host} stopped answering during the order`, { cause: err, hint: 'a network problem or an outage of the CA; Midge retries later' })
  }
  if (/rate.?limit|too many/i.test(message)) {
    return new AcmeError(AcmeErrorCode.RateLimited, `the ACME server refuses for now: ${message}`, {
      cause: err, hint: 'a rate limit of the CA; Midge retries later with a growing delay (for tests use the staging directory: acme_directory https://acme-staging-v02.api.letsencrypt.org/directory)',
    })
  }
  return new AcmeError(AcmeErrorCode.Server, `the ACME server refused: ${message}`, { cause: err })
}
