/**
 * `midge install-service --root DIR` with a PATH whose useradd and systemctl are recording fakes: the files it
 * writes (owners, modes, content), the commands it runs, and `systemd-analyze verify` on the unit it wrote.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { serviceUser, systemctlCommands } from '../../src/cli/commands/install-service.js'

const ROOT = resolve(import.meta.dirname, '../../..')

/**
 * The built package copied to a folder every user can read: install-service checks that the service's user
 * can run the midge it installs, and a checkout may be anywhere (under /home or /root on a CI machine).
 */
const MIDGE = ((): string => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-install-service-pkg-'))
  chmodSync(dir, 0o755)
  for (const part of ['bin', 'dist/src', 'packaging', 'package.json']) cpSync(join(ROOT, part), join(dir, part), { recursive: true })
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'bin', 'midge.js')
})()

interface Image { root: string; calls: () => string[][]; run: (args: string[]) => { status: number | null; out: string }; close: () => void }

/**
 * A system image at a temporary root with `files`, and fakes of useradd (which adds the user to the image's
 * /etc/passwd, or exits 9 when it is there, as `useradd --prefix` does) and systemctl; each appends its
 * arguments as one JSON line to calls.log.
 */
function image(files: Record<string, string>): Image {
  const dir = mkdtempSync(join(tmpdir(), 'midge-install-service-'))
  const root = join(dir, 'root')
  const bin = join(dir, 'bin')
  mkdirSync(bin)
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true })
    writeFileSync(join(root, p), text)
  }
  const log = join(dir, 'calls.log')
  const record = `python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$(basename "$0")" "$@" >> '${log}'`
  writeFileSync(join(bin, 'systemctl'), `#!/bin/sh\n${record}\n`, { mode: 0o755 })
  writeFileSync(join(bin, 'useradd'), [
    '#!/bin/sh', record,
    'for last; do :; done',
    'prefix=; [ "$1" = --prefix ] && prefix=$2',
    'grep -q "^$last:" "$prefix/etc/passwd" 2>/dev/null && exit 9',
    'mkdir -p "$prefix/etc" && echo "$last:x:990:990::/var/lib/midge:/usr/sbin/nologin" >> "$prefix/etc/passwd"',
  ].join('\n') + '\n', { mode: 0o755 })
  return {
    root,
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]) : []),
    run: (args) => {
      const r = spawnSync(process.execPath, [MIDGE, 'install-service', '--root', root, ...args], { cwd: '/', encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}` } })
      return { status: r.status, out: `${r.stdout}${r.stderr}` }
    },
    close: () => rmSync(dir, { recursive: true, force: true }),
  }
}

function verify(unitFile: string): string {
  const r = spawnSync('systemd-analyze', ['verify', unitFile], { encoding: 'utf8' })
  if (r.error !== undefined) throw new Error(`cannot run systemd-analyze (Debian package systemd): ${r.error.message}`)
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`)
  return `${r.stdout}${r.stderr}`.trim()
}

function mode(file: string): string {
  const st = statSync(file)
  return `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`
}

