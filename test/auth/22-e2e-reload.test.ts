/**
 * Reloading the password and ACL files of a running `midge -c CONF`: on SIGHUP (mosquitto's way), and on
 * its own when a file changes on disk. Connected clients stay connected and keep receiving; new rules
 * apply to their next message, new passwords to the next CONNECT; a broken edit keeps the old contents.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { renameSync, writeFileSync } from 'node:fs'
import { E2EBroker, writePasswordFile } from './e2e-broker.js'

const Acl1 = 'user alice\ntopic read news/#\n\nuser bob\ntopic write news/#\ntopic write extra/#\n'
const Acl2 = 'user alice\ntopic read news/#\ntopic read extra/#\n\nuser bob\ntopic write news/#\ntopic write extra/#\n\nuser carol\ntopic write news/#\n'

function config(passwd: string, acl: string): string {
  return `allow_anonymous false\npassword_file ${passwd}\nacl_file ${acl}\n`
}

test('SIGHUP loads the new password and ACL files: the connected subscriber keeps receiving, new rules and users apply', async () => {
  const b = await E2EBroker.start('reload-hup', config('passwd', 'acl'), async (dir) => {
    await writePasswordFile(`${dir}/passwd`, { alice: 'a-pw', bob: 'b-pw' })
    writeFileSync(`${dir}/acl`, Acl1)
  })
  try {
    const alice = await b.connect({ clientId: 'alice-1', username: 'alice', password: 'a-pw', version: 5 })
    let aliceClosed = false
    alice.on('close', () => { aliceClosed = true })
    await alice.subscribeAsync('#', { qos: 1 })
    const got = b.collect(alice)
    const bob = await b.connect({ clientId: 'bob-1', username: 'bob', password: 'b-pw' })
    let barrier = b.next(alice, 'news/1')
    await bob.publishAsync('extra/1', 'not readable yet', { qos: 1 })
    await bob.publishAsync('news/1', 'before', { qos: 1 })
    await barrier
    assert.deepEqual(got, ['news/1 before'])
    assert.equal(await b.refusal({ clientId: 'carol-0', username: 'carol', password: 'c-pw', version: 5 }), 0x86)

    // New files under new names: only the SIGHUP can bring them in (the file watchers follow the old ones).
    await writePasswordFile(b.path('passwd2'), { alice: 'a-pw', bob: 'b-pw-2', carol: 'c-pw' })
    writeFileSync(b.path('acl2'), Acl2)
    b.writeConfig(config('passwd2', 'acl2'))
    const mark = b.midge.lines.length
    await b.hup()
    assert.ok(b.midge.lines.slice(mark).some((l) => l.includes('Configuration reloaded.')), b.midge.lines.join('\n'))

    // The existing connections: alice's `#` now delivers extra/, over the same connection, from bob's old one.
    barrier = b.next(alice, 'extra/2')
    await bob.publishAsync('extra/2', 'readable now', { qos: 1 })
    assert.equal(await barrier, 'readable now')
    // New connections: carol exists, bob's old password is gone.
    const carol = await b.connect({ clientId: 'carol-1', username: 'carol', password: 'c-pw', version: 5 })
    barrier = b.next(alice, 'news/2')
    await carol.publishAsync('news/2', 'from carol', { qos: 1 })
    assert.equal(await barrier, 'from carol')
    assert.equal(await b.refusal({ clientId: 'bob-old', username: 'bob', password: 'b-pw', version: 5 }), 0x86)
    await b.connect({ clientId: 'bob-new', username: 'bob', password: 'b-pw-2' })
    assert.equal(aliceClosed, false, 'the subscriber stayed connected through the reload')
    assert.deepEqual(got, ['news/1 before', 'extra/2 readable now', 'news/2 from carol'])
  } finally {
    await b.close()
  }
})

test('an edited ACL or password file applies without SIGHUP; a broken edit keeps the previous contents', async () => {
  const b = await E2EBroker.start('reload-watch', config('passwd', 'acl'), async (dir) => {
    await writePasswordFile(`${dir}/passwd`, { alice: 'a-pw', bob: 'b-pw' })
    writeFileSync(`${dir}/acl`, Acl1)
  })
  try {
    const alice = await b.connect({ clientId: 'alice-1', username: 'alice', password: 'a-pw', version: 5 })
    await alice.subscribeAsync('#', { qos: 1 })
    const got = b.collect(alice)
    const bob = await b.connect({ clientId: 'bob-1', username: 'bob', password: 'b-pw', version: 5 })
    let barrier = b.next(alice, 'news/1')
    await bob.publishAsync('extra/1', 'not readable yet', { qos: 1 })
    await bob.publishAsync('news/1', 'x', { qos: 1 })
    await barrier

    // Saved the way editors do: a new file renamed over the old one.
    let mark = b.midge.lines.length
    writeFileSync(b.path('acl.tmp'), Acl2)
    renameSync(b.path('acl.tmp'), b.path('acl'))
    await b.midge.waitFor(/ACL file \S+\/acl changed: reloaded\./, mark)
    barrier = b.next(alice, 'extra/2')
    await bob.publishAsync('extra/2', 'readable now', { qos: 1 })
    await barrier

    mark = b.midge.lines.length
    await writePasswordFile(b.path('passwd'), { alice: 'a-pw', bob: 'b-pw', carol: 'c-pw' })
    await b.midge.waitFor(/Password file \S+\/passwd changed: reloaded \(3 users\)\./, mark)
    const carol = await b.connect({ clientId: 'carol-1', username: 'carol', password: 'c-pw', version: 5 })
    barrier = b.next(alice, 'news/2')
    await carol.publishAsync('news/2', 'from carol', { qos: 1 })
    await barrier

    // A typo: logged with file:line, and the rules in force stay.
    mark = b.midge.lines.length
    writeFileSync(b.path('acl'), 'user alice\ntopic raed news/#\n')
    await b.midge.waitFor(/acl:2: .*raed/, mark)
    await b.midge.waitFor(/Reload of ACL file \S+\/acl failed: keeping its previous contents\./, mark)
    barrier = b.next(alice, 'extra/3')
    await bob.publishAsync('extra/3', 'still readable', { qos: 1 })
    await barrier

    assert.deepEqual(got, ['news/1 x', 'extra/2 readable now', 'news/2 from carol', 'extra/3 still readable'])
    assert.ok(!b.midge.lines.some((l) => l.includes('Reloading config.')), 'no SIGHUP was involved')
  } finally {
    await b.close()
  }
})
