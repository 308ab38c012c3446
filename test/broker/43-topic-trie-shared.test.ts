/** SharedTrie: '$share/{group}/{filter}' subscriptions (MQTT 5.0 §4.8.2), one SharedGroup per (group, filter). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SharedTrie, type SharedGroup } from '../../src/broker/topic-trie.js'

function groups<S> (trie: SharedTrie<S>, topic: string): Array<SharedGroup<S>> {
  const got: Array<SharedGroup<S>> = []
  trie.match(topic, (g) => { got.push(g) })
  return got
}

function pick<S> (g: SharedGroup<S>, times: number): string[] {
  const keys: string[] = []
  for (let i = 0; i < times; i++) keys.push(g.next()!.key)
  return keys
}

test('each matching (group, filter) is reported once, whatever its member count', () => {
  const trie = new SharedTrie<string>()
  trie.add('g1', 'sport/+', 'c1', 'v1')
  trie.add('g1', 'sport/+', 'c2', 'v2')
  trie.add('g2', 'sport/+', 'c1', 'v3')
  trie.add('g1', 'sport/#', 'c3', 'v4')
  trie.add('g1', 'other', 'c4', 'v5')
  assert.equal(trie.size, 5)
  assert.equal(trie.groupCount, 4)
  const got = groups(trie, 'sport/tennis').map((g) => `${g.name}:${g.filter}:${g.members.length}`).sort()
  assert.deepEqual(got, ['g1:sport/#:1', 'g1:sport/+:2', 'g2:sport/+:1'])
  assert.deepEqual(groups(trie, 'nothing'), [])
})

test('round robin hands out members in insertion order and wraps', () => {
  const trie = new SharedTrie<number>()
  for (let i = 1; i <= 3; i++) trie.add('g', 'a/b', `c${i}`, i)
  const [g] = groups(trie, 'a/b')
  assert.ok(g)
  assert.deepEqual(g.members.map((m) => m.key), ['c1', 'c2', 'c3'])
  assert.deepEqual(pick(g, 7), ['c1', 'c2', 'c3', 'c1', 'c2', 'c3', 'c1'])
  assert.equal(g.next()!.value, 2)
})

test('replacing a member keeps its place; removing one keeps the rotation fair', () => {
  const trie = new SharedTrie<number>()
  for (let i = 1; i <= 4; i++) trie.add('g', 'f', `c${i}`, i)
  assert.equal(trie.add('g', 'f', 'c2', 20), 2)
  assert.equal(trie.size, 4)
  const g = trie.group('g', 'f')!
  assert.deepEqual(g.members.map((m) => m.value), [1, 20, 3, 4])
  assert.deepEqual(pick(g, 2), ['c1', 'c2'])
  // Cursor points at c3; removing an earlier member must not make c3 skipped.
  assert.equal(trie.remove('g', 'f', 'c1'), 1)
  assert.deepEqual(pick(g, 4), ['c3', 'c4', 'c2', 'c3'])
  // Removing the member under the cursor moves on to the one after it.
  assert.equal(trie.remove('g', 'f', 'c4'), 4)
  assert.deepEqual(pick(g, 3), ['c2', 'c3', 'c2'])
  assert.equal(trie.size, 2)
})

test('the broker may skip members with the exposed cursor', () => {
  const trie = new SharedTrie<{ online: boolean }>()
  trie.add('g', 'f', 'a', { online: false })
  trie.add('g', 'f', 'b', { online: true })
  trie.add('g', 'f', 'c', { online: false })
  trie.add('g', 'f', 'd', { online: true })
  const g = trie.group('g', 'f')!
  const chosen: string[] = []
  for (let message = 0; message < 4; message++) {
    for (let tries = 0; tries < g.members.length; tries++) {
      const m = g.next()!
      if (m.value.online) { chosen.push(m.key); break }
    }
  }
  assert.deepEqual(chosen, ['b', 'd', 'b', 'd'])
  g.cursor = 3
  assert.equal(g.next()!.key, 'd')
})

test('removing the last member removes the group; get and remove of absent entries', () => {
  const trie = new SharedTrie<number>()
  trie.add('g', 'x/#', 'c1', 1)
  assert.equal(trie.get('g', 'x/#', 'c1'), 1)
  assert.equal(trie.get('h', 'x/#', 'c1'), undefined)
  assert.equal(trie.get('g', 'x/+', 'c1'), undefined)
  assert.equal(trie.remove('g', 'x/#', 'nobody'), undefined)
  assert.equal(trie.remove('h', 'x/#', 'c1'), undefined)
  assert.equal(trie.remove('g', 'x/#', 'c1'), 1)
  assert.equal(trie.size, 0)
  assert.equal(trie.groupCount, 0)
  assert.equal(trie.group('g', 'x/#'), undefined)
  assert.deepEqual(groups(trie, 'x/y'), [])
})

test('[MQTT-4.7.2-1] shared filters starting with a wildcard do not match $ topics', () => {
  const trie = new SharedTrie<number>()
  trie.add('g', '#', 'c1', 1)
  trie.add('g', '+/x', 'c2', 2)
  trie.add('g', '$SYS/#', 'c3', 3)
  assert.deepEqual(groups(trie, '$SYS/x').map((g) => g.filter), ['$SYS/#'])
  assert.deepEqual(groups(trie, 'a/x').map((g) => g.filter).sort(), ['#', '+/x'])
})

test('an empty group hands out nothing', () => {
  const trie = new SharedTrie<number>()
  trie.add('g', 'f', 'c1', 1)
  const g = trie.group('g', 'f')!
  trie.remove('g', 'f', 'c1')
  assert.equal(g.next(), undefined)
})
