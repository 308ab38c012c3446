import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { AclAuthorizer, parseAcl } from '../../src/auth/acl.js'
import type { ClientIdentity } from '../../src/auth/types.js'
import { regexMatch } from '../helpers/topic-reference.js'

function client(username: string | undefined, clientId = 'dev1'): ClientIdentity {
  return { clientId, username, remoteAddress: '192.0.2.1', listener: '1883' }
}

function authorizer(text: string): AclAuthorizer {
  return new AclAuthorizer(parseAcl(text, 'acl'))
}

test('anonymous lines apply to clients without a username, user blocks to that user only', () => {
  const acl = authorizer('topic read public/#\nuser alice\ntopic alice/#\n')
  const anon = client(undefined)
  const alice = client('alice')
  const bob = client('bob')
  assert.equal(acl.canRead(anon, 'public/news'), true)
  assert.equal(acl.canPublish(anon, 'public/news'), false, 'read only')
  assert.equal(acl.canRead(anon, 'alice/x'), false)
  assert.equal(acl.canRead(alice, 'alice/x'), true)
  assert.equal(acl.canPublish(alice, 'alice/x/y'), true)
  assert.equal(acl.canRead(alice, 'public/news'), false, 'a named user does not inherit the anonymous lines')
  assert.equal(acl.canRead(bob, 'alice/x'), false, 'a user without a block gets nothing but patterns')
  assert.equal(acl.canPublish(bob, 'public/news'), false)
})

test('read, write, readwrite and deny; the first matching line decides, write-only lines are passed over for reads', () => {
  const acl = authorizer('user u\ntopic write a/+\ntopic read a/b\ntopic readwrite c/#\ntopic deny c/secret/#\n')
  const u = client('u')
  assert.equal(acl.canPublish(u, 'a/x'), true)
  assert.equal(acl.canRead(u, 'a/x'), false)
  assert.equal(acl.canRead(u, 'a/b'), true, 'the write line matches first but does not grant read; the read line does')
  assert.equal(acl.canPublish(u, 'a/b'), true)
  assert.equal(acl.canRead(u, 'c/open/1'), true)
  assert.equal(acl.canPublish(u, 'c'), true, '# also matches the parent level')
  assert.equal(acl.canRead(u, 'c/secret'), false, 'deny wins although it comes after the grant')
  assert.equal(acl.canPublish(u, 'c/secret/deeper/still'), false)
})

test('wildcards: + is exactly one level (possibly empty), # any number including none', () => {
  const acl = authorizer('topic read s/+/t\ntopic read m/#\ntopic read +\n')
  const anon = client(undefined)
  const yes = ['s/x/t', 's//t', 'm', 'm/', 'm/a/b/c', 'top', '']
  const no = ['s/t', 's/x/y/t', 's/x/t/u', 'x/m', 'a/b']
  for (const t of yes) assert.equal(acl.canRead(anon, t), true, t)
  for (const t of no) assert.equal(acl.canRead(anon, t), false, t)
})

test('$SYS is readable only where a line names it: wildcard-led filters never match $ topics', () => {
  const acl = authorizer('topic readwrite #\ntopic read +/broker/#\nuser admin\ntopic read $SYS/#\ntopic #\n')
  const anon = client(undefined)
  assert.equal(acl.canRead(anon, 'a/b'), true)
  assert.equal(acl.canRead(anon, '$SYS/broker/uptime'), false)
  assert.equal(acl.canPublish(anon, '$SYS/x'), false)
  assert.equal(acl.canRead(client('admin'), '$SYS/broker/uptime'), true)
  assert.equal(acl.canRead(client('admin'), '$share/x'), false)
})

test('patterns: %u and %c are substituted per client, for every client, after its own lines', () => {
  const acl = authorizer([
    'user alice',
    'topic read shared/#',
    'pattern readwrite users/%u/#',
    'pattern write devices/%c/state',
    'pattern read fleet/%u-%c/cmd',
  ].join('\n'))
  const alice = client('alice', 'phone')
  const bob = client('bob', 'car')
  assert.equal(acl.canPublish(alice, 'users/alice/x'), true)
  assert.equal(acl.canPublish(alice, 'users/bob/x'), false)
  assert.equal(acl.canRead(bob, 'users/bob'), true)
  assert.equal(acl.canPublish(bob, 'devices/car/state'), true)
  assert.equal(acl.canPublish(bob, 'devices/phone/state'), false)
  assert.equal(acl.canRead(bob, 'fleet/bob-car/cmd'), true, 'substituted inside a level too')
  assert.equal(acl.canRead(alice, 'shared/1'), true)
  const anon = client(undefined, 'anon-1')
  assert.equal(acl.canPublish(anon, 'devices/anon-1/state'), true, '%c lines apply to anonymous clients')
  assert.equal(acl.canRead(anon, 'users/%u'), false, '%u lines are skipped without a username')
  assert.equal(acl.canRead(anon, 'users/'), false)
})

