/**
 * The seed's "Adding User Name And Password" step against `midge -c CONF`: a password file made with
 * `midge passwd -c -b`, `allow_anonymous false`, and the seed's mosquitto_sub / mosquitto_pub commands
 * (Debian package mosquitto-clients) with `-u username -P "secret"`; then what those clients see when the
 * password is wrong or missing, in MQTT 3.1.1 and 5.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { payloadLines, runMosquitto, startSubscriber } from '../helpers/tls-harness.js'
import { E2EBroker, midgePasswd } from './e2e-broker.js'

const Seed = 'allow_anonymous false\npassword_file passwd\n'

function seedBroker(name: string): Promise<E2EBroker> {
  return E2EBroker.start(name, Seed, (dir) => midgePasswd(['-c', '-b', `${dir}/passwd`, 'username', 'secret']))
}

test('the seed exchange with a password: mosquitto_sub/mosquitto_pub -u username -P "secret" against a file made by midge passwd -c -b', async () => {
  const b = await seedBroker('seed-pw')
  try {
    const p = String(b.port)
    const sub = await startSubscriber(['-h', '127.0.0.1', '-p', p, '-t', 'test', '-u', 'username', '-P', 'secret', '-C', '1'])
    const pub = await runMosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', p, '-t', 'test', '-m', 'hello world', '-u', 'username', '-P', 'secret'])
    assert.equal(pub.code, 0, pub.stderr)
    const got = await sub.done
    assert.equal(got.code, 0, got.stderr)
    assert.deepEqual(payloadLines(got.stdout), ['hello world'])
    await b.midge.waitFor(/New client connected from 127\.0\.0\.1:\d+ as \S+ \(p2, c1, k60, u'username'\)\./)
  } finally {
    await b.close()
  }
})

test('a wrong password: mosquitto_pub exits 4 "bad user name or password" (3.1.1) and 134 = 0x86 (v5); the subscriber gets nothing', async () => {
  const b = await seedBroker('seed-badpw')
  try {
    const p = String(b.port)
    const sub = await startSubscriber(['-h', '127.0.0.1', '-p', p, '-t', 'test', '-u', 'username', '-P', 'secret', '-C', '1'])

    const v3 = await runMosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', p, '-t', 'test', '-m', 'forged', '-u', 'username', '-P', 'Wr0ng-Pa55'])
    assert.equal(v3.code, 4, `CONNACK return code 4; stderr: ${v3.stderr}`)
    assert.match(v3.stderr, /Connection error: Connection Refused: bad user name or password\./)

    const v5 = await runMosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', p, '-t', 'test', '-m', 'forged', '-u', 'username', '-P', 'Wr0ng-Pa55', '-V', 'mqttv5'])
    assert.equal(v5.code, 0x86, `CONNACK reason 0x86; stderr: ${v5.stderr}`)
    assert.match(v5.stderr, /Connection error: Bad User Name or Password/)

    // An unknown user is refused the same way (no hint that the name does not exist).
    const unknown = await runMosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', p, '-t', 'test', '-m', 'forged', '-u', 'mallory', '-P', 'secret'])
    assert.equal(unknown.code, 4, unknown.stderr)

    // The log names the reason without the password.
    await b.midge.waitFor(/refused: wrong password for user 'username'\./)
    await b.midge.waitFor(/refused: unknown user 'mallory'\./)
    assert.ok(!b.midge.lines.some((l) => l.includes('Wr0ng-Pa55') || l.includes('secret')), b.midge.lines.join('\n'))

    // The subscriber's one message is the next good one: nothing forged came through before it.
    const ok = await runMosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', p, '-t', 'test', '-m', 'genuine', '-u', 'username', '-P', 'secret'])
    assert.equal(ok.code, 0, ok.stderr)
    assert.deepEqual(payloadLines((await sub.done).stdout), ['genuine'])
  } finally {
    await b.close()
  }
})

test('no username with allow_anonymous false: mosquitto_pub exits 5 "not authorised" (3.1.1) and 135 = 0x87 (v5)', async () => {
  const b = await seedBroker('seed-anon')
  try {
    const p = String(b.port)
    const v3 = await runMosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', p, '-t', 'test', '-m', 'hello world'])
    assert.equal(v3.code, 5, v3.stderr)
    assert.match(v3.stderr, /Connection error: Connection Refused: not authorised\./)
    const v5 = await runMosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', p, '-t', 'test', '-m', 'hello world', '-V', 'mqttv5'])
    assert.equal(v5.code, 0x87, v5.stderr)
    assert.match(v5.stderr, /Connection error: Not authorized/)
    // A username without a password is a bad password, not an anonymous client.
    assert.equal(await b.refusal({ clientId: 'no-pw', username: 'username', version: 5 }), 0x86)
    assert.equal(await b.refusal({ clientId: 'no-pw-3', username: 'username' }), 4)
  } finally {
    await b.close()
  }
})

test('a listener without a password file that refuses anonymous clients refuses everyone, with 5 / 0x87', async () => {
  const b = await E2EBroker.start('no-pwfile', 'allow_anonymous false\n')
  try {
    assert.equal(await b.refusal({ clientId: 'anon' }), 5)
    assert.equal(await b.refusal({ clientId: 'named', username: 'username', password: 'secret', version: 5 }), 0x87)
    await b.midge.waitFor(/refused: no password_file is configured and allow_anonymous is false\./)
  } finally {
    await b.close()
  }
})
