import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config/load.js'
import { SeedConfig, writeSeedConfig } from './seed-config.js'

test("the seed tutorial's final config.conf loads with Mosquitto's meaning", () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-seed-'))
  try {
    const file = join(dir, 'config.conf')
    writeSeedConfig(file, { live: '/etc/letsencrypt/live/yourdomainname', passwd: '/etc/mosquitto/passwd' })
    const cfg = loadConfig(file)
    assert.deepEqual(cfg.broker, {
      maxQueuedMessages: 200,
      messageSizeLimit: 0,
      allowZeroLengthClientId: true,
      allowDuplicateMessages: false,
    })
    assert.equal(cfg.global.autosaveInterval, 900)
    assert.equal(cfg.global.persistence, true)
    assert.equal(cfg.global.persistenceFile, 'mosquitto.db')
    assert.equal(cfg.global.perListenerSettings, false)

    assert.equal(cfg.listeners.length, 2)
    const [local, secure] = cfg.listeners
    assert.deepEqual([local?.port, local?.bindAddress, local?.certfile, local?.line], [1883, 'localhost', undefined, 12])
    assert.deepEqual([secure?.port, secure?.bindAddress, secure?.line], [8883, undefined, 14])
    assert.equal(secure?.certfile, '/etc/letsencrypt/live/yourdomainname/cert.pem')
    assert.equal(secure?.cafile, '/etc/letsencrypt/live/yourdomainname/chain.pem')
    assert.equal(secure?.keyfile, '/etc/letsencrypt/live/yourdomainname/privkey.pem')
    // per_listener_settings is false: allow_anonymous and password_file apply to both listeners, as in
    // Mosquitto (the tutorial's belief that localhost:1883 needs no password does not hold there either).
    for (const l of cfg.listeners) {
      assert.equal(l.allowAnonymous, false)
      assert.equal(l.passwordFile, '/etc/mosquitto/passwd')
    }
    // ...and Midge says so, pointing at the lines, as it does for the option Mosquitto 2 deprecates.
    assert.deepEqual(cfg.warnings.map((w) => `${w.line}: ${w.message}`), [
      "6: 'allow_duplicate_messages' is deprecated: Mosquitto 2 deprecates it and will remove it, making true the only behaviour",
      "19: 'allow_anonymous' applies to all listeners, not only to the 'listener 8883' block above it, because per_listener_settings is false",
      "20: 'password_file' applies to all listeners, not only to the 'listener 8883' block above it, because per_listener_settings is false",
    ])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('the embedded seed text is the tutorial\'s final file (every option line, in order)', () => {
  const options = SeedConfig.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(' ')[0])
  assert.deepEqual(options, [
    'max_queued_messages', 'message_size_limit', 'allow_zero_length_clientid', 'allow_duplicate_messages',
    'autosave_interval', 'persistence', 'persistence_file', 'listener', 'listener', 'certfile', 'cafile', 'keyfile',
    'allow_anonymous', 'password_file',
  ])
})
