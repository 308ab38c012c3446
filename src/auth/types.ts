/**
 * What the broker asks of authentication and authorization. The broker knows nothing of password files
 * or ACL syntax; it calls these. `authenticate` may be async (hashing runs off the event loop);
 * the authorizer is synchronous because it sits on the per-message path.
 */

export interface ClientIdentity {
  clientId: string
  /** undefined for anonymous clients. */
  username: string | undefined
  remoteAddress: string
  /** The listener's name (e.g. '1883' or '8883'), for per_listener_settings. */
  listener: string
}

export interface AuthRequest extends ClientIdentity {
  password: Buffer | undefined
  /** Whether this listener lets clients in without a username. */
  allowAnonymous: boolean
  /** Username taken from a verified client certificate (use_identity_as_username / use_subject_as_username). */
  certificateUsername?: string
}

export type AuthResult =
  | { ok: true; username: string | undefined }
  /**
   * `bad-credentials`: v5 0x86, v3 4. `not-authorized`: v5 0x87, v3 5. `banned`: v5 0x8A, v3 5.
   * `busy` (too many checks in progress; not a failed authentication): v5 0x89, v3 3.
   * `reasonCode`, when set (an application's authenticate hook), is the v5 code to send instead.
   */
  | { ok: false; reason: 'bad-credentials' | 'not-authorized' | 'banned' | 'busy'; detail?: string; reasonCode?: number }

export interface Authenticator {
  authenticate(req: AuthRequest): AuthResult | Promise<AuthResult>
}

export interface Authorizer {
  /** May this client publish to this topic? (topic is after mount_point is applied) */
  canPublish(client: ClientIdentity, topic: string): boolean
  /** May this client ever read anything matching this filter? false refuses the SUBSCRIBE entry. */
  canSubscribe(client: ClientIdentity, filter: string): boolean
  /** May this client receive a message on this topic? Checked on delivery. */
  canRead(client: ClientIdentity, topic: string): boolean
}

/** The default when no password file is configured: anonymous allowed only where the listener allows it. */
export const anonymousAuthenticator: Authenticator = {
  authenticate(req) {
    if (req.certificateUsername !== undefined) return { ok: true, username: req.certificateUsername }
    if (req.username === undefined && !req.allowAnonymous) return { ok: false, reason: 'not-authorized', detail: 'anonymous clients are not allowed on this listener' }
    if (req.username !== undefined && !req.allowAnonymous) return { ok: false, reason: 'not-authorized', detail: 'no password_file is configured and allow_anonymous is false' }
    return { ok: true, username: req.username }
  },
}

export const allowAllAuthorizer: Authorizer = {
  canPublish: () => true,
  canSubscribe: () => true,
  canRead: () => true,
}
