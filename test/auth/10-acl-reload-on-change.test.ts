import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AclAuthorizer, type AclRules } from '../../src/auth/acl.js'
import { reloadOnChange } from '../../src/auth/file-watch.js'
import type { ClientIdentity } from '../../src/auth/types.js'

const anon: ClientIdentity = { clientId: 'c', username: undefined, remoteAddress: '192.0.2.1', listener: '1883' }

test('the ACL is reloaded when its file changes, also when replaced by rename; a broken edit keeps the old rules', { timeout: 20_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'midge-acl-watch-'))
  const file = join(dir, 'acl')
  const events: Array<{ rules?: AclRules; err?: unknown }> = []
  let notify: (() => void) | undefined
  // The watcher does not hold the process open (a broker has its sockets for that); the guard timer does,
  // and fails the test if no reload comes.
  const next = (): Promise<void> => new Promise((resolve, reject) => {
    const guard = setTimeout(() => reject(new Error('no reload within 10 s')), 10_000)
    notify = () => { clearTimeout(guard); resolve() }
  })
  try {
    await writeFile(file, 'topic read a\n')
    const acl = await AclAuthorizer.fromFile(file)
    const watch = reloadOnChange(acl, {
      onReload: (rules) => { events.push({ rules }); notify?.() },
      onError: (err) => { events.push({ err }); notify?.() },
    }, { debounceMs: 20 })
    try {
      assert.equal(acl.canRead(anon, 'a'), true)

      let changed = next()
      await writeFile(file, 'topic read b\n')
      await changed
      assert.equal(acl.canRead(anon, 'a'), false)
      assert.equal(acl.canRead(anon, 'b'), true)

      changed = next()
      await writeFile(join(dir, 'acl.new'), 'topic read c\n')
      await rename(join(dir, 'acl.new'), file)
      await changed
      assert.equal(acl.canRead(anon, 'c'), true, 'an editor-style replace is seen')

      changed = next()
      await writeFile(file, 'topic maybe c\n')
      await changed
      const last = events[events.length - 1]!
      assert.equal((last.err as { code?: string }).code, 'AUTH_ERR_ACL_FILE')
      assert.equal(acl.canRead(anon, 'c'), true, 'the previous rules stay in force')
    } finally {
      watch.close()
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
