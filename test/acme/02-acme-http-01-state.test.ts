/**
 * The HTTP-01 responder without a CA: it listens only while a challenge is pending (or always), answers
 * only /.well-known/acme-challenge/TOKEN, shares the port with another Midge using the same state
 * directory, and names a foreign program holding the port. The state directory: modes, atomic writes,
 * and files handed to the broker's user when written as root.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { type AcmeError, AcmeErrorCode } from '../../src/acme/errors.js'
import { ChallengeResponder, WebrootChallenges } from '../../src/acme/http-01.js'
import { AcmeStateDir, certificateId } from '../../src/acme/state-dir.js'
import { lookupUser } from '../../src/transport/file-access.js'
import { freePort } from '../helpers/ports.js'
import { RecordingLogger } from '../helpers/tls-harness.js'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-acme-http01-'))
after(() => fs.rmSync(tmp, { recursive: true, force: true }))

const Token = 'a-Token_of-base64url-0123456789'

function get(port: number, urlPath: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

test('the responder listens only while a challenge is pending and answers only challenge tokens', async () => {
  const port = await freePort()
  const state = new AcmeStateDir(path.join(tmp, 'on-demand'))
  state.ensure()
  const r = new ChallengeResponder({ port, host: '127.0.0.1', state, keepListening: false, logger: new RecordingLogger() })
  try {
    assert.equal(await listening(port), false)
    await r.present(Token, `${Token}.thumbprint`)
    assert.equal(await listening(port), true)
    assert.deepEqual(await get(port, `/.well-known/acme-challenge/${Token}`), { status: 200, body: `${Token}.thumbprint` })
    assert.equal((await get(port, `/.well-known/acme-challenge/${Token}`, 'HEAD')).status, 200)
    assert.equal((await get(port, `/.well-known/acme-challenge/${Token}?x=1`)).status, 200)
    assert.equal((await get(port, `/.well-known/acme-challenge/${Token}`, 'POST')).status, 404)
    assert.equal((await get(port, '/')).status, 404)
    assert.equal((await get(port, '/.well-known/acme-challenge/other')).status, 404)
    assert.equal((await get(port, '/.well-known/acme-challenge/..%2Faccount.key')).status, 404)
    assert.equal((await get(port, '/.well-known/acme-challenge/../account.key')).status, 404)
    assert.equal(fs.statSync(path.join(state.challengeDir, Token)).mode & 0o777, 0o600)
    await r.remove(Token)
    assert.equal(await listening(port), false)
    assert.deepEqual(fs.readdirSync(state.challengeDir), [])
    await assert.rejects(r.present('../../etc/passwd', 'x'), (err: AcmeError) => err.code === AcmeErrorCode.Server)
  } finally {
    await r.close()
  }
})

test('with acme_challenge_always (or a port bound before dropping root) the responder keeps the port between challenges', async () => {
  const port = await freePort()
  const state = new AcmeStateDir(path.join(tmp, 'always'))
  state.ensure()
  const r = new ChallengeResponder({ port, host: '127.0.0.1', state, keepListening: false, logger: new RecordingLogger() })
  try {
    await r.hold()
    assert.equal(await listening(port), true)
    await r.present(Token, 'k')
    await r.remove(Token)
    assert.equal(await listening(port), true)
    assert.equal((await get(port, `/.well-known/acme-challenge/${Token}`)).status, 404)
  } finally {
    await r.close()
  }
  assert.equal(await listening(port), false)
})

test('a second Midge on the same state directory (`midge cert renew` beside the broker) has its challenges answered by the one holding the port', async () => {
  const port = await freePort()
  const dir = path.join(tmp, 'shared')
  const broker = new ChallengeResponder({ port, host: '127.0.0.1', state: new AcmeStateDir(dir), keepListening: true, logger: new RecordingLogger() })
  const log = new RecordingLogger()
  const cli = new ChallengeResponder({ port, host: '127.0.0.1', state: new AcmeStateDir(dir), keepListening: false, logger: log })
  try {
    await broker.hold()
    await cli.present(Token, 'from-the-cli')
    assert.equal(cli.listening(), false)
    assert.deepEqual(await get(port, `/.well-known/acme-challenge/${Token}`), { status: 200, body: 'from-the-cli' })
    await log.waitFor(/port \d+ is held by another Midge process/)
    await cli.remove(Token)
  } finally {
    await cli.close()
    await broker.close()
  }
})

test('a foreign program on the challenge port is named, with the acme_webroot hint', async () => {
  const port = await freePort()
  const other = http.createServer((_req, res) => res.writeHead(200).end('<html>a web server</html>'))
  await new Promise<void>((resolve) => other.listen(port, '127.0.0.1', resolve))
  const r = new ChallengeResponder({ port, host: '127.0.0.1', state: new AcmeStateDir(path.join(tmp, 'foreign')), keepListening: false, logger: new RecordingLogger() })
  try {
    await assert.rejects(r.present(Token, 'k'), (err: AcmeError) => {
      assert.equal(err.code, AcmeErrorCode.ChallengePort)
      assert.match(err.message, new RegExp(`acme_challenge_port ${port} is in use by another program, which does not answer the HTTP-01 challenge`))
      assert.match(err.hint ?? '', /acme_webroot/)
      return true
    })
  } finally {
    await r.close()
    await new Promise<void>((resolve) => other.close(() => resolve()))
  }
})

test('webroot challenges are world-readable files under .well-known/acme-challenge, removed afterwards', async () => {
  const webroot = path.join(tmp, 'www')
  const w = new WebrootChallenges(webroot, new RecordingLogger())
  await w.present(Token, 'answer')
  const file = path.join(webroot, '.well-known', 'acme-challenge', Token)
  assert.equal(fs.readFileSync(file, 'utf8'), 'answer')
  assert.equal(fs.statSync(file).mode & 0o777, 0o644)
  await w.remove(Token)
  assert.equal(fs.existsSync(file), false)
})

test('the state directory is 0700 with 0600 files written atomically, owned by the broker user when written as root', () => {
  const nobody = lookupUser('nobody')
  const root = process.getuid?.() === 0
  const owner = nobody === undefined ? undefined : { uid: nobody.uid, gid: nobody.gid }
  const state = new AcmeStateDir(path.join(tmp, 'state'), owner)
  state.ensure()
  const files = state.certificateFiles(['mqtt.example.org', 'www.example.org'])
  assert.equal(files.id, 'mqtt.example.org')
  state.installCertificate(files, 'CERT', 'KEY')
  state.setAccountUrl('https://ca.example/dir', 'https://ca.example/acct/1')
  assert.equal(state.accountUrl('https://ca.example/dir'), 'https://ca.example/acct/1')
  for (const d of [state.dir, path.dirname(files.certfile), state.challengeDir]) assert.equal(fs.statSync(d).mode & 0o777, 0o700, d)
  for (const f of [files.certfile, files.keyfile, state.accountsFile]) {
    const st = fs.statSync(f)
    assert.equal(st.mode & 0o777, 0o600, f)
    // As root the files go to the broker's user; otherwise they stay the writer's.
    assert.equal(st.uid, root && owner !== undefined ? owner.uid : process.getuid?.(), f)
  }
  assert.deepEqual(fs.readdirSync(path.dirname(files.certfile)).sort(), ['fullchain.pem', 'privkey.pem'])
  assert.throws(() => certificateId(['../evil']), (err: AcmeError) => err.code === AcmeErrorCode.State)
})
