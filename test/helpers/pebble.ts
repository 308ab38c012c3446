/**
 * Let's Encrypt's test ACME server, Debian's `pebble` package, started on loopback for one test file.
 * The package ships no certificates or config, so each start makes a small CA and a listener certificate
 * (SAN IP:127.0.0.1) with openssl, writes a config on free ports, and runs pebble-challtestsrv as its DNS
 * server so that any name (mqtt.test, ...) resolves to 127.0.0.1 (no IPv6: pebble would dial [::1]).
 * Pebble makes a new root at each start; root() fetches it from the management port.
 *
 *   test ──https──▶ pebble :listen (ACME)      pebble ──DNS──▶ challtestsrv :dns (A 127.0.0.1)
 *                   pebble :management (roots) pebble ──http──▶ 127.0.0.1:httpPort (the HTTP-01 responder under test)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import https from 'node:https'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { freePort } from './ports.js'

const Missing = 'pebble is missing: install the Debian package pebble (apt-get install -y pebble)'

export interface PebbleOptions {
  /** Port pebble's VA connects to for HTTP-01 (the responder's port); default a free one. */
  httpPort?: number
  /** Lifetime of issued certificates, in seconds (pebble's default is 5 years). */
  certificateValidityPeriod?: number
}

export interface Pebble {
  /** https://127.0.0.1:PORT/dir */
  directoryUrl: string
  /** PEM of the CA that issued pebble's own HTTPS certificate (acme_ca_file). */
  caFile: string
  httpPort: number
  /** Pebble's current root certificate (PEM), from its management port. */
  root(): Promise<string>
  /** Makes challtestsrv answer A queries for `host` with `address` (e.g. to break validation). */
  setA(host: string, address: string): Promise<void>
  clearA(host: string): Promise<void>
  /** Makes challtestsrv answer SERVFAIL for `host` (a name whose DNS is broken). */
  servfail(host: string): Promise<void>
  clearServfail(host: string): Promise<void>
  /** Everything both processes printed (for failure messages). */
  output(): string
  stop(): Promise<void>
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

function requireBinary(name: string): void {
  const found = process.env['PATH']?.split(':').some((d) => fs.existsSync(path.join(d, name)))
  if (found !== true) throw new Error(Missing)
}

export async function startPebble(o: PebbleOptions = {}): Promise<Pebble> {
  requireBinary('pebble')
  requireBinary('pebble-challtestsrv')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-pebble-'))
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Midge test pebble CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'], dir)
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'listener.csr', '-subj', '/CN=127.0.0.1'], dir)
  fs.writeFileSync(path.join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
  openssl(['x509', '-req', '-in', 'listener.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'cert.pem', '-days', '2', '-extfile', 'ext'], dir)
  const [listen, management, dns, ctsManagement] = [await freePort(), await freePort(), await freePort({ udp: true }), await freePort()]
  const httpPort = o.httpPort ?? await freePort()
  fs.writeFileSync(path.join(dir, 'pebble.json'), JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${listen}`,
      managementListenAddress: `127.0.0.1:${management}`,
      certificate: path.join(dir, 'cert.pem'),
      privateKey: path.join(dir, 'key.pem'),
      httpPort,
      tlsPort: httpPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
      ...(o.certificateValidityPeriod === undefined ? {} : { certificateValidityPeriod: o.certificateValidityPeriod }),
    },
  }))
  let out = ''
  const children: ChildProcess[] = []
  const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<void> => new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(child)
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start within 15 s:\n${out}`)), 15_000)
    const onData = (d: Buffer): void => {
      out += d.toString()
      if (ready.test(out)) { clearTimeout(timer); resolve() }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('error', (err: NodeJS.ErrnoException) => { clearTimeout(timer); reject(err.code === 'ENOENT' ? new Error(Missing) : err) })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${cmd} exited (${code}) while starting:\n${out}`)) })
  })
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((c) => new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) { resolve(); return }
      c.once('exit', () => resolve())
      c.kill('SIGTERM')
    })))
    fs.rmSync(dir, { recursive: true, force: true })
  }
  try {
    await run('pebble-challtestsrv', ['-defaultIPv4', '127.0.0.1', '-defaultIPv6', '', '-dns01', `127.0.0.1:${dns}`, '-http01', '', '-https01', '', '-tlsalpn01', '',
      '-management', `127.0.0.1:${ctsManagement}`], {}, /Starting management server/)
    await run('pebble', ['-config', path.join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dns}`],
      { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' }, /Listening on: /)
  } catch (err) {
    await stop()
    throw err
  }
  const ca = fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8')
  const caFile = path.join(dir, 'ca.pem')
  const cts = (endpoint: string, body: object): Promise<void> => new Promise((resolve, reject) => {
    const req = net.connect(ctsManagement, '127.0.0.1')
    const json = JSON.stringify(body)
    req.end(`POST ${endpoint} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`)
    let reply = ''
    req.on('data', (d: Buffer) => { reply += d.toString() })
    req.on('end', () => /^HTTP\/1\.1 200/.test(reply) ? resolve() : reject(new Error(`challtestsrv ${endpoint}: ${reply.split('\r\n')[0] ?? ''}`)))
    req.on('error', reject)
  })
  return {
    directoryUrl: `https://127.0.0.1:${listen}/dir`,
    caFile,
    httpPort,
    root: () => new Promise((resolve, reject) => {
      https.get(`https://127.0.0.1:${management}/roots/0`, { ca, agent: false }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => { body += c })
        res.on('end', () => res.statusCode === 200 ? resolve(body) : reject(new Error(`pebble /roots/0: HTTP ${res.statusCode ?? '?'}`)))
      }).on('error', reject)
    }),
    setA: (host, address) => cts('/add-a', { host: host.endsWith('.') ? host : `${host}.`, addresses: [address] }),
    clearA: (host) => cts('/clear-a', { host: host.endsWith('.') ? host : `${host}.` }),
    servfail: (host) => cts('/set-servfail', { host: host.endsWith('.') ? host : `${host}.` }),
    clearServfail: (host) => cts('/clear-servfail', { host: host.endsWith('.') ? host : `${host}.` }),
    output: () => out,
    stop,
  }
}
