/**
 * The records behind a session's move between nodes (src/cluster/moves.ts): what the old node redirects, what
 * the new node recognises as a copy it already had, and their bounds (a stranger cycling takeovers through
 * client ids cannot grow them past MaxMoves, and each lasts KeepMs).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Arrivals, KeepMs, MaxMoves, Moves } from '../../src/cluster/moves.js'

test('a moved session matches by its filters until its record expires', () => {
  const moves = new Moves()
  moves.add('c1', 'B', ['a/+', 'x/#', 'a/#'], 1000)
  assert.deepEqual(moves.matching('a/1', 1000).map((m) => [m.clientId, m.to]), [['c1', 'B']])
  assert.deepEqual(moves.matching('x/y/z', 1000 + KeepMs - 1).map((m) => m.clientId), ['c1'])
  assert.deepEqual(moves.matching('b/1', 1000).map((m) => m.clientId), [])
  assert.equal(moves.get('c1', 1000)?.to, 'B')
  assert.deepEqual(moves.matching('a/1', 1000 + KeepMs), [])
  assert.equal(moves.size, 0)
})

test('a session moving again replaces its record; at most MaxMoves are kept, the oldest going first', () => {
  const moves = new Moves()
  moves.add('c', 'B', ['t'], 0)
  moves.add('c', 'C', ['t'], 1)
  assert.equal(moves.size, 1)
  assert.equal(moves.get('c', 1)?.to, 'C')
  for (let i = 0; i < MaxMoves + 10; i++) moves.add(`s${i}`, 'B', ['t'], 2)
  assert.equal(moves.size, MaxMoves)
  assert.equal(moves.get('s0', 2), undefined)
  assert.equal(moves.get(`s${MaxMoves + 9}`, 2)?.to, 'B')
})

test('a redirected copy of a message the arrived session had directly is recognised; others are delivered once', () => {
  const arrivals = new Arrivals()
  arrivals.add('c1', ['a/#'], 0)
  arrivals.add('c3', ['a/+', 'a/1'], 0)
  arrivals.delivered({ topic: 'a/1', from: 'C', seq: 7 }, 0)
  arrivals.delivered({ topic: 'g/1', from: 'C', seq: 8 }, 0)
  assert.equal(arrivals.firstCopy('c3', { topic: 'a/1', from: 'C', seq: 7 }), false)
  assert.equal(arrivals.firstCopy('c1', { topic: 'a/1', from: 'C', seq: 7 }), false)
  assert.equal(arrivals.firstCopy('c1', { topic: 'a/1', from: 'A', seq: 7 }), true)
  assert.equal(arrivals.firstCopy('c1', { topic: 'a/1', from: 'A', seq: 7 }), false)
  assert.equal(arrivals.firstCopy('c1', { topic: 'g/1', from: 'C', seq: 8 }), true)
  // Another client, or after the record expired: nothing to recognise.
  assert.equal(arrivals.firstCopy('c2', { topic: 'a/1', from: 'C', seq: 7 }), true)
  arrivals.delivered({ topic: 'a/2', from: 'C', seq: 9 }, KeepMs)
  assert.equal(arrivals.size, 0)
  for (let i = 0; i < MaxMoves + 5; i++) arrivals.add(`s${i}`, ['t'], KeepMs)
  assert.equal(arrivals.size, MaxMoves)
})
