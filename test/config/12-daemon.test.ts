import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type AddressInfo } from 'node:net'
import mqtt from 'mqtt'
import { MidgeProcess } from '../helpers/midge-process.js'

/** Runs `midge -d ARGS` and waits for the parent to return (bounded: a parent that never returns fails the test). */
async function runDaemon(args: string[]): Promise<{ code: number | null; out: string; ms: number }> {
  const started = Date.now()
  // 'exit', not 'close': a daemon that kept the parent's pipes open must not hold the test.
  const r = await MidgeProcess.run(['-d', ...args], { until: 'exit' })
  return { ...r, ms: Date.now() - started }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

async function gone(pid: number): Promise<void> {
  for (let i = 0; i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50))
  assert.equal(alive(pid), false, `the daemon (pid ${pid}) did not stop on SIGTERM`)
}

test('-d: the parent exits non-zero and prints the reason when the broker fails after the fork (pid_file under a file)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-daemon-'))
  try {
    const conf = join(dir, 'midge.conf')
    // The config loads (the parent checks that), but the start-up checks, in the background copy, find
    // that pid_file's folder cannot be made: its parent is a file.
    writeFileSync(conf, `user root\nlistener 0 127.0.0.1\npid_file ${join(conf, 'run', 'midge.pid')}\nlog_dest file ${join(dir, 'midge.log')}\n`)
    const r = await runDaemon(['-c', conf])
    assert.equal(r.code, 1, r.out)
    assert.ok(r.out.includes(`${conf}:3: pid_file ${join(conf, 'run', 'midge.pid')}: cannot create the directory ${join(conf, 'run')}: ${conf} is not a directory`), r.out)
    // The background copy gave up before creating anything: no log file either.
    assert.equal(existsSync(join(dir, 'midge.log')), false)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('-d: the parent exits 0 only once the listeners are open, and the daemon serves', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-daemon-'))
  const pidFile = join(dir, 'midge.pid')
  const logFile = join(dir, 'midge.log')
  let pid = 0
  try {
    const conf = join(dir, 'midge.conf')
    writeFileSync(conf, `user root\nlistener 0 127.0.0.1\nallow_anonymous true\npid_file ${pidFile}\nlog_dest file ${logFile}\n`)
    const r = await runDaemon(['-c', conf])
    assert.equal(r.code, 0, r.out)
    // By the time the parent returned, the listener's line is in the log and the pid file is written.
    assert.ok(existsSync(pidFile), 'no pid file when -d returned')
    pid = Number(readFileSync(pidFile, 'utf8').trim())
    assert.ok(pid > 0 && alive(pid), `the daemon (pid ${pid}) is not running`)
    const m = /Opening ipv4 listen socket on 127\.0\.0\.1 port (\d+)/.exec(readFileSync(logFile, 'utf8'))
    assert.ok(m !== null, readFileSync(logFile, 'utf8'))
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${m[1]}`, { reconnectPeriod: 0, connectTimeout: 10_000 })
    await client.endAsync()
  } finally {
    if (pid > 0 && alive(pid)) { process.kill(pid, 'SIGTERM'); await gone(pid) }
    rmSync(dir, { recursive: true, force: true })
  }
})

test('-d: a port already in use fails the start in the background copy; the parent prints it and exits 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-daemon-'))
  const busy = createServer()
  try {
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r))
    const port = (busy.address() as AddressInfo).port
    const conf = join(dir, 'midge.conf')
    writeFileSync(conf, `user root\nlistener ${port} 127.0.0.1\nlog_dest file ${join(dir, 'midge.log')}\n`)
    const r = await runDaemon(['-c', conf])
    assert.equal(r.code, 1, r.out)
    assert.match(r.out, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`))
  } finally {
    busy.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
