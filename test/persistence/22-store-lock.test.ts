/**
 * One broker per store (persistence/store-lock.ts), with real processes: a second `midge` on the same
 * persistence_location refuses to start, naming the first (and `midge check` says the same words); once the
 * first is killed with SIGKILL (its lock file stays behind), a new start takes the stale lock over and says
 * so; a clean stop removes the lock. `midge check --running` takes the lock as the running broker's own. `midge import-mosquitto` refuses to write into a running broker's store.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import mqtt from 'mqtt'
import { MIDGE, MidgeProcess } from '../helpers/midge-process.js'
import { mosquittoFixtures } from './make-mosquitto-golden.js'
import { tempDir } from './tmp-dir.js'

function config(dir: string, name: string): string {
  const file = path.join(dir, `${name}.conf`)
  // `user root`: these brokers stay the user that runs the test (root or not), so the temp dir is theirs.
  fs.writeFileSync(file, `user root\nlistener 0 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location ${dir}\n`)
  return file
}

test('a second broker on the same store refuses to start; after kill -9 of the first, a new start takes the lock over', async (t) => {
  const dir = tempDir(t, 'midge-lock-')
  const store = path.join(dir, 'mosquitto.db')
  const lock = `${store}.lock`
  const first = new MidgeProcess(['-c', config(dir, 'first')])
  t.after(() => first.stop())
  const [a] = await first.opened(1)
  assert.ok(a !== undefined)
  // A persistent session, so the store has something the next broker must find.
  const c = await first.guard(mqtt.connectAsync(`mqtt://127.0.0.1:${a.port}`, { clientId: 'keeper', clean: false, reconnectPeriod: 0 }), 'connect')
  await c.subscribeAsync('kept/#', { qos: 1 })
  await c.endAsync()
  const pid = first.child.pid as number
  assert.match(fs.readFileSync(lock, 'utf8'), new RegExp(`^${pid} `))

  const sentence = `the store ${store} is in use by another broker (pid ${pid}, running since `
  const second = new MidgeProcess(['-c', config(dir, 'second')])
  assert.equal(await second.exited, 1, second.lines.join('\n'))
  assert.ok(second.lines.some((l) => l.includes(sentence)), second.lines.join('\n'))
  assert.ok(!second.lines.some((l) => l.includes('listen socket')), second.lines.join('\n'))
  const check = spawnSync(process.execPath, [MIDGE, 'check', '-c', path.join(dir, 'second.conf')], { encoding: 'utf8' })
  assert.equal(check.status, 1, check.stdout)
  assert.ok(check.stdout.includes(sentence), check.stdout)

  // --running (the config's own broker is up): the lock is a warning, the rest is checked.
  const running = spawnSync(process.execPath, [MIDGE, 'check', '--running', '-c', path.join(dir, 'second.conf')], { encoding: 'utf8' })
  assert.equal(running.status, 0, running.stdout)
  assert.ok(running.stdout.includes(`warning: the store ${store} is in use by the running broker (pid ${pid}); not a problem with --running`), running.stdout)

  // The refused broker did not touch the first one's lock or store.
  assert.match(fs.readFileSync(lock, 'utf8'), new RegExp(`^${pid} `))

  first.child.kill('SIGKILL')
  await first.exited
  assert.ok(fs.existsSync(lock), 'kill -9 leaves the lock file behind')

  const third = new MidgeProcess(['-c', config(dir, 'third')])
  t.after(() => third.stop())
  const [b] = await third.opened(1)
  assert.ok(b !== undefined)
  assert.ok(third.lines.some((l) => l.includes(`Persistence: took over the lock ${lock} of a broker that is no longer running (pid ${pid}, since `)), third.lines.join('\n'))
  assert.ok(third.lines.some((l) => /loaded 1 persistent sessions/.test(l)), third.lines.join('\n'))
  assert.match(fs.readFileSync(lock, 'utf8'), new RegExp(`^${third.child.pid} `))

  // Importing a Mosquitto store into the running broker's store is refused, naming that broker.
  const source = path.join(dir, 'from-mosquitto.db')
  fs.copyFileSync(path.join(mosquittoFixtures, 'v6-scenario.db'), source)
  const imp = spawnSync(process.execPath, [MIDGE, 'import-mosquitto', source, '-c', path.join(dir, 'third.conf')], { encoding: 'utf8' })
  assert.equal(imp.status, 1, imp.stderr)
  assert.ok(imp.stderr.includes(`midge import-mosquitto: the store ${store} is in use by another broker (pid ${third.child.pid}, `), imp.stderr)

  assert.equal(await third.stop(), 0, third.lines.join('\n'))
  assert.equal(fs.existsSync(lock), false, 'a clean stop removes the lock')
})
