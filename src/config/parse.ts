/**
 * mosquitto.conf syntax → a flat list of entries, each with the file:line it came from.
 *
 *   # comment                      (first non-blank character is '#')
 *   option value…                  value = the rest of the line, trimmed; typed options split it further
 *   include_dir DIR                every `*.conf` in DIR, in Mosquitto's order (see compareIncludeNames)
 *
 * Only the main file may use include_dir, as in Mosquitto. Relative paths (include_dir here, file options
 * in load.ts) resolve against the main file's directory rather than the working directory, so a config
 * means the same thing whichever directory the broker is started from.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { ConfigError, ConfigErrorCode, type SourceLocation } from './errors.js'

export interface ConfigEntry {
  key: string
  /** Everything after the key, trimmed; '' when the line has only a key. */
  value: string
  file: string
  line: number
}

export interface ParsedConfig {
  /** The main file, absolute. */
  file: string
  /** Directory relative paths resolve against. */
  baseDir: string
  /** Every file read, in order (main file first). */
  files: string[]
  entries: ConfigEntry[]
  errors: ConfigError[]
}

/**
 * Mosquitto's include_dir order: case-insensitive character by character, and at the first position where
 * two names differ only in case, the upper-case letter first (00.conf, 01.conf, A.conf, a.conf, B.conf, b.conf).
 */
export function compareIncludeNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i)
    const cb = b.charCodeAt(i)
    const ua = upper(ca)
    const ub = upper(cb)
    if (ua !== ub) return ua - ub
    if (ca !== cb) return ca - cb
  }
  return a.length - b.length
}

function upper(c: number): number {
  return c >= 0x61 && c <= 0x7a ? c - 0x20 : c
}

/** Splits one file's text into entries; `include_dir` entries are returned as entries too (the caller expands them). */
export function parseText(text: string, file: string): ConfigEntry[] {
  const entries: ConfigEntry[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    let raw = lines[i] ?? ''
    if (i === 0 && raw.charCodeAt(0) === 0xfeff) raw = raw.slice(1)
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = /^(\S+)\s*(.*)$/.exec(line)
    if (m === null) continue
    entries.push({ key: m[1] ?? '', value: (m[2] ?? '').trim(), file, line: i + 1 })
  }
  return entries
}

export interface ParseOptions {
  /** Used when the main file itself cannot be read (e.g. the `-c` flag). */
  from?: SourceLocation
}

/** Reads the main config file and every include_dir file. Never throws for config problems: they land in `errors`. */
export function parseConfigFile(path: string, opts: ParseOptions = {}): ParsedConfig {
  const file = resolve(path)
  const errors: ConfigError[] = []
  const text = readConfigText(file, opts.from ?? { file: path, line: 0 }, errors)
  if (text === undefined) return { file, baseDir: dirname(file), files: [], entries: [], errors }
  return parseConfigText(text, file, dirname(file))
}

/**
 * A main config given as text (an embedding application's): parsed as if read from `file`, which names it
 * in messages and whose directory relative paths and include_dir resolve against.
 */
export function parseConfigText(text: string, file: string, baseDir: string): ParsedConfig {
  const out: ParsedConfig = { file, baseDir, files: [], entries: [], errors: [] }
  out.files.push(file)
  for (const entry of parseText(text, file)) {
    if (entry.key !== 'include_dir') {
      out.entries.push(entry)
      continue
    }
    if (entry.value === '') {
      out.errors.push(new ConfigError(ConfigErrorCode.MissingValue, entry, `option 'include_dir' needs a value: a directory path`))
      continue
    }
    const dir = resolve(baseDir, entry.value)
    let names: string[]
    try {
      if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' })
      names = readdirSync(dir).filter((n) => n.endsWith('.conf')).sort(compareIncludeNames)
    } catch (err) {
      out.errors.push(new ConfigError(ConfigErrorCode.File, entry, `include_dir ${dir}: ${describeFsError(err)}`, { cause: err }))
      continue
    }
    for (const name of names) {
      const child = join(dir, name)
      if (child === file) {
        out.errors.push(new ConfigError(ConfigErrorCode.Include, entry, `include_dir ${dir} contains the main config file ${file}; move the main file out of it`))
        continue
      }
      const childText = readConfigText(child, entry, out.errors)
      if (childText === undefined) continue
      out.files.push(child)
      for (const e of parseText(childText, child)) {
        if (e.key === 'include_dir') {
          out.errors.push(new ConfigError(ConfigErrorCode.Include, e, `include_dir is only allowed in the main config file (${file})`))
          continue
        }
        out.entries.push(e)
      }
    }
  }
  return out
}

function readConfigText(file: string, from: SourceLocation, errors: ConfigError[]): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    const detail = from.line > 0 ? `cannot read ${file}: ${describeFsError(err)}` : `cannot read config file: ${describeFsError(err)}`
    errors.push(new ConfigError(ConfigErrorCode.File, from.line > 0 ? from : { file, line: 0 }, detail, { cause: err }))
    return undefined
  }
}

export function describeFsError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  switch (code) {
    case 'ENOENT': return 'no such file or directory'
    case 'EACCES': return 'permission denied'
    case 'ENOTDIR': return 'not a directory'
    case 'EISDIR': return 'is a directory, expected a file'
    case 'ELOOP': return 'too many levels of symbolic links'
    default: return err instanceof Error ? err.message : String(err)
  }
}
