/**
 * The whole switch, as root (issue #13, "Done when"): a folder laid out like Debian's mosquitto package
 * (this machine's /etc/mosquitto/mosquitto.conf with `include_dir conf.d`, the seed tutorial's
 * conf.d/config.conf, var/lib/mosquitto and var/log/mosquitto owned by mosquitto:root as the package's
 * postinst leaves them, and a root:root 0640 mosquitto.log left by an earlier start as root), a password
 * file made by mosquitto_passwd and a certificate in certbot's layout. Then `midge -c …/mosquitto.conf`:
 * `midge check` says OK, the broker drops to `mosquitto`, serves plain and TLS to mosquitto_pub/sub, keeps
 * a persistent subscriber's QoS 1 messages across kill -9, picks up a user added to the password file
 * without a restart, reloads on SIGHUP, and writes on in a new file after logrotate (packaging/midge.logrotate).
 *
 * Only the paths (under a temporary root) and the ports (free ones) differ from the real thing.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { brokerUserForTests, isRoot } from '../helpers/broker-user.js'
import { freePort } from '../helpers/ports.js'
import { TestPki } from '../helpers/certs.js'
import { MIDGE, MidgeProcess } from '../helpers/midge-process.js'
import { SeedConfig } from '../config/seed-config.js'

const user = brokerUserForTests()

function run(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 })
  if (r.error !== undefined) throw new Error(`cannot run ${cmd} (Debian package ${cmd.startsWith('mosquitto_') && cmd !== 'mosquitto_passwd' ? 'mosquitto-clients' : cmd === 'mosquitto_passwd' ? 'mosquitto' : cmd}): ${r.error.message}`)
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

/** mosquitto_sub in the background; resolves with its output once it exits (-C/-W bound it). */
function sub(args: string[]): Promise<{ status: number | null; out: string }> {
  return new Promise((done, fail) => {
    const child = spawn('mosquitto_sub', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    child.on('error', (err) => fail(new Error(`cannot run mosquitto_sub (Debian package mosquitto-clients): ${err.message}`)))
    child.on('close', (status) => done({ status, out }))
  })
}

/** The broker's log file, read again until a line matches (bounded); counts lines so a wait can start after a mark. */
class LogFile {
  constructor(readonly file: string) {}
  lines(): string[] {
    try { return fs.readFileSync(this.file, 'utf8').split('\n').filter((l) => l !== '') } catch { return [] }
  }
  async waitFor(re: RegExp, from = 0, timeoutMs = 15_000): Promise<string> {
    const until = Date.now() + timeoutMs
    for (;;) {
      const hit = this.lines().slice(from).find((l) => re.test(l))
      if (hit !== undefined) return hit
      if (Date.now() > until) throw new Error(`timed out waiting for ${re} in ${this.file}:\n${this.lines().join('\n')}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

function uidOf(pid: number): number {
  const m = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m?.[1])
}

/** The Debian layout under `root`; returns the paths the test uses. */
function debianLayout(t: TestContext, ports: { plain: number; tls: number }) {
  const debianConf = '/etc/mosquitto/mosquitto.conf'
  if (!fs.existsSync(debianConf)) throw new Error(`${debianConf} is missing: install the Debian package mosquitto`)
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-switch-'))
  t.after(() => fs.rmSync(root, { recursive: true, force: true }))
  fs.chmodSync(root, 0o755)
  const at = (p: string): string => path.join(root, p)
  for (const d of ['etc/mosquitto/conf.d', 'var/lib/mosquitto', 'var/log/mosquitto']) fs.mkdirSync(at(d), { recursive: true, mode: 0o755 })
  // As the package's postinst: chown mosquitto /var/lib/mosquitto /var/log/mosquitto (group stays root).
  for (const d of ['var/lib/mosquitto', 'var/log/mosquitto']) fs.chownSync(at(d), user.uid, 0)
  // Left by an earlier start as root (the issue): root:root 0640.
  fs.writeFileSync(at('var/log/mosquitto/mosquitto.log'), 'an earlier start\n', { mode: 0o640 })

  const conf = at('etc/mosquitto/mosquitto.conf')
  const debian = fs.readFileSync(debianConf, 'utf8')
  assert.match(debian, /^include_dir \/etc\/mosquitto\/conf\.d$/m)
  fs.writeFileSync(conf, debian
    .replaceAll('/run/mosquitto/', `${at('run/mosquitto')}/`)
    .replaceAll('/var/lib/mosquitto/', `${at('var/lib/mosquitto')}/`)
    .replaceAll('/var/log/mosquitto/', `${at('var/log/mosquitto')}/`)
    .replaceAll('/etc/mosquitto/conf.d', at('etc/mosquitto/conf.d')))

  // certbot's layout, with the tutorial's fix: live/ and archive/ passable, the key readable by the broker's group.
  const pki = new TestPki(fs.mkdtempSync(path.join(root, 'pki-')))
  const le = pki.letsEncrypt('yourdomainname', pki.issue('server'))
  for (const d of [pki.dir, path.join(pki.dir, 'letsencrypt'), path.join(pki.dir, 'letsencrypt', 'live'), path.join(pki.dir, 'letsencrypt', 'archive'), le.live, le.archive]) fs.chmodSync(d, 0o755)
  for (const f of fs.readdirSync(le.archive)) fs.chmodSync(path.join(le.archive, f), 0o644)
  const key = fs.realpathSync(le.privkey)
  fs.chownSync(key, 0, user.gid)
  fs.chmodSync(key, 0o640)
  const clientCa = at('client-ca.pem')
  fs.writeFileSync(clientCa, fs.readFileSync(pki.root.cert, 'utf8') + fs.readFileSync(pki.intermediate.cert, 'utf8'))

  const passwd = at('etc/mosquitto/passwd')
  fs.writeFileSync(at('etc/mosquitto/conf.d/config.conf'), SeedConfig
    .replaceAll('/etc/letsencrypt/live/yourdomainname', le.live)
    .replaceAll('/etc/mosquitto/passwd', passwd)
    .replace('listener 1883 localhost', `listener ${ports.plain} localhost`)
    .replace('listener 8883', `listener ${ports.tls}`))
  return { root, at, conf, passwd, clientCa, pid: at('run/mosquitto/mosquitto.pid'), log: new LogFile(at('var/log/mosquitto/mosquitto.log')), store: at('var/lib/mosquitto/mosquitto.db') }
}

test('the switch from Debian\'s mosquitto: check, drop to mosquitto, plain + TLS, kill -9, a new user, SIGHUP, logrotate', async (t) => {
  assert.ok(isRoot, 'this test plays the service started as root: run it as root (as CI does)')
  const ports = { plain: await freePort({ ipv6: true }), tls: await freePort({ ipv6: true }) }
  const L = debianLayout(t, ports)

  // The tutorial's password file: sudo mosquitto_passwd -c /etc/mosquitto/passwd username.
  assert.equal(run('mosquitto_passwd', ['-c', '-b', L.passwd, 'alice', 'secret']).status, 0)
  const check = (): { status: number | null; out: string } => run(process.execPath, [MIDGE, 'check', '-c', L.conf])
  let c = check()
  if (c.status !== 0) {
    // mosquitto_passwd makes the file 0600 root: check names it, with the fix; apply it as an admin would.
    assert.ok(c.out.includes(`password_file ${L.passwd}: permission denied for user '${user.name}'`), c.out)
    const fix = /fix: give '.*' read access: '(chgrp \S+ \S+) && (chmod g\+r \S+)'/.exec(c.out)
    assert.ok(fix !== null, c.out)
    for (const cmd of [fix[1] as string, fix[2] as string]) {
      const [bin, ...args] = cmd.split(' ')
      assert.equal(run(bin as string, args).status, 0)
    }
    c = check()
  }
  assert.equal(c.status, 0, c.out)
  assert.match(c.out, new RegExp(`OK; the broker would start with listeners ${ports.plain} on localhost, ${ports.tls} \\(TLS\\) on all interfaces and run as user '${user.name}'`))

  const start = (): MidgeProcess => new MidgeProcess(['-c', L.conf])
  let midge = start()
  t.after(() => midge.stop())
  await L.log.waitFor(/Changed user to 'mosquitto'\./)
  assert.equal(uidOf(midge.child.pid as number), user.uid)
  assert.ok(L.log.lines().some((l) => l.endsWith(`Log file ${L.log.file} was owned by root; handed to user '${user.name}'.`)), L.log.lines().join('\n'))
  for (const f of [L.log.file, L.store, L.pid, path.dirname(L.pid), `${L.store}.lock`]) assert.equal(fs.statSync(f).uid, user.uid, `${f} is not ${user.name}'s`)

  const auth = (u: string, p: string): string[] => ['-u', u, '-P', p]
  const plain = ['-h', 'localhost', '-p', String(ports.plain)]
  const tls = ['-h', 'localhost', '-p', String(ports.tls), '--cafile', L.clientCa]

  // Plain and TLS: the tutorial's exchange.
  for (const [name, where] of [['plain', plain], ['TLS', tls]] as const) {
    const got = sub([...where, ...auth('alice', 'secret'), '-t', 'test', '-C', '1', '-W', '15'])
    // Published until the subscriber (connecting meanwhile) has it: bounded, no sleep guessed.
    for (let i = 0; i < 100; i++) {
      const pub = run('mosquitto_pub', [...where, ...auth('alice', 'secret'), '-t', 'test', '-m', `hello over ${name}`, '-q', '1'])
      assert.equal(pub.status, 0, pub.out)
      const r = await Promise.race([got, new Promise<undefined>((r) => setTimeout(() => r(undefined), 100))])
      if (r !== undefined) { assert.equal(r.out, `hello over ${name}\n`); break }
      assert.ok(i < 99, `mosquitto_sub over ${name} got nothing`)
    }
  }
  const wrong = run('mosquitto_pub', [...plain, ...auth('alice', 'wrong'), '-t', 'test', '-m', 'x'])
  assert.notEqual(wrong.status, 0)

  // A persistent subscriber (clean session false) subscribes and leaves; three QoS 1 messages queue for it.
  const subscribed = run('mosquitto_sub', [...plain, ...auth('alice', 'secret'), '-c', '-i', 'keeper', '-q', '1', '-t', 'queue/#', '-E'])
  assert.equal(subscribed.status, 0, subscribed.out)
  for (const n of [1, 2, 3]) assert.equal(run('mosquitto_pub', [...plain, ...auth('alice', 'secret'), '-q', '1', '-t', `queue/${n}`, '-m', `queued ${n}`]).status, 0)
  const pid1 = midge.child.pid as number
  midge.child.kill('SIGKILL')
  await midge.exited
  const mark = L.log.lines().length
  midge = start()
  await L.log.waitFor(/Changed user to 'mosquitto'\./, mark)
  assert.ok(L.log.lines().slice(mark).some((l) => l.includes(`took over the lock ${L.store}.lock of a broker that is no longer running (pid ${pid1}`)), L.log.lines().slice(mark).join('\n'))
  const queued = await sub([...plain, ...auth('alice', 'secret'), '-c', '-i', 'keeper', '-q', '1', '-t', 'queue/#', '-C', '3', '-W', '15', '-v'])
  assert.equal(queued.out, 'queue/1 queued 1\nqueue/2 queued 2\nqueue/3 queued 3\n')

  // A user added to the password file works without a restart (the broker re-reads it as its user).
  const before = L.log.lines().length
  assert.equal(run('mosquitto_passwd', ['-b', L.passwd, 'bob', 'hunter2']).status, 0)
  await L.log.waitFor(/Password file .* changed: reloaded \(2 users\)\./, before)
  const bob = run('mosquitto_pub', [...plain, ...auth('bob', 'hunter2'), '-t', 'test', '-m', 'from bob', '-q', '1'])
  assert.equal(bob.status, 0, bob.out)

  // SIGHUP reloads the configuration.
  const hup = L.log.lines().length
  process.kill(midge.child.pid as number, 'SIGHUP')
  await L.log.waitFor(/Configuration reloaded\./, hup)

  // logrotate with the shipped rule, pointed at Debian's paths (the folder is mosquitto:root, hence su mosquitto root).
  const shipped = fs.readFileSync(path.resolve(import.meta.dirname, '../../../packaging/midge.logrotate'), 'utf8')
  const rule = shipped.replaceAll('/var/log/midge/midge.log', L.log.file).replaceAll('/run/midge/midge.pid', L.pid).replace('su midge midge', `su ${user.name} root`)
  fs.writeFileSync(L.at('logrotate.conf'), rule)
  const rotated = run('logrotate', ['-f', '-s', L.at('logrotate.state'), L.at('logrotate.conf')])
  assert.equal(rotated.status, 0, rotated.out)
  const fresh = new LogFile(L.log.file)
  await fresh.waitFor(/Configuration reloaded\./)
  assert.equal(fs.statSync(L.log.file).uid, user.uid)
  assert.match(fs.readFileSync(`${L.log.file}.1`, 'utf8'), /Changed user to 'mosquitto'\./)
  assert.ok(!fresh.lines().some((l) => l.includes('Opening ipv4')), 'the new log file holds only what came after the rotation')

  // Still serving after all that; a clean stop removes the pid file and the lock.
  const last = run('mosquitto_pub', [...tls, ...auth('bob', 'hunter2'), '-t', 'test', '-m', 'bye', '-q', '1'])
  assert.equal(last.status, 0, last.out)
  assert.equal(await midge.stop(), 0, midge.lines.join('\n'))
  assert.equal(fs.existsSync(L.pid), false)
  assert.equal(fs.existsSync(`${L.store}.lock`), false)
  assert.equal(check().status, 0)
})
