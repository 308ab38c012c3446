/**
 * `midge init`'s refusals and its password prompt: an existing set-up is not replaced without --force
 * (and --force keeps the CA, so clients keep their ca.crt); the password is asked twice without echo on a
 * pseudo-terminal (python3's pty module) through `midge passwd`'s own prompt; mismatched passwords, a
 * missing openssl or bad options leave nothing behind; the default certificate names this machine; a
 * missing broker user is created as a system account.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parsePasswordFile } from '../../src/auth/password-file.js'
import { verifyPassword } from '../../src/auth/password-hash.js'
import { MIDGE } from '../helpers/midge-process.js'
import { initArgs, layout, runMidge, tempRoot } from './init-harness.js'

let root: string
before(() => { root = tempRoot('midge-init-files-') })
after(() => { fs.rmSync(root, { recursive: true, force: true }) })

async function passwordOk(file: string, user: string, password: string): Promise<boolean> {
  const entry = parsePasswordFile(fs.readFileSync(file, 'utf8'), file).get(user)
  assert.ok(entry !== undefined, `${user} not in ${file}`)
  return verifyPassword(entry, Buffer.from(password))
}

test('an existing set-up is refused without --force; --force re-issues the server certificate with the same CA and keeps the other users', async () => {
  const l = layout(path.join(root, 'force'))
  const first = await runMidge([...initArgs(l), '--user', 'alice', '--host', 'broker.lan'], 'first\n')
  assert.equal(first.code, 0, first.stderr)
  const before = Object.fromEntries(['midge.conf', 'passwd', 'ca.crt', 'ca.key', 'server.crt'].map((f) => [f, fs.readFileSync(path.join(l.etc, f), 'utf8')]))

  const again = await runMidge([...initArgs(l), '--user', 'carol', '--host', 'broker.lan'], 'second\n')
  assert.equal(again.code, 1)
  assert.match(again.stderr, /midge\.conf, .*passwd, .*server\.crt, .*server\.key already exist; nothing was changed\. --force replaces them \(the CA and the password file's other users are kept\)/)
  for (const [f, text] of Object.entries(before)) assert.equal(fs.readFileSync(path.join(l.etc, f), 'utf8'), text, `${f} changed`)

  const forced = await runMidge([...initArgs(l), '--user', 'carol', '--host', 'broker.lan', '--host', '10.9.8.7', '--force'], 'second\n')
  assert.equal(forced.code, 0, forced.stderr)
  assert.match(forced.stdout, /kept the existing CA .*ca\.crt/)
  assert.equal(fs.readFileSync(path.join(l.etc, 'ca.crt'), 'utf8'), before['ca.crt'])
  assert.equal(fs.readFileSync(path.join(l.etc, 'ca.key'), 'utf8'), before['ca.key'])
  const leaf = new X509Certificate(fs.readFileSync(path.join(l.etc, 'server.crt')))
  assert.notEqual(leaf.serialNumber, new X509Certificate(before['server.crt']!).serialNumber)
  assert.equal(leaf.verify(new X509Certificate(before['ca.crt']!).publicKey), true)
  assert.match(leaf.subjectAltName ?? '', /DNS:broker\.lan, IP Address:10\.9\.8\.7, DNS:localhost/)
  assert.equal(await passwordOk(l.passwd, 'carol', 'second'), true)
  assert.equal(await passwordOk(l.passwd, 'alice', 'first'), true, 'the password file lost its other users')
})

test('a --force run whose result fails midge check puts every replaced file back', async () => {
  const l = layout(path.join(root, 'restore'))
  const first = await runMidge([...initArgs(l), '--user', 'alice', '--host', 'broker.lan'], 'first\n')
  assert.equal(first.code, 0, first.stderr)
  const files = ['midge.conf', 'passwd', 'ca.crt', 'ca.key', 'server.crt', 'server.key']
  const before = Object.fromEntries(files.map((f) => [f, fs.readFileSync(path.join(l.etc, f), 'utf8')]))
  // An existing root-owned 0755 folder as persistence_location: init leaves existing folders' owners
  // alone, and mosquitto cannot write there, so the check fails after everything was written.
  const rootsDir = path.join(root, 'restore-roots-dir')
  fs.mkdirSync(rootsDir, { mode: 0o755 })
  const r = await runMidge([...initArgs(l), '--user', 'alice', '--host', 'other.lan', '--data-dir', rootsDir, '--force'], 'second\n')
  assert.equal(r.code, 1, r.stdout)
  assert.match(r.stderr, /persistence_location .*restore-roots-dir.*permission denied for user 'mosquitto'[\s\S]*midge init: the set-up above would not start; the files are as they were before\./)
  for (const f of files) assert.equal(fs.readFileSync(path.join(l.etc, f), 'utf8'), before[f], `${f} was not put back`)
  assert.equal(await passwordOk(l.passwd, 'alice', 'first'), true)
  assert.deepEqual(fs.readdirSync(l.etc).sort(), [...files].sort(), 'a temporary file was left behind')
})

test('without --host the certificate names this machine: its host name, NAME.local, localhost and its addresses', async () => {
  const l = layout(path.join(root, 'names'))
  const r = await runMidge([...initArgs(l), '--user', 'alice'], 'pw\n')
  assert.equal(r.code, 0, r.stderr)
  const san = new X509Certificate(fs.readFileSync(path.join(l.etc, 'server.crt'))).subjectAltName ?? ''
  const host = os.hostname()
  assert.ok(san.startsWith(`DNS:${host}, DNS:${host}.local, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1`), san)
  for (const a of Object.values(os.networkInterfaces()).flat()) {
    if (a === undefined || a.internal || a.address.startsWith('fe80:')) continue
    if (a.family === 'IPv4') assert.ok(san.includes(`IP Address:${a.address}`), `${a.address} missing from ${san}`)
  }
  // The printed lines use the first name.
  assert.match(r.stdout, new RegExp(`  midge pub -h ${host.replace(/[.]/g, '\\.')} -p 8883 --cafile `))
})

/** Runs `midge init ARGS` on a pseudo-terminal, typing `answers` after each prompt in turn. */
function onPty(args: string[], prompts: string[], answers: string[]): Promise<{ code: number | null; out: string }> {
  const script = `
import os, pty, sys
prompts = [p.encode() for p in sys.argv[1].split('\\x1f')]
answers = [a.encode() for a in sys.argv[2].split('\\x1f')]
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[3], sys.argv[3:])
out = b''
def more():
    global out
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        chunk = b''
    out += chunk
    return chunk != b''
pos = 0
for prompt, answer in zip(prompts, answers):
    while out.find(prompt, pos) < 0:
        if not more():
            break
    pos = out.find(prompt, pos) + len(prompt)
    os.write(fd, answer + b'\\r')
while more():
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode('utf-8', 'replace'))
sys.exit(os.waitstatus_to_exitcode(status))
`
  return new Promise((resolve) => {
    const child = spawn('python3', ['-c', script, prompts.join('\x1f'), answers.join('\x1f'), process.execPath, MIDGE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    child.on('error', (e) => resolve({ code: -1, out: `python3: ${e.message} (install the Debian package python3)` }))
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out }) })
  })
}

