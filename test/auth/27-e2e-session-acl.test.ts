/**
 * Queued and in-flight messages against the read ACL, end to end (`midge -c CONF`, password file + ACL file,
 * raw MQTT 3.1.1 clients that acknowledge only when told to):
 *  - a client id taken over by another user: the session is not resumed across users, so nothing alice was
 *    sent or had queued reaches bob (issue #12, item 3);
 *  - an ACL reload that adds a `deny`: what was queued or in flight before it is not delivered afterwards,
 *    neither on the live connection nor on a resumed session.
 * With max_inflight_messages 1, a subscriber that does not PUBACK holds one message in flight and queues the
 * next. A message that must not arrive is checked with a barrier: a later message that must arrive on the
 * same connection, after which the earlier one would have been seen.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { formatPasswordHash, hashPassword } from '../../src/auth/password-hash.js'
import { PacketType } from '../../src/protocol/constants.js'
import type { PublishPacket } from '../../src/protocol/packets.js'
import type { TestClient } from '../helpers/broker-harness.js'
import { AttackTarget } from '../attack/harness.js'

const Users = { alice: 'a-pw', bob: 'b-pw', admin: 'adm-pw' }

const Acl = `user alice
topic read alice/#

user bob
topic readwrite bob/#

user admin
topic readwrite #
`

async function passwd(): Promise<string> {
  let text = ''
  for (const [u, pw] of Object.entries(Users)) text += `${u}:${formatPasswordHash(await hashPassword(pw, { iterations: 1000 }))}\n`
  return text
}

async function start(name: string): Promise<AttackTarget> {
  return AttackTarget.start(name, 'allow_anonymous false\npassword_file passwd\nacl_file acl\nmax_inflight_messages 1\n', { passwd: await passwd(), acl: Acl })
}

async function login(t: AttackTarget, user: keyof typeof Users, clientId: string, cleanStart: boolean): Promise<{ c: TestClient; present: boolean }> {
  const c = await t.client(4)
  const ack = await c.connect({ clientId, cleanStart, username: user, password: Buffer.from(Users[user]), keepAlive: 60 })
  assert.equal(ack.reasonCode, 0, `${user} as ${clientId}: CONNACK`)
  return { c, present: ack.sessionPresent }
}

/** The topics of every PUBLISH `c` has received and not yet taken. */
function published(c: TestClient): string[] {
  return c.pending(PacketType.Publish).map((p: PublishPacket) => `${p.topic}${p.dup ? ' (dup)' : ''}`)
}

/** alice (clean session 0) subscribed to alice/#, with alice/<a> in flight (not acknowledged) and alice/<b> queued. */
async function aliceWithBacklog(t: AttackTarget, admin: TestClient, a: string, b: string): Promise<{ alice: TestClient; inflight: PublishPacket }> {
  const { c: alice } = await login(t, 'alice', 'alice-dev', false)
  await alice.subscribe('alice/#', { qos: 1 })
  await admin.publishAcked(`alice/${a}`, 'one', { qos: 1 })
  await admin.publishAcked(`alice/${b}`, 'two', { qos: 1 })
  const inflight = await alice.publishOn(`alice/${a}`)
  await alice.sync()
  assert.deepEqual(published(alice), [], 'the second message waits in the queue (max_inflight_messages 1)')
  return { alice, inflight }
}

test('a client id taken over by another user: the session is not resumed, nothing queued or in flight for alice reaches bob', async () => {
  const t = await start('takeover-user')
  try {
    const { c: admin } = await login(t, 'admin', 'admin', true)
    const { alice } = await aliceWithBacklog(t, admin, '1', '2')

    const { c: bob, present } = await login(t, 'bob', 'alice-dev', false)
    await alice.waitClosed()
    assert.equal(present, false, 'bob starts a fresh session: alice\'s is not his')
    await t.midge.waitFor(/Client alice-dev from 127\.0\.0\.1:\d+ \(u'bob'\) does not resume the session of user 'alice': discarded/)
    await bob.subscribe('bob/#', { qos: 1 })
    // alice's subscription went with her session: a new message on alice/ does not reach bob either.
    await admin.publishAcked('alice/3', 'three', { qos: 1 })
    await admin.publishAcked('bob/barrier', 'x', { qos: 1 })
    const barrier = await bob.publishOn('bob/barrier')
    await bob.ack(barrier)
    assert.deepEqual(published(bob), [], 'bob got only his own message')

    // alice comes back: her old session is gone (bob's took its id), so she starts afresh too.
    const again = await login(t, 'alice', 'alice-dev', false)
    assert.equal(again.present, false)
    await bob.waitClosed()
  } finally {
    await t.stop()
  }
})

test('the same user resuming its session gets what was queued and in flight (DUP), as before', async () => {
  const t = await start('takeover-same')
  try {
    const { c: admin } = await login(t, 'admin', 'admin', true)
    const { alice } = await aliceWithBacklog(t, admin, '1', '2')
    alice.destroy()
    const { c: back, present } = await login(t, 'alice', 'alice-dev', false)
    assert.equal(present, true)
    const dup = await back.publishOn('alice/1')
    assert.equal(dup.dup, true)
    await back.ack(dup)
    await back.ack(await back.publishOn('alice/2'))
  } finally {
    await t.stop()
  }
})

/** Adds `topic deny alice/secret/#` to alice's block and waits until the broker has reloaded the file. */
async function denySecrets(t: AttackTarget): Promise<void> {
  const mark = t.midge.lines.length
  writeFileSync(t.path('acl'), Acl.replace('topic read alice/#', 'topic read alice/#\ntopic deny alice/secret/#'))
  await t.midge.waitFor(/ACL file .*acl changed: reloaded\./, mark)
}

test('after an ACL reload adds a deny, a message queued before it is not delivered on the live connection', async () => {
  const t = await start('reload-live')
  try {
    const { c: admin } = await login(t, 'admin', 'admin', true)
    const { alice, inflight } = await aliceWithBacklog(t, admin, 'secret/1', 'secret/2')
    await denySecrets(t)
    // The PUBACK opens the window: the queued alice/secret/2 would go out now.
    await alice.ack(inflight)
    await admin.publishAcked('alice/ok', 'x', { qos: 1 })
    await alice.ack(await alice.publishOn('alice/ok'))
    assert.deepEqual(published(alice), [], 'alice/secret/2 was not delivered after the deny')
  } finally {
    await t.stop()
  }
})

test('after an ACL reload adds a deny, a resumed session gets neither its in-flight nor its queued message', async () => {
  const t = await start('reload-resume')
  try {
    const { c: admin } = await login(t, 'admin', 'admin', true)
    const { alice } = await aliceWithBacklog(t, admin, 'secret/1', 'secret/2')
    alice.destroy()
    await denySecrets(t)
    const { c: back, present } = await login(t, 'alice', 'alice-dev', false)
    assert.equal(present, true, 'same user: the session is resumed')
    await admin.publishAcked('alice/ok', 'x', { qos: 1 })
    await back.ack(await back.publishOn('alice/ok'))
    assert.deepEqual(published(back), [], 'neither alice/secret/1 (in flight) nor alice/secret/2 (queued) was delivered')
  } finally {
    await t.stop()
  }
})
