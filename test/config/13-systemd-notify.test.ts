import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Logger } from '../../src/observability/logger.js'
import { SystemdNotifier } from '../../src/observability/systemd-notify.js'
import { MidgeProcess } from '../helpers/midge-process.js'

/**
 * Plays systemd's side of sd_notify(3): a unix datagram socket (Node cannot open one, python3 can) whose
 * datagrams are collected. The fds systemd-notify's barrier sends are dropped by recv(), which is what
 * releases it, as systemd's processing does.
 */
class NotifySocket {
  readonly messages: string[] = []
  private readonly child: ChildProcess
  private waiters: Array<() => void> = []
  readonly bound: Promise<void>

  constructor(readonly path: string) {
    const script = [
      'import socket, sys, json',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      's.bind(sys.argv[1])',
      'print("bound", flush=True)',
      'while True: print(json.dumps(s.recv(4096).decode()), flush=True)',
    ].join('\n')
    this.child = spawn('python3', ['-u', '-c', script, path], { stdio: ['ignore', 'pipe', 'inherit'] })
    let partial = ''
    let bound: () => void = () => {}
    let failed: (err: Error) => void = () => {}
    this.bound = new Promise((r, f) => { bound = r; failed = f })
    this.child.on('error', (err) => failed(new Error(`cannot run python3 (Debian package python3): ${err.message}`)))
    this.child.on('exit', (code) => failed(new Error(`python3 exited (status ${code}) before binding ${path}`)))
    this.child.stdout?.on('data', (d: Buffer) => {
      partial += d.toString()
      let nl: number
      while ((nl = partial.indexOf('\n')) !== -1) {
        const line = partial.slice(0, nl)
        partial = partial.slice(nl + 1)
        if (line === 'bound') bound()
        else this.messages.push(JSON.parse(line) as string)
        for (const w of this.waiters) w()
      }
    })
  }

  /** The first message (from index `from`) with the line `VAR=…` matching `re`. */
  async waitFor(re: RegExp, from: number, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.messages.slice(from).find((m) => m.split('\n').some((l) => re.test(l)))
      if (found !== undefined) return found
      if (Date.now() > deadline) throw new Error(`no ${re} on NOTIFY_SOCKET within ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`)
      await new Promise<void>((r) => { const t = setTimeout(r, 200); this.waiters.push(() => { clearTimeout(t); r() }) })
      this.waiters = []
    }
  }

  close(): void {
    this.child.kill()
  }
}

