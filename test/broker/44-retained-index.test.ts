/** RetainedIndex: one retained message per topic, matched by SUBSCRIBE filters (MQTT 5.0 §4.7, §3.3.1.3). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RetainedIndex } from '../../src/broker/retained-index.js'

const topics = [
  'sport', 'sport/', 'sport/tennis', 'sport/tennis/player1', 'sport/tennis/player1/ranking',
  'sport/tennis/player1/score/wimbledon', 'sport/tennis/player2', 'sport/golf', 'sports',
  '/finance', 'finance', '/', 'a//b', 'a/b', '$SYS/broker/clients', '$SYS', '$SYS/monitor/Clients', 'a/$x'
]

function indexOfAll (): RetainedIndex<string> {
  const index = new RetainedIndex<string>()
  for (const t of topics) index.set(t, `m:${t}`)
  return index
}

function matched (index: RetainedIndex<string>, filter: string): string[] {
  const got: string[] = []
  index.match(filter, (msg, topic) => {
    assert.equal(msg, `m:${topic}`)
    got.push(topic)
  })
  return got.sort()
}

const sorted = (xs: string[]): string[] => [...xs].sort()

test('§4.7.1.2 \'#\' returns the parent level and its whole subtree', () => {
  const index = indexOfAll()
  assert.deepEqual(matched(index, 'sport/tennis/player1/#'), sorted([
    'sport/tennis/player1', 'sport/tennis/player1/ranking', 'sport/tennis/player1/score/wimbledon'
  ]))
  assert.deepEqual(matched(index, 'sport/#'), sorted([
    'sport', 'sport/', 'sport/tennis', 'sport/tennis/player1', 'sport/tennis/player1/ranking',
    'sport/tennis/player1/score/wimbledon', 'sport/tennis/player2', 'sport/golf'
  ]))
  assert.deepEqual(matched(index, 'nothing/#'), [])
})

test('§4.7.1.3 \'+\' returns exactly one level, the empty one included', () => {
  const index = indexOfAll()
  assert.deepEqual(matched(index, 'sport/tennis/+'), ['sport/tennis/player1', 'sport/tennis/player2'])
  assert.deepEqual(matched(index, 'sport/+'), sorted(['sport/', 'sport/tennis', 'sport/golf']))
  assert.deepEqual(matched(index, '+/+'), sorted(['sport/', 'sport/tennis', 'sport/golf', '/finance', '/', 'a/b', 'a/$x']))
  assert.deepEqual(matched(index, '/+'), ['/', '/finance'])
  assert.deepEqual(matched(index, '+'), sorted(['sport', 'sports', 'finance']))
  assert.deepEqual(matched(index, 'a/+/b'), ['a//b'])
  assert.deepEqual(matched(index, '+/tennis/#'), sorted([
    'sport/tennis', 'sport/tennis/player1', 'sport/tennis/player1/ranking',
    'sport/tennis/player1/score/wimbledon', 'sport/tennis/player2'
  ]))
})

test('[MQTT-4.7.2-1] filters starting with a wildcard do not return $ topics', () => {
  const index = indexOfAll()
  const all = matched(index, '#')
  assert.deepEqual(all, sorted(topics.filter((t) => !t.startsWith('$'))))
  assert.ok(all.includes('a/$x'), 'only a leading $ is special')
  assert.deepEqual(matched(index, '+/monitor/Clients'), [])
  assert.deepEqual(matched(index, '$SYS/#'), sorted(['$SYS', '$SYS/broker/clients', '$SYS/monitor/Clients']))
  assert.deepEqual(matched(index, '$SYS/monitor/+'), ['$SYS/monitor/Clients'])
})

test('§4.7.3 literal filters return only their own topic', () => {
  const index = indexOfAll()
  assert.deepEqual(matched(index, 'finance'), ['finance'])
  assert.deepEqual(matched(index, '/finance'), ['/finance'])
  assert.deepEqual(matched(index, 'Sport'), [])
  assert.deepEqual(matched(index, 'a//b'), ['a//b'])
  assert.deepEqual(matched(index, '/'), ['/'])
})

test('set replaces, get reads, delete removes and prunes; size follows', () => {
  const index = new RetainedIndex<number>()
  assert.equal(index.set('a/b/c', 1), undefined)
  assert.equal(index.set('a/b/c', 2), 1)
  assert.equal(index.set('a/b', 3), undefined)
  assert.equal(index.size, 2)
  assert.equal(index.get('a/b/c'), 2)
  assert.equal(index.get('a'), undefined)
  assert.equal(index.get('a/b/c/d'), undefined)
  assert.equal(index.delete('a'), undefined, 'a path node without a message is not a retained topic')
  assert.equal(index.delete('x/y'), undefined)
  assert.equal(index.delete('a/b/c'), 2)
  assert.equal(index.delete('a/b/c'), undefined)
  assert.equal(index.size, 1)
  const got: number[] = []
  index.match('#', (msg) => { got.push(msg) })
  assert.deepEqual(got, [3])
  assert.equal(index.delete('a/b'), 3)
  assert.equal(index.size, 0)
  const root = (index as unknown as { root: Record<string, unknown> }).root
  assert.equal(root.firstKid, undefined, 'emptied branches are pruned')
  assert.equal(root.kidTable, undefined)
})

test('many children per level (list turns into a table): match, delete, prune', () => {
  const index = new RetainedIndex<number>()
  for (let i = 0; i < 1000; i++) index.set(`dev/${i}/state`, i)
  for (let i = 0; i < 1000; i++) index.set(`dev/${i}/$meta`, -i)
  assert.equal(index.size, 2000)
  let count = 0
  index.match('dev/+/state', () => { count++ })
  assert.equal(count, 1000)
  const one: number[] = []
  index.match('dev/123/+', (msg) => { one.push(msg) })
  assert.deepEqual(one.sort(), [-123, 123])
  for (let i = 0; i < 1000; i++) index.delete(`dev/${i}/state`)
  count = 0
  index.match('dev/#', () => { count++ })
  assert.equal(count, 1000)
  for (let i = 0; i < 1000; i++) index.delete(`dev/${i}/$meta`)
  assert.equal(index.size, 0)
  count = 0
  index.match('#', () => { count++ })
  assert.equal(count, 0)
})

test('messages() visits every message, $ topics included; clear empties', () => {
  const index = indexOfAll()
  const got: string[] = []
  for (const msg of index.messages()) got.push(msg.slice(2))
  assert.deepEqual(got.sort(), sorted(topics))
  index.clear()
  assert.equal(index.size, 0)
  assert.equal(index.get('sport'), undefined)
})

test('messages() paused while the index changes: what stays is visited once, what was deleted is not', () => {
  const index = new RetainedIndex<string>()
  for (let i = 0; i < 2000; i++) index.set(`a/${i % 40}/${i}`, `m${i}`)
  const topicOf = (m: string): string => {
    if (m.startsWith('new')) return `b/${m.slice(3)}`
    const i = Number.parseInt(m.slice(1), 10)
    return `a/${i % 40}/${i}`
  }
  const walk = index.messages()
  const seen: string[] = []
  for (let step = 0; ; step++) {
    const r = walk.next()
    if (r.done === true) break
    seen.push(r.value)
    assert.equal(index.get(topicOf(r.value)), r.value, 'what the walk reports is retained at that moment')
    // Between two reads: delete some topics (pruning their branches), replace some, add some.
    if (step % 10 === 0) {
      const i = (step * 7) % 2000
      index.delete(`a/${i % 40}/${i}`)
      index.set(`a/${(i + 1) % 40}/${i + 1}`, `m${i + 1}'`)
      index.set(`b/${step}`, `new${step}`)
    }
  }
  assert.equal(new Set(seen).size, seen.length, 'no message twice')
  // Every message still retained at the end whose topic existed throughout was visited (as it was then or is now).
  for (let i = 0; i < 2000; i++) {
    const m = index.get(`a/${i % 40}/${i}`)
    if (m === `m${i}`) assert.ok(seen.includes(m), `a/${i % 40}/${i}`)
  }
})

test('deep topics do not overflow the stack', () => {
  const index = new RetainedIndex<number>()
  const topic = Array(30_000).fill('a').join('/')
  index.set(topic, 1)
  let hits = 0
  index.match('#', () => { hits++ })
  index.match(Array(30_000).fill('+').join('/'), () => { hits++ })
  assert.equal(hits, 2)
  assert.equal(index.delete(topic), 1)
})

test('visit may delete the message it is given (expiry during a match)', () => {
  const index = indexOfAll()
  const seen: string[] = []
  index.match('sport/#', (_msg, topic) => {
    seen.push(topic)
    index.delete(topic)
  })
  assert.equal(seen.length, 8)
  assert.deepEqual(matched(index, 'sport/#'), [])
  assert.equal(index.size, topics.length - 8)
  assert.deepEqual(matched(index, 'sports'), ['sports'])
})
