import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseServeArgs, resolveServeConfig } from '../../src/config/args.js'
import { ConfigErrorCode } from '../../src/config/errors.js'
import { isLoopbackListener, loadConfig, localOnlyConfig } from '../../src/config/load.js'
import { LogTypes } from '../../src/observability/logger.js'

function withConfig<T>(text: string, f: (file: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'midge-cfg-'))
  try {
    const file = join(dir, 'c.conf')
    writeFileSync(file, text)
    return f(file)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

test('no arguments: 127.0.0.1:1883 and [::1]:1883 only, anonymous allowed (local-only mode)', () => {
  const cfg = resolveServeConfig(parseServeArgs([]))
  assert.deepEqual(cfg.listeners.map((l) => [l.bindAddress, l.port, l.allowAnonymous, l.implicit]), [
    ['127.0.0.1', 1883, true, true],
    ['::1', 1883, true, true],
  ])
  assert.ok(cfg.listeners.every((l) => isLoopbackListener(l)))
})

test('-p PORT without -c: that port on 127.0.0.1 and ::1, anonymous; -p may repeat', () => {
  const cfg = resolveServeConfig(parseServeArgs(['-p', '1884', '-p', '1885']))
  assert.deepEqual(cfg.listeners.map((l) => `${l.bindAddress} ${l.port} ${l.allowAnonymous}`), [
    '127.0.0.1 1884 true', '::1 1884 true', '127.0.0.1 1885 true', '::1 1885 true',
  ])
})

test('a config file without listeners keeps the local-only listeners and warns', () => {
  withConfig('retain_available false\n', (file) => {
    const cfg = loadConfig(file)
    assert.deepEqual(cfg.listeners.map((l) => [l.bindAddress, l.port, l.allowAnonymous]), [['127.0.0.1', 1883, true], ['::1', 1883, true]])
    assert.equal(cfg.broker.retainAvailable, false)
    assert.match(cfg.warnings[0]?.message ?? '', /no 'listener' is configured: listening on 127\.0\.0\.1:1883 and \[::1\]:1883 only/)
  })
})

test('allow_anonymous defaults to false as soon as a listener is configured', () => {
  withConfig('listener 1883\npassword_file /etc/mosquitto/passwd\n', (file) => {
    assert.equal(loadConfig(file).listeners[0]?.allowAnonymous, false)
  })
})

test('a non-loopback listener that allows anonymous clients is warned about; a loopback one is not', () => {
  withConfig('listener 1883 127.0.0.1\nlistener 1884\nlistener 1885 192.0.2.1\nallow_anonymous true\n', (file) => {
    const cfg = loadConfig(file)
    const anon = cfg.warnings.filter((w) => w.message.includes('accepts anonymous clients'))
    assert.deepEqual(anon.map((w) => w.message), [
      'listener 1884 accepts anonymous clients on all interfaces (allow_anonymous true): anyone who can reach this port can publish and subscribe',
      'listener 1885 accepts anonymous clients on 192.0.2.1 (allow_anonymous true): anyone who can reach this port can publish and subscribe',
    ])
    assert.deepEqual(anon.map((w) => w.line), [2, 3])
  })
})

test('a listener that refuses anonymous clients and has no password_file is warned about', () => {
  withConfig('listener 1883\n', (file) => {
    assert.deepEqual(loadConfig(file).warnings.map((w) => w.message), ['listener 1883 refuses anonymous clients but has no password_file: no client can connect to it'])
  })
})

test('per_listener_settings true gives each listener its own security options', () => {
  withConfig('per_listener_settings true\nlistener 1883 127.0.0.1\nallow_anonymous true\nlistener 8883\npassword_file pw\nacl_file acl\n', (file) => {
    const [a, b] = loadConfig(file).listeners
    assert.deepEqual([a?.allowAnonymous, a?.passwordFile, a?.aclFile], [true, undefined, undefined])
    assert.deepEqual([b?.allowAnonymous, b?.passwordFile, b?.aclFile], [false, join(file, '..', 'pw'), join(file, '..', 'acl')])
  })
})

test('-c FILE -p PORT adds a listener on all interfaces with the file\'s security; -v logs everything', () => {
  withConfig('listener 1883 127.0.0.1\nallow_anonymous false\npassword_file /etc/pw\nlog_type error\n', (file) => {
    const cfg = resolveServeConfig(parseServeArgs(['-c', file, '-p', '1999', '-v']))
    assert.deepEqual(cfg.listeners.map((l) => [l.port, l.bindAddress, l.allowAnonymous, l.passwordFile]), [
      [1883, '127.0.0.1', false, '/etc/pw'],
      [1999, undefined, false, '/etc/pw'],
    ])
    assert.deepEqual(cfg.global.logType, [...LogTypes])
  })
})

test('bad command-line arguments are ConfigErrors with code CFG_ERR_ARGS', () => {
  for (const argv of [['-p', 'x'], ['-p', '0'], ['--bogus'], ['-c'], ['-c', 'a', '-c', 'b']]) {
    assert.throws(() => parseServeArgs(argv), (err: unknown) => (err as { code?: string }).code === ConfigErrorCode.Args, argv.join(' '))
  }
  assert.deepEqual(parseServeArgs(['-c', 'f', '-d', '--help-config']), { configFile: 'f', ports: [], verbose: false, daemon: true, help: false, helpConfig: true, workers: undefined })
  assert.equal(parseServeArgs(['--workers', '4']).workers, 4)
  assert.throws(() => parseServeArgs(['--workers', 'x']), (err: unknown) => (err as { code?: string }).code === ConfigErrorCode.Args)
})

test('log_dest and log_type accumulate; none resets; only one log file', () => {
  withConfig('log_dest stdout\nlog_dest file /var/log/m.log\nlog_type error\nlog_type subscribe\nlog_timestamp_format %Y-%m-%dT%H:%M:%S\n', (file) => {
    const g = loadConfig(file).global
    assert.deepEqual(g.logDest, [{ kind: 'stdout' }, { kind: 'file', path: '/var/log/m.log' }])
    assert.deepEqual(g.logType, ['error', 'subscribe'])
    assert.equal(g.logTimestampFormat, '%Y-%m-%dT%H:%M:%S')
  })
  withConfig('log_dest stdout\nlog_dest none\nlog_type all\n', (file) => {
    const g = loadConfig(file).global
    assert.deepEqual(g.logDest, [])
    assert.deepEqual(g.logType, [...LogTypes])
  })
})

test('localOnlyConfig is what the broker uses without -c', () => {
  assert.deepEqual(localOnlyConfig([1883]).listeners.map((l) => l.name), ['1883@127.0.0.1', '1883@::1'])
})
