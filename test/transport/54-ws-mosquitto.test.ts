/**
 * The same WebSocket clients against a real Mosquitto (Debian's mosquitto 2.0.11, built with
 * libwebsockets: `listener PORT` + `protocol websockets`) and against Midge, for what is accepted and
 * what is refused. Debian's mosquitto_pub/mosquitto_sub have no WebSocket support, so MQTT.js and a raw
 * `ws` peer play the clients. Where Midge deliberately differs, the test pins both behaviours:
 *   - no subprotocol offered: Mosquitto completes the handshake but never answers CONNECT; Midge refuses
 *     the handshake with 400. Either way MQTT.js cannot connect.
 *   - a text frame after CONNECT: Mosquitto reads its bytes as MQTT; Midge closes (1003) [MQTT-6.0.0-1].
 * Mosquitto 2.0.11 only starts a websockets listener beside an ordinary one, and its libwebsockets
 * binds the port on every interface whatever address is given; the tests connect over loopback only.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { IClientOptions } from 'mqtt'
import { WebSocket } from 'ws'
import { Mosquitto } from '../client/support/mosquitto.js'
import { freePort } from '../helpers/ports.js'
import { Connack311Accepted, RawPeer, connect311, startWsBroker, subscribe0, suback0, type WsBroker } from '../helpers/ws-harness.js'

let mosquitto: Mosquitto
let midge: WsBroker
const targets: Array<{ name: string; url: () => string }> = [
  { name: 'mosquitto', url: () => `ws://127.0.0.1:${wsPort}` },
  { name: 'midge', url: () => midge.url },
]
let wsPort = 0

before(async () => {
  wsPort = await freePort()
  mosquitto = await Mosquitto.start({ listener: [`listener ${wsPort} 127.0.0.1`, 'protocol websockets'] })
  midge = await startWsBroker()
})
after(async () => {
  await midge.close()
  await mosquitto.stop()
})

/**
 * Connects with MQTT.js, without retries (MQTT.js drops stream errors that carry no code, such as a
 * refused handshake, so connectAsync would otherwise wait for a retry forever); resolves 'connected' or
 * 'failed: ' + the error text.
 */
async function tryConnect (url: string, opts: IClientOptions): Promise<string> {
  try {
    const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 3000, ...opts }, false)
    await c.endAsync()
    return 'connected'
  } catch (err) {
    return `failed: ${(err as Error).message}`
  }
}

/** MQTT.js options offering `protocols`; `handshake` says how the WebSocket handshake ended. */
function withSubprotocols (protocols: string[]): { opts: IClientOptions; handshake: Promise<string> } {
  let report: (s: string) => void = () => {}
  const handshake = new Promise<string>((resolve) => { report = resolve })
  const opts: IClientOptions = {
    createWebsocket: (url: string) => {
      const ws = new WebSocket(url, protocols)
      ws.once('open', () => report('open'))
      ws.once('unexpected-response', (_req, res) => report(`http ${res.statusCode ?? 0}`))
      ws.once('error', (err) => report(`error: ${err.message}`))
      return ws
    },
  }
  return { opts, handshake }
}

for (const protocolVersion of [4, 5] as const) {
  test(`MQTT.js v${protocolVersion === 4 ? '3.1.1' : '5'} with subprotocol mqtt connects to both, on any path`, async () => {
    for (const t of targets) {
      assert.equal(await tryConnect(t.url(), { protocolVersion, clientId: `ok-${t.name}` }), 'connected', t.name)
      assert.equal(await tryConnect(`${t.url()}/some/path`, { protocolVersion, clientId: `path-${t.name}` }), 'connected', t.name)
    }
  })
}

test('MQTT.js 3.1 (subprotocol mqttv3.1) connects to both', async () => {
  for (const t of targets) {
    assert.equal(await tryConnect(t.url(), { protocolId: 'MQIsdp', protocolVersion: 3, clientId: `v31-${t.name}` }), 'connected', t.name)
  }
})

for (const offered of [['mqttv5'], ['MQTT'], ['chat']]) {
  test(`an MQTT.js client offering only ${offered.join(', ')} is refused at the handshake by both`, async () => {
    const handshakes: Record<string, string> = {}
    for (const t of targets) {
      const { opts, handshake } = withSubprotocols(offered)
      assert.match(await tryConnect(t.url(), { ...opts, clientId: `bad-${t.name}`, connectTimeout: 1000 }), /^failed: /, t.name)
      handshakes[t.name] = await handshake
    }
    // Mosquitto hangs up; Midge answers 400 with the reason in the body.
    assert.deepEqual(handshakes, { mosquitto: 'error: socket hang up', midge: 'http 400' })
  })
}

test('an MQTT.js client offering no subprotocol gets no session from either (mosquitto: no CONNACK; midge: 400)', async () => {
  const m = withSubprotocols([])
  assert.match(await tryConnect(targets[0]!.url(), { ...m.opts, clientId: 'none-m', connectTimeout: 1000 }), /^failed: /)
  assert.equal(await m.handshake, 'open', 'mosquitto completes the handshake, then never answers CONNECT')
  const g = withSubprotocols([])
  assert.match(await tryConnect(targets[1]!.url(), { ...g.opts, clientId: 'none-g', connectTimeout: 1000 }), /^failed: /)
  assert.equal(await g.handshake, 'http 400', 'midge refuses the handshake, saying why')
})

test('the subprotocol answered is the first acceptable one in the client order, on both', async () => {
  for (const t of targets) {
    for (const [offered, chosen] of [[['mqttv3.1', 'mqtt'], 'mqttv3.1'], [['chat', 'mqtt'], 'mqtt']] as const) {
      const p = new RawPeer(t.url(), [...offered])
      const h = await p.handshake
      await p.terminate()
      assert.deepEqual(h, { kind: 'open', protocol: chosen }, `${t.name} ${offered.join(',')}`)
    }
  }
})

test('[MQTT-6.0.0-1] a text frame before CONNECT closes the connection on both (midge with 1003)', async () => {
  const codes: Record<string, number> = {}
  for (const t of targets) {
    const p = new RawPeer(t.url())
    await p.open()
    await p.send('hello', { binary: false })
    codes[t.name] = (await p.closed).code
    assert.equal(p.bytesReceived(), 0, t.name)
  }
  assert.equal(codes.midge, 1003)
})

test('a text frame after CONNECT: mosquitto reads it as MQTT bytes, midge closes with 1003 [MQTT-6.0.0-1]', async () => {
  // "0\x05\x00\x01ahi" is valid UTF-8 and also a QoS 0 PUBLISH of "hi" to topic "a".
  const textPublish = '0\x05\x00\x01ahi'
  const results: Record<string, string> = {}
  for (const t of targets) {
    const p = new RawPeer(t.url())
    await p.open()
    await p.send(Buffer.concat([connect311(`text-${t.name}`), subscribe0(1, 'a')]))
    const expected = Buffer.concat([Connack311Accepted, suback0(1)])
    assert.deepEqual(await p.waitForBytes(expected.length), expected, t.name)
    await p.send(textPublish, { binary: false })
    if (t.name === 'mosquitto') {
      const got = await p.waitForBytes(expected.length + 7)
      results[t.name] = got.subarray(expected.length).toString('latin1')
      await p.terminate()
    } else {
      results[t.name] = `closed ${(await p.closed).code}`
    }
  }
  assert.deepEqual(results, { mosquitto: textPublish, midge: 'closed 1003' })
})
