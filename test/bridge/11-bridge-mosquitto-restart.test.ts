/**
 * The link survives the VPS going away: the bridge notices, reports state 0, reconnects after
 * restart_timeout and resumes. With cleansession false (the default) QoS 1 messages published on the Pi
 * while the VPS was down wait in the bridge's local session and arrive after the reconnection. With
 * several addresses the bridge fails over, and (round_robin false) goes back to the main one when it
 * returns.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connected, LocalMidge, once, Peer, RemoteMosquitto } from './support.js'
import { freePort } from '../helpers/ports.js'

const State = '$SYS/broker/connection/pi-bridge/state'

test('bridge to mosquitto: remote restart, reconnection, QoS 1 messages queued meanwhile, state notifications', async () => {
  const vps = await RemoteMosquitto.start({ persistence: true })
  let pi: LocalMidge | undefined
  const peers: Peer[] = []
  try {
    pi = await LocalMidge.start(`
connection vps
address 127.0.0.1:${vps.port}
remote_clientid pi-bridge
restart_timeout 1
topic data/# out 1
`)
    await connected(pi.bridge)
    const sensor = await Peer.connect('pi-sensor', pi.port)
    const watcher = await Peer.connect('pi-watcher', pi.port)
    const app = await Peer.connect('vps-app', vps.port, { clean: false })
    peers.push(sensor, watcher, app)
    await watcher.client.subscribe({ topicFilter: State, qos: 1 })
    await app.client.subscribe({ topicFilter: 'data/#', qos: 1 })
    assert.equal((await watcher.waitFor(State)).payload.toString(), '1')

    await sensor.client.publish('data/1', 'before', { qos: 1 })
    await app.waitFor('data/1')

    const down = once(pi.bridge, 'disconnected', 8000, 'the bridge did not notice the VPS going away')
    await vps.stop()
    await down
    await watcher.waitForSequence(State, ['1', '0'])

    // Published while the VPS is down: queued in the bridge's local session (cleansession false).
    await sensor.client.publish('data/2', 'while down', { qos: 1 })
    await sensor.client.publish('data/3', 'while down', { qos: 1 })

    const up = once(pi.bridge, 'connected', 8000, 'the bridge did not reconnect to the restarted VPS')
    await vps.restart()
    await up
    await watcher.waitForSequence(State, ['1', '0', '1'])

    // The VPS app's session (kept by the VPS's persistence) gets them, in order.
    const again = await Peer.connect('vps-app', vps.port, { clean: false })
    peers.push(again)
    await again.waitFor('data/3')
    assert.deepEqual(again.messages.filter((m) => m.topic.startsWith('data/')).map((m) => m.topic), ['data/2', 'data/3'])

    // Stopping the bridge leaves state 0 on the VPS (and here).
    await again.client.subscribe({ topicFilter: State, qos: 1 })
    await again.waitFor(State, 8000, '1')
    await pi.bridges.stop()
    await again.waitFor(State, 8000, '0')
    await watcher.waitForSequence(State, ['1', '0', '1', '0'])
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- Pi log ---\n${pi?.log.text ?? ''}\n--- VPS log ---\n${vps.output}`, { cause: err })
  } finally {
    for (const p of peers) await p.close().catch(() => {})
    await pi?.close()
    await vps.remove()
  }
})

test('bridge to mosquitto: the remote will says 0 when the link dies without a goodbye', async () => {
  const vps = await RemoteMosquitto.start()
  let pi: LocalMidge | undefined
  const peers: Peer[] = []
  try {
    pi = await LocalMidge.start(`
connection vps
address 127.0.0.1:${vps.port}
remote_clientid pi-bridge
keepalive_interval 5
topic data/# out 1
`)
    await connected(pi.bridge)
    const app = await Peer.connect('vps-app', vps.port)
    peers.push(app)
    await app.client.subscribe({ topicFilter: State, qos: 1 })
    await app.waitFor(State, 8000, '1')
    // The link dies without a DISCONNECT (as when the Pi loses power): the VPS publishes the bridge's will.
    ;(pi.bridge as unknown as { client: { end(): void } }).client.end()
    await app.waitFor(State, 8000, '0')
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- Pi log ---\n${pi?.log.text ?? ''}\n--- VPS log ---\n${vps.output}`, { cause: err })
  } finally {
    for (const p of peers) await p.close().catch(() => {})
    await pi?.close()
    await vps.remove()
  }
})

test('bridge to mosquitto: several addresses, failover to the second, back to the main one when it returns', async () => {
  const mainPort = await freePort()
  const backup = await RemoteMosquitto.start()
  let main: RemoteMosquitto | undefined
  let pi: LocalMidge | undefined
  try {
    pi = await LocalMidge.start(`
connection vps
address 127.0.0.1:${mainPort} 127.0.0.1:${backup.port}
restart_timeout 1
topic data/# out 1
`)
    await connected(pi.bridge)
    assert.equal(pi.bridge.address.port, backup.port)
    assert.match(pi.log.text, new RegExp(`connection to 127\\.0\\.0\\.1:${mainPort} failed`))

    const back = once(pi.bridge, 'connected', 12_000, 'the bridge did not return to the main address')
    main = await RemoteMosquitto.start({ port: mainPort })
    await back
    assert.equal(pi.bridge.address.port, mainPort)
    assert.match(pi.log.text, /main address .* is reachable again/)
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- Pi log ---\n${pi?.log.text ?? ''}`, { cause: err })
  } finally {
    await pi?.close()
    await main?.remove()
    await backup.remove()
  }
})
