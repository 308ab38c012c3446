/**
 * `midge import-mosquitto FILE [-c CONFIG] [--dry-run]` on the golden mosquitto.db: the dry run lists what
 * would be imported and touches nothing; the import writes a Midge store that loads back with everything,
 * keeps the original as FILE.imported-<time>, and refuses to overwrite an existing store.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { LogStore } from '../../src/persistence/log-store.js'
import { MIDGE } from '../helpers/midge-process.js'
import { mosquittoFixtures } from './make-mosquitto-golden.js'
import { BigPayload, LongExpiry } from './mosquitto-scenario.js'
import { tempDir } from './tmp-dir.js'

const golden = path.join(mosquittoFixtures, 'v6-scenario.db')
const midge = (args: string[]): { status: number | null; stdout: string; stderr: string } =>
  spawnSync(process.execPath, [MIDGE, 'import-mosquitto', ...args], { encoding: 'utf8' })

test('midge import-mosquitto --dry-run lists retained messages, sessions, subscriptions and messages, and changes nothing', (t) => {
  const dir = tempDir(t)
  const file = path.join(dir, 'mosquitto.db')
  fs.copyFileSync(golden, file)
  const r = midge([file, '--dry-run'])
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /^would import from Mosquitto store .*mosquitto\.db \(format 6\): 6 retained messages, 4 persistent sessions with 3 subscriptions, 14 queued and 3 in-flight messages, 1 half-received QoS 2 messages; 1 parts skipped\n/)
  assert.match(r.stdout, /\n {2}retained 'big\/blob' QoS 1: 1048576 bytes\n/)
  assert.match(r.stdout, /\n {2}retained 'home\/bücher\/😀' QoS 0: 'utf-8 ✓' \(9 bytes\)\n/)
  assert.match(r.stdout, new RegExp(`\n {2}session 'flight5': expires ${LongExpiry} s after disconnect\n {4}subscription 'flight/#' QoS 2, identifier 9\n {4}message 'flight/a' QoS 1: in flight, PUBLISH to re-send \\(packet id 1\\)\n`))
  assert.match(r.stdout, /\n {2}session 'halfpub': never expires\n {4}QoS 2 packet ids awaiting PUBREL: 77\n/)
  assert.match(r.stdout, /\nMosquitto import: session 'brief': expired at .*, not imported\n$/)
  assert.deepEqual(fs.readdirSync(dir), ['mosquitto.db'])
  assert.ok(fs.readFileSync(file).equals(fs.readFileSync(golden)))
})

test('midge import-mosquitto FILE replaces FILE with a Midge store holding everything, and keeps the original', (t) => {
  const dir = tempDir(t)
  const file = path.join(dir, 'mosquitto.db')
  fs.copyFileSync(golden, file)
  const r = midge([file])
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /^imported Mosquitto store .*: 6 retained messages, .*; original kept as .*mosquitto\.db\.imported-\S+; Midge store written to /)
  const kept = fs.readdirSync(dir).filter((f) => f.startsWith('mosquitto.db.imported-'))
  assert.equal(kept.length, 1)
  assert.ok(fs.readFileSync(path.join(dir, kept[0]!)).equals(fs.readFileSync(golden)))
  const store = new LogStore({ dir, file: 'mosquitto.db', fsync: false })
  const state = store.load()
  store.close()
  assert.ok(state.retained.find((m) => m.topic === 'big/blob')?.payload.equals(BigPayload))
  assert.deepEqual(state.sessions.map((s) => s.clientId).sort(), ['flight5', 'halfpub', 'sub311', 'sub5'])
  const f = state.sessions.find((s) => s.clientId === 'flight5')!
  assert.deepEqual(f.outgoing.map((o) => [o.packetId, o.released]), [[1, false], [2, false], [3, true]])
  assert.deepEqual(state.sessions.find((s) => s.clientId === 'halfpub')?.incomingQos2, [77])
})

test('midge import-mosquitto FILE -c CONFIG writes the store CONFIG names, and refuses to overwrite one', (t) => {
  const dir = tempDir(t)
  const file = path.join(dir, 'old.db')
  fs.copyFileSync(golden, file)
  fs.mkdirSync(path.join(dir, 'data'))
  const conf = path.join(dir, 'midge.conf')
  fs.writeFileSync(conf, `persistence true\npersistence_location ${dir}/data/\npersistence_file midge.db\n`)
  fs.writeFileSync(path.join(dir, 'data', 'midge.db'), 'something already here')
  const refused = midge([file, '-c', conf])
  assert.equal(refused.status, 1)
  assert.match(refused.stderr, /data\/midge\.db already exists; move it away first/)
  assert.ok(fs.readFileSync(file).equals(fs.readFileSync(golden)), 'the refusal changes nothing')
  fs.rmSync(path.join(dir, 'data', 'midge.db'))
  const r = midge([file, '-c', conf])
  assert.equal(r.status, 0, r.stderr)
  const store = new LogStore({ dir: path.join(dir, 'data'), file: 'midge.db', fsync: false })
  assert.equal(store.load().retained.length, 6)
  store.close()
  assert.equal(fs.existsSync(file), false)
  assert.equal(fs.readdirSync(dir).filter((f) => f.startsWith('old.db.imported-')).length, 1)
})

test('midge import-mosquitto on a file that is not Mosquitto\'s says so and exits 1', (t) => {
  const dir = tempDir(t)
  const file = path.join(dir, 'x.db')
  fs.writeFileSync(file, 'MIDGEDB\0 not mosquitto')
  const r = midge([file])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /is not a Mosquitto persistence file/)
  assert.equal(midge([]).status, 2)
})
