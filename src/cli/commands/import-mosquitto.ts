/**
 * `midge import-mosquitto FILE [-c CONFIG] [--dry-run]`: what a start does on its own when the store file
 * is Mosquitto's, done explicitly. FILE becomes a Midge store (at the path of CONFIG's
 * persistence_location + persistence_file, or in place without -c); the original is kept as
 * FILE.imported-<time>. --dry-run prints what would be imported and changes nothing.
 */
import { existsSync, statSync } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import { ConfigInvalidError } from '../../config/errors.js'
import { loadConfig } from '../../config/load.js'
import { StoreLock, StoreLockedError, storeLockHolder } from '../../persistence/store-lock.js'
import { describeImport, importMosquittoDb, isMosquittoFile, planImport, type ImportResult } from '../../persistence/mosquitto-db/import.js'
import { NeverExpires } from '../../protocol/index.js'

const Usage = `Usage: midge import-mosquitto FILE [-c CONFIG] [--dry-run]
Imports Mosquitto's persistence file FILE (mosquitto.db): retained messages, persistent sessions with
their subscriptions, and queued and in-flight messages. The original is kept as FILE.imported-<time>.
Stop Mosquitto first (a dry run excepted): it rewrites FILE when it stops.
  -c, --config-file CONFIG  write the Midge store where CONFIG's persistence_location and
                            persistence_file say (default: in place of FILE)
      --dry-run             print what would be imported; change nothing`

const show = (b: Buffer): string => {
  const text = b.subarray(0, 40).toString('utf8')
  const printable = /^[\x20-\x7e\u00a0-\uffff]*$/u.test(text) && !text.includes('\ufffd')
  return b.length === 0 ? '(empty)' : printable ? `'${text}'${b.length > 40 ? '...' : ''} (${b.length} bytes)` : `${b.length} bytes`
}

/** The detailed listing of a dry run. */
function details(r: ImportResult): string[] {
  const lines: string[] = []
  for (const m of r.state.retained) lines.push(`  retained '${m.topic}' QoS ${m.qos}: ${show(m.payload)}`)
  for (const s of r.state.sessions) {
    const expiry = s.expiryInterval === NeverExpires ? 'never expires' : `expires ${s.expiryInterval} s after disconnect`
    lines.push(`  session '${s.clientId}'${s.username === undefined ? '' : ` (user ${s.username})`}: ${expiry}`)
    for (const sub of s.subscriptions) {
      const opts = [`QoS ${sub.qos}`, sub.noLocal ? 'no local' : '', sub.retainAsPublished ? 'retain as published' : '', sub.subscriptionId !== 0 ? `identifier ${sub.subscriptionId}` : ''].filter((x) => x !== '')
      lines.push(`    subscription '${sub.key}' ${opts.join(', ')}`)
    }
    for (const o of s.outgoing) {
      const m = r.state.messages.get(o.messageId)
      const state = o.packetId === 0 ? 'queued' : o.released ? `in flight, PUBREL to re-send (packet id ${o.packetId})` : `in flight, PUBLISH to re-send (packet id ${o.packetId})`
      lines.push(`    message '${m?.topic ?? '?'}' QoS ${o.qos}: ${state}`)
    }
    if (s.incomingQos2.length > 0) lines.push(`    QoS 2 packet ids awaiting PUBREL: ${s.incomingQos2.join(', ')}`)
  }
  return lines
}

export async function run(argv: string[]): Promise<number> {
  let file: string | undefined
  let config: string | undefined
  let dryRun = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (a === '-h' || a === '--help') { process.stdout.write(Usage + '\n'); return 0 }
    if (a === '--dry-run') { dryRun = true; continue }
    if ((a === '-c' || a === '--config-file') && argv[i + 1] !== undefined) { config = argv[++i]; continue }
    if (!a.startsWith('-') && file === undefined) { file = a; continue }
    process.stderr.write(`midge import-mosquitto: unexpected argument '${a}'\n${Usage}\n`)
    return 2
  }
  if (file === undefined) {
    process.stderr.write(`midge import-mosquitto: FILE is required\n${Usage}\n`)
    return 2
  }
  const source = resolve(file)
  if (!existsSync(source)) {
    process.stderr.write(`midge import-mosquitto: ${source} does not exist\n`)
    return 1
  }
  if (!isMosquittoFile(source)) {
    process.stderr.write(`midge import-mosquitto: ${source} is not a Mosquitto persistence file (it does not start with Mosquitto's magic bytes)\n`)
    return 1
  }
  let target = { dir: dirname(source), file: basename(source), fsync: true }
  if (config !== undefined) {
    try {
      const g = loadConfig(config).global
      target = { dir: resolve(g.persistenceLocation ?? process.cwd()), file: g.persistenceFile, fsync: true }
    } catch (err) {
      process.stderr.write(`midge import-mosquitto: ${err instanceof ConfigInvalidError ? err.message : (err as Error).message}\n`)
      return 1
    }
  }
  const targetPath = resolve(target.dir, target.file)
  const holder = storeLockHolder(targetPath)
  if (holder !== undefined) {
    process.stderr.write(`midge import-mosquitto: ${new StoreLockedError(targetPath, holder).message}\n`)
    return 1
  }
  if (targetPath !== source && existsSync(targetPath) && statSync(targetPath).size > 0) {
    process.stderr.write(`midge import-mosquitto: ${targetPath} already exists; move it away first (the import writes a new store there)\n`)
    return 1
  }
  // Held while the import writes the store, as a broker holds it: no broker starts on it meanwhile.
  let lock: StoreLock | undefined
  let r: ImportResult
  try {
    if (!dryRun) lock = StoreLock.acquire(targetPath, { onTakeOver: (m) => process.stderr.write(`midge import-mosquitto: ${m}\n`) })
    r = dryRun ? planImport(source) : importMosquittoDb(source, target)
  } catch (err) {
    process.stderr.write(`midge import-mosquitto: ${(err as Error).message}\n`)
    return 1
  } finally {
    lock?.release()
  }
  const d = describeImport(r, Number.POSITIVE_INFINITY)
  const out = [d.summary + (dryRun ? '' : `; Midge store written to ${targetPath}`)]
  if (dryRun) out.push(...details(r))
  out.push(...d.skipped)
  process.stdout.write(out.join('\n') + '\n')
  return 0
}
