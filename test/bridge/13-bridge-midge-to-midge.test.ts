/**
 * Midge on both ends: the VPS runs Midge too. MQTT 5 between them gives No Local on the remote
 * subscriptions, so `topic # both` neither loops nor echoes; QoS 2 crosses exactly once; v5 properties
 * (user properties, content type) travel with the message.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { silentLogger } from '../../src/observability/logger.js'
import { startServer, type RunningServer } from '../../src/server/index.js'
import { connected, LocalMidge, once, Peer } from './support.js'
import { freePort } from '../helpers/ports.js'

async function remoteMidge (): Promise<RunningServer> {
  return startServer({
    broker: { logger: silentLogger(), sysInterval: 0 },
    noDelay: true,
    listeners: [{ host: '127.0.0.1', port: 0, protocol: 'mqtt', maxConnections: -1, info: { name: 'vps', allowAnonymous: true, mountPoint: '', protocol: 'mqtt' } }],
  })
}

test('Midge to Midge over MQTT 5: topic # both without loops or echoes, QoS 2 once, properties kept', async () => {
  const vps = await remoteMidge()
  const vpsPort = vps.listeners[0]!.address().port
  let pi: LocalMidge | undefined
  const peers: Peer[] = []
  try {
    pi = await LocalMidge.start(`
connection vps
address 127.0.0.1:${vpsPort}
bridge_protocol_version mqttv50
remote_clientid pi-bridge
topic # both 2
`)
    await connected(pi.bridge)
    const local = await Peer.connect('pi-app', pi.port, { protocolVersion: 5 })
    const remote = await Peer.connect('vps-app', vpsPort, { protocolVersion: 5 })
    peers.push(local, remote)
    await local.client.subscribe({ topicFilter: '#', qos: 2 })
    await remote.client.subscribe({ topicFilter: '#', qos: 2 })

    await local.client.publish('a/from-pi', 'once', { qos: 2, properties: { contentType: 'text/plain', userProperties: [['origin', 'pi']] } })
    const got = await remote.waitFor('a/from-pi')
    assert.equal(got.qos, 2)
    assert.equal(got.properties?.contentType, 'text/plain')
    assert.deepEqual(got.properties?.userProperties, [['origin', 'pi']])
    await remote.client.publish('fence/1', 'f', { qos: 1 })
    await local.waitFor('fence/1')
    assert.deepEqual(local.on('a/from-pi'), ['once'])
    assert.deepEqual(remote.on('a/from-pi'), ['once'])

    await remote.client.publish('b/from-vps', 'once', { qos: 2 })
    assert.equal((await local.waitFor('b/from-vps')).qos, 2)
    await local.client.publish('fence/2', 'f', { qos: 1 })
    await remote.waitFor('fence/2')
    assert.deepEqual(remote.on('b/from-vps'), ['once'])
    assert.deepEqual(local.on('b/from-vps'), ['once'])
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- Pi log ---\n${pi?.log.text ?? ''}`, { cause: err })
  } finally {
    for (const p of peers) await p.close().catch(() => {})
    await pi?.close()
    await vps.close()
  }
})

test('Midge to Midge over MQTT 3.1.1: prefixes both ways, retained flag kept, bridge_outgoing_retain false clears it', async () => {
  const vps = await remoteMidge()
  const vpsPort = vps.listeners[0]!.address().port
  let pi: LocalMidge | undefined
  const peers: Peer[] = []
  try {
    pi = await LocalMidge.start(`
connection vps
address 127.0.0.1:${vpsPort}
topic # out 1 home/ pi/
topic # in 1 remote/ vps/

connection vps-plain
address 127.0.0.1:${vpsPort}
bridge_outgoing_retain false
topic flat/# out 1 "" plain/
`)
    for (const b of pi.bridges.bridges) await connected(b)
    const local = await Peer.connect('pi-app', pi.port)
    const remote = await Peer.connect('vps-app', vpsPort)
    peers.push(local, remote)
    await local.client.subscribe({ topicFilter: 'remote/#', qos: 1 })
    await remote.client.subscribe([{ topicFilter: 'pi/#', qos: 1 }, { topicFilter: 'plain/#', qos: 1 }])

    await local.client.publish('home/kitchen/temp', '22', { qos: 1, retain: true })
    await remote.waitFor('pi/kitchen/temp')
    await remote.client.publish('vps/notice', 'hi', { qos: 1 })
    assert.equal((await local.waitFor('remote/notice')).payload.toString(), 'hi')

    // Retained on the VPS: a late subscriber gets it with RETAIN set; through vps-plain it is not retained.
    await local.client.publish('flat/x', 'not retained there', { qos: 1, retain: true })
    await remote.waitFor('plain/flat/x')
    const late = await Peer.connect('vps-late', vpsPort)
    peers.push(late)
    await late.client.subscribe([{ topicFilter: 'pi/kitchen/temp', qos: 1 }, { topicFilter: 'plain/#', qos: 1 }])
    const kept = await late.waitFor('pi/kitchen/temp')
    assert.equal(kept.retain, true)
    assert.equal(kept.payload.toString(), '22')
    await remote.client.publish('plain/fence', 'f', { qos: 1, retain: false })
    await late.waitFor('plain/fence')
    assert.deepEqual(late.on('plain/flat/x'), [])
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- Pi log ---\n${pi?.log.text ?? ''}`, { cause: err })
  } finally {
    for (const p of peers) await p.close().catch(() => {})
    await pi?.close()
    await vps.close()
  }
})

test('bridge_max_packet_size: a larger message is dropped with a warning, and the ones after it still cross', async () => {
  const vps = await remoteMidge()
  const vpsPort = vps.listeners[0]!.address().port
  let pi: LocalMidge | undefined
  const peers: Peer[] = []
  try {
    pi = await LocalMidge.start(`
connection vps
address 127.0.0.1:${vpsPort}
bridge_max_packet_size 100
topic data/# out 1
`)
    await connected(pi.bridge)
    const local = await Peer.connect('pi-app', pi.port)
    const remote = await Peer.connect('vps-app', vpsPort)
    peers.push(local, remote)
    await remote.client.subscribe({ topicFilter: 'data/#', qos: 1 })
    await local.client.publish('data/big', Buffer.alloc(200, 0x61), { qos: 1 })
    await local.client.publish('data/small', 'fits', { qos: 1 })
    await remote.waitFor('data/small')
    assert.deepEqual(remote.on('data/big'), [])
    assert.match(pi.log.text, /dropped the local message on 'data\/big': its 2\d\d-byte PUBLISH exceeds bridge_max_packet_size 100/)
  } finally {
    for (const p of peers) await p.close().catch(() => {})
    await pi?.close()
    await vps.close()
  }
})

test('start_type once: a failed connection is not retried', async () => {
  const port = await freePort()
  const pi = await LocalMidge.start(`
connection vps
address 127.0.0.1:${port}
start_type once
restart_timeout 1
topic data/# out 1
`)
  try {
    await once(pi.bridge, 'stopped', 8000, 'the bridge did not give up')
    assert.equal(pi.bridge.state, 4)
    assert.match(pi.log.text, /Bridge vps is not restarted \(start_type once\)/)
  } finally {
    await pi.close()
  }
})
