/**
 * Writes the version 1 golden files into test/fixtures/persistence/ from golden-v1.ts (the
 * independent encoder). Run after a build: `node dist/test/persistence/make-golden-v1.js`.
 * The files are committed; rerunning must produce identical bytes (the golden test checks the
 * committed files, not this script's output). Never regenerate them to make a failing test pass:
 * a reader change that breaks them needs a new format version instead.
 */
import fs from 'node:fs'
import path from 'node:path'
import { encodeV1, goldenOpsV1, headerV1, crc32Ieee } from './golden-v1.js'

export const fixtureDir = path.resolve(import.meta.dirname, '../../../test/fixtures/persistence')

function main(): void {
  const { file, offsets } = encodeV1(goldenOpsV1)
  const out: Record<string, Buffer> = {}
  out['v1-basic.db'] = file
  // The last record (WillClear 'no-will') loses its last 3 bytes, as a write cut short by a crash.
  out['v1-torn-tail.db'] = file.subarray(0, file.length - 3)
  out['v1-garbage-tail.db'] = Buffer.concat([file, Buffer.from('this is not a record, just junk!')])
  // One bit flipped in the body of record 13 (the first OutQueued): its CRC no longer matches.
  const flipped = Buffer.from(file)
  flipped[offsets[12]! + 8 + 6] ^= 0x01
  out['v1-bad-crc.db'] = flipped
  // A record with a correct CRC but a type no version 1 reader knows, after record 8 (Retain).
  const body = Buffer.from([99, 1, 2, 3])
  const alien = Buffer.alloc(8 + body.length)
  alien.writeUInt32BE(body.length, 0)
  alien.writeUInt32BE(crc32Ieee(body), 4)
  body.copy(alien, 8)
  out['v1-unknown-record.db'] = Buffer.concat([file.subarray(0, offsets[8]!), alien, file.subarray(offsets[8]!)])
  out['v1-header-only.db'] = headerV1
  out['bad-magic.db'] = Buffer.from('SQLite format 3\0 and then some bytes')
  const v2 = Buffer.from(file)
  v2.writeUInt32BE(2, 8)
  out['v2-header.db'] = v2
  fs.mkdirSync(fixtureDir, { recursive: true })
  for (const [name, bytes] of Object.entries(out)) {
    fs.writeFileSync(path.join(fixtureDir, name), bytes)
    process.stderr.write(`wrote ${name} (${bytes.length} bytes)\n`)
  }
  process.stderr.write(`record offsets: ${offsets.join(' ')}\n`)
}

main()
