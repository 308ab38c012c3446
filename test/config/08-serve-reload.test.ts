import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { formatPasswordHash, hashPassword } from '../../src/auth/password-hash.js'
import { MidgeProcess } from '../helpers/midge-process.js'

async function entry(user: string, password: string): Promise<string> {
  return `${user}:${formatPasswordHash(await hashPassword(password, { iterations: 1000 }))}\n`
}


test('SIGHUP reloads the password file, limits and logging without dropping connected clients; a bad reload keeps the running config', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-reload-'))
  const conf = join(dir, 'midge.conf')
  const passwd = join(dir, 'passwd')
  const logFile = join(dir, 'midge.log')
  // `user root`: stay root when the test runs as root, so the reload can read files in this 0700 directory.
  const config = (extra: string): string => `user root\nlistener 0 127.0.0.1\npassword_file passwd\nlog_dest stderr\nlog_dest file ${logFile}\n${extra}`
  writeFileSync(passwd, await entry('alice', 'a-pass'))
  writeFileSync(conf, config(''))
  const midge = new MidgeProcess(['-c', conf])
  const clients: mqtt.MqttClient[] = []
  const connect = (port: number, username: string, password: string, clientId: string): Promise<mqtt.MqttClient> =>
    midge.guard(mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username, password, clientId, reconnectPeriod: 0, connectTimeout: 10_000 }), `connect as ${clientId}`)
  try {
    const port = (await midge.opened(1))[0]?.port ?? 0
    const alice = await connect(port, 'alice', 'a-pass', 'alice-1')
    clients.push(alice)
    let aliceClosed = false
    alice.on('close', () => { aliceClosed = true })
    await alice.subscribeAsync('news/#', { qos: 1 })
    await assert.rejects(connect(port, 'bob', 'b-pass', 'bob-1'))

    // A new user, a reloadable limit, a non-reloadable change, and logrotate moving the log away.
    writeFileSync(passwd, (await entry('alice', 'a-pass')) + (await entry('bob', 'b-pass')))
    writeFileSync(conf, config('max_queued_messages 50\nset_tcp_nodelay false\n'))
    renameSync(logFile, `${logFile}.1`)
    const mark = midge.lines.length
    midge.child.kill('SIGHUP')
    await midge.waitFor(/Configuration reloaded\./, mark)
    assert.ok(midge.lines.slice(mark).some((l) => /Warning: 'set_tcp_nodelay' changed but needs a restart to take effect\./.test(l)), midge.lines.join('\n'))

    const bob = await connect(port, 'bob', 'b-pass', 'bob-1')
    clients.push(bob)
    const got = new Promise<string>((done) => alice.once('message', (t, p) => done(`${t} ${p.toString()}`)))
    await bob.publishAsync('news/today', 'reloaded', { qos: 1 })
    assert.equal(await midge.guard(got, 'message news/today'), 'news/today reloaded')
    assert.equal(aliceClosed, false)
    // Each line goes to stderr before the file: by now (later events) the reload's lines are in the new file.
    assert.ok(existsSync(logFile), 'the log file was not reopened')
    assert.match(readFileSync(logFile, 'utf8'), /Configuration reloaded\./)

    // A config that fails validation: the running one stays, and the log says why.
    writeFileSync(conf, config('max_inflight_messages lots\n'))
    const mark2 = midge.lines.length
    midge.child.kill('SIGHUP')
    await midge.waitFor(/Reload failed: the configuration has 1 error; keeping the running configuration\./, mark2)
    assert.ok(midge.lines.slice(mark2).some((l) => l.includes(`Error: ${conf}:6: option 'max_inflight_messages' expects an integer from 0 to 65535, got 'lots'`)), midge.lines.join('\n'))
    // A broken password file is refused the same way; bob's entry stays in force.
    writeFileSync(conf, config(''))
    writeFileSync(passwd, 'alice:not-a-hash\n')
    const mark3 = midge.lines.length
    midge.child.kill('SIGHUP')
    await midge.waitFor(/Reload failed: keeping the running configuration\./, mark3)
    const bob2 = await connect(port, 'bob', 'b-pass', 'bob-2')
    clients.push(bob2)
    const got2 = new Promise<string>((done) => alice.once('message', (t, p) => done(`${t} ${p.toString()}`)))
    await bob2.publishAsync('news/later', 'still here', { qos: 1 })
    assert.equal(await midge.guard(got2, 'message news/later'), 'news/later still here')
    assert.equal(aliceClosed, false)
  } finally {
    for (const c of clients) await c.endAsync()
    assert.equal(await midge.stop(), 0, midge.lines.join('\n'))
    rmSync(dir, { recursive: true, force: true })
  }
})