test('patterns refuse ids and names that would widen them: + or # anywhere, / or empty for the substituted value', () => {
  const acl = authorizer('pattern readwrite home/%c/#\npattern readwrite users/%u/#\ntopic read anon/#\nuser a+b\ntopic read own/#\n')
  assert.equal(acl.canRead(client(undefined, 'bob'), 'home/bob/x'), true)
  assert.equal(acl.canRead(client(undefined, 'bob/x'), 'home/bob/x/y'), false, "'bob/x' must not reach bob's subtree")
  assert.equal(acl.canRead(client(undefined, ''), 'home//x'), false)
  assert.equal(acl.canRead(client(undefined, '+'), 'home/anything/x'), false)
  assert.equal(acl.canRead(client(undefined, 'dev#'), 'anon/x'), false, 'with patterns present, a wildcard id gets nothing at all')
  assert.equal(acl.canRead(client('a+b', 'c'), 'own/x'), false)
  assert.equal(acl.canRead(client('x/y', 'c'), 'users/x/y/z'), false)
  assert.equal(acl.canRead(client('x/y', 'c'), 'home/c/z'), true, 'only the lines using the bad value are skipped')
})

test("precedence across lists follows Mosquitto: the client's own lines (deny first) before the patterns (deny first)", () => {
  const acl = authorizer('user u\ntopic read shared/#\ntopic deny private/%u\npattern deny shared/%u\npattern read private/%u\n')
  const u = client('u')
  assert.equal(acl.canRead(u, 'shared/u'), true, "the user's grant is decided before the pattern's deny")
  assert.equal(acl.canRead(u, 'private/%u'), false, 'topic lines are not substituted: deny matches the literal')
  assert.equal(acl.canRead(u, 'private/u'), true)
})

test('an empty ACL refuses everything', () => {
  const acl = authorizer('# nothing\n')
  assert.equal(acl.canRead(client(undefined), 'a'), false)
  assert.equal(acl.canPublish(client('x'), 'a'), false)
  assert.equal(acl.canSubscribe(client('x'), '#'), false)
})

test('setRules() takes effect for connected clients at their next check (compiled rules are per generation)', () => {
  const acl = authorizer('topic read a\n')
  const c = client(undefined)
  assert.equal(acl.canRead(c, 'a'), true)
  acl.setRules(parseAcl('topic read b\n'))
  assert.equal(acl.canRead(c, 'a'), false)
  assert.equal(acl.canRead(c, 'b'), true)
  // A client object whose identity changed (e.g. reused after a new CONNECT) is recompiled too.
  const reused = client(undefined)
  acl.setRules(parseAcl('user z\ntopic read z\n'))
  assert.equal(acl.canRead(reused, 'z'), false)
  reused.username = 'z'
  assert.equal(acl.canRead(reused, 'z'), true)
})

test('canRead follows the one matcher\'s rules: a topic line grants exactly what a regex reference matches', () => {
  const level = fc.constantFrom('a', 'b', '', '$s', 'ab')
  const topicArb = fc.array(level, { minLength: 1, maxLength: 5 }).map((l) => l.join('/'))
  const filterArb = fc.tuple(fc.array(fc.constantFrom('a', 'b', '', '$s', '+'), { minLength: 0, maxLength: 4 }), fc.boolean())
    .map(([l, hash]) => (hash ? [...l, '#'] : l.length === 0 ? ['+'] : l).join('/'))
  const reader = client(undefined)
  fc.assert(fc.property(filterArb.filter((f) => f !== ''), topicArb.filter((t) => t !== ''), (f, t) => authorizer(`topic read ${f}\n`).canRead(reader, t) === regexMatch(f, t)), { numRuns: 3000 })
})
