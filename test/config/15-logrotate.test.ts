import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { MidgeProcess } from '../helpers/midge-process.js'

test('packaging/midge.logrotate: logrotate moves the log away, its postrotate SIGHUPs the broker (pid_file), which writes on in a new file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-logrotate-'))
  const logFile = join(dir, 'midge.log')
  const pidFile = join(dir, 'midge.pid')
  const conf = join(dir, 'midge.conf')
  writeFileSync(conf, `user root\nlistener 0 127.0.0.1\nlog_dest file ${logFile}\nlog_dest stderr\npid_file ${pidFile}\n`)
  const midge = new MidgeProcess(['-c', conf])
  try {
    await midge.opened(1)
    for (let i = 0; i < 100 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50))
    // The shipped rule, pointed at this test's files; `su root root` because the user midge need not exist here.
    // Without a running midge.service the postrotate script takes its pid_file branch.
    const rule = readFileSync(resolve(import.meta.dirname, '../../../packaging/midge.logrotate'), 'utf8')
      .replaceAll('/var/log/midge/midge.log', logFile)
      .replaceAll('/run/midge/midge.pid', pidFile)
      .replace('su midge midge', 'su root root')
    assert.notEqual(rule, readFileSync(resolve(import.meta.dirname, '../../../packaging/midge.logrotate'), 'utf8'))
    const ruleFile = join(dir, 'midge.logrotate')
    writeFileSync(ruleFile, rule)
    const mark = midge.lines.length
    const r = spawnSync('logrotate', ['-f', '-s', join(dir, 'logrotate.state'), ruleFile], { encoding: 'utf8' })
    if (r.error !== undefined) throw new Error(`cannot run logrotate (Debian package logrotate): ${r.error.message}`)
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`)
    await midge.waitFor(/Configuration reloaded\./, mark)
    // delaycompress: the first rotation is plain midge.log.1, with the start-up lines.
    assert.match(readFileSync(`${logFile}.1`, 'utf8'), /Opening ipv4 listen socket/)
    // Each line goes to the file before stderr: the reload's lines are in the new file by now.
    const fresh = readFileSync(logFile, 'utf8')
    assert.match(fresh, /Configuration reloaded\./)
    assert.doesNotMatch(fresh, /Opening ipv4 listen socket/)
  } finally {
    await midge.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})
