/**
 * Password and ACL files of a config, loaded once per distinct path, and the authenticators and authorizers
 * the broker and each listener use. Every authenticator sits behind the runtime's one AuthThrottle
 * (auth/throttle.ts), so failures from an address count across all listeners and survive a reload.
 *
 * Password and ACL files are also re-read when they change on disk (auth/file-watch.ts); a broken edit is
 * logged and the previous contents stay in force.
 */
import { AclAuthorizer } from '../auth/acl.js'
import { watchFileContent, type FileWatch } from '../auth/file-watch.js'
import { PasswordFileAuthenticator } from '../auth/password-authenticator.js'
import { type AuthThrottle, ThrottledAuthenticator, type AuthThrottleSettings } from '../auth/throttle.js'
import { anonymousAuthenticator, type Authenticator } from '../auth/types.js'
import type { ListenerInfo } from '../broker/options.js'
import type { ListenerConfig, MidgeConfig } from '../config/types.js'
import type { Logger } from '../observability/logger.js'

/** The auth_* options as AuthThrottle settings. */
export function throttleSettings(cfg: MidgeConfig): AuthThrottleSettings {
  const g = cfg.global
  return { failLimit: g.authFailLimit, failWindowMs: g.authFailWindow * 1000, banTimeMs: g.authBanTime * 1000, exemptLoopback: g.authFailExemptLoopback, maxPendingPerAddress: g.authMaxPendingPerAddress }
}

/**
 * Password and ACL files, loaded once per distinct path and shared by the listeners naming them, and the
 * authenticators handed to the broker: each password file's, and the one of listeners that refuse anonymous
 * clients without a password file, all behind the runtime's one AuthThrottle. A reload builds a new
 * Security (the running one stays untouched until the new one has loaded); the throttle carries over.
 */
export class Security {
  readonly authenticators = new Map<string, PasswordFileAuthenticator>()
  readonly authorizers = new Map<string, AclAuthorizer>()
  private readonly throttled = new Map<string, ThrottledAuthenticator>()
  /** For listeners without a password file that refuse anonymous clients: their refusals count as failures. */
  private readonly refusing: ThrottledAuthenticator
  private watches: FileWatch[] = []

  constructor(readonly throttle: AuthThrottle, private readonly logger: Logger | undefined) {
    this.refusing = new ThrottledAuthenticator(anonymousAuthenticator, throttle, logger)
  }

  /** Loads every file the config names; throws the first error (AuthError, already `file:line: …`). */
  static async load(cfg: MidgeConfig, throttle: AuthThrottle, logger: Logger): Promise<Security> {
    const s = new Security(throttle, logger)
    const g = cfg.global.security
    for (const file of [...cfg.listeners.map((l) => l.passwordFile), g.passwordFile]) {
      if (file === undefined || s.authenticators.has(file)) continue
      const auth = await PasswordFileAuthenticator.fromFile(file, { maxQueuedHashes: cfg.global.authMaxQueuedHashes })
      s.authenticators.set(file, auth)
      s.throttled.set(file, new ThrottledAuthenticator(auth, throttle, logger))
    }
    for (const file of [...cfg.listeners.map((l) => l.aclFile), g.aclFile]) {
      if (file !== undefined && !s.authorizers.has(file)) s.authorizers.set(file, await AclAuthorizer.fromFile(file))
    }
    return s
  }

  /**
   * What a listener authenticates with: its password file's authenticator, or (none, refusing anonymous
   * clients) the broker's anonymous rule behind the throttle; undefined lets everyone in (the broker's default).
   */
  authenticator(file: string | undefined, allowAnonymous: boolean): Authenticator | undefined {
    if (file !== undefined) return this.throttled.get(file)
    return allowAnonymous ? undefined : this.refusing
  }

  authorizer(file: string | undefined): AclAuthorizer | undefined {
    return file === undefined ? undefined : this.authorizers.get(file)
  }

  /** Re-reads each file when it changes on disk, until close(). */
  watch(): void {
    for (const file of new Set([...this.authenticators.keys(), ...this.authorizers.keys()])) {
      this.watches.push(watchFileContent(file, () => { void this.reloadFile(file) }))
    }
  }

  /**
   * Re-reads a password or ACL file and logs the outcome: the one path for a change on disk and for the
   * dashboard's edits. false when it failed: the previous contents stay in force.
   */
  async reloadFile(file: string): Promise<boolean> {
    const log = this.logger
    const auth = this.authenticators.get(file)
    const acl = this.authorizers.get(file)
    let what = 'password file'
    try {
      if (auth !== undefined) {
        const users = await auth.reload()
        log?.notice(`Password file ${file} changed: reloaded (${users} user${users === 1 ? '' : 's'}).`)
      }
      if (acl !== undefined) {
        what = 'ACL file'
        const rules = await acl.reload()
        log?.notice(`ACL file ${file} changed: reloaded.`)
        for (const w of rules.warnings) log?.warning(`Warning: ${w}`)
      }
      return true
    } catch (err) {
      log?.error(`Error: ${(err as Error).message}`)
      log?.error(`Reload of ${what} ${file} failed: keeping its previous contents.`)
      return false
    }
  }

  close(): void {
    for (const w of this.watches) w.close()
    this.watches = []
  }
}

/** A listener's effective security (ListenerConfig already resolves per_listener_settings against the global values). */
export function applySecurity(info: ListenerInfo, l: ListenerConfig, sec: Security): void {
  info.allowAnonymous = l.allowAnonymous
  const authenticator = sec.authenticator(l.passwordFile, l.allowAnonymous)
  const authorizer = sec.authorizer(l.aclFile)
  if (authenticator === undefined) delete info.authenticator
  else info.authenticator = authenticator
  if (authorizer === undefined) delete info.authorizer
  else info.authorizer = authorizer
}

