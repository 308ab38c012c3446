/**
 * Wildcard semantics of TopicTrie.match, from the examples of MQTT 5.0 §4.7.1.2, §4.7.1.3, §4.7.2 and §4.7.3
 * (the same in 3.1.1 §4.7). Each case is checked alone and again with every filter in one trie, so that
 * neighbouring branches (a '+' beside a literal, a '#' beside a '+') cannot leak matches into each other.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TopicTrie } from '../../src/broker/topic-trie.js'

type Case = readonly [filter: string, topic: string, expected: boolean]

const multiLevel: Case[] = [
  ['sport/tennis/player1/#', 'sport/tennis/player1', true],
  ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
  ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
  ['sport/tennis/player1/#', 'sport/tennis/player2', false],
  ['sport/tennis/player1/#', 'sport/tennis', false],
  ['sport/#', 'sport', true],
  ['sport/#', 'sport/', true],
  ['sport/#', 'sports', false],
  ['sport/#', 'Sport/tennis', false],
  ['#', 'sport/tennis/player1', true],
  ['#', '/', true],
  ['#', '/finance', true],
  ['sport/tennis/#', 'sport/tennis/player1/ranking', true]
]

const singleLevel: Case[] = [
  ['sport/tennis/+', 'sport/tennis/player1', true],
  ['sport/tennis/+', 'sport/tennis/player2', true],
  ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
  ['sport/+', 'sport', false],
  ['sport/+', 'sport/', true],
  ['+', 'finance', true],
  ['+/+', '/finance', true],
  ['/+', '/finance', true],
  ['+', '/finance', false],
  ['+', '', true],
  ['+/tennis/#', 'sport/tennis', true],
  ['+/tennis/#', 'sport/tennis/player1', true],
  ['+/tennis/#', 'sport/golf/player1', false],
  ['sport/+/player1', 'sport/tennis/player1', true],
  ['sport/+/player1', 'sport//player1', true],
  ['sport/+/player1', 'sport/player1', false],
  ['+/+/+', 'a/b/c', true],
  ['+/+/+', 'a/b', false],
  ['+/+/+', 'a/b/c/d', false]
]

const dollar: Case[] = [
  ['#', '$SYS/broker/clients', false],
  ['#', '$SYS', false],
  ['+/monitor/Clients', '$SYS/monitor/Clients', false],
  ['+', '$SYS', false],
  ['+/#', '$SYS/x', false],
  ['$SYS/#', '$SYS/x', true],
  ['$SYS/#', '$SYS', true],
  ['$SYS/monitor/+', '$SYS/monitor/Clients', true],
  ['$SYS/+/Clients', '$SYS/monitor/Clients', true],
  // Only a leading wildcard is restricted, and only for a leading '$' in the topic.
  ['a/#', 'a/$SYS', true],
  ['a/+', 'a/$x', true],
  ['#', 'x$/y', true]
]

const literal: Case[] = [
  ['ACCOUNTS', 'Accounts', false],
  ['Accounts payable', 'Accounts payable', true],
  ['/finance', 'finance', false],
  ['finance', '/finance', false],
  ['/', '/', true],
  ['//', '/', false],
  ['a//b', 'a//b', true],
  ['a//b', 'a/b', false],
  ['a/+/b', 'a//b', true],
  ['a//+', 'a//b', true],
  ['a//#', 'a/', true], // the parent of '#' is the empty second level
  ['a//#', 'a', false],
  ['a//#', 'a//', true],
  ['a/', 'a', false],
  ['a', 'a/', false],
  ['ünï/cødé/☃', 'ünï/cødé/☃', true],
  ['ünï/+/☃', 'ünï/cødé/☃', true]
]

function matchesAlone (filter: string, topic: string): boolean {
  const trie = new TopicTrie<string>()
  trie.add(filter, 'c', filter)
  let hits = 0
  trie.match(topic, () => { hits++ })
  assert.ok(hits <= 1, `one filter visited ${hits} times`)
  return hits === 1
}

function checkAlone (cases: Case[]): void {
  for (const [filter, topic, expected] of cases) {
    assert.equal(matchesAlone(filter, topic), expected, `'${filter}' vs '${topic}'`)
  }
}

test('§4.7.1.2 multi-level wildcard matches its parent and any number of child levels', () => {
  checkAlone(multiLevel)
})

test('§4.7.1.3 single-level wildcard matches exactly one level, the empty one included', () => {
  checkAlone(singleLevel)
})

test('[MQTT-4.7.2-1] filters starting with a wildcard do not match topics starting with $', () => {
  checkAlone(dollar)
})

test('§4.7.3 topic levels are compared exactly: case, empty levels, leading and trailing separators', () => {
  checkAlone(literal)
})

test('all spec example filters in one trie: each topic gets exactly its own filters', () => {
  const all = [...multiLevel, ...singleLevel, ...dollar, ...literal]
  const trie = new TopicTrie<string>()
  for (const [filter] of all) trie.add(filter, 'client', filter)
  const topics = new Set(all.map(([, topic]) => topic))
  for (const topic of topics) {
    const got: string[] = []
    trie.match(topic, (value) => { got.push(value) })
    for (const [filter, t, expected] of all) {
      if (t !== topic) continue
      assert.equal(got.includes(filter), expected, `'${filter}' vs '${topic}' with every filter present`)
    }
    assert.equal(new Set(got).size, got.length, `no filter visited twice for '${topic}'`)
  }
})

test('a key subscribed through overlapping filters is visited once per filter', () => {
  const trie = new TopicTrie<string>()
  trie.add('a/b', 'c1', 'exact')
  trie.add('a/+', 'c1', 'plus')
  trie.add('a/#', 'c1', 'pound')
  trie.add('#', 'c1', 'all')
  trie.add('+/+', 'c2', 'two')
  const got: string[] = []
  trie.match('a/b', (value, key) => { got.push(`${key}:${value}`) })
  assert.deepEqual(got.sort(), ['c1:all', 'c1:exact', 'c1:plus', 'c1:pound', 'c2:two'])
})

test('deep topics and filters do not overflow the stack', () => {
  const trie = new TopicTrie<number>()
  const depth = 32_000
  trie.add(Array(depth).fill('+').join('/'), 'deep', 1)
  trie.add(Array(depth - 1).fill('a').join('/') + '/#', 'deep#', 2)
  let hits = 0
  trie.match(Array(depth).fill('a').join('/'), () => { hits++ })
  assert.equal(hits, 2)
  assert.equal(trie.remove(Array(depth).fill('+').join('/'), 'deep'), 1)
  assert.equal(trie.size, 1)
})

test('match may be called again from inside visit', () => {
  const trie = new TopicTrie<string>()
  trie.add('a/+', 'k', 'outer')
  trie.add('b/#', 'k', 'inner')
  const got: string[] = []
  trie.match('a/x', (value) => {
    got.push(value)
    trie.match('b/y/z', (v) => { got.push(v) })
  })
  assert.deepEqual(got, ['outer', 'inner'])
  // The shared scratch still works afterwards.
  trie.match('a/y', (value) => { got.push(value) })
  assert.deepEqual(got, ['outer', 'inner', 'outer'])
})
