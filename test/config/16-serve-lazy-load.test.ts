/**
 * `midge -c FILE` loads the code of TLS, websockets, persistence, bridges, ACME and the help text only when
 * the config uses them (start-up time and idle RSS, issue #18), and what it uses is loaded before the first
 * port opens: that is also before the switch away from root, after which an installed file may be unreadable.
 * Node's own module log (NODE_DEBUG=esm, one "Storing <url>" line per module, on stderr like the broker's
 * log) says what was loaded and when.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TestPki } from '../helpers/certs.js'
import { MidgeProcess } from '../helpers/midge-process.js'

/** Code a plain TCP listener without persistence or bridges does not need. */
const optional = {
  ws: /\/node_modules\/ws\//,
  wsTransport: /\/dist\/src\/transport\/ws\.js$/,
  tls: /\/dist\/src\/transport\/tls\.js$/,
  // Node's own TLS module: ~2 MB of idle RSS once loaded (the config's tls_version names are apart, in tls-versions.js).
  nodeTls: /^node:tls$/,
  wss: /\/dist\/src\/transport\/wss\.js$/,
  store: /\/dist\/src\/persistence\/log-store\.js$/,
  mosquittoImport: /\/dist\/src\/persistence\/mosquitto-db\//,
  bridge: /\/dist\/src\/bridge\/index\.js$/,
  client: /\/dist\/src\/client\//,
  acme: /\/dist\/src\/acme\/manager\.js$/,
  helpText: /\/dist\/src\/config\/doc\.js$/,
  // protocol http listeners (monitoring): their server, metrics and Node's http module.
  httpListener: /\/dist\/src\/server\/(http-listener|http-routes|metrics)\.js$/,
  nodeHttp: /^node:http$/,
}

/** Starts midge with `conf`; the URLs of the modules loaded before the first listener opened, and after. */
async function modulesAtListen(conf: string[], dir: string, listeners: number): Promise<{ before: string[]; all: string[]; log: string }> {
  const file = join(dir, 'midge.conf')
  writeFileSync(file, conf.join('\n') + '\n')
  const midge = new MidgeProcess(['-c', file], { cwd: dir, env: { ...process.env, NODE_DEBUG: 'esm' } })
  try {
    await midge.opened(listeners)
    const stored = (lines: string[]): string[] => lines.flatMap((l) => /^ESM \d+: Storing (\S+)/.exec(l)?.[1] ?? [])
    const first = midge.lines.findIndex((l) => / listen socket on /.test(l))
    return { before: stored(midge.lines.slice(0, first)), all: stored(midge.lines), log: midge.lines.filter((l) => !l.startsWith('ESM')).join('\n') }
  } finally {
    await midge.stop()
  }
}

test('a plain TCP listener loads neither ws, TLS, persistence, bridge, client, ACME nor the help text', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-lazy-'))
  try {
    const { all, log } = await modulesAtListen(['user root', 'listener 0 127.0.0.1', 'allow_anonymous true'], dir, 1)
    assert.ok(all.some((u) => u.endsWith('/dist/src/broker/broker.js')), `NODE_DEBUG=esm logged no modules:\n${log}`)
    for (const [what, re] of Object.entries(optional)) {
      assert.deepEqual(all.filter((u) => re.test(u)), [], `${what} loaded for a plain TCP listener`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('what the config needs (TLS, wss, ws, persistence, a bridge) is loaded before the first port opens', async () => {
  const pki = new TestPki()
  const dir = mkdtempSync(join(tmpdir(), 'midge-lazy-'))
  // The broker may switch to another user after opening its ports; the store must stay writable for it.
  chmodSync(dir, 0o777)
  const leaf = pki.issue('localhost')
  try {
    const { before, log } = await modulesAtListen([
      'user root',
      'persistence true',
      `persistence_location ${dir}`,
      'listener 0 127.0.0.1',
      'allow_anonymous true',
      'listener 0 127.0.0.1',
      'protocol websockets',
      'allow_anonymous true',
      'listener 0 127.0.0.1',
      'protocol websockets',
      `certfile ${leaf.cert}`,
      `keyfile ${leaf.key}`,
      'allow_anonymous true',
      'connection lazy-test',
      // Nothing listens on port 1: the bridge only has to exist, its connection attempts fail and retry.
      'address 127.0.0.1:1',
      'topic # out 0',
    ], dir, 3)
    for (const what of ['ws', 'wsTransport', 'tls', 'nodeTls', 'wss', 'store', 'mosquittoImport', 'bridge', 'client'] as const) {
      assert.ok(before.some((u) => optional[what].test(u)), `${what} was not loaded before the first listener opened; log:\n${log}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
    pki.remove()
  }
})
