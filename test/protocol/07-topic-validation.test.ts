/** Topic name, topic filter and shared subscription rules (3.1.1 section 4.7, 5.0 sections 4.7 and 4.8.2). */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  isValidSharedFilter, isValidTopicFilter, isValidTopicName, parseSharedFilter, topicHasWildcard,
} from '../../src/protocol/index.js'

test('[MQTT-4.7.3-1] topic names and filters are at least one character long', () => {
  assert.equal(isValidTopicName(''), false)
  assert.equal(isValidTopicFilter(''), false)
  assert.equal(isValidTopicName('/'), true)
  assert.equal(isValidTopicFilter('/'), true)
})

test('[MQTT-4.7.1-1] [MQTT-3.3.2-2] topic names contain no wildcard', () => {
  for (const t of ['a/+', '#', 'a/#', '+', 'a+b', 'a#']) assert.equal(isValidTopicName(t), false, t)
  for (const t of ['a', 'a/b', '/a/', '$SYS/x', 'a b', 'ü/€', 'a//b']) assert.equal(isValidTopicName(t), true, t)
})

test('[MQTT-4.7.3-2] topic names and filters contain no U+0000', () => {
  assert.equal(isValidTopicName('a\u0000b'), false)
  assert.equal(isValidTopicFilter('a/\u0000'), false)
})

test('[MQTT-4.7.3-3] topic names and filters are at most 65,535 UTF-8 bytes', () => {
  assert.equal(isValidTopicName('a'.repeat(65_535)), true)
  assert.equal(isValidTopicName('a'.repeat(65_536)), false)
  assert.equal(isValidTopicName('€'.repeat(21_845)), true) // 65,535 bytes
  assert.equal(isValidTopicName('€'.repeat(21_846)), false) // 65,538 bytes
  assert.equal(isValidTopicFilter('€'.repeat(21_846)), false)
})

test('[MQTT-4.7.1-2] "#" only as the whole last level', () => {
  for (const f of ['#', 'a/#', '/#', 'a/b/#', '+/#']) assert.equal(isValidTopicFilter(f), true, f)
  for (const f of ['a#', '#/a', 'a/#/b', 'a/b#', '##', 'a/##']) assert.equal(isValidTopicFilter(f), false, f)
})

test('[MQTT-4.7.1-3] "+" only as a whole level', () => {
  for (const f of ['+', '+/+', 'a/+', '+/a', '/+/', 'a/+/b', '+//+']) assert.equal(isValidTopicFilter(f), true, f)
  for (const f of ['a+', '+a', 'a/+b', 'a/b+/c', '++']) assert.equal(isValidTopicFilter(f), false, f)
})

test('topicHasWildcard', () => {
  assert.equal(topicHasWildcard('a/+/b'), true)
  assert.equal(topicHasWildcard('a/#'), true)
  assert.equal(topicHasWildcard('a/b'), false)
  assert.equal(topicHasWildcard(''), false)
})

test('parseSharedFilter splits $share/{group}/{filter} and returns null otherwise', () => {
  assert.deepEqual(parseSharedFilter('$share/g/a/b'), { group: 'g', filter: 'a/b' })
  assert.deepEqual(parseSharedFilter('$share/g/#'), { group: 'g', filter: '#' })
  assert.deepEqual(parseSharedFilter('$share/g/$share/x'), { group: 'g', filter: '$share/x' })
  assert.equal(parseSharedFilter('a/b'), null)
  assert.equal(parseSharedFilter('$share'), null)
  assert.equal(parseSharedFilter('$SHARE/g/a'), null)
  assert.equal(parseSharedFilter('$shared/g/a'), null)
  // malformed shares: raw parts, never a throw
  assert.deepEqual(parseSharedFilter('$share/'), { group: '', filter: '' })
  assert.deepEqual(parseSharedFilter('$share/g'), { group: 'g', filter: '' })
  assert.deepEqual(parseSharedFilter('$share//a'), { group: '', filter: 'a' })
})

test('[MQTT-4.8.2-1] [MQTT-4.8.2-2] a share name is non-empty and holds no "/", "+" or "#"', () => {
  for (const f of ['$share/g/a', '$share/g/#', '$share/group-1/+/x', '$share/ü/a']) assert.equal(isValidSharedFilter(f), true, f)
  for (const f of ['$share/', '$share/g', '$share/g/', '$share//a', '$share/g+/a', '$share/#/a', '$share/+/a', '$share/g/a#', 'a/b']) {
    assert.equal(isValidSharedFilter(f), false, f)
  }
})

test('isValidTopicFilter also applies the shared-subscription rules to $share/ filters', () => {
  assert.equal(isValidTopicFilter('$share/g/a/#'), true)
  assert.equal(isValidTopicFilter('$share//a'), false)
  assert.equal(isValidTopicFilter('$share/g'), false)
  assert.equal(isValidTopicFilter('$share'), true) // no slash: an ordinary filter
  assert.equal(isValidTopicFilter('$sharex/g'), true)
})
