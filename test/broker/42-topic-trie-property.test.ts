/**
 * Differential test: random add/remove/match sequences against a naive matcher written from the spec text
 * (MQTT 5.0 §4.7), over a small level alphabet so that collisions between filters, empty levels, '$' topics and
 * wildcards come up often.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { TopicTrie } from '../../src/broker/topic-trie.js'
import { topicMatches } from '../../src/protocol/index.js'
import { referenceMatch } from '../helpers/topic-reference.js'

const nameLevels = ['', 'a', 'b', 'ab', '$x', 'a$', 'é']

const topicLevelArb = fc.constantFrom(...nameLevels)
const topicArb = fc.array(topicLevelArb, { minLength: 1, maxLength: 5 }).map((levels) => levels.join('/'))

/** Valid filters: '+' anywhere as a whole level, '#' only as the last level. */
const filterArb = fc.tuple(
  fc.array(fc.constantFrom(...nameLevels, '+', '+'), { minLength: 0, maxLength: 4 }),
  fc.boolean()
).map(([levels, pound]) => pound ? [...levels, '#'].join('/') : levels.length === 0 ? '#' : levels.join('/'))

type Op =
  | { kind: 'add', filter: string, key: string, value: number }
  | { kind: 'remove', filter: string, key: string, pick: number }
  | { kind: 'match', topic: string }

const keyArb = fc.constantFrom('c1', 'c2', 'c3')
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), filter: filterArb, key: keyArb, value: fc.nat(99) }),
  fc.record({ kind: fc.constant('remove' as const), filter: filterArb, key: keyArb, pick: fc.nat() }),
  fc.record({ kind: fc.constant('match' as const), topic: topicArb })
)

test('the reference matcher agrees with the spec examples it is checked against', () => {
  assert.equal(referenceMatch('sport/#', 'sport'), true)
  assert.equal(referenceMatch('sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon'), true)
  assert.equal(referenceMatch('+/+', '/finance'), true)
  assert.equal(referenceMatch('+', '/finance'), false)
  assert.equal(referenceMatch('sport/+', 'sport'), false)
  assert.equal(referenceMatch('#', '$SYS/x'), false)
  assert.equal(referenceMatch('$SYS/#', '$SYS/x'), true)
  assert.equal(referenceMatch('a/b/#', 'a'), false)
})

test('the trie applies the rules of the one matcher (protocol topicMatches): the reference agrees with it', () => {
  fc.assert(fc.property(filterArb, topicArb, (f, t) => referenceMatch(f, t) === topicMatches(f, t)), { numRuns: 3000 })
})

test('TopicTrie matches exactly like the reference matcher under random add/remove/match', () => {
  fc.assert(fc.property(fc.array(opArb, { maxLength: 60 }), fc.array(topicArb, { minLength: 1, maxLength: 8 }), (ops, finalTopics) => {
    const trie = new TopicTrie<number>()
    const model = new Map<string, Map<string, number>>()
    const check = (topic: string): void => {
      const got: string[] = []
      trie.match(topic, (value, key) => { got.push(`${key}=${value}`) })
      const want: string[] = []
      for (const [filter, entries] of model) {
        if (!referenceMatch(filter, topic)) continue
        for (const [key, value] of entries) want.push(`${key}=${value}`)
      }
      assert.deepEqual(got.sort(), want.sort(), `topic ${JSON.stringify(topic)}`)
    }
    for (const op of ops) {
      if (op.kind === 'add') {
        const entries = model.get(op.filter) ?? new Map<string, number>()
        assert.equal(trie.add(op.filter, op.key, op.value), entries.get(op.key))
        entries.set(op.key, op.value)
        model.set(op.filter, entries)
      } else if (op.kind === 'remove') {
        // Mostly remove a filter that exists, else random filters would almost never hit one.
        const existing = [...model.keys()]
        const filter = existing.length > 0 && op.pick % 4 !== 0 ? existing[op.pick % existing.length]! : op.filter
        const entries = model.get(filter)
        assert.equal(trie.remove(filter, op.key), entries?.get(op.key))
        entries?.delete(op.key)
        if (entries?.size === 0) model.delete(filter)
      } else {
        check(op.topic)
      }
      let size = 0
      for (const entries of model.values()) size += entries.size
      assert.equal(trie.size, size)
    }
    for (const [filter, entries] of model) {
      for (const [key, value] of entries) assert.equal(trie.get(filter, key), value)
    }
    for (const topic of finalTopics) check(topic)
  }), { numRuns: 400 })
})

test('wide levels (child lists growing into tables and back) stay consistent with the reference under churn', () => {
  const wideLevel = fc.integer({ min: 0, max: 39 }).map((i) => `k${i}`)
  const wideFilter = fc.tuple(fc.oneof(wideLevel, fc.constant('+')), fc.oneof(wideLevel, fc.constant('#'))).map(([a, b]) => `${a}/${b}`)
  const wideTopic = fc.tuple(wideLevel, wideLevel).map(([a, b]) => `${a}/${b}`)
  const step = fc.tuple(fc.boolean(), wideFilter, fc.nat(9))
  fc.assert(fc.property(fc.array(step, { minLength: 50, maxLength: 400 }), fc.array(wideTopic, { minLength: 1, maxLength: 10 }), (steps, topics) => {
    const trie = new TopicTrie<number>()
    const model = new Map<string, number>()
    for (const [add, filter, value] of steps) {
      if (add) {
        assert.equal(trie.add(filter, 'k', value), model.get(filter))
        model.set(filter, value)
      } else {
        assert.equal(trie.remove(filter, 'k'), model.get(filter))
        model.delete(filter)
      }
    }
    assert.equal(trie.size, model.size)
    for (const topic of topics) {
      const got: string[] = []
      trie.match(topic, (value) => { got.push(String(value)) })
      const want = [...model].filter(([filter]) => referenceMatch(filter, topic)).map(([, value]) => String(value))
      assert.deepEqual(got.sort(), want.sort(), topic)
    }
  }), { numRuns: 150 })
})
