/** TopicTrie bookkeeping: add/replace/get/remove, size, pruning of emptied nodes, and list→Map child growth. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TopicTrie } from '../../src/broker/topic-trie.js'

function visited<S> (trie: TopicTrie<S>, topic: string): string[] {
  const got: string[] = []
  trie.match(topic, (value, key) => { got.push(`${key}=${String(value)}`) })
  return got.sort()
}

test('add returns undefined for a new entry and the previous value on replace', () => {
  const trie = new TopicTrie<number>()
  assert.equal(trie.add('a/b', 'c1', 1), undefined)
  assert.equal(trie.add('a/b', 'c1', 2), 1)
  assert.equal(trie.size, 1)
  assert.equal(trie.get('a/b', 'c1'), 2)
  assert.deepEqual(visited(trie, 'a/b'), ['c1=2'])
})

test('several keys under one filter, then back to one (single-entry form)', () => {
  const trie = new TopicTrie<number>()
  trie.add('a/+', 'c1', 1)
  trie.add('a/+', 'c2', 2)
  trie.add('a/+', 'c3', 3)
  assert.equal(trie.add('a/+', 'c2', 20), 2)
  assert.equal(trie.size, 3)
  assert.deepEqual(visited(trie, 'a/x'), ['c1=1', 'c2=20', 'c3=3'])
  assert.equal(trie.remove('a/+', 'c1'), 1)
  assert.equal(trie.remove('a/+', 'c3'), 3)
  assert.equal(trie.size, 1)
  assert.equal(trie.get('a/+', 'c2'), 20)
  assert.equal(trie.get('a/+', 'c1'), undefined)
  assert.deepEqual(visited(trie, 'a/x'), ['c2=20'])
  assert.equal(trie.add('a/+', 'c2', 21), 20)
  assert.equal(trie.add('a/+', 'c4', 4), undefined)
  assert.deepEqual(visited(trie, 'a/x'), ['c2=21', 'c4=4'])
  assert.equal(trie.size, 2)
})

test('get distinguishes wildcard levels from literal ones', () => {
  const trie = new TopicTrie<string>()
  trie.add('a/+', 'k', 'plus')
  trie.add('a/#', 'k', 'pound')
  assert.equal(trie.get('a/+', 'k'), 'plus')
  assert.equal(trie.get('a/#', 'k'), 'pound')
  assert.equal(trie.get('a/x', 'k'), undefined)
  assert.equal(trie.get('a', 'k'), undefined)
  assert.equal(trie.get('a/+/b', 'k'), undefined)
  assert.equal(trie.get('a/+', 'other'), undefined)
})

test('remove of an absent filter or key returns undefined and changes nothing', () => {
  const trie = new TopicTrie<number>()
  trie.add('a/b', 'c1', 1)
  assert.equal(trie.remove('a/b', 'c2'), undefined)
  assert.equal(trie.remove('a/c', 'c1'), undefined)
  assert.equal(trie.remove('a', 'c1'), undefined)
  assert.equal(trie.remove('a/b/c', 'c1'), undefined)
  assert.equal(trie.remove('a/+', 'c1'), undefined)
  assert.equal(trie.size, 1)
  assert.deepEqual(visited(trie, 'a/b'), ['c1=1'])
})

test('a removed entry is no longer visited, and removal prunes only emptied nodes', () => {
  const trie = new TopicTrie<number>()
  trie.add('a/b/c', 'k', 1)
  trie.add('a/b', 'k', 2)
  trie.add('a/+/c', 'k', 3)
  trie.add('a/#', 'k', 4)
  assert.equal(trie.remove('a/b/c', 'k'), 1)
  assert.deepEqual(visited(trie, 'a/b/c'), ['k=3', 'k=4'])
  assert.deepEqual(visited(trie, 'a/b'), ['k=2', 'k=4'])
  assert.equal(trie.remove('a/+/c', 'k'), 3)
  assert.equal(trie.remove('a/#', 'k'), 4)
  assert.deepEqual(visited(trie, 'a/b/c'), [])
  assert.deepEqual(visited(trie, 'a/b'), ['k=2'])
  assert.equal(trie.remove('a/b', 'k'), 2)
  assert.equal(trie.size, 0)
  // Re-adding after full pruning builds the path again.
  trie.add('a/b/c', 'k', 5)
  assert.deepEqual(visited(trie, 'a/b/c'), ['k=5'])
})

test('pruning leaves the trie empty: its internal root has no children after removing everything', () => {
  const trie = new TopicTrie<number>()
  const filters = ['a', 'a/b', 'a/+/c', '+/#', '#', '/', 'x//y', '$SYS/#']
  for (const f of filters) trie.add(f, 'k', 1)
  for (const f of filters) assert.equal(trie.remove(f, 'k'), 1, f)
  assert.equal(trie.size, 0)
  const root = (trie as unknown as { root: Record<string, unknown> }).root
  for (const slot of ['kids', 'wild', 'key', 'value']) {
    assert.ok(slot in root, `root has a ${slot} field`)
    assert.equal(root[slot], undefined, `root.${slot} is cleared`)
  }
})

test('many siblings: the child list turns into a table and lookups, removals and pruning still work', () => {
  const trie = new TopicTrie<number>()
  const n = 2000
  for (let i = 0; i < n; i++) trie.add(`dev/${i}/state`, `c${i}`, i)
  assert.equal(trie.size, n)
  for (let i = 0; i < n; i += 97) assert.deepEqual(visited(trie, `dev/${i}/state`), [`c${i}=${i}`])
  for (let i = 0; i < n; i += 2) assert.equal(trie.remove(`dev/${i}/state`, `c${i}`), i)
  assert.equal(trie.size, n / 2)
  for (let i = 0; i < n; i++) {
    assert.deepEqual(visited(trie, `dev/${i}/state`), i % 2 === 0 ? [] : [`c${i}=${i}`])
  }
  for (let i = 1; i < n; i += 2) trie.remove(`dev/${i}/state`, `c${i}`)
  assert.equal(trie.size, 0)
  assert.deepEqual(visited(trie, 'dev/1/state'), [])
})

test('levels that differ only after a shared prefix, or collide in length, are kept apart', () => {
  const trie = new TopicTrie<string>()
  const levels = ['', 'a', 'aa', 'ab', 'ba', 'a a', 'Aa', '+a', 'a+', '#a', '$', '$a', 'é', 'e\u0301']
  for (const l of levels) trie.add(`x/${l}/y`, 'k', l)
  for (const l of levels) {
    assert.deepEqual(visited(trie, `x/${l}/y`), [`k=${l}`], JSON.stringify(l))
  }
  assert.deepEqual(visited(trie, 'x/+/y'), [], "'+' in a topic name is a literal level")
})

test('entries removed from inside visit are handled', () => {
  const trie = new TopicTrie<number>()
  for (let i = 0; i < 5; i++) trie.add('t', `c${i}`, i)
  trie.add('t/#', 'w', 9)
  const seen: number[] = []
  trie.match('t', (value, key) => {
    seen.push(value)
    trie.remove(key === 'w' ? 't/#' : 't', key)
  })
  assert.equal(seen.length, 6)
  assert.equal(trie.size, 0)
})