test('NOTIFY_SOCKET: READY=1 once the listeners are open, RELOADING=1 with MONOTONIC_USEC then READY=1 on SIGHUP, STOPPING=1 on SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-notify-'))
  const sock = new NotifySocket(join(dir, 'notify.sock'))
  let midge: MidgeProcess | undefined
  try {
    await sock.bound
    const conf = join(dir, 'midge.conf')
    writeFileSync(conf, 'user root\nlistener 0 127.0.0.1\nallow_anonymous true\n')
    midge = new MidgeProcess(['-c', conf], { env: { ...process.env, NOTIFY_SOCKET: sock.path } })
    const ready = await midge.guard(sock.waitFor(/^READY=1$/, 0), 'READY=1')
    // The listener was logged before READY=1 was sent, and the broker is serving.
    assert.ok(midge.lines.some((l) => /Opening ipv4 listen socket on 127\.0\.0\.1 port \d+/.test(l)), midge.lines.join('\n'))
    assert.match(ready, /^STATUS=.*listen/m)
    assert.equal(sock.messages.filter((m) => m.includes('READY=1')).length, 1)

    const mark = sock.messages.length
    midge.child.kill('SIGHUP')
    const reloading = await midge.guard(sock.waitFor(/^RELOADING=1$/, mark), 'RELOADING=1')
    const usec = Number(/^MONOTONIC_USEC=(\d+)$/m.exec(reloading)?.[1])
    assert.ok(usec > 0, reloading)
    await midge.guard(sock.waitFor(/^READY=1$/, mark + 1), 'READY=1 after the reload')
    await midge.waitFor(/Configuration reloaded\./)
    const order = sock.messages.slice(mark).map((m) => m.split('\n')[0])
    assert.deepEqual(order.filter((m) => m !== 'BARRIER=1'), ['RELOADING=1', 'READY=1'])

    const mark2 = sock.messages.length
    midge.child.kill('SIGTERM')
    await sock.waitFor(/^STOPPING=1$/, mark2)
    assert.equal(await midge.exited, 0)
  } finally {
    await midge?.stop()
    sock.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('NOTIFY_SOCKET: no READY=1 when the start fails (pid_file whose folder cannot be made: a file is in the way)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-notify-'))
  const sock = new NotifySocket(join(dir, 'notify.sock'))
  try {
    await sock.bound
    const conf = join(dir, 'midge.conf')
    writeFileSync(conf, `user root\nlistener 0 127.0.0.1\npid_file ${join(conf, 'run', 'midge.pid')}\n`)
    const midge = new MidgeProcess(['-c', conf], { env: { ...process.env, NOTIFY_SOCKET: sock.path } })
    assert.equal(await midge.exited, 1)
    assert.ok(midge.lines.some((l) => l.includes(`pid_file ${join(conf, 'run', 'midge.pid')}: cannot create the directory`)), midge.lines.join('\n'))
    assert.deepEqual(sock.messages.filter((m) => m.includes('READY=1')), [])
  } finally {
    sock.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('packaging/midge.service: systemd-analyze verify accepts it (no warnings), and it has the service settings docs/service.md promises', () => {
  const unit = readFileSync(resolve(import.meta.dirname, '../../../packaging/midge.service'), 'utf8')
  for (const line of [
    'Type=notify', 'NotifyAccess=all', 'ExecReload=/bin/kill -HUP $MAINPID', 'Restart=on-failure',
    'RuntimeDirectory=midge', 'StateDirectory=midge', 'LogsDirectory=midge', 'WorkingDirectory=/var/lib/midge',
    'NoNewPrivileges=true', 'ProtectSystem=strict', 'ProtectHome=true', 'PrivateTmp=true', 'AmbientCapabilities=CAP_NET_BIND_SERVICE',
  ]) assert.ok(unit.split('\n').includes(line), `midge.service lacks ${line}`)
  const dir = mkdtempSync(join(tmpdir(), 'midge-unit-'))
  try {
    // verify also checks that ExecStart exists: point it at this checkout's bin/midge.js.
    const verify = (text: string): { status: number | null; out: string } => {
      const file = join(dir, 'midge.service')
      writeFileSync(file, text.replace('/usr/local/bin/midge', resolve(import.meta.dirname, '../../../bin/midge.js')))
      const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' })
      if (r.error !== undefined) throw new Error(`cannot run systemd-analyze (Debian package systemd): ${r.error.message}`)
      return { status: r.status, out: `${r.stdout}${r.stderr}` }
    }
    const ok = verify(unit)
    assert.equal(ok.status, 0, ok.out)
    assert.equal(ok.out.trim(), '', ok.out)
    // The check has teeth: a misspelt setting is reported.
    const bad = verify(unit.replace('Type=notify', 'Type=notfy'))
    assert.match(bad.out, /notfy/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('NOTIFY_SOCKET set but systemd-notify cannot run: one warning that names the package, and the broker carries on', async () => {
  const logged: string[] = []
  const logger = new Logger({ sinks: [{ write: (line) => logged.push(line) }], timestamp: false })
  const n = new SystemdNotifier('/run/nothing/notify', logger, 'midge-test-no-such-systemd-notify')
  await n.ready('up')
  await n.reloading()
  assert.deepEqual(logged, ['Warning: NOTIFY_SOCKET is set but the message to systemd was not sent: cannot run midge-test-no-such-systemd-notify (Debian package systemd): spawn midge-test-no-such-systemd-notify ENOENT. A Type=notify unit will not see the broker as started.'])
  // Without NOTIFY_SOCKET nothing is attempted.
  const quiet = new SystemdNotifier(undefined, logger, 'midge-test-no-such-systemd-notify')
  await quiet.ready()
  assert.equal(logged.length, 1)
})
