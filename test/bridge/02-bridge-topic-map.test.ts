/**
 * Topic mapping as mosquitto.conf(5) "Configuring Bridges" tabulates it, what the topic maps make of the
 * matching rules, and the restart backoff. Expected topics are written out by hand from the man page's table, not computed.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BridgeTopic, mapIncoming, mapOutgoing, RestartBackoff, topicSpecProblem } from '../../src/bridge/index.js'
import type { BridgeTopicSpec } from '../../src/bridge/index.js'

const spec = (pattern: string | undefined, localPrefix?: string, remotePrefix?: string, direction: BridgeTopicSpec['direction'] = 'both'): BridgeTopicSpec =>
  ({ pattern, direction, qos: 1, localPrefix, remotePrefix })

test('the man page table: full local and remote topics of each valid pattern / prefix combination', () => {
  const rows: Array<[BridgeTopicSpec, string, string]> = [
    [spec('pattern', 'L/', 'R/'), 'L/pattern', 'R/pattern'],
    [spec('pattern', 'L/', undefined), 'L/pattern', 'pattern'],
    [spec('pattern', undefined, 'R/'), 'pattern', 'R/pattern'],
    [spec('pattern', undefined, undefined), 'pattern', 'pattern'],
    [spec(undefined, 'local', 'remote'), 'local', 'remote'],
  ]
  for (const [s, local, remote] of rows) {
    assert.equal(topicSpecProblem(s), undefined)
    const t = new BridgeTopic(s)
    assert.equal(t.localTopic, local)
    assert.equal(t.remoteTopic, remote)
    // A message on the full local topic goes out on the full remote topic, and back.
    assert.equal(mapOutgoing([t], local), remote)
    assert.equal(mapIncoming([t], remote), local)
  }
})

test('the man page table: invalid combinations are refused with a reason', () => {
  assert.match(topicSpecProblem(spec(undefined, 'local', undefined)) ?? '', /needs both a local and a remote prefix/)
  assert.match(topicSpecProblem(spec(undefined, undefined, 'remote')) ?? '', /needs both/)
  assert.match(topicSpecProblem(spec(undefined, undefined, undefined)) ?? '', /needs both/)
  assert.match(topicSpecProblem(spec('#', 'L/+/', 'R/')) ?? '', /local prefix 'L\/\+\/' is not a valid topic prefix/)
  assert.match(topicSpecProblem(spec('#', 'L/', 'R#')) ?? '', /remote prefix/)
  assert.match(topicSpecProblem(spec('#', 'home', 'R/')) ?? '', /local topic 'home#' is not a valid topic filter \(does the local prefix 'home' need a trailing '\/'\?\)/)
  assert.match(topicSpecProblem(spec('a/#/b')) ?? '', /local topic 'a\/#\/b' is not a valid topic filter/)
})

test('wildcard patterns: the prefix is swapped on every matching topic', () => {
  const t = [new BridgeTopic(spec('sensors/#', 'home/', 'pi/'))]
  assert.equal(mapOutgoing(t, 'home/sensors/living/temp'), 'pi/sensors/living/temp')
  assert.equal(mapIncoming(t, 'pi/sensors/x'), 'home/sensors/x')
  // '#' also matches the parent level: "home/sensors" is in, and maps like any other.
  assert.equal(mapOutgoing(t, 'home/sensors'), 'pi/sensors')
  // mosquitto's quirk kept: with pattern '#' the parent "L" itself matches "L/#" but does not start with "L/",
  // so nothing is removed and the remote prefix is added in front of it.
  assert.equal(mapOutgoing([new BridgeTopic(spec('#', 'L/', 'R/'))], 'L'), 'R/L')
})

test('the first prefixed entry that matches decides; unprefixed entries do not stop the search (mosquitto order)', () => {
  const topics = [
    new BridgeTopic(spec('#', undefined, undefined, 'out')),
    new BridgeTopic(spec('x/#', 'a/', 'b/', 'out')),
    new BridgeTopic(spec('x/#', 'a/', 'c/', 'out')),
    new BridgeTopic(spec('x/#', 'a/', 'd/', 'in')),
  ]
  assert.equal(mapOutgoing(topics, 'a/x/1'), 'b/x/1')
  assert.equal(mapOutgoing(topics, 'plain'), 'plain')
  // Incoming: only in/both entries apply; nothing asked for 'e/1', so it is refused.
  assert.equal(mapIncoming(topics, 'd/x/1'), 'a/x/1')
  assert.equal(mapIncoming(topics, 'e/1'), undefined)
  assert.equal(mapIncoming([new BridgeTopic(spec('e/#', undefined, undefined, 'in'))], 'e/1'), 'e/1')
})

test('[MQTT-4.7.2-1] the bridge routes with the one matcher: parent level, empty levels, $ topics', () => {
  // The rules themselves are test/protocol/10-topic-match's; this pins what the topic maps make of them.
  const all = new BridgeTopic(spec('#', 'L/', 'R/'))
  assert.equal(mapOutgoing([all], 'L'), 'R/L', 'L/# matches its parent L, which has no L/ to strip (as Mosquitto)')
  assert.equal(mapOutgoing([all], 'L/x'), 'R/x')
  assert.equal(mapOutgoing([all], 'L//x'), 'R//x')
  assert.equal(mapIncoming([all], 'R/a/b'), 'L/a/b')
  const root = new BridgeTopic(spec('#', undefined, undefined, 'in'))
  assert.equal(mapIncoming([root], '$SYS/broker/uptime'), undefined, 'a leading # does not ask for $ topics')
  assert.equal(mapIncoming([root], 'a/b'), 'a/b')
  const sys = new BridgeTopic(spec('$SYS/broker/+', undefined, 'remote/', 'in'))
  assert.equal(mapIncoming([sys], 'remote/$SYS/broker/uptime'), '$SYS/broker/uptime')
  const plus = new BridgeTopic(spec('+/x', 'L/', 'R/', 'in'))
  assert.equal(mapIncoming([plus], 'R//x'), 'L//x', '+ matches the empty level')
  assert.equal(mapIncoming([plus], 'R/a/b/x'), undefined)
})

test('restart_timeout: a constant, or decorrelated jitter between base and cap, back to base after a connection', () => {
  const constant = new RestartBackoff(20, 0)
  assert.deepEqual([constant.next(), constant.next()], [20, 20])
  let r = 0
  const seq = [0.99, 0.99, 0.99, 0.99, 0, 0.5]
  const jitter = new RestartBackoff(5, 30, () => seq[r++ % seq.length]!)
  const delays = [jitter.next(), jitter.next(), jitter.next(), jitter.next()]
  // Each draw is at most 3 × the previous one, never above the cap, never below the base.
  assert.ok(delays[0]! > 14 && delays[0]! < 15, String(delays[0]))
  assert.equal(delays[1], 30)
  assert.equal(delays[3], 30)
  assert.equal(jitter.next(), 5) // random 0: the base
  jitter.reset()
  const afterReset = jitter.next()
  assert.ok(afterReset >= 5 && afterReset <= 15, String(afterReset))
})
