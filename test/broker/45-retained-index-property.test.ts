/** Differential test of RetainedIndex.match against a naive matcher written from MQTT 5.0 §4.7. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { RetainedIndex } from '../../src/broker/retained-index.js'
import { referenceMatch } from '../helpers/topic-reference.js'

const nameLevels = ['', 'a', 'b', 'ab', '$x', 'a$', 'é']
const topicArb = fc.array(fc.constantFrom(...nameLevels), { minLength: 1, maxLength: 4 }).map((l) => l.join('/'))
const filterArb = fc.tuple(
  fc.array(fc.constantFrom(...nameLevels, '+', '+'), { minLength: 0, maxLength: 4 }),
  fc.boolean()
).map(([levels, pound]) => pound ? [...levels, '#'].join('/') : levels.length === 0 ? '#' : levels.join('/'))

type Op =
  | { kind: 'set', topic: string, msg: number }
  | { kind: 'delete', topic: string }
  | { kind: 'match', filter: string }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('set' as const), topic: topicArb, msg: fc.nat(99) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('delete' as const), topic: topicArb }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('match' as const), filter: filterArb }), weight: 2 }
)

test('RetainedIndex matches exactly like the reference matcher under random set/delete/match', () => {
  fc.assert(fc.property(fc.array(opArb, { maxLength: 60 }), fc.array(filterArb, { minLength: 1, maxLength: 8 }), (ops, finalFilters) => {
    const index = new RetainedIndex<number>()
    const model = new Map<string, number>()
    const check = (filter: string): void => {
      const got: string[] = []
      index.match(filter, (msg, topic) => { got.push(`${topic}=${msg}`) })
      const want: string[] = []
      for (const [topic, msg] of model) if (referenceMatch(filter, topic)) want.push(`${topic}=${msg}`)
      assert.deepEqual(got.sort(), want.sort(), `filter ${JSON.stringify(filter)}`)
    }
    for (const op of ops) {
      if (op.kind === 'set') {
        assert.equal(index.set(op.topic, op.msg), model.get(op.topic))
        model.set(op.topic, op.msg)
      } else if (op.kind === 'delete') {
        assert.equal(index.delete(op.topic), model.get(op.topic))
        model.delete(op.topic)
      } else {
        check(op.filter)
      }
      assert.equal(index.size, model.size)
    }
    for (const [topic, msg] of model) assert.equal(index.get(topic), msg)
    for (const filter of finalFilters) check(filter)
  }), { numRuns: 400 })
})

test('wide levels (child lists growing into tables) stay consistent with the reference under churn', () => {
  const wideLevel = fc.integer({ min: 0, max: 39 }).map((i) => `k${i}`)
  const wideTopic = fc.tuple(wideLevel, wideLevel).map(([a, b]) => `${a}/${b}`)
  const wideFilter = fc.tuple(fc.oneof(wideLevel, fc.constant('+')), fc.oneof(wideLevel, fc.constant('+'), fc.constant('#')))
    .map(([a, b]) => `${a}/${b}`)
  const step = fc.tuple(fc.boolean(), wideTopic, fc.nat(9))
  fc.assert(fc.property(fc.array(step, { minLength: 50, maxLength: 400 }), fc.array(wideFilter, { minLength: 1, maxLength: 10 }), (steps, filters) => {
    const index = new RetainedIndex<number>()
    const model = new Map<string, number>()
    for (const [set, topic, msg] of steps) {
      if (set) {
        assert.equal(index.set(topic, msg), model.get(topic))
        model.set(topic, msg)
      } else {
        assert.equal(index.delete(topic), model.get(topic))
        model.delete(topic)
      }
    }
    assert.equal(index.size, model.size)
    for (const filter of filters) {
      const got: string[] = []
      index.match(filter, (msg, topic) => { got.push(`${topic}=${msg}`) })
      const want = [...model].filter(([topic]) => referenceMatch(filter, topic)).map(([t, m]) => `${t}=${m}`)
      assert.deepEqual(got.sort(), want.sort(), filter)
    }
  }), { numRuns: 150 })
})
