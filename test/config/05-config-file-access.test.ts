import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brokerUser, checkRead, checkWrite, currentUser, lookupUser, type UserIdentity } from '../../src/config/file-access.js'
import { describeMode, explainFileAccess, readGroups, readPasswd } from '../../src/transport/file-access.js'

function nobody(): UserIdentity {
  const u = lookupUser('nobody')
  assert.ok(u !== undefined, "the 'nobody' account is missing from /etc/passwd (Debian package base-passwd)")
  return u
}

/** /tmp/x (0755) with open/ (0755) and private/ (0700), each holding file.pem (0644), and secret.pem (0600). */
function layout(): string {
  const dir = mkdtempSync(join(tmpdir(), 'midge-access-'))
  chmodSync(dir, 0o755)
  for (const sub of ['open', 'private']) {
    mkdirSync(join(dir, sub))
    writeFileSync(join(dir, sub, 'file.pem'), 'x')
    chmodSync(join(dir, sub, 'file.pem'), 0o644)
  }
  chmodSync(join(dir, 'open'), 0o755)
  chmodSync(join(dir, 'private'), 0o700)
  writeFileSync(join(dir, 'open', 'secret.pem'), 'x')
  chmodSync(join(dir, 'open', 'secret.pem'), 0o600)
  symlinkSync('../private/file.pem', join(dir, 'open', 'link.pem'))
  return dir
}

test('a file readable by the broker user passes', () => {
  const dir = layout()
  try {
    assert.equal(checkRead('certfile x', join(dir, 'open', 'file.pem'), nobody()), undefined)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a directory without search permission is named with its mode and owner, and the fix', () => {
  const dir = layout()
  try {
    const me = currentUser().name
    const file = join(dir, 'private', 'file.pem')
    const p = checkRead(`certfile ${file}`, file, nobody())
    assert.equal(p?.message, `certfile ${file}: permission denied for user 'nobody' (the directory ${join(dir, 'private')} is mode 0700 ${me})`)
    assert.match(p?.fix ?? '', /chmod g\+x .*private.*chmod o\+x/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('an unreadable file, and a symlink into an unreadable directory (certbot live/ → archive/), are explained', () => {
  const dir = layout()
  try {
    const me = currentUser().name
    const secret = join(dir, 'open', 'secret.pem')
    assert.equal(checkRead(`keyfile ${secret}`, secret, nobody())?.message, `keyfile ${secret}: permission denied for user 'nobody' (the file is mode 0600 ${me})`)
    const link = join(dir, 'open', 'link.pem')
    assert.equal(checkRead(`cafile ${link}`, link, nobody())?.message, `cafile ${link}: permission denied for user 'nobody' (the directory ${join(dir, 'private')} is mode 0700 ${me})`)
    const missing = join(dir, 'open', 'missing.pem')
    assert.match(checkRead(`cafile ${missing}`, missing, nobody())?.message ?? '', /^cafile .*missing\.pem: not found \(.*missing\.pem does not exist\)$/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('write access: a directory the user cannot write to is reported (persistence_location, log file)', () => {
  const dir = layout()
  try {
    const p = checkWrite(`persistence_location ${join(dir, 'open')}`, join(dir, 'open'), nobody(), 'directory')
    assert.match(p?.message ?? '', /permission denied for user 'nobody' \(the directory .*open is mode 0755 \S+, not writable by it\)$/)
    chmodSync(join(dir, 'open'), 0o777)
    assert.equal(checkWrite('log', join(dir, 'open', 'new.log'), nobody(), 'file'), undefined)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("the broker user: as root, 'user' or mosquitto (else nobody); 'root' stays root; as anyone else, that user", () => {
  const root: UserIdentity = { name: 'root', uid: 0, gid: 0, groups: [0] }
  assert.equal(brokerUser('nobody', root).user?.name, 'nobody')
  assert.equal(brokerUser('nobody', root).switches, true)
  assert.equal(brokerUser('root', root).switches, false)
  const fallback = brokerUser(undefined, root).user?.name
  assert.equal(fallback, lookupUser('mosquitto') === undefined ? 'nobody' : 'mosquitto')
  assert.equal(brokerUser('no-such-user-midge', root).error, "user 'no-such-user-midge' does not exist on this machine")
  const someone: UserIdentity = { name: 'someone', uid: 4242, gid: 4242, groups: [4242] }
  assert.deepEqual(brokerUser('mosquitto', someone), { user: someone, error: undefined, switches: false })
})

test('one passwd reader and one mode format: the TLS loader and midge check describe the same directory alike', () => {
  const users = readPasswd()
  assert.ok(users.some((u) => u.name === 'root' && u.uid === 0 && u.gid === 0))
  assert.ok(readGroups().some((g) => g.name === 'root' && g.gid === 0))
  const dir = layout()
  try {
    const priv = join(dir, 'private')
    assert.equal(describeMode(statSync(priv)), `mode 0700 ${currentUser().name}`)
    chmodSync(priv, 0o750)
    chownSync(priv, currentUser().uid, 0)
    assert.equal(describeMode(statSync(priv)), `mode 0750 ${currentUser().name}:root`, 'the group is named when its bits grant something')
    chmodSync(priv, 0o700)
    chownSync(priv, 54_321, 54_321)
    assert.equal(describeMode(statSync(priv)), 'mode 0700 54321', 'an owner without a passwd entry is its number')
    const file = join(priv, 'file.pem')
    const tlsWords = explainFileAccess(file, nobody())?.message ?? ''
    const checkWords = checkRead(`cafile ${file}`, file, nobody())?.message ?? ''
    assert.ok(tlsWords.includes(`(mode 0700 54321)`), tlsWords)
    assert.ok(checkWords.includes(`is mode 0700 54321)`), checkWords)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