test('install-service into an image: the unit runs this midge with the config as the new user midge; logrotate rule; useradd and systemctl enable', () => {
  const img = image({
    '/etc/midge/midge.conf': 'user midge\npersistence true\npersistence_location /var/lib/midge/\nlog_dest file /var/log/midge/midge.log\nlistener 1883 127.0.0.1\nallow_anonymous true\n',
    '/etc/passwd': 'root:x:0:0:root:/root:/bin/bash\n',
  })
  try {
    const r = img.run([])
    assert.equal(r.status, 0, r.out)
    const { root } = img
    assert.deepEqual(img.calls(), [
      ['useradd', '--prefix', root, '--system', '--user-group', '--home-dir', '/var/lib/midge', '--no-create-home', '--shell', '/usr/sbin/nologin', 'midge'],
      ['systemctl', `--root=${root}`, 'enable', 'midge.service'],
    ])
    assert.match(readFileSync(join(root, 'etc/passwd'), 'utf8'), /^midge:x:990:/m)
    const unitFile = join(root, 'etc/systemd/system/midge.service')
    assert.equal(mode(unitFile), '0:0 644')
    const unit = readFileSync(unitFile, 'utf8').split('\n')
    for (const line of [
      `ExecStart=${realpathSync(process.execPath)} ${realpathSync(MIDGE)} -c /etc/midge/midge.conf`,
      'User=midge', 'Group=midge', 'RuntimeDirectory=midge', 'StateDirectory=midge', 'LogsDirectory=midge',
      'Type=notify', 'ExecReload=/bin/kill -HUP $MAINPID', 'ProtectSystem=strict', 'AmbientCapabilities=CAP_NET_BIND_SERVICE',
    ]) assert.ok(unit.includes(line), `the unit lacks ${line}:\n${unit.join('\n')}`)
    assert.ok(!unit.some((l) => l.startsWith('ReadWritePaths=')), unit.join('\n'))
    assert.equal(verify(unitFile), '')
    const rule = join(root, 'etc/logrotate.d/midge')
    assert.equal(mode(rule), '0:0 644')
    const text = readFileSync(rule, 'utf8')
    assert.match(text, /^\/var\/log\/midge\/midge\.log \{$/m)
    assert.match(text, /^\tsu midge midge$/m)
    // Run again: the user exists now (useradd says 9), the files are rewritten, nothing fails.
    const again = img.run([])
    assert.equal(again.status, 0, again.out)
  } finally {
    img.close()
  }
})

test("install-service --config /etc/mosquitto/mosquitto.conf --disable-mosquitto: Mosquitto's user and Debian's folders become the service's", () => {
  const img = image({
    '/etc/mosquitto/mosquitto.conf': [
      'pid_file /run/mosquitto/mosquitto.pid', 'persistence true', 'persistence_location /var/lib/mosquitto/',
      'log_dest file /var/log/mosquitto/mosquitto.log', 'listener 1883', 'allow_anonymous true', 'acme_state_dir /srv/midge-acme',
    ].join('\n') + '\n',
    '/etc/passwd': 'root:x:0:0:root:/root:/bin/bash\nmosquitto:x:102:102::/var/lib/mosquitto:/usr/sbin/nologin\n',
  })
  try {
    const r = img.run(['--config', '/etc/mosquitto/mosquitto.conf', '--disable-mosquitto'])
    assert.equal(r.status, 0, r.out)
    const { root } = img
    assert.deepEqual(img.calls(), [
      ['useradd', '--prefix', root, '--system', '--user-group', '--home-dir', '/var/lib/midge', '--no-create-home', '--shell', '/usr/sbin/nologin', 'mosquitto'],
      ['systemctl', `--root=${root}`, 'disable', 'mosquitto.service'],
      ['systemctl', `--root=${root}`, 'enable', 'midge.service'],
    ])
    // useradd found it (status 9): the image's passwd is unchanged.
    assert.equal(readFileSync(join(root, 'etc/passwd'), 'utf8').split('\n').filter((l) => l.startsWith('mosquitto:')).length, 1)
    const unitFile = join(root, 'etc/systemd/system/midge.service')
    const unit = readFileSync(unitFile, 'utf8').split('\n')
    for (const line of [
      'User=mosquitto', 'Group=mosquitto', 'RuntimeDirectory=midge mosquitto', 'StateDirectory=midge mosquitto',
      'LogsDirectory=midge mosquitto', 'ReadWritePaths=/srv/midge-acme', `ExecStart=${realpathSync(process.execPath)} ${realpathSync(MIDGE)} -c /etc/mosquitto/mosquitto.conf`,
    ]) assert.ok(unit.includes(line), `the unit lacks ${line}:\n${unit.join('\n')}`)
    assert.equal(verify(unitFile), '')
    const text = readFileSync(join(root, 'etc/logrotate.d/midge'), 'utf8')
    assert.match(text, /^\/var\/log\/mosquitto\/mosquitto\.log \{$/m)
    assert.match(text, /^\tsu mosquitto mosquitto$/m)
    assert.match(text, /kill -HUP "\$\(cat \/run\/mosquitto\/mosquitto\.pid\)"/)
    // Without a log file there is nothing to rotate: no rule.
  } finally {
    img.close()
  }
})

test('install-service without a configuration says to run midge init; with a broken one it names file:line; nothing is installed', () => {
  const img = image({ '/etc/passwd': 'root:x:0:0:root:/root:/bin/bash\n' })
  try {
    const r = img.run([])
    assert.equal(r.status, 1, r.out)
    assert.match(r.out, /there is no configuration at .*\/etc\/midge\/midge\.conf: write one with 'sudo midge init'/)
    mkdirSync(join(img.root, 'etc/midge'), { recursive: true })
    writeFileSync(join(img.root, 'etc/midge/midge.conf'), 'listener 1883\nlog_dest nowhere\n')
    const bad = img.run([])
    assert.equal(bad.status, 1, bad.out)
    assert.match(bad.out, /midge\.conf:2/)
    assert.deepEqual(img.calls(), [])
    assert.ok(!existsSync(join(img.root, 'etc/systemd/system/midge.service')))
    const usage = spawnSync(process.execPath, [MIDGE, 'install-service', '--bogus'], { encoding: 'utf8' })
    assert.equal(usage.status, 1)
    assert.match(usage.stderr, /unknown option '--bogus'\nUsage: midge install-service/)
  } finally {
    img.close()
  }
})

test('on the running system (no --root): daemon-reload, enable, and disable --now mosquitto first when asked', () => {
  assert.deepEqual(systemctlCommands('/', false), [['systemctl', 'daemon-reload'], ['systemctl', 'enable', 'midge.service']])
  assert.deepEqual(systemctlCommands('/', true), [
    ['systemctl', 'disable', '--now', 'mosquitto.service'], ['systemctl', 'daemon-reload'], ['systemctl', 'enable', 'midge.service'],
  ])
})

test("the service's user: --user, else the configuration's user, else mosquitto for /etc/mosquitto, else midge", () => {
  assert.equal(serviceUser({ user: 'alice', config: '/etc/mosquitto/mosquitto.conf' }, 'broker'), 'alice')
  assert.equal(serviceUser({ user: undefined, config: '/etc/mosquitto/mosquitto.conf' }, 'broker'), 'broker')
  assert.equal(serviceUser({ user: undefined, config: '/etc/mosquitto/mosquitto.conf' }, undefined), 'mosquitto')
  assert.equal(serviceUser({ user: undefined, config: '/etc/midge/midge.conf' }, undefined), 'midge')
})
