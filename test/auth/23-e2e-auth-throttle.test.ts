/**
 * The brute-force throttle (auth_fail_limit, auth_fail_window, auth_ban_time, auth_fail_exempt_loopback) in
 * a running `midge -c CONF`. The tests connect from 127.0.0.1, so all but the last turn the loopback
 * exemption off; 127.0.0.2 (also loopback on Linux) stands in for "another address".
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { E2EBroker, writePasswordFile } from './e2e-broker.js'

const Good = { username: 'alice', password: 'a-pw' }
const Bad = { username: 'alice', password: 'guess' }

test('after auth_fail_limit failures the address is banned: the right password gets 0x8A (v3: 5) until auth_ban_time has passed', async () => {
  const banSeconds = 3
  const b = await E2EBroker.start('throttle-ban',
    `allow_anonymous false\npassword_file passwd\nauth_fail_limit 3\nauth_fail_window 60\nauth_ban_time ${banSeconds}\nauth_fail_exempt_loopback false\n`,
    (dir) => writePasswordFile(`${dir}/passwd`, { alice: 'a-pw' }))
  try {
    assert.equal(await b.refusal({ clientId: 'guess-1', ...Bad, version: 5 }), 0x86)
    assert.equal(await b.refusal({ clientId: 'guess-2', ...Bad, version: 5 }), 0x86)
    assert.equal(await b.refusal({ clientId: 'guess-3', ...Bad, version: 5 }), 0x86)
    // The ban started before the third CONNACK left the broker, so it is over by banSeconds from here.
    const banEndsBy = Date.now() + banSeconds * 1000
    await b.midge.waitFor(/Banning address 127\.0\.0\.1 for 3 s after 3 failed authentications within 60 s \(last: client guess-3, user 'alice'\)\./)

    const started = Date.now()
    const [v5, v3] = await Promise.all([
      b.refusal({ clientId: 'right-5', ...Good, version: 5 }),
      b.refusal({ clientId: 'right-3', ...Good, version: 4 }),
    ])
    assert.equal(v5, 0x8a, 'v5: Banned')
    assert.equal(v3, 5, 'v3: not authorised')
    assert.ok(Date.now() - started >= 900, 'a banned CONNECT is held about a second before its refusal')
    await b.midge.waitFor(/Client right-5 from 127\.0\.0\.1:\d+ \(u'alice'\) refused: address 127\.0\.0\.1 is banned for \d+ s/)
    assert.equal(b.midge.lines.filter((l) => l.includes('Banning address')).length, 1, 'the ban is logged once')

    // Another address is not affected (127.0.0.2 reaches the 127.0.0.1 listener through lo).
    const other = await b.connect({ clientId: 'other', ...Good, version: 5, localAddress: '127.0.0.2' })
    other.end(true)

    await sleep(Math.max(0, banEndsBy - Date.now()) + 100)
    await b.connect({ clientId: 'after-ban', ...Good, version: 5 })
  } finally {
    await b.close()
  }
})

test('a listener without a password file that refuses anonymous clients counts its refusals too', async () => {
  const b = await E2EBroker.start('throttle-nopw', 'allow_anonymous false\nauth_fail_limit 2\nauth_ban_time 300\nauth_fail_exempt_loopback false\n')
  try {
    assert.equal(await b.refusal({ clientId: 'anon-1', version: 5 }), 0x87)
    assert.equal(await b.refusal({ clientId: 'named-1', username: 'someone', password: 'x', version: 5 }), 0x87)
    assert.equal(await b.refusal({ clientId: 'anon-2', version: 5 }), 0x8a)
    await b.midge.waitFor(/Banning address 127\.0\.0\.1 for 300 s after 2 failed authentications within 60 s/)
  } finally {
    await b.close()
  }
})

test('loopback is exempt by default; auth_fail_exempt_loopback false applies on SIGHUP', async () => {
  const body = (extra: string): string => `allow_anonymous false\npassword_file passwd\nauth_fail_limit 2\n${extra}`
  const b = await E2EBroker.start('throttle-loopback', body(''), (dir) => writePasswordFile(`${dir}/passwd`, { alice: 'a-pw' }))
  try {
    for (let i = 0; i < 4; i++) assert.equal(await b.refusal({ clientId: `guess-${i}`, ...Bad, version: 5 }), 0x86)
    ;(await b.connect({ clientId: 'local-tool', ...Good, version: 5 })).end(true)

    b.writeConfig(body('auth_fail_exempt_loopback false\n'))
    await b.hup()
    assert.equal(await b.refusal({ clientId: 'guess-a', ...Bad, version: 5 }), 0x86)
    assert.equal(await b.refusal({ clientId: 'guess-b', ...Bad, version: 5 }), 0x86)
    assert.equal(await b.refusal({ clientId: 'right', ...Good, version: 5 }), 0x8a)
  } finally {
    await b.close()
  }
})
