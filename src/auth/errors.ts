/**
 * Errors of the auth modules. Each has a stable `code`; callers branch on it, never on message text.
 * File errors carry the file and 1-based line, and their message already starts with `file:line: `,
 * the sentence an operator sees when `midge` refuses to start or a reload is rejected.
 */

export const AuthErrorCode = {
  /** A password hash that is not `$6$SALT$HASH` or `$7$ITERATIONS$SALT$HASH` with a 12-byte salt and 64-byte hash. */
  HashFormat: 'AUTH_ERR_HASH_FORMAT',
  /** A malformed line in a password file (bad hash, plaintext password, duplicate or empty user). */
  PasswordFile: 'AUTH_ERR_PASSWORD_FILE',
  /** A malformed line in an ACL file (unknown keyword, bad access type, invalid topic filter). */
  AclFile: 'AUTH_ERR_ACL_FILE',
  /** A password file or ACL file that cannot be read or written. */
  FileAccess: 'AUTH_ERR_FILE_ACCESS',
} as const
export type AuthErrorCode = (typeof AuthErrorCode)[keyof typeof AuthErrorCode]

export class AuthError extends Error {
  readonly code: AuthErrorCode
  /** The file the problem is in, or '' when the input did not come from a file. */
  readonly file: string
  /** 1-based line number; 0 when the problem is not tied to a line. */
  readonly line: number

  constructor(code: AuthErrorCode, message: string, where: { file?: string; line?: number } = {}, options?: ErrorOptions) {
    const file = where.file ?? ''
    const line = where.line ?? 0
    const prefix = file === '' ? '' : line > 0 ? `${file}:${line}: ` : `${file}: `
    super(prefix + message, options)
    this.name = 'AuthError'
    this.code = code
    this.file = file
    this.line = line
  }
}
