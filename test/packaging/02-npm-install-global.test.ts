/**
 * Installed like a package: the packed tarball installed with `npm install -g` into a temporary prefix (its
 * dependencies from npm's cache, which `npm ci` filled), then `<prefix>/bin/midge` run from / as root: the
 * version, `check`, and a broker that switches to `mosquitto` and serves mosquitto_pub/mosquitto_sub over
 * plain TCP and TLS. Then the same installation made unreadable to `mosquitto` (its folder 0700): the broker
 * has loaded all its code before the switch and still serves and reloads, and `install-service`, whose
 * service would run that code as `mosquitto`, refuses and names the folder.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { TestPki } from '../helpers/certs.js'
import { MidgeProcess } from '../helpers/midge-process.js'
import { packFreshCopy, run } from './pack.js'

/** Every file and folder under `dir` that others (a broker's user) cannot read, or search. */
function unreadable(dir: string): string[] {
  const bad: string[] = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    const st = statSync(p)
    if ((st.mode & 0o004) === 0 || (st.isDirectory() && (st.mode & 0o001) === 0)) bad.push(p)
    if (st.isDirectory()) bad.push(...unreadable(p))
  }
  return bad
}

/** mosquitto_pub of a retained message, then mosquitto_sub receiving it: what the subscriber printed. */
function roundTrip(port: number, tls: string[], payload: string): string {
  // Retained: the subscriber gets it whenever it subscribes, so no wait for the subscription is needed.
  const common = ['-h', '127.0.0.1', '-p', String(port), ...tls, '-t', `installed/${payload}`, '-q', '1']
  const pub = spawnSync('mosquitto_pub', [...common, '-r', '-m', payload], { encoding: 'utf8', timeout: 20_000 })
  if (pub.error !== undefined) throw new Error(`cannot run mosquitto_pub (Debian package mosquitto-clients): ${pub.error.message}`)
  assert.equal(pub.status, 0, `mosquitto_pub: ${pub.stdout}${pub.stderr}`)
  const sub = spawnSync('mosquitto_sub', [...common, '-C', '1', '-W', '20'], { encoding: 'utf8', timeout: 30_000 })
  assert.equal(sub.status, 0, `mosquitto_sub: ${sub.stdout}${sub.stderr}`)
  return sub.stdout.trim()
}

/** An MQTT 3.1.1 CONNECT over a WebSocket (subprotocol mqtt): the broker's CONNACK bytes, as hex. */
async function wsConnack(port: number): Promise<string> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, 'mqtt')
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no CONNACK over the WebSocket within 15 s')), 15_000)
      ws.on('error', (err) => { clearTimeout(timer); reject(err) })
      // Clean session, keep-alive 60 s, empty client id.
      ws.on('open', () => ws.send(Buffer.from([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60, 0, 0])))
      ws.on('message', (data: Buffer) => { clearTimeout(timer); resolve(Buffer.from(data).toString('hex')) })
    })
  } finally {
    ws.close()
  }
}

