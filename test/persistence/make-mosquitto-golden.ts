/**
 * Writes the Mosquitto golden files into test/fixtures/mosquitto-db/: `v6-scenario.db` as the installed
 * mosquitto 2.0.x saves the scenario of mosquitto-scenario.ts, and hand-damaged copies of it. Run after a
 * build: `node dist/test/persistence/make-mosquitto-golden.js`. The files are committed: the reader tests
 * (31-*) run on them without mosquitto. `v6-scenario.json` records when the file was written, because a
 * Mosquitto file holds absolute expiry times.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { runMosquittoScenario } from './mosquitto-scenario.js'

export const mosquittoFixtures = path.resolve(import.meta.dirname, '../../../test/fixtures/mosquitto-db')

/** Offsets of the chunks of a version 5/6 file (header: u32 type, u32 length). */
export function chunkOffsets(file: Buffer): Array<{ offset: number; type: number; length: number }> {
  const out: Array<{ offset: number; type: number; length: number }> = []
  for (let p = 23; p + 8 <= file.length;) {
    const type = file.readUInt32BE(p)
    const length = file.readUInt32BE(p + 4)
    out.push({ offset: p, type, length })
    p += 8 + length
  }
  return out
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-mosq-golden-'))
  try {
    const r = await runMosquittoScenario(dir)
    const file = fs.readFileSync(r.db)
    const out: Record<string, Buffer> = { 'v6-scenario.db': file }
    const chunks = chunkOffsets(file)
    // Cut in the middle of the third RETAIN chunk (they come last): a save cut short by a full disk.
    const retains = chunks.filter((c) => c.type === 4)
    out['v6-truncated.db'] = file.subarray(0, retains[2]!.offset + 8 + 3)
    // Cut inside the 1 MiB payload of big/blob, which Mosquitto happens to write first.
    const big = chunks.find((c) => c.type === 2 && c.length > 1024 * 1024)!
    out['v6-truncated-in-payload.db'] = file.subarray(0, big.offset + 8 + 1000)
    // The length of the big/blob MSG_STORE chunk made 7 bytes too long: its end no longer meets the next chunk.
    const badLen = Buffer.from(file)
    badLen.writeUInt32BE(big.length + 7, big.offset + 4)
    out['v6-bad-chunk-length.db'] = badLen
    // The header damages need no more than the first chunks after it: 4 KiB keeps the fixtures small.
    const badMagic = Buffer.from(file.subarray(0, 4096))
    badMagic.write('MOSQUITTO', 3, 'latin1')
    out['v6-bad-magic.db'] = badMagic
    const v99 = Buffer.from(file.subarray(0, 4096))
    v99.writeUInt32BE(99, 19)
    out['v6-bad-version.db'] = v99
    fs.mkdirSync(mosquittoFixtures, { recursive: true })
    for (const [name, bytes] of Object.entries(out)) {
      fs.writeFileSync(path.join(mosquittoFixtures, name), bytes)
      process.stderr.write(`wrote ${name} (${bytes.length} bytes)\n`)
    }
    const written = Math.floor(fs.statSync(r.db).mtimeMs)
    fs.writeFileSync(path.join(mosquittoFixtures, 'v6-scenario.json'), JSON.stringify({ writtenAt: written, flight: r.flight, mosquitto: r.log.find((l) => /mosquitto version/.test(l)) ?? '' }, null, 2) + '\n')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] === import.meta.filename) await main()