test('on a terminal the password is asked twice without echo (midge passwd\'s prompt); a mismatch leaves nothing', async () => {
  const l = layout(path.join(root, 'pty'))
  const ok = await onPty([...initArgs(l), '--user', 'dave'], ['Password: ', 'Reenter password: '], ['typed-on-a-tty', 'typed-on-a-tty'])
  assert.equal(ok.code, 0, ok.out)
  assert.match(ok.out, /Password: \r?\nReenter password: /)
  assert.doesNotMatch(ok.out, /typed-on-a-tty/, 'the password was echoed')
  assert.equal(await passwordOk(l.passwd, 'dave', 'typed-on-a-tty'), true)

  const l2 = layout(path.join(root, 'pty-mismatch'))
  const bad = await onPty([...initArgs(l2), '--user', 'dave'], ['Password: ', 'Reenter password: '], ['one', 'two'])
  assert.equal(bad.code, 1, bad.out)
  assert.match(bad.out, /Error: Passwords do not match\.\r?\nmidge init: stopped; nothing was changed\./)
  assert.equal(fs.existsSync(l2.etc), false, 'the folder init made was left behind')
  assert.equal(fs.existsSync(l2.lib), false)
})

test('without openssl (LAN mode) init names the Debian package before asking anything, and writes nothing', async () => {
  const l = layout(path.join(root, 'no-openssl'))
  const env = { ...process.env, PATH: path.join(root, 'empty-path') }
  const r = await runMidge([...initArgs(l), '--user', 'alice'], 'pw\n', env)
  assert.equal(r.code, 1)
  assert.match(r.stderr, /openssl is not installed.*Debian package openssl.*--domain NAME/)
  assert.equal(fs.existsSync(l.etc), false)
})

