import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AclAccess, loadAcl, parseAcl, type AclRule } from '../../src/auth/acl.js'
import { AuthError } from '../../src/auth/errors.js'

const brief = (rules: AclRule[]): string[] => rules.map((r) => `${r.access}:${r.filter}`)

test('topic lines before the first user line are for anonymous clients; user blocks; patterns for all', () => {
  const rules = parseAcl([
    '# anonymous clients',
    'topic read $SYS/#',
    'topic public/#',
    '',
    'user roger',
    'topic foo/bar',
    'topic write roger/out',
    'pattern read sensor/%u/#',
    'user sam',
    'topic readwrite sam/#',
    'user roger',
    'topic read more/roger',
    'pattern write $SYS/broker/connection/%c/state',
  ].join('\n'), 'acl')
  assert.deepEqual(brief(rules.anonymous), [`${AclAccess.Read}:$SYS/#`, `${AclAccess.ReadWrite}:public/#`])
  assert.deepEqual(brief(rules.users.get('roger')!), [`${AclAccess.ReadWrite}:foo/bar`, `${AclAccess.Write}:roger/out`, `${AclAccess.Read}:more/roger`])
  assert.deepEqual(brief(rules.users.get('sam')!), [`${AclAccess.ReadWrite}:sam/#`])
  assert.deepEqual(brief(rules.patterns), [`${AclAccess.Read}:sensor/%u/#`, `${AclAccess.Write}:$SYS/broker/connection/%c/state`])
  assert.deepEqual(rules.warnings, [])
})

test('deny lines are put before grants of the same list, each group in file order', () => {
  const rules = parseAcl('topic a/#\ntopic deny a/x\ntopic read b\ntopic deny a/y\npattern read p/%c\npattern deny p/%c/secret\n')
  assert.deepEqual(brief(rules.anonymous), ['0:a/x', '0:a/y', '3:a/#', '1:b'])
  assert.deepEqual(brief(rules.patterns), ['0:p/%c/secret', '1:p/%c'])
})

test('the access word is optional; a filter may hold spaces after one; blanks are trimmed', () => {
  const rules = parseAcl('topic read\ntopic  write   with space/x  \r\n\ttopic deny\tz\n   # indented comment\nuser  name with spaces \ntopic y')
  assert.deepEqual(brief(rules.anonymous), ['0:z', '3:read', '2:with space/x'])
  assert.deepEqual(brief(rules.users.get('name with spaces')!), ['3:y'])
})

test('a pattern without %c or %u is kept with a warning naming file:line', () => {
  const rules = parseAcl('pattern read everyone/#\n', 'acl.conf')
  assert.deepEqual(brief(rules.patterns), ['1:everyone/#'])
  assert.deepEqual(rules.warnings, ["acl.conf:1: pattern 'everyone/#' contains neither %c nor %u; it applies to every client as written"])
})

test('malformed lines are AUTH_ERR_ACL_FILE errors naming file:line', () => {
  const cases: Array<[string, number, RegExp]> = [
    ['topic a\nsubscribe b\n', 2, /unknown keyword 'subscribe'/],
    ['topic readonly a/b\n', 1, /unknown access 'readonly'/],
    ['topic foo bar\n', 1, /unknown access 'foo'.*spaces/],
    ['topic\n', 1, /'topic' needs a topic filter/],
    ['user\n', 1, /'user' needs a username/],
    ['# ok\ntopic a/#/b\n', 2, /invalid topic filter 'a\/#\/b'/],
    ['topic read a+/b\n', 1, /invalid topic filter/],
    ['pattern write a/b#\n', 1, /invalid topic filter/],
  ]
  for (const [text, line, reason] of cases) {
    assert.throws(() => parseAcl(text, '/etc/midge/acl'), (err: unknown) => {
      assert.ok(err instanceof AuthError)
      assert.equal(err.code, 'AUTH_ERR_ACL_FILE')
      assert.equal(err.line, line)
      assert.ok(err.message.startsWith(`/etc/midge/acl:${line}: `), err.message)
      assert.match(err.message, reason)
      return true
    }, text)
  }
})

test('loadAcl reads a file; a missing one is AUTH_ERR_FILE_ACCESS', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'midge-acl-'))
  try {
    await writeFile(join(dir, 'acl'), 'topic read a\n')
    assert.equal((await loadAcl(join(dir, 'acl'))).anonymous.length, 1)
    await assert.rejects(loadAcl(join(dir, 'missing')), { code: 'AUTH_ERR_FILE_ACCESS' })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
