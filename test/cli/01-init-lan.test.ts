/**
 * `midge init` without a domain, as root, end to end: the set-up it writes passes `midge check`, a broker
 * started as root on it switches to the broker's user (mosquitto) and serves TLS with the printed CA file;
 * the printed `midge sub`/`midge pub` lines work as printed (with the password filled in); anonymous
 * clients are refused on both listeners; the plain listener opened on 127.0.0.1 only. A second
 * `init --force` (the renewal of the LAN certificate) is swapped into the running broker.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import tls from 'node:tls'
import path from 'node:path'
import { X509Certificate } from 'node:crypto'
import mqtt from 'mqtt'
import { MIDGE, MidgeProcess } from '../helpers/midge-process.js'
import { freePort } from '../helpers/ports.js'
import { initArgs, layout, runMidge, shellWords, tempRoot, waitForLogLine } from './init-harness.js'

const PASSWORD = 'correct horse battery staple'
let root: string

before(() => { root = tempRoot('midge-init-lan-') })
after(() => { fs.rmSync(root, { recursive: true, force: true }) })

function mode(p: string): string {
  const st = fs.statSync(p)
  const mosquitto = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('mosquitto:'))!.split(':')
  const who = (id: number, mine: string): string => (id === 0 ? 'root' : String(id) === mine ? 'mosquitto' : String(id))
  return `${who(st.uid, mosquitto[2]!)}:${who(st.gid, mosquitto[3]!)} ${(st.mode & 0o777).toString(8).padStart(4, '0')}`
}

test('midge init (LAN): check OK, the broker runs as mosquitto on it, the printed pub/sub lines work over TLS, anonymous refused, plain on 127.0.0.1 only', async () => {
  assert.equal(process.getuid?.(), 0, 'this test plays the set-up as root, as `sudo midge init` runs')
  const l = layout(root)
  const [port, tlsPort] = [await freePort(), await freePort()]
  const init = await runMidge([...initArgs(l), '--user', 'alice', '--host', 'localhost', '--port', String(port), '--tls-port', String(tlsPort)], `${PASSWORD}\n`)
  assert.equal(init.code, 0, init.stdout + init.stderr)

  // Owners and modes: what the broker reads is root:mosquitto 0640, the CA key root's alone.
  assert.equal(mode(l.config), 'root:mosquitto 0640')
  assert.equal(mode(l.passwd), 'root:mosquitto 0640')
  assert.equal(mode(path.join(l.etc, 'server.key')), 'root:mosquitto 0640')
  assert.equal(mode(path.join(l.etc, 'ca.key')), 'root:root 0600')
  assert.equal(mode(path.join(l.etc, 'ca.crt')), 'root:root 0644')
  assert.equal(mode(l.lib), 'mosquitto:mosquitto 0750')
  assert.equal(mode(l.log), 'mosquitto:mosquitto 0750')
  assert.equal(mode(l.logFile), 'mosquitto:mosquitto 0640')
  assert.match(fs.readFileSync(l.passwd, 'utf8'), /^alice:\$7\$10000\$/m)

  // The config: every option line has a comment above it saying why.
  const conf = fs.readFileSync(l.config, 'utf8').split('\n')
  const options = conf.map((line, i) => ({ line, i })).filter((x) => /^[a-z]/.test(x.line))
  assert.deepEqual(options.map((x) => x.line.split(' ')[0]), ['user', 'allow_anonymous', 'password_file', 'persistence', 'persistence_location', 'log_dest', 'listener', 'listener', 'certfile', 'keyfile'])
  for (const o of options) assert.match(conf[o.i - 1]!, /^# /, `no comment above '${o.line}'`)
  assert.ok(conf.includes(`listener ${port} 127.0.0.1`))
  assert.ok(conf.includes('user mosquitto'))

  // The CA file init printed verifies the certificate, which names what --host gave plus loopback.
  const caFile = path.join(l.etc, 'ca.crt')
  assert.match(init.stdout, new RegExp(`${caFile.replace(/[.]/g, '\\.')} +the CA certificate: copy it to every client`))
  const [leaf, ca] = [new X509Certificate(fs.readFileSync(path.join(l.etc, 'server.crt'))), new X509Certificate(fs.readFileSync(caFile))]
  assert.equal(leaf.verify(ca.publicKey), true)
  assert.match(leaf.subjectAltName ?? '', /DNS:localhost, IP Address:127\.0\.0\.1/)

  const check = await runMidge(['check', '-c', l.config])
  assert.equal(check.code, 0, check.stdout + check.stderr)
  assert.match(check.stdout, /OK; the broker would start .* and run as user 'mosquitto'/)
  assert.doesNotMatch(check.stdout, /warning/)

  const broker = new MidgeProcess(['-c', l.config])
  const dead = (): boolean => broker.child.exitCode !== null
  try {
    await waitForLogLine(l.logFile, /Changed user to 'mosquitto'/, 20_000, dead)
    const log = fs.readFileSync(l.logFile, 'utf8')
    const plain = [...log.matchAll(/Opening (ipv4|ipv6) listen socket on (\S+) port (\d+)/g)]
    assert.deepEqual(plain.map((m) => `${m[2]}:${m[3]}`), [`127.0.0.1:${port}`], log)
    // Nothing answers the plain port on this machine's other addresses.
    for (const a of Object.values(os.networkInterfaces()).flat()) {
      if (a === undefined || a.internal || a.family !== 'IPv4') continue
      const refused = await new Promise<string>((resolve) => {
        const s = net.connect(port, a.address, () => { s.destroy(); resolve('connected') })
        s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'))
      })
      assert.equal(refused, 'ECONNREFUSED', `plain port reachable on ${a.address}`)
    }

    // The printed lines, run as printed with the password filled in; the subscriber first, until SUBACK.
    const printed = (cmd: string): string[] => {
      const line = init.stdout.split('\n').find((x) => x.startsWith(`  midge ${cmd} `))
      assert.ok(line !== undefined, init.stdout)
      return shellWords(line).slice(1).map((w) => (w === 'PASSWORD' ? PASSWORD : w))
    }
    const subArgs = printed('sub')
    assert.deepEqual(subArgs.slice(0, 11), ['sub', '-h', 'localhost', '-p', String(tlsPort), '--cafile', caFile, '-u', 'alice', '-P', PASSWORD])
    const sub = spawn(process.execPath, [MIDGE, ...subArgs, '-C', '1', '-d'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let subOut = ''
    const subscribed = new Promise<void>((resolve, reject) => {
      sub.stdout.on('data', (d: Buffer) => { subOut += d.toString(); if (/received SUBACK/.test(subOut)) resolve() })
      sub.stderr.on('data', (d: Buffer) => { subOut += d.toString() })
      sub.once('close', () => reject(new Error(`midge sub exited: ${subOut}`)))
    })
    const subDone = new Promise<number | null>((resolve) => sub.once('close', resolve))
    await subscribed
    const pub = await runMidge(printed('pub'))
    assert.equal(pub.code, 0, pub.stdout + pub.stderr)
    assert.equal(await subDone, 0, subOut)
    assert.match(subOut, /^test hello world$/m)

    // mosquitto_pub with the same options: the CA file and the user work for Mosquitto's clients too.
    const mp = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const c = spawn('mosquitto_pub', [...subArgs.slice(1, 11), '-t', 'test', '-m', 'from mosquitto_pub'], { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      c.stdout.on('data', (d: Buffer) => { out += d.toString() })
      c.stderr.on('data', (d: Buffer) => { out += d.toString() })
      c.on('error', (e) => resolve({ code: -1, out: `mosquitto_pub: ${e.message} (install the Debian package mosquitto-clients)` }))
      c.on('close', (code) => resolve({ code, out }))
    })
    assert.equal(mp.code, 0, mp.out)

    // Anonymous clients: refused on TLS and on the loopback listener alike.
    const ca = fs.readFileSync(caFile)
    for (const opts of [{ protocol: 'mqtts' as const, port: tlsPort, ca, servername: 'localhost' }, { protocol: 'mqtt' as const, port }]) {
      await assert.rejects(mqtt.connectAsync({ host: '127.0.0.1', reconnectPeriod: 0, ...opts }), /Not authorized|not authorised/i)
    }
    // The user works on the loopback listener too (still with a password).
    const local = await mqtt.connectAsync({ host: '127.0.0.1', port, username: 'alice', password: PASSWORD, reconnectPeriod: 0 })
    await local.endAsync()

    // The renewal docs/quick-setup.md describes: init --force, same CA; the running broker swaps it in.
    const served = (): Promise<string> => new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: tlsPort, ca, servername: 'localhost' }, () => {
        resolve(s.getPeerX509Certificate()?.serialNumber ?? '')
        s.end()
      })
      s.once('error', reject)
      s.resume()
    })
    const oldSerial = await served()
    const renewed = await runMidge([...initArgs(l), '--user', 'alice', '--host', 'localhost', '--port', String(port), '--tls-port', String(tlsPort), '--force'], `${PASSWORD}\n`)
    assert.equal(renewed.code, 0, renewed.stdout + renewed.stderr)
    await waitForLogLine(l.logFile, new RegExp(`TLS listener ${tlsPort} now serves a new certificate`), 20_000, dead)
    const newSerial = await served()
    assert.notEqual(newSerial, oldSerial)
    assert.equal(newSerial, new X509Certificate(fs.readFileSync(path.join(l.etc, 'server.crt'))).serialNumber)
  } finally {
    broker.child.kill('SIGTERM')
    await broker.exited
  }
})
