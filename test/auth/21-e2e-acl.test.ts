/**
 * acl_file end to end: `midge -c CONF` with a password file and an ACL, driven by MQTT.js in 3.1.1 and 5.
 * PUBLISH, SUBSCRIBE and delivery are each checked where the broker enforces them, with `pattern` lines
 * (%c, %u) and `$SYS`. A message that must not arrive is checked with a barrier: a later message on the
 * same path that must arrive, after which the earlier one would have been seen.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { E2EBroker, reasonCode, writePasswordFile } from './e2e-broker.js'

const Acl = `# Anonymous clients: nothing (allow_anonymous is false anyway).

user alice
topic readwrite public/#
topic read sensors/#
topic deny sensors/secret/#

user bob
topic readwrite public/#
topic readwrite sensors/#

user carol
topic readwrite #

user admin
topic read $SYS/#
topic readwrite #

pattern readwrite devices/%c/#
pattern read inbox/%u
`

const Users = { alice: 'a-pw', bob: 'b-pw', carol: 'c-pw', admin: 'adm-pw', dev1: 'd-pw' }

function aclBroker(name: string): Promise<E2EBroker> {
  return E2EBroker.start(name, 'allow_anonymous false\npassword_file passwd\nacl_file acl\n', async (dir) => {
    await writePasswordFile(`${dir}/passwd`, Users)
    writeFileSync(`${dir}/acl`, Acl)
  })
}

const as = (user: keyof typeof Users, clientId: string, version: 4 | 5 = 4): { clientId: string; username: string; password: string; version: 4 | 5 } =>
  ({ clientId, username: user, password: Users[user], version })

/** The SUBACK code of a one-filter subscribeAsync (MQTT.js rejects with the SUBACK packet when refused). */
async function subackCode(p: Promise<unknown>): Promise<number> {
  try {
    const granted = await p as Array<{ qos: number }>
    return granted[0]?.qos ?? -1
  } catch (err) {
    const code = (err as { packet?: { granted?: unknown[] } }).packet?.granted?.[0]
    if (typeof code !== 'number') throw err
    return code
  }
}

test('a PUBLISH the ACL does not allow: v5 PUBACK 0x87, 3.1.1 acknowledged and dropped; subscribers never see it', async () => {
  const b = await aclBroker('acl-pub')
  try {
    const bob = await b.connect(as('bob', 'bob-1'))
    await bob.subscribeAsync(['sensors/#', 'public/#'], { qos: 1 })
    const got = b.collect(bob)

    const alice5 = await b.connect(as('alice', 'alice-5', 5))
    await assert.rejects(alice5.publishAsync('sensors/temp', 'forged-5', { qos: 1 }), (err) => reasonCode(err) === 0x87)
    const barrier5 = b.next(bob, 'public/after-5')
    await alice5.publishAsync('public/after-5', 'ok', { qos: 1 })
    await barrier5

    const alice3 = await b.connect(as('alice', 'alice-3'))
    await alice3.publishAsync('sensors/temp', 'forged-3', { qos: 1 }) // PUBACK: 3.1.1 has no way to refuse
    const barrier3 = b.next(bob, 'public/after-3')
    await alice3.publishAsync('public/after-3', 'ok', { qos: 1 })
    await barrier3

    assert.deepEqual(got, ['public/after-5 ok', 'public/after-3 ok'])
    // A publish the ACL allows to the same subscriber does get through (the drop above was the ACL's).
    const allowed = b.next(bob, 'sensors/temp')
    const bob2 = await b.connect(as('bob', 'bob-2', 5))
    await bob2.publishAsync('sensors/temp', '21.5', { qos: 1 })
    assert.equal(await allowed, '21.5')
  } finally {
    await b.close()
  }
})

test('a SUBSCRIBE the ACL never allows: SUBACK 0x80 in 3.1.1, 0x87 in v5; a readable filter is granted', async () => {
  const b = await aclBroker('acl-sub')
  try {
    const alice3 = await b.connect(as('alice', 'alice-3'))
    assert.equal(await subackCode(alice3.subscribeAsync('sensors/secret/#', { qos: 1 })), 0x80)
    assert.equal(await subackCode(alice3.subscribeAsync('private/#', { qos: 1 })), 0x80)
    assert.equal(await subackCode(alice3.subscribeAsync('sensors/+/temp', { qos: 1 })), 1)
    const alice5 = await b.connect(as('alice', 'alice-5', 5))
    assert.equal(await subackCode(alice5.subscribeAsync('sensors/secret/#', { qos: 1 })), 0x87)
    assert.equal(await subackCode(alice5.subscribeAsync('public/#', { qos: 0 })), 0)
    // Still connected after a refused filter: it was one SUBACK entry, not a disconnect.
    await alice5.publishAsync('public/x', 'still here', { qos: 1 })
  } finally {
    await b.close()
  }
})

