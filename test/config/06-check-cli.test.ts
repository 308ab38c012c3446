import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { TestPki } from '../helpers/certs.js'
import { MidgeProcess } from '../helpers/midge-process.js'
import { hashPassword, formatPasswordHash } from '../../src/auth/password-hash.js'
import { writeSeedConfig } from './seed-config.js'

const isRoot = process.getuid?.() === 0

/** Runs `midge check -c FILE` as `nobody` (via setpriv, in the Debian package util-linux) when we are root, else as ourselves. */
function runCheck(file: string): Promise<{ code: number | null; out: string }> {
  const wrap = isRoot ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'] : undefined
  return MidgeProcess.run(['check', '-c', file], { wrap })
}

async function seedSetup(): Promise<{ pki: TestPki; dir: string; conf: string; live: string }> {
  const pki = new TestPki()
  chmodSync(pki.dir, 0o755)
  const leaf = pki.issue('server')
  const le = pki.letsEncrypt('example.org', leaf)
  const dir = mkdtempSync(join(tmpdir(), 'midge-check-'))
  chmodSync(dir, 0o777) // the config must be readable, and persistence_location writable, by nobody
  const passwd = join(dir, 'passwd')
  writeFileSync(passwd, `alice:${formatPasswordHash(await hashPassword('secret', { iterations: 1000 }))}\n`)
  chmodSync(passwd, 0o644)
  const conf = join(dir, 'config.conf')
  writeSeedConfig(conf, { live: le.live, passwd })
  // persistence_location defaults to the working directory; point it somewhere nobody may write.
  writeFileSync(conf, `persistence_location ${dir}\n` + readFileSync(conf, 'utf8'))
  chmodSync(conf, 0o644)
  return { pki, dir, conf, live: le.live }
}

test("midge check, run as a non-root user, reports a certificate it cannot read with the blocking directory's mode", async () => {
  const { pki, dir, conf, live } = await seedSetup()
  try {
    // certbot's default: live/ and archive/ are 0700 root, exactly the seed tutorial's failure.
    chmodSync(join(pki.dir, 'letsencrypt', 'live'), 0o700)
    chmodSync(join(pki.dir, 'letsencrypt', 'archive'), 0o700)
    chmodSync(join(pki.dir, 'letsencrypt'), 0o755)
    const { code, out } = await runCheck(conf)
    const user = isRoot ? 'nobody' : userInfo().username
    const owner = userInfo().username
    assert.equal(code, 1, out)
    const liveDir = join(pki.dir, 'letsencrypt', 'live')
    assert.ok(out.includes(`${conf}:16: certfile ${live}/cert.pem: permission denied for user '${user}' (the directory ${liveDir} is mode 0700 ${owner})\n`), out)
    assert.ok(out.includes(`${conf}:17: cafile ${live}/chain.pem: permission denied for user '${user}'`), out)
    assert.ok(out.includes(`${conf}:18: keyfile ${live}/privkey.pem: permission denied for user '${user}'`), out)
    assert.match(out, /\n {2}fix: let '.*' pass through .*live: 'chgrp /)
    assert.match(out, /: 3 problems; the broker would not start\n$/)
  } finally {
    pki.remove()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('midge check exits 0 when everything is readable, and reports a bad password file line', async () => {
  const { pki, dir, conf } = await seedSetup()
  try {
    // The tutorial's fix (chmod 755 live archive), plus a readable key, as a group-readable key would be.
    chmodSync(join(pki.dir, 'letsencrypt', 'live'), 0o755)
    chmodSync(join(pki.dir, 'letsencrypt', 'archive'), 0o755)
    for (const sub of ['letsencrypt', join('letsencrypt', 'archive', 'example.org')]) chmodSync(join(pki.dir, sub), 0o755)
    chmodSync(join(pki.dir, 'letsencrypt', 'archive', 'example.org', 'privkey1.pem'), 0o644)
    const ok = await runCheck(conf)
    assert.equal(ok.code, 0, ok.out)
    assert.match(ok.out, /OK; the broker would start with listeners 1883 on localhost, 8883 \(TLS\) on all interfaces/)

    writeFileSync(join(dir, 'passwd'), 'alice:plaintext\n')
    const bad = await runCheck(conf)
    assert.equal(bad.code, 1, bad.out)
    assert.match(bad.out, /config\.conf:21: password_file .*passwd is not valid: .*passwd:1: user 'alice' has a plaintext password/)
  } finally {
    pki.remove()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('midge check on a config with errors prints each with file:line and exits 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-check-'))
  try {
    chmodSync(dir, 0o755)
    const conf = join(dir, 'bad.conf')
    writeFileSync(conf, 'listener 1883\npersistance true\nlistener 1883\n')
    chmodSync(conf, 0o644)
    const { code, out } = await runCheck(conf)
    assert.equal(code, 1)
    assert.equal(out, [
      `${conf}:2: unknown option 'persistance' (did you mean 'persistence'?)`,
      `${conf}:3: duplicate listener: port 1883 is already used by the listener at ${conf}:1 (all interfaces)`,
      '  fix: give each listener its own port, or bind them to different addresses',
      `${conf}: 2 problems; the broker would not start`,
      '',
    ].join('\n'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
