import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { AclAuthorizer, parseAcl } from '../../src/auth/acl.js'
import { filterCovers, filtersIntersect } from '../../src/auth/topic-match.js'
import type { ClientIdentity } from '../../src/auth/types.js'

const anon: ClientIdentity = { clientId: 'c', username: undefined, remoteAddress: '192.0.2.1', listener: '1883' }

function check(aclText: string, granted: string[], refused: string[]): void {
  const acl = new AclAuthorizer(parseAcl(aclText))
  for (const f of granted) assert.equal(acl.canSubscribe(anon, f), true, `${f} should be granted by ${JSON.stringify(aclText)}`)
  for (const f of refused) assert.equal(acl.canSubscribe(anon, f), false, `${f} should be refused by ${JSON.stringify(aclText)}`)
}

test('a filter is granted when it could match a readable topic: wildcard filter against wildcard ACL', () => {
  check('topic read a/+/c\n',
    ['a/b/c', 'a/+/c', 'a/#', '+/+/c', '+/b/+', '#', 'a/+/+'],
    ['a/b', 'a/b/c/d', 'b/#', 'a/+', '+/+/d', 'a/b/c/+'])
  check('topic read a/#\n', ['a', 'a/b', 'a/+/x/#', '+', '#', '+/q'], ['b', 'b/#', 'c/+'])
})

test('write-only lines grant no subscription', () => {
  check('topic write a/#\n', [], ['a/b', 'a/#', '#'])
  check('topic write a/#\ntopic read a/b\n', ['a/b', 'a/+', '#'], ['a/c'])
})

test('a deny line refuses the filters it covers entirely; others pass and are filtered per message', () => {
  const text = 'topic read a/#\ntopic deny a/secret/#\n'
  check(text, ['a/open', 'a/+', 'a/#', '#', 'a/+/x'], ['a/secret', 'a/secret/x', 'a/secret/#', 'a/secret/+/y'])
  const acl = new AclAuthorizer(parseAcl(text))
  assert.equal(acl.canRead(anon, 'a/secret/x'), false, 'a granted a/# still never delivers a denied topic')
  assert.equal(acl.canRead(anon, 'a/open'), true)
})

test('$SYS: "#" and "+/..." filters never reach $ topics; a $SYS line grants $SYS filters only', () => {
  check('topic read #\n', ['#', '+/broker'], ['$SYS/#', '$SYS/broker/uptime', '$share/g/x'])
  check('topic read $SYS/broker/#\n', ['$SYS/#', '$SYS/+/uptime', '$SYS/broker/load/+'], ['#', '+/broker/#', '$SYS/other'])
  check('topic read +/#\ntopic deny #\n', [], ['#', 'a'])
})

test('an invalid filter is refused outright', () => {
  check('topic read #\n', [], ['a/#/b', 'a+', ''])
})

// Brute-force references over a finite topic space: levels from {a, b, c, $s, ''}, depth 1..4.
// 'c' never appears in the generated filters, so it stands for "any other level" and makes + / # exact.
const LEVELS = ['a', 'b', 'c', '$s', '']
const TOPICS: string[] = []
;(function build(prefix: string[]): void {
  if (prefix.length > 0) TOPICS.push(prefix.join('/'))
  if (prefix.length === 4) return
  for (const l of LEVELS) build([...prefix, l])
})([])

function matches(filter: string[], topic: string): boolean {
  const t = topic.split('/')
  if (t[0]!.startsWith('$') && (filter[0] === '+' || filter[0] === '#')) return false
  for (let i = 0; i < filter.length; i++) {
    if (filter[i] === '#') return true
    if (i >= t.length) return false
    if (filter[i] !== '+' && filter[i] !== t[i]) return false
  }
  return filter.length === t.length
}

const filterArb = fc.tuple(fc.array(fc.constantFrom('a', 'b', '$s', '', '+'), { minLength: 0, maxLength: 3 }), fc.boolean())
  .map(([l, hash]) => (hash ? [...l, '#'] : l.length === 0 ? ['+'] : l))

test('filtersIntersect agrees with brute force: some topic matched by both', () => {
  fc.assert(fc.property(filterArb, filterArb, (a, b) => {
    const expected = TOPICS.some((t) => matches(a, t) && matches(b, t))
    return filtersIntersect(a, b) === expected && filtersIntersect(b, a) === expected
  }), { numRuns: 1500 })
})

test('filterCovers agrees with brute force: every topic the inner filter matches, the outer matches', () => {
  fc.assert(fc.property(filterArb, filterArb, (outer, inner) => {
    const expected = TOPICS.every((t) => !matches(inner, t) || matches(outer, t))
    return filterCovers(outer, inner) === expected
  }), { numRuns: 1500 })
})
