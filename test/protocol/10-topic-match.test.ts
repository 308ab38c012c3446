/**
 * topicMatches, the project's one filter-against-topic matcher (bridge, acl_file, `sub -T`, mosquitto.db import),
 * held to the spec's examples and to the two references of test/helpers/topic-reference.ts. The tests of each caller (bridge 02, auth 05, interop 40,
 * broker 42) pin what that caller does with it.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { isValidFilterLevels, isValidTopicFilter, topicMatches } from '../../src/protocol/index.js'
import { referenceMatch, regexMatch } from '../helpers/topic-reference.js'

test('[MQTT-4.7.1-2] [MQTT-4.7.1-3] the spec examples: + one whole level, # the parent and all below', () => {
  const yes: Array<[string, string]> = [
    ['sport/tennis/player1/#', 'sport/tennis/player1'], ['sport/tennis/player1/#', 'sport/tennis/player1/ranking'],
    ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon'], ['sport/#', 'sport'],
    ['sport/tennis/+', 'sport/tennis/player1'], ['+/+', '/finance'], ['/+', '/finance'],
    ['#', 'a'], ['#', 'a/b/c'], ['a/#', 'a'], ['a/#', 'a/b'], ['+', 'a'], ['+/+', 'a/b'], ['+/#', 'a'],
    ['a/+/c', 'a/b/c'], ['/+', '/x'], ['+/', 'x/'], ['a', 'a'],
  ]
  const no: Array<[string, string]> = [
    ['sport/tennis/+', 'sport/tennis/player1/ranking'], ['sport/+', 'sport'], ['+', '/finance'],
    ['a/+', 'a'], ['a/+/c', 'a/b'], ['a', 'a/b'], ['a/b', 'a/bc'], ['ab', 'a'], ['+', 'a/b'], ['a/b/#', 'a'],
    ['+/+', 'a'], ['a/+/#', 'a'],
  ]
  for (const [f, t] of yes) assert.equal(topicMatches(f, t), true, `${f} should match ${t}`)
  for (const [f, t] of no) assert.equal(topicMatches(f, t), false, `${f} should not match ${t}`)
})

test('[MQTT-4.7.2-1] a filter led by a wildcard matches no $ topic; one naming the $ level does', () => {
  assert.equal(topicMatches('#', '$SYS/x'), false)
  assert.equal(topicMatches('+/x', '$SYS/x'), false)
  assert.equal(topicMatches('+/#', '$SYS'), false)
  assert.equal(topicMatches('+', '$'), false)
  assert.equal(topicMatches('$SYS/#', '$SYS/broker'), true)
  assert.equal(topicMatches('$SYS/#', '$SYS'), true)
  assert.equal(topicMatches('$SYS/+/x', '$SYS/a/x'), true)
  // Only the first level is special: '$' further down is an ordinary character.
  assert.equal(topicMatches('a/+', 'a/$x'), true)
  assert.equal(topicMatches('a/#', 'a/$x/y'), true)
})

test('empty levels are levels: + matches one, # matches them below its parent', () => {
  assert.equal(topicMatches('home/+/x', 'home//x'), true)
  assert.equal(topicMatches('+/+/+', '//'), true)
  assert.equal(topicMatches('+', '/'), false)
  assert.equal(topicMatches('a/+', 'a/'), true)
  assert.equal(topicMatches('a/#', 'a/'), true)
  assert.equal(topicMatches('a//b', 'a//b'), true)
  assert.equal(topicMatches('a//b', 'a/b'), false)
})

const topicArb = fc.array(fc.constantFrom('a', 'b', '', '$x', 'ab', 'é'), { minLength: 1, maxLength: 5 }).map((l) => l.join('/'))
const filterArb = fc.tuple(fc.array(fc.constantFrom('a', 'b', '', '+', '$x', 'ab'), { minLength: 0, maxLength: 4 }), fc.boolean())
  .map(([l, hash]) => (hash ? [...l, '#'] : l.length === 0 ? ['+'] : l).join('/'))

test('topicMatches agrees with both references on random valid filters and topics', () => {
  fc.assert(fc.property(filterArb, topicArb, (f, t) => {
    const got = topicMatches(f, t)
    return got === referenceMatch(f, t) && got === regexMatch(f, t)
  }), { numRuns: 5000 })
})

test('one filter validator: the level rules, and the share rule on top for SUBSCRIBE', () => {
  for (const f of ['a/#/b', 'a+/b', 'a/b#', '#/', 'a\u0000', '']) {
    assert.equal(isValidFilterLevels(f), false, f)
    assert.equal(isValidTopicFilter(f), false, f)
  }
  for (const f of ['#', '+', 'a/+/#', '/', '$SYS/#', '$share/g/a/#']) {
    assert.equal(isValidFilterLevels(f), true, f)
    assert.equal(isValidTopicFilter(f), true, f)
  }
  // '$share/' is a share only on the wire; an acl_file line matches it as written (mosquitto_sub_topic_check).
  for (const f of ['$share/g', '$share/', '$share//a']) {
    assert.equal(isValidFilterLevels(f), true, f)
    assert.equal(isValidTopicFilter(f), false, f)
  }
})