test('delivery is filtered by the read ACL: a wildcard subscription never delivers a denied topic', async () => {
  const b = await aclBroker('acl-read')
  try {
    const alice = await b.connect(as('alice', 'alice-1', 5))
    await alice.subscribeAsync('sensors/#', { qos: 1 }) // granted: alice may read most of sensors/
    const got = b.collect(alice)
    const bob = await b.connect(as('bob', 'bob-1'))
    const barrier = b.next(alice, 'sensors/temp')
    await bob.publishAsync('sensors/secret/key', 'hunter2', { qos: 1 })
    await bob.publishAsync('sensors/temp', '20', { qos: 1 })
    await barrier
    assert.deepEqual(got, ['sensors/temp 20'])

    // Retained messages go through the same check when a subscription is made.
    await bob.publishAsync('sensors/secret/retained', 'hidden', { qos: 1, retain: true })
    await bob.publishAsync('sensors/open/retained', 'shown', { qos: 1, retain: true })
    const alice2 = await b.connect(as('alice', 'alice-2', 5))
    const got2 = b.collect(alice2)
    const first = b.next(alice2, 'sensors/open/retained')
    await alice2.subscribeAsync('sensors/#', { qos: 1 })
    await first
    const barrier2 = b.next(alice2, 'sensors/after')
    await bob.publishAsync('sensors/after', 'x', { qos: 1 })
    await barrier2
    assert.deepEqual(got2, ['sensors/open/retained shown', 'sensors/after x'])
  } finally {
    await b.close()
  }
})

test('pattern lines: %c gives each client its own subtree, %u each user its inbox', async () => {
  const b = await aclBroker('acl-pattern')
  try {
    const dev = await b.connect(as('dev1', 'dev-a1', 5))
    await dev.publishAsync('devices/dev-a1/temp', '19', { qos: 1 })
    await assert.rejects(dev.publishAsync('devices/dev-b2/temp', '19', { qos: 1 }), (err) => reasonCode(err) === 0x87)
    assert.equal(await subackCode(dev.subscribeAsync('inbox/dev1', { qos: 1 })), 1)
    assert.equal(await subackCode(dev.subscribeAsync('inbox/bob', { qos: 1 })), 0x87)
    assert.equal(await subackCode(dev.subscribeAsync('devices/dev-a1/cmd', { qos: 1 })), 1)

    const admin = await b.connect(as('admin', 'admin-1', 5))
    const inbox = b.next(dev, 'inbox/dev1')
    const cmd = b.next(dev, 'devices/dev-a1/cmd')
    await admin.publishAsync('inbox/dev1', 'mail', { qos: 1 })
    await admin.publishAsync('devices/dev-a1/cmd', 'reboot', { qos: 1 })
    assert.equal(await inbox, 'mail')
    assert.equal(await cmd, 'reboot')

    // The same user under another client id gets that id's subtree, not dev-a1's.
    const other = await b.connect(as('dev1', 'dev-b2', 5))
    await other.publishAsync('devices/dev-b2/temp', '18', { qos: 1 })
    await assert.rejects(other.publishAsync('devices/dev-a1/temp', '18', { qos: 1 }), (err) => reasonCode(err) === 0x87)
  } finally {
    await b.close()
  }
})

test('$SYS is readable only where the ACL names it: `topic readwrite #` does not open it', async () => {
  const b = await aclBroker('acl-sys')
  try {
    const admin = await b.connect(as('admin', 'admin-1', 5))
    const version = b.next(admin, '$SYS/broker/version', 'the retained $SYS/broker/version')
    assert.equal(await subackCode(admin.subscribeAsync('$SYS/#', { qos: 0 })), 0)
    assert.match(await version, /^midge version /)

    const carol = await b.connect(as('carol', 'carol-1', 5))
    assert.equal(await subackCode(carol.subscribeAsync('$SYS/#', { qos: 0 })), 0x87)
    const carol3 = await b.connect(as('carol', 'carol-3'))
    assert.equal(await subackCode(carol3.subscribeAsync('$SYS/broker/version', { qos: 0 })), 0x80)
    const got = b.collect(carol)
    assert.equal(await subackCode(carol.subscribeAsync('#', { qos: 0 })), 0)
    const barrier = b.next(carol, 'carol/ping')
    await carol.publishAsync('carol/ping', 'pong', { qos: 1 })
    await barrier
    assert.deepEqual(got, ['carol/ping pong'], 'no retained $SYS topic reached the `#` subscription')

    const alice = await b.connect(as('alice', 'alice-1', 5))
    assert.equal(await subackCode(alice.subscribeAsync('$SYS/broker/version', { qos: 0 })), 0x87)
  } finally {
    await b.close()
  }
})
