/**
 * Midge started on a config whose store file is a damaged mosquitto.db (golden copies from
 * test/fixtures/mosquitto-db/): it imports what is intact, logs what it skipped, keeps the original, and
 * starts — never crashes, never starts empty in silence.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { PacketType } from '../../src/protocol/constants.js'
import { freePort } from '../helpers/ports.js'
import { MidgeProcess } from '../helpers/midge-process.js'
import { mosquittoFixtures } from './make-mosquitto-golden.js'
import { rawClient, writeConf } from './mosquitto-scenario.js'
import { tempDir } from './tmp-dir.js'

async function startOn(t: import('node:test').TestContext, fixture: string): Promise<{ midge: MidgeProcess; dir: string; port: number }> {
  const dir = tempDir(t, 'midge-mosq-start-')
  const port = await freePort()
  const conf = writeConf(dir, port)
  fs.copyFileSync(path.join(mosquittoFixtures, fixture), path.join(dir, 'mosquitto.db'))
  const midge = new MidgeProcess(['-c', conf], { cwd: dir })
  t.after(() => midge.stop())
  return { midge, dir, port }
}

async function retainedTopics(port: number): Promise<string[]> {
  const c = await rawClient(port, 4)
  try {
    await c.connect({ clientId: 'look' })
    await c.subscribe('#', { qos: 0 })
    await c.sync()
    return c.pending(PacketType.Publish).map((p) => p.topic).sort()
  } finally {
    c.destroy()
  }
}

test('a truncated mosquitto.db: the intact part is imported, the cut is logged, the broker starts', async (t) => {
  const { midge, dir, port } = await startOn(t, 'v6-truncated.db')
  const line = await midge.waitFor(/Persistence: imported Mosquitto store .*/)
  assert.match(line[0], /\(format 6\): 2 retained messages, 4 persistent sessions with 3 subscriptions, .*; 2 parts skipped; original kept as /) // and 'brief' long expired
  await midge.waitFor(/Persistence: Mosquitto import: RETAIN at offset \d+: chunk length 8 runs past the end of the file \(truncated, or a damaged length\)/)
  await midge.opened(1)
  assert.equal((await retainedTopics(port)).length, 2)
  assert.equal(fs.readdirSync(dir).filter((f) => f.startsWith('mosquitto.db.imported-')).length, 1)
  assert.equal(midge.lines.some((l) => /damaged-/.test(l)), false, 'not set aside as a damaged Midge store')
})

test('a mosquitto.db whose 1 MiB chunk has a damaged length: read by its fields, all six retained messages arrive', async (t) => {
  const { midge, port } = await startOn(t, 'v6-bad-chunk-length.db')
  await midge.waitFor(/Persistence: imported Mosquitto store .*: 6 retained messages/)
  await midge.waitFor(/Mosquitto import: MSG_STORE at offset \d+: chunk length \d+ disagrees with its fields/)
  await midge.opened(1)
  assert.deepEqual(await retainedTopics(port), ['big/blob', 'home//empty', 'home/bücher/😀', 'home/kitchen/light', 'home/v5/props', 'home/will'])
})

test('a mosquitto.db of an unknown format version: nothing imported, said so, original kept, the broker starts', async (t) => {
  const { midge, dir } = await startOn(t, 'v6-bad-version.db')
  const line = await midge.waitFor(/Persistence: imported Mosquitto store .*/)
  assert.match(line[0], /\(format 99\): 0 retained messages, 0 persistent sessions .*; 1 parts skipped; original kept as /)
  await midge.waitFor(/Mosquitto import: file at offset 19: format version 99 is not one Midge reads \(3 to 6\)/)
  await midge.opened(1)
  const kept = fs.readdirSync(dir).filter((f) => f.startsWith('mosquitto.db.imported-'))
  assert.ok(fs.readFileSync(path.join(dir, kept[0]!)).equals(fs.readFileSync(path.join(mosquittoFixtures, 'v6-bad-version.db'))))
})

test('as on Debian: started as root with user mosquitto, the imported store belongs to mosquitto and the broker keeps writing it', async (t) => {
  const { uid, gid } = mosquittoUser()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-mosq-debian-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.chmodSync(dir, 0o755)
  const data = path.join(dir, 'lib')
  fs.mkdirSync(data)
  fs.copyFileSync(path.join(mosquittoFixtures, 'v6-scenario.db'), path.join(data, 'mosquitto.db'))
  fs.chownSync(data, uid, gid)
  fs.chownSync(path.join(data, 'mosquitto.db'), uid, gid)
  const port = await freePort()
  const conf = path.join(dir, 'mosquitto.conf')
  fs.writeFileSync(conf, `user mosquitto\nlistener ${port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location ${data}/\n`)
  const midge = new MidgeProcess(['-c', conf], { cwd: dir })
  t.after(() => midge.stop())
  await midge.waitFor(/Persistence: imported Mosquitto store .*: 6 retained messages/)
  await midge.waitFor(/Changed user to 'mosquitto'/)
  await midge.opened(1)
  const st = fs.statSync(path.join(data, 'mosquitto.db'))
  assert.deepEqual([st.uid, st.gid], [uid, gid])
  const kept = fs.readdirSync(data).filter((f) => f.startsWith('mosquitto.db.imported-'))
  assert.equal(fs.statSync(path.join(data, kept[0]!)).uid, uid)
  // A new retained message is written by the mosquitto user, and the shutdown compaction succeeds.
  const c = await rawClient(port, 4)
  await c.connect({ clientId: 'writer' })
  await c.publishAcked('home/new', 'x', { qos: 1, retain: true })
  c.destroy()
  assert.equal(await midge.stop(), 0)
  assert.equal(midge.lines.some((l) => /error/i.test(l)), false, midge.lines.join('\n'))
  const again = new MidgeProcess(['-c', conf], { cwd: dir })
  t.after(() => again.stop())
  await again.waitFor(/Persistence: loaded 4 persistent sessions and 7 retained messages/)
})

function mosquittoUser(): { uid: number; gid: number } {
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('mosquitto:'))
  if (line === undefined) throw new Error('no mosquitto user: install the Debian package mosquitto')
  const f = line.split(':')
  return { uid: Number(f[2]), gid: Number(f[3]) }
}
