/**
 * Byte compatibility with the real Mosquitto 2 tools, both directions:
 *  - files written by mosquitto_passwd ($7$ default, -I, -H sha512 for $6$) are accepted by Midge;
 *  - a file written by `midge passwd` is accepted by a real mosquitto broker, checked with mosquitto_pub
 *    (exit 0 when connected, 5 when the CONNACK says "not authorised").
 * Needs Debian packages mosquitto and mosquitto-clients; their absence fails the test.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Writable } from 'node:stream'
import { PasswordFileAuthenticator } from '../../src/auth/password-authenticator.js'
import { runPasswd } from '../../src/cli/commands/passwd.js'
import type { AuthRequest } from '../../src/auth/types.js'
import { freePort } from '../helpers/ports.js'

const MOSQUITTO = '/usr/sbin/mosquitto'
const MOSQUITTO_PASSWD = '/usr/bin/mosquitto_passwd'
const MOSQUITTO_PUB = '/usr/bin/mosquitto_pub'

function requireTools(): void {
  for (const [bin, pkg] of [[MOSQUITTO, 'mosquitto'], [MOSQUITTO_PASSWD, 'mosquitto'], [MOSQUITTO_PUB, 'mosquitto-clients']] as const) {
    if (!existsSync(bin)) assert.fail(`${bin} is missing: install the Debian package ${pkg}`)
  }
}

function run(bin: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, output: stdout + stderr })
    })
  })
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'midge-interop-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

function req(username: string, password: string): AuthRequest {
  return { clientId: 'c', username, password: Buffer.from(password), remoteAddress: '127.0.0.1', listener: '1883', allowAnonymous: false }
}

test('Midge accepts password files written by mosquitto_passwd ($7$ default, $7$ with -I, $6$ with -H sha512)', { timeout: 60_000 }, () => withDir(async (dir) => {
  requireTools()
  const f = join(dir, 'pw')
  for (const args of [['-c', '-b', f, 'alice', 'secret'], ['-b', '-I', '1000', f, 'carol', 'c4rol'], ['-H', 'sha512', '-b', f, 'bob', 'pw2']]) {
    const r = await run(MOSQUITTO_PASSWD, args)
    assert.equal(r.code, 0, `mosquitto_passwd ${args.join(' ')}: ${r.output}`)
  }
  const text = await readFile(f, 'utf8')
  assert.match(text, /^alice:\$7\$101\$/m)
  assert.match(text, /^carol:\$7\$1000\$/m)
  assert.match(text, /^bob:\$6\$/m)
  const auth = await PasswordFileAuthenticator.fromFile(f)
  assert.deepEqual(await auth.authenticate(req('alice', 'secret')), { ok: true, username: 'alice' })
  assert.deepEqual(await auth.authenticate(req('carol', 'c4rol')), { ok: true, username: 'carol' })
  assert.deepEqual(await auth.authenticate(req('bob', 'pw2')), { ok: true, username: 'bob' })
  for (const [u, p] of [['alice', 'Secret'], ['carol', 'carol'], ['bob', 'pw']]) {
    assert.equal((await auth.authenticate(req(u!, p!))).ok, false, `${u} with a wrong password`)
  }
  // mosquitto_passwd -D, then a reload, removes the user.
  assert.equal((await run(MOSQUITTO_PASSWD, ['-D', f, 'carol'])).code, 0)
  assert.equal(await auth.reload(), 2)
  assert.equal((await auth.authenticate(req('carol', 'c4rol'))).ok, false)
}))

class Sink extends Writable {
  text = ''
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void { this.text += chunk.toString(); cb() }
}

async function midgePasswd(argv: string[]): Promise<void> {
  const err = new Sink()
  const code = await runPasswd(argv, { stdin: new PassThrough(), stdout: new Sink(), stderr: err })
  assert.equal(code, 0, `midge passwd ${argv.join(' ')}: ${err.text}`)
}

async function startMosquitto(conf: string): Promise<{ stop: () => Promise<void>; log: () => string }> {
  const child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      log += d.toString()
      if (/mosquitto version \S+ running/.test(log)) resolve()
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    void exited.then((code) => reject(new Error(`mosquitto exited (${code}) before it was running:\n${log}`)))
  })
  return {
    log: () => log,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM')
      await exited
    },
  }
}

test('a real mosquitto accepts a password file written by midge passwd', { timeout: 60_000 }, () => withDir(async (dir) => {
  requireTools()
  const f = join(dir, 'pw')
  await midgePasswd(['-c', '-b', f, 'dave', 'd4ve-default'])
  await midgePasswd(['-b', '-I', '101', f, 'frank', 'fr4nk'])
  await midgePasswd(['-b', '-H', 'sha512', f, 'erin', 'er1n'])
  const port = await freePort()
  const conf = join(dir, 'mosquitto.conf')
  const lines = [`listener ${port} 127.0.0.1`, 'allow_anonymous false', `password_file ${f}`, 'log_dest stderr', 'log_type error', 'log_type warning', 'log_type notice', 'log_type information']
  // Run as root, mosquitto switches to the `mosquitto` user before reading the file (mode 0600, ours).
  if (process.getuid?.() === 0) lines.push('user root')
  await writeFile(conf, lines.join('\n') + '\n')
  const broker = await startMosquitto(conf)
  try {
    const pub = (u: string, p: string): Promise<{ code: number; output: string }> =>
      run(MOSQUITTO_PUB, ['-h', '127.0.0.1', '-p', String(port), '-i', `midge-interop-${u}`, '-u', u, '-P', p, '-t', 'midge/interop', '-m', 'x'])
    for (const [u, p] of [['dave', 'd4ve-default'], ['frank', 'fr4nk'], ['erin', 'er1n']] as const) {
      const ok = await pub(u, p)
      assert.equal(ok.code, 0, `${u} with the right password: ${ok.output}\n${broker.log()}`)
      const bad = await pub(u, `${p}x`)
      assert.equal(bad.code, 5, `${u} with a wrong password must be 'not authorised': ${bad.output}`)
    }
    assert.match(broker.log(), /u'dave'/, 'mosquitto logged the PBKDF2 user connecting')
  } finally {
    await broker.stop()
  }
}))
