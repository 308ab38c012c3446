/**
 * The bridge as a user runs it: `midge -c FILE` with a `connection` block bridges to a real mosquitto and,
 * on SIGTERM, leaves state 0 on the remote before exiting; `midge check` validates bridge blocks and the
 * TLS files they name, each problem at its file:line. docs/bridging.md's option reference is current and
 * its Pi configuration loads.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { renderBridgeOptionsMarkdown } from '../../src/config/bridge-options.js'
import { loadConfig } from '../../src/config/load.js'
import { MIDGE, MidgeProcess } from '../helpers/midge-process.js'
import { Peer, RemoteMosquitto, tempDir } from './support.js'

const root = path.resolve(import.meta.dirname, '../../..')
/** Appended last, so the line numbers above it are the same for root and other users. */
const asRoot = process.getuid?.() === 0 ? 'user root\n' : ''

test('midge -c FILE runs its connection blocks; SIGTERM stops the bridge with state 0 on the remote', async () => {
  const vps = await RemoteMosquitto.start()
  const dir = tempDir('midge-bridge-serve-')
  const conf = path.join(dir, 'midge.conf')
  fs.writeFileSync(conf, `${asRoot}log_type all
listener 0 127.0.0.1
allow_anonymous true

connection vps
address 127.0.0.1:${vps.port}
remote_clientid pi-bridge
topic sensors/# out 1 home/ pi/
`)
  const midge = new MidgeProcess(['-c', conf])
  const peers: Peer[] = []
  try {
    const [opened] = await midge.opened(1)
    await midge.guard(midge.waitFor(/Bridge vps connected to 127\.0\.0\.1:\d+ as pi-bridge/), 'the bridge never connected')
    const app = await Peer.connect('vps-app', vps.port)
    peers.push(app)
    await app.client.subscribe([{ topicFilter: 'pi/#', qos: 1 }, { topicFilter: '$SYS/broker/connection/pi-bridge/state', qos: 1 }])
    await app.waitFor('$SYS/broker/connection/pi-bridge/state', 8000, '1')
    // "connected" is logged once both sides are subscribed.
    const sensor = await Peer.connect('pi-sensor', opened!.port)
    peers.push(sensor)
    await sensor.client.publish('home/sensors/t', '20', { qos: 1 })
    await midge.guard(app.waitFor('pi/sensors/t'), 'the message never crossed')
    assert.equal(await midge.stop(), 0)
    await app.waitFor('$SYS/broker/connection/pi-bridge/state', 8000, '0')
    assert.ok(midge.lines.some((l) => l.includes('Bridge vps stopped.')), midge.lines.join('\n'))
  } finally {
    for (const p of peers) await p.close().catch(() => {})
    await midge.stop()
    await vps.remove()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('midge check: bridge blocks are validated, and their TLS files checked, each problem at its line', () => {
  const dir = tempDir('midge-bridge-check-')
  try {
    const ca = path.join(dir, 'ca.pem')
    fs.writeFileSync(ca, 'not a certificate\n')
    const conf = path.join(dir, 'midge.conf')
    fs.writeFileSync(conf, `listener 1883 127.0.0.1
allow_anonymous true
connection vps
address vps.example.org:8883
bridge_cafile ${ca}
bridge_certfile ${path.join(dir, 'missing.pem')}
bridge_keyfile ${path.join(dir, 'missing.key')}
topic # out 1
${asRoot}`)
    const r = spawnSync(process.execPath, [MIDGE, 'check', '-c', conf], { encoding: 'utf8' })
    assert.equal(r.status, 1, r.stdout + r.stderr)
    assert.match(r.stdout, /midge\.conf:6: bridge vps: bridge_certfile .*missing\.pem/)
    assert.match(r.stdout, /midge\.conf:7: bridge vps: bridge_keyfile .*missing\.key/)

    fs.writeFileSync(conf, `listener 1883 127.0.0.1
allow_anonymous true
connection vps
address vps.example.org:8883
bridge_cafile ${ca}
topic # out 1
${asRoot}`)
    const bad = spawnSync(process.execPath, [MIDGE, 'check', '-c', conf], { encoding: 'utf8' })
    assert.equal(bad.status, 1, bad.stdout + bad.stderr)
    assert.match(bad.stdout, /midge\.conf:5: bridge vps: bridge_cafile .*ca\.pem holds no PEM certificate/)

    fs.writeFileSync(conf, `listener 1883 127.0.0.1
allow_anonymous true
topic # out 1
connection vps
address vps.example.org:8883
topic # sideways
${asRoot}`)
    const invalid = spawnSync(process.execPath, [MIDGE, 'check', '-c', conf], { encoding: 'utf8' })
    assert.equal(invalid.status, 1)
    assert.match(invalid.stdout, /midge\.conf:3: option 'topic' belongs to a bridge, but no 'connection' line comes before it/)
    assert.match(invalid.stdout, /midge\.conf:6: bridge topic direction 'sideways' is not one of out, in, both/)

    fs.writeFileSync(conf, `listener 1883 127.0.0.1\nallow_anonymous true\nconnection vps\naddress vps.example.org\ntopic # both 1\n${asRoot}`)
    const ok = spawnSync(process.execPath, [MIDGE, 'check', '-c', conf], { encoding: 'utf8' })
    assert.equal(ok.status, 0, ok.stdout + ok.stderr)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('docs/bridging.md: the option reference is generated from the bridge option table, and the Pi config loads', () => {
  const doc = fs.readFileSync(path.join(root, 'docs/bridging.md'), 'utf8')
  const start = doc.indexOf('\n', doc.indexOf('<!-- bridge-options:start')) + 1
  const end = doc.indexOf('<!-- bridge-options:end')
  assert.equal(doc.slice(start, end), renderBridgeOptionsMarkdown(), 'docs/bridging.md option reference is stale: paste renderBridgeOptionsMarkdown() between the markers')

  const pi = /### On the Pi \(Midge\)[\s\S]*?```\n([\s\S]*?)```/.exec(doc)?.[1]
  assert.ok(pi !== undefined)
  const dir = tempDir('midge-bridge-doc-')
  try {
    const conf = path.join(dir, 'midge.conf')
    fs.writeFileSync(conf, pi)
    const cfg = loadConfig(conf)
    assert.equal(cfg.bridges.length, 1)
    const b = cfg.bridges[0]!
    assert.deepEqual(b.addresses, [{ host: 'yourbrokermachine', port: 8883 }])
    assert.equal(b.remoteUsername, 'pi')
    assert.equal(b.tls?.cafile, '/etc/ssl/certs/ca-certificates.crt')
    assert.deepEqual(b.topics.map((t) => [t.pattern, t.direction, t.qos, t.localPrefix, t.remotePrefix]), [['#', 'out', 1, undefined, 'home/'], ['cmd/#', 'in', 1, undefined, undefined]])
    assert.deepEqual(cfg.listeners.map((l) => `${l.port} ${l.bindAddress}`), ['1883 192.168.1.10', '1883 127.0.0.1'])
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