test('bad options are refused with the usage, and nothing is written', async () => {
  const l = layout(path.join(root, 'bad'))
  const cases: Array<[string[], RegExp]> = [
    [['--user', 'a:b'], /--user: Username must not contain the ':' character/],
    [['--user', 'alice', '--port', '8883'], /--port and --tls-port are both 8883/],
    [['--user', 'alice', '--tls-port', '70000'], /--tls-port takes a port from 1 to 65535, not '70000'/],
    [['--user', 'alice', '--email', 'a@example.org'], /--email only apply with --domain/],
    [['--user', 'alice', '--domain', 'mqtt.example.org', '--host', 'x'], /--host only applies without --domain/],
    [['--user', 'alice', '--frobnicate'], /unknown option '--frobnicate'/],
    // --domain, --email and --acme-directory are checked by the config options' own value types.
    [['--user', 'alice', '--domain', '203.0.113.7'], /acme_domain '203\.0\.113\.7': an IP address; give the DNS name that points at it/],
    [['--user', 'alice', '--domain', 'mqtt.example.org', '--email', 'nobody'], /--email expects an email address such as admin@example\.org, not 'nobody'/],
    [['--user', 'alice', '--domain', 'mqtt.example.org', '--acme-directory', 'http://ca.example/dir'], /--acme-directory expects an https:\/\/ URL/],
    [['--user', 'alice', '--host', 'two words'], /--host expects a host name such as raspberrypi\.local or an IP address, not 'two words'/],
  ]
  for (const [extra, re] of cases) {
    const r = await runMidge([...initArgs(l), ...extra], 'pw\n')
    assert.notEqual(r.code, 0, extra.join(' '))
    assert.match(r.stderr, re)
    assert.equal(fs.existsSync(l.etc), false)
  }
  const root2 = await runMidge([...initArgs(l), '--user', 'alice', '--broker-user', 'root'])
  assert.match(root2.stderr, /--broker-user root would leave the broker running as root/)
  const help = await runMidge(['init', '--help'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /^Usage: midge init /)
  const top = await runMidge(['--help'])
  assert.match(top.stdout, /^ {2}init +write a secure set-up/m)
})

test('a broker user that does not exist is created as a system account without login, its group sharing the files', async () => {
  const name = `midgeinit${process.pid % 100000}`
  const l = layout(path.join(root, 'newuser'))
  try {
    const r = await runMidge([...initArgs(l).filter((a) => a !== 'mosquitto' && a !== '--broker-user'), '--broker-user', name, '--user', 'alice'], 'pw\n')
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(r.stdout, new RegExp(`created the system user ${name} \\(no login, home ${l.lib.replace(/[.]/g, '\\.')}\\)`))
    const entry = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((x) => x.startsWith(`${name}:`))!.split(':')
    assert.ok(Number(entry[2]) < 1000, `uid ${entry[2]} is not a system uid`)
    assert.equal(entry[5], l.lib)
    assert.equal(entry[6], '/usr/sbin/nologin')
    const group = fs.readFileSync('/etc/group', 'utf8').split('\n').find((x) => x.startsWith(`${name}:`))!.split(':')
    assert.equal(fs.statSync(l.config).gid, Number(group[2]))
    assert.equal(fs.statSync(l.lib).uid, Number(entry[2]))
    assert.match(fs.readFileSync(l.config, 'utf8'), new RegExp(`^user ${name}$`, 'm'))
  } finally {
    spawnSync('userdel', [name], { stdio: 'ignore' })
  }
})

test('run by an ordinary user, init writes a set-up that user owns and runs, with the same modes', async () => {
  const dir = path.join(root, 'ordinary')
  fs.mkdirSync(dir)
  const [uid, gid] = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((x) => x.startsWith('mosquitto:'))!.split(':').slice(2, 4).map(Number) as [number, number]
  fs.chownSync(dir, uid, gid)
  const l = layout(dir)
  // setpriv (util-linux) drops to mosquitto without a login shell; SUDO_USER unset, so the MQTT user defaults to the runner.
  const env = { ...process.env }
  delete env['SUDO_USER']
  const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const c = spawn('setpriv', ['--reuid=mosquitto', '--regid=mosquitto', '--clear-groups', '--', process.execPath, MIDGE,
      'init', '--dir', l.etc, '--data-dir', l.lib, '--log-dir', l.log], { stdio: ['pipe', 'pipe', 'pipe'], env })
    let out = ''
    c.stdout.on('data', (d: Buffer) => { out += d.toString() })
    c.stderr.on('data', (d: Buffer) => { out += d.toString() })
    c.on('error', (e) => resolve({ code: -1, out: `setpriv: ${e.message} (install the Debian package util-linux)` }))
    c.on('close', (code) => resolve({ code, out }))
    c.stdin.end('pw\n')
  })
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, /not run as root, so the files belong to mosquitto, and the broker runs as that user/)
  assert.match(r.out, /OK; the broker would start .* and run as user 'mosquitto'/)
  for (const [f, m] of [[l.config, 0o640], [l.passwd, 0o640], [path.join(l.etc, 'server.key'), 0o640], [path.join(l.etc, 'ca.key'), 0o600], [l.lib, 0o750]] as const) {
    const st = fs.statSync(f)
    assert.equal(st.uid, uid, f)
    assert.equal(st.mode & 0o777, m, f)
  }
  assert.match(fs.readFileSync(l.config, 'utf8'), /^user mosquitto$/m)
  assert.equal(await passwordOk(l.passwd, 'mosquitto', 'pw'), true)
})
