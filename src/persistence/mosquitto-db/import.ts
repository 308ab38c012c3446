/**
 * Taking over a Mosquitto store: when the configured store file is Mosquitto's mosquitto.db, its content
 * is written into a new Midge store through the Store interface (one snapshot), and the original is kept,
 * untouched, as `<file>.imported-<time>`. Used at start-up (server/start-server.ts) and by `midge import-mosquitto`.
 *
 * Never silent and never fatal for damage: whatever parses is imported, every skipped part is reported.
 * Only a failure to write the new store stops the start, after putting the original back.
 */
import fs from 'node:fs'
import path from 'node:path'
import { handOver } from '../../config/hand-over.js'
import { LogStore } from '../log-store.js'
import { convertMosquittoDb, describeCounts, type Converted } from './convert.js'
import { isMosquittoDb, MosquittoMagic } from './format.js'
import { readMosquittoDb } from './reader.js'

export interface ImportLog {
  notice(message: string): void
  warning(message: string): void
}

export interface ImportResult extends Converted {
  source: string
  version: number | undefined
  /** Where the original now is; undefined for a dry run. */
  keptAs: string | undefined
}

/** Whether `file` starts with Mosquitto's magic (false when it is missing or unreadable). */
export function isMosquittoFile(file: string): boolean {
  let fd: number
  try {
    fd = fs.openSync(file, 'r')
  } catch {
    return false
  }
  try {
    const head = Buffer.alloc(MosquittoMagic.length)
    const n = fs.readSync(fd, head, 0, head.length, 0)
    return isMosquittoDb(head.subarray(0, n))
  } catch {
    // A directory or an unreadable file: the store's own load reports it.
    return false
  } finally {
    fs.closeSync(fd)
  }
}

/** Reads and converts without changing anything. */
export function planImport(source: string, now = Date.now()): ImportResult {
  const db = readMosquittoDb(fs.readFileSync(source))
  return { ...convertMosquittoDb(db, now), source, version: db.version, keptAs: undefined }
}

/** Mosquitto's ISO-like stamp, safe in a file name. */
const stamp = (): string => new Date().toISOString().replace(/[:.]/g, '-')

/**
 * Imports `source` into the Midge store at dir/file (which must not hold a Midge store with content:
 * the caller checks). `source` may be that same path, as at start-up.
 */
export function importMosquittoDb(source: string, target: { dir: string; file: string; fsync: boolean }, now = Date.now()): ImportResult {
  const plan = planImport(source, now)
  const targetPath = path.resolve(target.dir, target.file)
  const keptAs = `${source}.imported-${stamp()}`
  const st = fs.statSync(source)
  fs.renameSync(source, keptAs)
  try {
    if (path.resolve(source) !== targetPath) fs.rmSync(targetPath, { force: true })
    const store = new LogStore(target)
    store.load()
    store.compact(plan.state)
    store.close()
    // Started as root, the broker writes the store as the user Mosquitto ran as (the owner of its file).
    handOver(targetPath, { uid: st.uid, gid: st.gid })
  } catch (err) {
    fs.rmSync(targetPath, { force: true })
    fs.renameSync(keptAs, source)
    throw new Error(`cannot import Mosquitto store ${source} into ${targetPath}: ${(err as Error).message}`)
  }
  return { ...plan, keptAs }
}

/** Lines for a log or a terminal: the counts, then at most `limit` skipped parts. */
export function describeImport(r: ImportResult, limit = 20): { summary: string; skipped: string[] } {
  const version = r.version === undefined ? 'unreadable header' : `format ${r.version}`
  const head = r.keptAs === undefined ? `would import from Mosquitto store ${r.source} (${version})` : `imported Mosquitto store ${r.source} (${version})`
  const tail = r.keptAs === undefined ? '' : `; original kept as ${r.keptAs}`
  const skippedNote = r.skipped.length > 0 ? `; ${r.skipped.length} parts skipped` : ''
  const skipped = r.skipped.slice(0, limit).map((s) => `Mosquitto import: ${s}`)
  if (r.skipped.length > limit) skipped.push(`Mosquitto import: ${r.skipped.length - limit} more parts skipped`)
  return { summary: `${head}: ${describeCounts(r.counts)}${skippedNote}${tail}`, skipped }
}

/**
 * The start-up hook: imports the configured store file if it is Mosquitto's. Does nothing otherwise.
 * Logs one line with the counts, and one warning per skipped part.
 */
export function importMosquittoOnStart(persistence: { dir: string; file: string; fsync: boolean }, log: ImportLog): void {
  const file = path.resolve(persistence.dir, persistence.file)
  if (!isMosquittoFile(file)) return
  const r = importMosquittoDb(file, persistence)
  const d = describeImport(r)
  log.notice(`Persistence: ${d.summary}.`)
  for (const line of d.skipped) log.warning(`Persistence: ${line}.`)
}
