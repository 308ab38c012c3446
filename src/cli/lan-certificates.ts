/**
 * A private CA and a server certificate for a broker on a LAN, where no public CA will vouch for a name
 * such as raspberrypi.local or 192.168.1.10. Clients trust the broker by being given the CA certificate
 * (`--cafile ca.crt`), which is public; the CA key stays with root and signs nothing but this broker's
 * certificates (a re-run of `midge init --force` re-uses it, so clients keep their copy of ca.crt).
 *
 * Node can sign but cannot build an X.509 certificate, and writing a DER encoder for one command is more
 * code to get wrong than the job is worth, so this runs `openssl` (the Debian package openssl, present on
 * Raspberry Pi OS and most Debian installs). Everything is generated in a private temporary directory and
 * returned as PEM text: the caller decides where the files go, with which owner and mode.
 *
 * RSA 2048, not EC: microcontroller TLS stacks that MQTT devices use (axTLS on older ESP8266 cores, some
 * modem firmwares) verify RSA chains only. The server certificate lasts 825 days, the longest Apple's
 * clients accept for a TLS server certificate; the CA 10 years.
 */
import { execFile, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { hostname, networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'

export const OpensslMissing = 'openssl is not installed; midge init runs it to make the certificates of a LAN set-up (Node cannot create X.509 certificates): sudo apt-get install openssl (Debian package openssl), or give --domain NAME to get a certificate from Let\'s Encrypt instead'

export const ServerCertificateDays = 825
export const CaCertificateDays = 3650

/** Throws OpensslMissing unless `openssl version` runs. */
export function requireOpenssl(): void {
  const r = spawnSync('openssl', ['version'], { stdio: 'ignore' })
  if (r.error !== undefined || r.status !== 0) throw new Error(OpensslMissing)
}

/**
 * The names a LAN client may use for this machine: the given ones, else the host name and its mDNS
 * `.local` name (avahi answers for it on Raspberry Pi OS); always localhost and the loopback and LAN
 * addresses (not link-local IPv6: those need a %zone that certificates cannot name).
 */
export function lanNames(given: string[]): string[] {
  const names = given.length > 0 ? [...given] : [hostname(), `${hostname()}.local`]
  names.push('localhost', '127.0.0.1', '::1')
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.internal || a.address.startsWith('fe80:')) continue
      names.push(a.address)
    }
  }
  return [...new Set(names.filter((n) => n !== ''))]
}

function subjectAltName(names: string[]): string {
  return names.map((n) => (isIP(n) !== 0 ? `IP:${n}` : `DNS:${n}`)).join(',')
}

/** A CN is at most 64 characters (RFC 5280 ub-common-name); clients match the SAN, not the CN. */
function cn(text: string): string {
  return text.replace(/[/\\,=+]/g, '-').slice(0, 64)
}

function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd }, (err, _stdout, stderr) => {
      if (err === null) { resolve(); return }
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') { reject(new Error(OpensslMissing)); return }
      reject(new Error(`openssl ${args[0] ?? ''} failed: ${stderr.trim() || err.message}`))
    })
  })
}

export interface LanCertificates {
  caCert: string
  /** undefined when an existing CA was re-used (its key stays where it is). */
  caKey: string | undefined
  /** The server certificate followed by the CA's: the whole chain, as certfile wants it. */
  serverCert: string
  serverKey: string
  names: string[]
}

/**
 * Issues a server certificate for `names`, signed by the CA given as PEM (re-used), or by a new CA made
 * here. The working directory is 0700 (mkdtemp) and removed afterwards, keys included.
 */
export async function makeLanCertificates(names: string[], existingCa?: { cert: string; key: string }): Promise<LanCertificates> {
  const dir = mkdtempSync(join(tmpdir(), 'midge-init-'))
  try {
    const primary = names[0] ?? 'localhost'
    if (existingCa === undefined) {
      await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', String(CaCertificateDays),
        '-subj', `/CN=${cn(`Midge CA on ${primary}`)}`,
        '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir)
    } else {
      writeFileSync(join(dir, 'ca.crt'), existingCa.cert)
      writeFileSync(join(dir, 'ca.key'), existingCa.key, { mode: 0o600 })
    }
    await openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${cn(primary)}`], dir)
    writeFileSync(join(dir, 'server.ext'), [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${subjectAltName(names)}`,
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid,issuer',
      '',
    ].join('\n'))
    // A random serial rather than -CAcreateserial: no ca.srl file to keep beside the CA.
    await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', `0x${randomBytes(16).toString('hex').replace(/^[89a-f]/, '1')}`,
      '-days', String(ServerCertificateDays), '-sha256', '-extfile', 'server.ext', '-out', 'server.crt'], dir)
    const read = (f: string): string => readFileSync(join(dir, f), 'utf8')
    return {
      caCert: read('ca.crt'),
      caKey: existingCa === undefined ? read('ca.key') : undefined,
      serverCert: read('server.crt') + read('ca.crt'),
      serverKey: read('server.key'),
      names,
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
