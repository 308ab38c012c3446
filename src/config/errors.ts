/**
 * Configuration errors. Each problem is one ConfigError with a stable `code` and the file:line it comes
 * from; the message is the sentence an operator sees, already prefixed with `file:line: `. Loading
 * collects every problem it can find before giving up, so one run shows them all (ConfigInvalidError).
 */

export const ConfigErrorCode = {
  /** Unreadable config file, include_dir that is not a directory, ... */
  File: 'CFG_ERR_FILE',
  UnknownOption: 'CFG_ERR_UNKNOWN_OPTION',
  /** An option of Mosquitto 2.0 that Midge does not implement (yet). */
  UnsupportedOption: 'CFG_ERR_UNSUPPORTED_OPTION',
  BadValue: 'CFG_ERR_BAD_VALUE',
  MissingValue: 'CFG_ERR_MISSING_VALUE',
  /** A listener option (or, with per_listener_settings true, a security option) before any `listener` line. */
  NeedsListener: 'CFG_ERR_NEEDS_LISTENER',
  DuplicateListener: 'CFG_ERR_DUPLICATE_LISTENER',
  /** A listener with some TLS options but without both certfile and keyfile, or an inconsistent TLS setup. */
  TlsIncomplete: 'CFG_ERR_TLS_INCOMPLETE',
  /** include_dir outside the main file. */
  Include: 'CFG_ERR_INCLUDE',
  /** Options that are valid alone but not together (e.g. differing per-listener values Midge cannot honour yet). */
  Conflict: 'CFG_ERR_CONFLICT',
  /** A file the config refers to (password, ACL, certificate, key) cannot be read or is malformed. */
  ReferencedFile: 'CFG_ERR_REFERENCED_FILE',
  /** Several of the above; `errors` holds each. */
  Invalid: 'CFG_ERR_INVALID',
  /** Bad command-line arguments to `midge` / `midge check`. */
  Args: 'CFG_ERR_ARGS',
} as const
export type ConfigErrorCode = (typeof ConfigErrorCode)[keyof typeof ConfigErrorCode]

/** Where an entry came from. `line` is 1-based; 0 means "not from a file" (command line, defaults). */
export interface SourceLocation {
  file: string
  line: number
}

export function formatLocation(loc: SourceLocation): string {
  return loc.line > 0 ? `${loc.file}:${loc.line}` : loc.file
}

export class ConfigError extends Error {
  override name = 'ConfigError'
  readonly code: ConfigErrorCode
  readonly file: string
  readonly line: number
  /** The message without the `file:line: ` prefix. */
  readonly detail: string
  /** How to fix it, when there is one obvious fix. Shown on its own line by `midge check`. */
  readonly fix: string | undefined

  constructor(code: ConfigErrorCode, loc: SourceLocation, detail: string, options?: { fix?: string; cause?: unknown }) {
    super(`${formatLocation(loc)}: ${detail}`, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.file = loc.file
    this.line = loc.line
    this.detail = detail
    this.fix = options?.fix
  }
}

/** Thrown by loadConfig when at least one ConfigError was found; `errors` is in file order. */
export class ConfigInvalidError extends Error {
  override name = 'ConfigInvalidError'
  readonly code = ConfigErrorCode.Invalid
  readonly errors: ConfigError[]

  constructor(errors: ConfigError[]) {
    super(errors.map((e) => e.message).join('\n'))
    this.errors = errors
  }
}

/** A problem that does not stop the broker but that the operator should see (logged as a warning at start). */
export interface ConfigWarning {
  file: string
  line: number
  message: string
}

export function formatWarning(w: ConfigWarning): string {
  return w.file === '' ? w.message : `${formatLocation(w)}: ${w.message}`
}
