/**
 * A start as root touches files in folders the broker's user may write (/var/log/mosquitto, the store's
 * folder): a link planted there must never make root chown or write the link's target (/etc/shadow).
 * Runs as root, as the broker's start does (the machines running this suite are root, see common setup).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { handOver, reclaim } from '../../src/config/hand-over.js'
import { createLogSinks } from '../../src/observability/log-sinks.js'

const mosquitto = { uid: 102, gid: 102, name: 'mosquitto' }

function scratch(t: { after: (fn: () => void) => void }): { dir: string; victim: string } {
  assert.equal(process.geteuid?.(), 0, 'these tests exercise the start as root: run them as root')
  const dir = fs.mkdtempSync(join(tmpdir(), 'midge-links-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  // Stands for /etc/shadow: root's, outside the user's reach.
  const victim = join(dir, 'victim')
  fs.writeFileSync(victim, 'secret\n', { mode: 0o600 })
  return { dir, victim }
}

test('handOver by path changes a link swapped in after the creation, never its target', (t) => {
  const { dir, victim } = scratch(t)
  const link = join(dir, 'midge.pid')
  fs.symlinkSync(victim, link)
  handOver(link, mosquitto)
  assert.equal(fs.statSync(victim).uid, 0)
  assert.equal(fs.lstatSync(link).uid, 102)
})

test('reclaim: a file swapped for a link between its check and the chown is not handed over', (t) => {
  const { dir, victim } = scratch(t)
  const log = join(dir, 'mosquitto.log')
  fs.writeFileSync(log, '')
  // The user's race, made certain: right after reclaim's lstat sees the regular root-owned file, it
  // becomes a link to the victim.
  const realLstat = fs.lstatSync
  let swapped = false
  t.mock.method(fs, 'lstatSync', ((p: fs.PathLike, o?: fs.StatSyncOptions) => {
    const st = realLstat(p, o as never)
    if (p === log && !swapped) {
      swapped = true
      fs.rmSync(log)
      fs.symlinkSync(victim, log)
    }
    return st
  }) as typeof fs.lstatSync)
  const said = reclaim('Log file', log, mosquitto)
  assert.ok(swapped)
  assert.equal(said, undefined)
  assert.equal(fs.statSync(victim).uid, 0)
})

test('reclaim still hands a regular root-owned file to the user', (t) => {
  const { dir } = scratch(t)
  const log = join(dir, 'mosquitto.log')
  fs.writeFileSync(log, '', { mode: 0o400 })
  assert.match(reclaim('Log file', log, mosquitto) ?? '', /handed to user 'mosquitto'/)
  const st = fs.statSync(log)
  assert.equal(st.uid, 102)
  assert.equal(st.mode & 0o600, 0o600)
})

test('log_dest file as root refuses a link (start and SIGHUP reopen) instead of appending to its target', (t) => {
  const { dir, victim } = scratch(t)
  const log = join(dir, 'mosquitto.log')
  fs.symlinkSync(victim, log)
  assert.throws(() => createLogSinks([{ kind: 'file', path: log }], mosquitto), /is a symbolic link/)
  assert.equal(fs.readFileSync(victim, 'utf8'), 'secret\n')
  // A regular file opened at the start, swapped for a link before a reopen (logrotate's SIGHUP).
  fs.rmSync(log)
  const set = createLogSinks([{ kind: 'file', path: log }], mosquitto)
  fs.rmSync(log)
  fs.symlinkSync(victim, log)
  assert.throws(() => set.reopen(), /is a symbolic link/)
  set.close()
  assert.equal(fs.readFileSync(victim, 'utf8'), 'secret\n')
})
