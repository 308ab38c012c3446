/**
 * Listeners with acme_domain: the AcmeManager obtaining their certificates, each listener's certificate files
 * (by listener index), and those waiting for a first usable certificate (they open once ACME has one).
 */
import { existsSync } from 'node:fs'
import { dirname } from 'node:path'
import { acmeListeners, acmeSettings } from '../acme/from-config.js'
import { describeAcmeError } from '../acme/errors.js'
import type { AcmeManager, ManagedCertificate } from '../acme/manager.js'
import type { MidgeConfig } from '../config/types.js'
import type { Logger } from '../observability/logger.js'
import type { TlsProblem } from '../transport/tls.js'
import { loaded, type OptionalModules } from './optional-modules.js'
import { Refused } from './start-failure.js'
import { tlsOptions, type TlsFileOptions } from './tls-listeners.js'

export class AcmeListeners {
  readonly files = new Map<number, ManagedCertificate>()
  readonly waiting = new Set<number>()
  /** Certificates to renew at the first check whatever their dates say: files the TLS listener refused. */
  readonly force: string[] = []

  private constructor(readonly manager: AcmeManager, private readonly modules: OptionalModules) {}

  /** Registers the acme_domain listeners' certificates; undefined when no listener has acme_domain. */
  static setUp(cfg: MidgeConfig, modules: OptionalModules, logger: Logger, owner: { uid: number; gid: number } | undefined): AcmeListeners | undefined {
    const wanted = acmeListeners(cfg)
    if (wanted.length === 0) return undefined
    const a = new AcmeListeners(new (loaded(modules.acme, 'acme').AcmeManager)({ ...acmeSettings(cfg), logger, owner }), modules)
    try {
      for (const { index, domains } of wanted) a.files.set(index, a.manager.add(domains))
    } catch (err) {
      throw new Refused(`ACME: ${describeAcmeError(err)}`)
    }
    return a
  }

  /** TLS options of listener `i`: its certfile/keyfile, or the ACME state directory's files. */
  tlsOptions(cfg: MidgeConfig, i: number): TlsFileOptions {
    const l = cfg.listeners[i]!
    const acme = this.files.get(i)
    return acme === undefined ? tlsOptions(l) : { ...tlsOptions(l), certfile: acme.certfile, keyfile: acme.keyfile, domain: acme.domains[0] }
  }

  /**
   * Listener `i` has no usable certificate yet but ACME can obtain one (`errors`: what the TLS check found):
   * true, after noting it as waiting and logging why; false when the listener's own options are at fault.
   */
  waitsForCertificate(cfg: MidgeConfig, i: number, errors: TlsProblem[], logger: Logger): boolean {
    const acme = this.files.get(i)
    if (acme === undefined || (errors.length === 0 && this.manager.usable(acme) !== undefined) || !errors.every((p) => this.obtainable(p, acme))) return false
    const l = cfg.listeners[i]!
    this.waiting.add(i)
    if (errors.length > 0 && existsSync(acme.certfile)) this.force.push(acme.id)
    const why = existsSync(acme.certfile) ? errors[0]?.message ?? 'the one in the state directory has expired or lacks a name' : `none in ${dirname(acme.certfile)} yet`
    logger.notice(`TLS listener ${l.name} waits for its certificate for ${acme.domains.join(', ')} (${why}); it opens once ACME has obtained one.`)
    return true
  }

  /** A refusal that a new certificate from ACME cures (rather than a mistake in the listener's options). */
  private obtainable(p: TlsProblem, files: ManagedCertificate): boolean {
    const code = loaded(this.modules.tls, 'tls').TlsProblemCode
    return p.file === files.certfile || p.file === files.keyfile || ([
      code.CertExpired, code.CertNotYetValid, code.CertWrongName, code.KeyMismatch, code.ChainBroken,
    ] as string[]).includes(p.code)
  }
}