test('npm install -g of the packed tarball: midge on PATH runs from /, as root dropping to mosquitto, also from a folder mosquitto cannot read', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-install-'))
  let midge: MidgeProcess | undefined
  try {
    const { tarball } = packFreshCopy(dir)
    // mkdtemp made `dir` 0700: the prefix's own folder is what decides who can read the installation.
    chmodSync(dir, 0o755)
    const home = join(dir, 'home')
    mkdirSync(home, { mode: 0o755 })
    const prefix = join(home, 'prefix')
    // Dependencies (ws, acme-client and theirs) from npm's cache: this test never needs the network
    // where `npm ci` ran; --prefer-offline still fetches what the cache lacks (a CI cache filled from the
    // lockfile alone has the tarballs but may lack the registry's metadata).
    const installed = run('npm', ['install', '-g', '--prefer-offline', '--no-audit', '--no-fund', '--prefix', prefix, tarball], dir)
    assert.equal(installed.status, 0, installed.out)
    const bin = join(prefix, 'bin', 'midge')
    const pkg = join(prefix, 'lib', 'node_modules', 'midge')
    assert.ok(existsSync(join(pkg, 'node_modules', 'ws')) || existsSync(join(prefix, 'lib', 'node_modules', 'ws')), 'ws was not installed')
    assert.ok(!existsSync(join(pkg, 'dist', 'test')), 'the installed package holds the tests')
    assert.deepEqual(unreadable(pkg), [], 'installed files the broker\'s user cannot read')

    const version = run(bin, ['--version'], '/')
    assert.equal(version.status, 0, version.out)
    assert.match(version.out, /^midge \d+\.\d+\.\d+\n$/)

    const pki = new TestPki(join(dir, 'pki'))
    chmodSync(pki.dir, 0o755)
    const leaf = pki.issue('localhost')
    chmodSync(leaf.key, 0o644)
    const store = join(dir, 'store')
    mkdirSync(store, { mode: 0o777 })
    chmodSync(store, 0o777)
    const conf = join(dir, 'midge.conf')
    writeFileSync(conf, [
      'user mosquitto', 'persistence true', `persistence_location ${store}/`,
      'listener 0 127.0.0.1', 'allow_anonymous true',
      'listener 0 127.0.0.1', `certfile ${leaf.cert}`, `keyfile ${leaf.key}`, 'allow_anonymous true',
      'listener 0 127.0.0.1', 'protocol websockets', 'allow_anonymous true',
    ].join('\n') + '\n')
    chmodSync(conf, 0o644)
    const check = run(bin, ['check', '-c', conf], '/')
    assert.equal(check.status, 0, check.out)

    const tls = ['--cafile', pki.bundle('cas.pem', pki.root.cert, pki.intermediate.cert)]
    const serve = async (label: string): Promise<void> => {
      // MidgeProcess runs `node bin/midge.js ARGS` through `wrap`: here the wrap runs the installed midge instead.
      midge = new MidgeProcess(['-c', conf], { cwd: '/', wrap: ['sh', '-c', 'shift 2; exec "$0" "$@"', bin] })
      const opened = await midge.opened(3)
      await midge.waitFor(/Changed user to 'mosquitto'\./)
      const plain = opened.find((o) => !o.tls && o.listener.startsWith('0#0'))
      const secure = opened.find((o) => o.tls)
      const web = opened.find((o) => !o.tls && o.listener.startsWith('0#2'))
      assert.ok(plain !== undefined && secure !== undefined && web !== undefined, midge.lines.join('\n'))
      assert.equal(await wsConnack(web.port), '20020000')
      assert.equal(roundTrip(plain.port, [], `plain-${label}`), `plain-${label}`)
      assert.equal(roundTrip(secure.port, tls, `tls-${label}`), `tls-${label}`)
      const hup = midge.lines.length
      midge.child.kill('SIGHUP')
      await midge.waitFor(/Configuration reloaded\./, hup)
      assert.equal(roundTrip(secure.port, tls, `reloaded-${label}`), `reloaded-${label}`)
      assert.equal(await midge.stop(), 0, midge.lines.join('\n'))
      assert.deepEqual(midge.lines.filter((l) => /Error|Cannot find|ERR_/.test(l)), [], midge.lines.join('\n'))
    }
    await serve('readable')

    // Now as if installed under /root (0700): the broker's user cannot read a single file of it.
    chmodSync(home, 0o700)
    const denied = spawnSync('setpriv', ['--reuid=mosquitto', '--regid=mosquitto', '--clear-groups', 'test', '-r', join(pkg, 'package.json')])
    assert.equal(denied.status, 1, 'mosquitto can still read the installation')
    await serve('private')
    const image = join(dir, 'image')
    mkdirSync(join(image, 'etc', 'midge'), { recursive: true })
    writeFileSync(join(image, 'etc', 'midge', 'midge.conf'), 'listener 1883\n')
    const service = run(bin, ['install-service', '--root', image, '--user', 'mosquitto'], '/')
    assert.equal(service.status, 1, service.out)
    assert.match(service.out, new RegExp(`${home} .*'mosquitto'.*The service runs Midge as 'mosquitto'`), service.out)
    assert.ok(!existsSync(join(image, 'etc', 'systemd')), 'a unit was installed')
    assert.ok(!existsSync(join(image, 'etc', 'passwd')), 'the user was created before the refusal')
  } finally {
    await (midge as MidgeProcess | undefined)?.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})
