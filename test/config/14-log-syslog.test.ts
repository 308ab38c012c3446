import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config/load.js'
import { SyslogSink } from '../../src/observability/log-sinks.js'
import { Logger } from '../../src/observability/logger.js'
import { MidgeProcess } from './midge-process.js'

/** A unix datagram socket standing in for /dev/log (Node cannot open one; python3 can): its datagrams, in order. */
function fakeDevLog(path: string): { messages: string[]; bound: Promise<void>; next: (n: number) => Promise<string[]>; close: () => void } {
  const script = [
    'import socket, sys, json',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
    's.bind(sys.argv[1])',
    'print("bound", flush=True)',
    'while True: print(json.dumps(s.recv(65536).decode()), flush=True)',
  ].join('\n')
  const child = spawn('python3', ['-u', '-c', script, path], { stdio: ['ignore', 'pipe', 'inherit'] })
  const messages: string[] = []
  let partial = ''
  let bound: () => void = () => {}
  let failed: (err: Error) => void = () => {}
  const boundP = new Promise<void>((r, f) => { bound = r; failed = f })
  child.on('error', (err) => failed(new Error(`cannot run python3 (Debian package python3): ${err.message}`)))
  child.on('exit', (code) => failed(new Error(`python3 exited (status ${code}) before binding ${path}`)))
  child.stdout.on('data', (d: Buffer) => {
    partial += d.toString()
    let nl: number
    while ((nl = partial.indexOf('\n')) !== -1) {
      const line = partial.slice(0, nl)
      partial = partial.slice(nl + 1)
      if (line === 'bound') bound()
      else messages.push(JSON.parse(line) as string)
    }
  })
  const next = async (n: number): Promise<string[]> => {
    for (let i = 0; i < 150 && messages.length < n; i++) await new Promise((r) => setTimeout(r, 100))
    assert.ok(messages.length >= n, `expected ${n} syslog datagrams, got ${JSON.stringify(messages)}`)
    return messages
  }
  return { messages, bound: boundP, next, close: () => child.kill() }
}

test('log_dest syslog is accepted (and log_dest dlt still names what is supported)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-syslog-'))
  try {
    const file = join(dir, 'c.conf')
    writeFileSync(file, 'log_dest syslog\nlog_dest stderr\n')
    assert.deepEqual(loadConfig(file).global.logDest, [{ kind: 'syslog' }, { kind: 'stderr' }])
    writeFileSync(file, 'log_dest dlt\n')
    assert.throws(() => loadConfig(file), (err: Error & { errors?: Array<{ message: string }> }) =>
      (err.errors ?? []).some((e) => /log_dest dlt is not supported yet; use stdout, stderr, file PATH, syslog or topic/.test(e.message)))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('SyslogSink: each line is one datagram with the daemon facility and its level, tagged midge[pid], without the timestamp', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-syslog-'))
  const devLog = fakeDevLog(join(dir, 'log'))
  const warnings: string[] = []
  let sink: SyslogSink | undefined
  try {
    await devLog.bound
    sink = new SyslogSink(join(dir, 'log'), (m) => warnings.push(m))
    const log = new Logger({ sinks: [sink], types: ['error', 'warning', 'notice', 'information', 'debug', 'subscribe'] })
    log.error('Error: one')
    log.warning('Warning: two')
    log.notice('three')
    log.info('four')
    log.debug('five')
    log.log('subscribe', 'six')
    const got = await devLog.next(6)
    const pid = process.pid
    // daemon (3) * 8 + err 3, warning 4, notice 5, info 6, debug 7; subscribe is info, as in Mosquitto.
    const want: Array<[number, string]> = [[27, 'Error: one'], [28, 'Warning: two'], [29, 'three'], [30, 'four'], [31, 'five'], [30, 'six']]
    assert.equal(got.length, 6, JSON.stringify(got))
    got.forEach((m, i) => {
      const [pri, text] = want[i] as [number, string]
      assert.match(m, new RegExp(`^<${pri}>.* midge\\[${pid}\\]: ${text}$`), m)
    })
    assert.deepEqual(warnings, [])
  } finally {
    sink?.close()
    devLog.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('SyslogSink: no syslog socket gives one warning, not one per line; reopen() (SIGHUP) tries again and then delivers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-syslog-'))
  const path = join(dir, 'log')
  const warnings: string[] = []
  const sink = new SyslogSink(path, (m) => warnings.push(m))
  let devLog: ReturnType<typeof fakeDevLog> | undefined
  try {
    for (let i = 0; i < 100 && warnings.length === 0; i++) await new Promise((r) => setTimeout(r, 50))
    sink.write('lost 1', 'notice', 'lost 1')
    sink.write('lost 2', 'notice', 'lost 2')
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(warnings.length, 1, JSON.stringify(warnings))
    assert.match(warnings[0] ?? '', new RegExp(`midge: log_dest syslog: cannot log to ${path}: .*No such file or directory`))
    devLog = fakeDevLog(path)
    await devLog.bound
    sink.reopen()
    sink.write('found', 'notice', 'found')
    const got = await devLog.next(1)
    assert.match(got[0] ?? '', /: found$/)
  } finally {
    sink.close()
    devLog?.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('the broker starts with log_dest syslog and no /dev/log: it says so once and keeps logging to its other destinations', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-syslog-'))
  const conf = join(dir, 'midge.conf')
  writeFileSync(conf, 'user root\nlistener 0 127.0.0.1\nlog_dest syslog\nlog_dest stderr\n')
  const midge = new MidgeProcess(['-c', conf])
  try {
    await midge.opened(1)
    if (process.platform === 'linux' && !(await import('node:fs')).existsSync('/dev/log')) {
      await midge.waitFor(/midge: log_dest syslog: cannot log to \/dev\/log/)
    }
    assert.ok(midge.lines.filter((l) => l.includes('log_dest syslog')).length <= 1, midge.lines.join('\n'))
    assert.equal(await midge.stop(), 0, midge.lines.join('\n'))
  } finally {
    await midge.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})
