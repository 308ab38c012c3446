/**
 * The seed's "Pi at home, broker on a VPS" with a bridge instead of an autossh tunnel: Midge (the Pi)
 * bridges to a real mosquitto (the VPS). Topics flow out, in and both ways, remapped by prefixes exactly as
 * mosquitto.conf(5) describes, and nothing loops back with `topic # both`.
 *
 * "Nothing arrived" is checked with a fence: after the message under test, a second message is sent on a
 * path that would carry any echo or stray copy first (same connections, same order); once the fence is
 * in, whatever was going to arrive has.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connected, LocalMidge, Peer, RemoteMosquitto } from './support.js'

test('bridge to mosquitto: out, in and both topics with local and remote prefixes, "" placeholders, retained', async () => {
  const vps = await RemoteMosquitto.start()
  let pi: LocalMidge | undefined
  const peers: Peer[] = []
  try {
    pi = await LocalMidge.start(`
connection vps
address 127.0.0.1:${vps.port}
remote_clientid pi-bridge
restart_timeout 1
topic sensors/# out 1 home/ pi/
topic cmd/# in 1 home/ vps/
topic chat/# both 1
topic "" out 1 home/temp vps/temperature
topic status in 0 "" ""
`)
    await connected(pi.bridge)
    const local = await Peer.connect('pi-app', pi.port)
    const remote = await Peer.connect('vps-app', vps.port)
    peers.push(local, remote)
    await local.client.subscribe([{ topicFilter: 'home/#', qos: 1 }, { topicFilter: 'chat/#', qos: 1 }, { topicFilter: 'status', qos: 1 }, { topicFilter: '$SYS/broker/connection/#', qos: 1 }])
    await remote.client.subscribe([{ topicFilter: 'pi/#', qos: 1 }, { topicFilter: 'vps/#', qos: 1 }, { topicFilter: 'chat/#', qos: 1 }, { topicFilter: '$SYS/broker/connection/#', qos: 1 }])

    // out: home/ is taken off, pi/ put on.
    await local.client.publish('home/sensors/living/temp', '21.5', { qos: 1 })
    const out = await remote.waitFor('pi/sensors/living/temp')
    assert.equal(out.payload.toString(), '21.5')
    assert.equal(out.qos, 1)

    // "" as the pattern: one local topic to one remote topic.
    await local.client.publish('home/temp', '19', { qos: 1 })
    assert.equal((await remote.waitFor('vps/temperature')).payload.toString(), '19')

    // in: vps/ off, home/ on.
    await remote.client.publish('vps/cmd/light', 'on', { qos: 1 })
    assert.equal((await local.waitFor('home/cmd/light')).payload.toString(), 'on')

    // in without prefixes ("" ""): unchanged.
    await remote.client.publish('status', 'ok', { qos: 0 })
    assert.equal((await local.waitFor('status')).payload.toString(), 'ok')

    // both, unprefixed, each way.
    await local.client.publish('chat/pi', 'hello vps', { qos: 1 })
    await remote.waitFor('chat/pi')
    await remote.client.publish('chat/vps', 'hello pi', { qos: 1 })
    await local.waitFor('chat/vps')

    // Not configured: neither home/other (local) nor vps/other (remote) crosses. Fences on bridged topics
    // published afterwards on the same paths arrive; the strays before them do not.
    await local.client.publish('home/other', 'x', { qos: 1 })
    await local.client.publish('home/sensors/fence', 'f1', { qos: 1 })
    await remote.waitFor('pi/sensors/fence')
    assert.deepEqual(remote.messages.filter((m) => m.topic.includes('other')).map((m) => m.topic), [])
    await remote.client.publish('vps/other', 'x', { qos: 1 })
    await remote.client.publish('vps/cmd/fence', 'f2', { qos: 1 })
    await local.waitFor('home/cmd/fence')
    assert.deepEqual(local.on('home/other'), ['x']) // its own publication only
    assert.deepEqual(local.messages.filter((m) => m.topic === 'vps/other'), [])

    // Notifications: 1, retained, on both sides, on the default topic named after remote_clientid.
    const state = '$SYS/broker/connection/pi-bridge/state'
    assert.equal((await local.waitFor(state, 8000, '1')).payload.toString(), '1')
    assert.equal((await remote.waitFor(state, 8000, '1')).payload.toString(), '1')
    const late = await Peer.connect('vps-late', vps.port)
    peers.push(late)
    await late.client.subscribe({ topicFilter: state, qos: 1 })
    const kept = await late.waitFor(state)
    assert.equal(kept.retain, true)
    assert.equal(kept.payload.toString(), '1')

    // A retained message published on the Pi is retained on the VPS too (try_private keeps the flag).
    await local.client.publish('home/sensors/door', 'closed', { qos: 1, retain: true })
    await remote.waitFor('pi/sensors/door')
    await late.client.subscribe({ topicFilter: 'pi/sensors/door', qos: 1 })
    const retained = await late.waitFor('pi/sensors/door')
    assert.equal(retained.retain, true)
    assert.equal(retained.payload.toString(), 'closed')
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- Pi log ---\n${pi?.log.text ?? ''}\n--- VPS log ---\n${vps.output}`, { cause: err })
  } finally {
    for (const p of peers) await p.close().catch(() => {})
    await pi?.close()
    await vps.remove()
  }
})

for (const version of ['mqttv311', 'mqttv50'] as const) {
  test(`bridge to mosquitto: 'topic # both' does not loop or echo (${version}${version === 'mqttv311' ? ', try_private' : ', No Local'})`, async () => {
    const vps = await RemoteMosquitto.start()
    let pi: LocalMidge | undefined
    const peers: Peer[] = []
    try {
      pi = await LocalMidge.start(`
connection vps
address 127.0.0.1:${vps.port}
bridge_protocol_version ${version}
restart_timeout 1
topic # both 1
`)
      await connected(pi.bridge)
      const local = await Peer.connect('pi-app', pi.port)
      const remote = await Peer.connect('vps-app', vps.port)
      peers.push(local, remote)
      await local.client.subscribe({ topicFilter: '#', qos: 1 })
      await remote.client.subscribe({ topicFilter: '#', qos: 1 })

      // Pi → VPS once; an echo from the VPS would reach the Pi before the VPS's own later fence does.
      await local.client.publish('a/from-pi', '1', { qos: 1 })
      await remote.waitFor('a/from-pi')
      await remote.client.publish('fence/1', 'f', { qos: 1 })
      await local.waitFor('fence/1')
      assert.deepEqual(local.on('a/from-pi'), ['1'], 'the Pi saw its own message come back')
      assert.deepEqual(remote.on('a/from-pi'), ['1'])

      // VPS → Pi once; an echo back out would reach the VPS before the Pi's later fence.
      await remote.client.publish('b/from-vps', '2', { qos: 1 })
      await local.waitFor('b/from-vps')
      await local.client.publish('fence/2', 'f', { qos: 1 })
      await remote.waitFor('fence/2')
      assert.deepEqual(remote.on('b/from-vps'), ['2'], 'the VPS saw its own message come back')
      assert.deepEqual(local.on('b/from-vps'), ['2'])
      assert.deepEqual(local.on('fence/1'), ['f'])
      assert.deepEqual(remote.on('fence/2'), ['f'])
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- Pi log ---\n${pi?.log.text ?? ''}\n--- VPS log ---\n${vps.output}`, { cause: err })
    } finally {
      for (const p of peers) await p.close().catch(() => {})
      await pi?.close()
      await vps.remove()
    }
  })
}
