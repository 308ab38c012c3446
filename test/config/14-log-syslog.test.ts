import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config/load.js'
import { SyslogSink } from '../../src/observability/log-sinks.js'
import { Logger } from '../../src/observability/logger.js'
import { MidgeProcess } from '../helpers/midge-process.js'

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

/**
 * Returns once the broker has served a client: its start-up (which ends with installing the signal handlers,
 * in the same turn as the "Opening … listen socket" line) is then over, so a signal sent now is handled.
 */
function served(port: number): void {
  const r = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-t', 'started', '-m', 'x'], { encoding: 'utf8', timeout: 15_000 })
  if (r.error !== undefined) throw new Error(`cannot run mosquitto_pub (Debian package mosquitto-clients): ${r.error.message}`)
  assert.equal(r.status, 0, `mosquitto_pub: ${r.stderr}`)
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

/**
 * The broker in a mount namespace of its own whose /dev is a fresh tmpfs with the usual character devices
 * and, given `devLog`, /dev/log pointing at it: the broker's real `log_dest syslog` path, without touching
 * the machine's /dev/log. `unshare -r` (a user namespace) when not root.
 */
function devNamespace(devLog: string | undefined, dir: string): string[] {
  const script = [
    'set -e',
    'old=$1; log=$2; shift 2',
    'mkdir -p "$old"',
    'mount --rbind /dev "$old"',
    'mount -t tmpfs tmpfs /dev',
    'for f in null zero random urandom full; do touch /dev/$f; mount --bind "$old/$f" /dev/$f; done',
    '[ -z "$log" ] || ln -s "$log" /dev/log',
    'exec "$@"',
  ].join('\n')
  return ['unshare', ...(process.getuid?.() === 0 ? [] : ['-r']), '-m', 'sh', '-c', script, 'sh', join(dir, 'olddev'), devLog ?? '']
}

test('the broker with log_dest syslog: its lines reach /dev/log as midge[pid] with their levels, from the start to the stop', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-syslog-'))
  const devLog = fakeDevLog(join(dir, 'log.sock'))
  let midge: MidgeProcess | undefined
  try {
    await devLog.bound
    const conf = join(dir, 'midge.conf')
    writeFileSync(conf, 'user root\nlistener 0 127.0.0.1\nallow_anonymous true\nlog_dest syslog\nlog_dest stderr\n')
    midge = new MidgeProcess(['-c', conf], { wrap: devNamespace(join(dir, 'log.sock'), dir) })
    served((await midge.opened(1))[0]?.port as number)
    const pid = midge.child.pid as number
    const find = async (re: RegExp): Promise<string> => {
      for (let i = 0; i < 150; i++) {
        const m = devLog.messages.find((x) => re.test(x))
        if (m !== undefined) return m
        await new Promise((r) => setTimeout(r, 100))
      }
      throw new Error(`no ${re} in syslog; got ${JSON.stringify(devLog.messages)}; broker log:\n${midge?.lines.join('\n')}`)
    }
    assert.match(await find(/midge version .* starting$/), new RegExp(`^<29>.* midge\\[${pid}\\]: midge version \\S+ starting$`))
    assert.match(await find(/Opening ipv4 listen socket/), new RegExp(`^<29>.* midge\\[${pid}\\]: Opening ipv4 listen socket on 127\\.0\\.0\\.1 port \\d+`))
    assert.ok(!midge.lines.some((l) => l.includes('log_dest syslog')), midge.lines.join('\n'))
    assert.equal(await midge.stop(), 0)
    await find(/terminating \(SIGTERM\)\.$/)
  } finally {
    await midge?.stop()
    devLog.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('log_facility 0-7 is local0-local7 in the syslog destination; other values name file:line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-syslog-'))
  try {
    const file = join(dir, 'c.conf')
    writeFileSync(file, 'log_facility 5\nlog_dest syslog\n')
    assert.deepEqual(loadConfig(file).global.logDest, [{ kind: 'syslog', facility: 5 }])
    writeFileSync(file, 'log_dest syslog\n')
    assert.deepEqual(loadConfig(file).global.logDest, [{ kind: 'syslog' }])
    writeFileSync(file, 'log_dest syslog\nlog_facility 8\n')
    assert.throws(() => loadConfig(file), (err: Error & { errors?: Array<{ message: string; line?: number }> }) =>
      (err.errors ?? []).some((e) => e.line === 2 && /log_facility/.test(e.message) && /0 to 7/.test(e.message)), 'log_facility 8 accepted')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('the broker with log_facility 5 logs to local5; a SIGHUP after changing it to 0 logs to local0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-syslog-'))
  const devLog = fakeDevLog(join(dir, 'log.sock'))
  let midge: MidgeProcess | undefined
  try {
    await devLog.bound
    const conf = join(dir, 'midge.conf')
    const write = (facility: number): void => writeFileSync(conf, `user root\nlistener 0 127.0.0.1\nallow_anonymous true\nlog_dest syslog\nlog_dest stderr\nlog_facility ${facility}\n`)
    write(5)
    midge = new MidgeProcess(['-c', conf], { wrap: devNamespace(join(dir, 'log.sock'), dir) })
    served((await midge.opened(1))[0]?.port as number)
    const pid = midge.child.pid as number
    const find = async (re: RegExp): Promise<string> => {
      for (let i = 0; i < 150; i++) {
        const m = devLog.messages.find((x) => re.test(x))
        if (m !== undefined) return m
        await new Promise((r) => setTimeout(r, 100))
      }
      throw new Error(`no ${re} in syslog; got ${JSON.stringify(devLog.messages)}; broker log:\n${midge?.lines.join('\n')}`)
    }
    // <PRI> = facility * 8 + severity: local5 is 21, notice 5 → 173; local0 is 16 → 133.
    assert.match(await find(/midge version .* starting$/), new RegExp(`^<173>.* midge\\[${pid}\\]: midge version \\S+ starting$`))
    write(0)
    midge.child.kill('SIGHUP')
    await midge.waitFor(/Configuration reloaded\./)
    assert.match(await find(/Configuration reloaded\.$/), new RegExp(`^<133>.* midge\\[${pid}\\]: Configuration reloaded\\.$`))
    assert.equal(await midge.stop(), 0, midge.lines.join('\n'))
  } finally {
    await midge?.stop()
    devLog.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('the broker with log_dest syslog and no /dev/log: it says so once, serves, and keeps logging to its other destinations', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-syslog-'))
  const conf = join(dir, 'midge.conf')
  writeFileSync(conf, 'user root\nlistener 0 127.0.0.1\nlog_dest syslog\nlog_dest stderr\n')
  const midge = new MidgeProcess(['-c', conf], { wrap: devNamespace(undefined, dir) })
  try {
    await midge.opened(1)
    await midge.waitFor(/midge: log_dest syslog: cannot log to \/dev\/log: .*No such file or directory; syslog lines are dropped until the next SIGHUP\./)
    midge.child.kill('SIGHUP')
    await midge.waitFor(/Configuration reloaded\./)
    // The retry on SIGHUP fails the same way and says so again: once per attempt, never per line.
    for (let i = 0; i < 100 && midge.lines.filter((l) => l.includes('log_dest syslog')).length < 2; i++) await new Promise((r) => setTimeout(r, 50))
    assert.equal(midge.lines.filter((l) => l.includes('log_dest syslog')).length, 2, midge.lines.join('\n'))
    assert.equal(await midge.stop(), 0, midge.lines.join('\n'))
  } finally {
    await midge.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('SyslogSink: a syslog that does not keep up costs at most 1 MiB of memory; the lines dropped meanwhile are counted in a warning once it reads again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-syslog-'))
  const out = join(dir, 'out')
  const gate = join(dir, 'gate')
  // Stands in for logger(1): reads nothing until the gate file exists, then copies its input to `out`.
  const slow = join(dir, 'slow-logger')
  writeFileSync(slow, `#!/bin/sh\nwhile [ ! -e '${gate}' ]; do sleep 0.05; done\nexec cat > '${out}'\n`, { mode: 0o755 })
  const warnings: string[] = []
  const sink = new SyslogSink(join(dir, 'log'), (m) => warnings.push(m), slow)
  try {
    const line = 'x'.repeat(1000)
    for (let i = 0; i < 3000; i++) sink.write(line, 'information', line)
    assert.ok(sink.backlog <= 1024 * 1024 + 2000, `backlog ${sink.backlog}`)
    writeFileSync(gate, '')
    for (let i = 0; i < 200 && sink.backlog > 0; i++) await new Promise((r) => setTimeout(r, 50))
    assert.equal(sink.backlog, 0)
    sink.write('after', 'notice', 'after')
    sink.close()
    let text = ''
    for (let i = 0; i < 200 && !text.includes('after'); i++) {
      await new Promise((r) => setTimeout(r, 50))
      try { text = (await import('node:fs')).readFileSync(out, 'utf8') } catch { /* not yet */ }
    }
    const dropped = /^<28>Warning: (\d+) log lines were not sent to syslog: it did not keep up\.$/m.exec(text)
    assert.ok(dropped !== null, text.slice(-300))
    const kept = text.split('\n').filter((l) => l.endsWith(line)).length
    assert.equal(kept + Number(dropped[1]), 3000)
    assert.match(text, /\n<29>after\n$/)
    assert.deepEqual(warnings, [])
  } finally {
    sink.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
