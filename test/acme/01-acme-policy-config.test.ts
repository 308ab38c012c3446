/**
 * The renewal rule (30 days or a third of the lifetime), the retry back-off, and the acme_* options:
 * parsed into the config, validated (conflicts with certfile, wildcards, colliding names), turned into
 * manager settings with the state directory under persistence_location.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { acmeListeners, acmeSettings } from '../../src/acme/from-config.js'
import { LetsEncryptProduction, RenewalPolicy, renewalTime, retryDelay } from '../../src/acme/policy.js'
import { ConfigErrorCode, ConfigInvalidError } from '../../src/config/errors.js'
import { loadConfig } from '../../src/config/load.js'
import { isTlsListener, type MidgeConfig } from '../../src/config/types.js'

const DAY = 86_400_000

test('a 90-day certificate is renewed 30 days before it expires, a 6-day one with 2 days left, a 1-year one 30 days before', () => {
  const start = new Date('2026-01-01T00:00:00Z')
  const at = (days: number): Date => new Date(start.getTime() + days * DAY)
  assert.deepEqual(renewalTime(start, at(90)), at(60))
  assert.deepEqual(renewalTime(start, at(6)), at(4))
  assert.deepEqual(renewalTime(start, at(365)), at(335))
  assert.equal(RenewalPolicy.checkIntervalMs, 12 * 3600_000)
})

test('retries back off exponentially from the first delay up to the cap', () => {
  assert.deepEqual([1, 2, 3, 4].map((n) => retryDelay(n, 1000, 5000)), [1000, 2000, 4000, 5000])
  assert.equal(retryDelay(100, RenewalPolicy.retryMinMs, RenewalPolicy.retryMaxMs), RenewalPolicy.retryMaxMs)
})

function load(text: string): MidgeConfig {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-acme-cfg-'))
  try {
    const file = path.join(dir, 'midge.conf')
    fs.writeFileSync(file, text)
    return loadConfig(file)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

function errors(text: string): Array<{ code: string; message: string }> {
  try {
    load(text)
  } catch (err) {
    if (err instanceof ConfigInvalidError) return err.errors.map((e) => ({ code: e.code, message: e.detail }))
    throw err
  }
  return []
}

test('the issue\'s configuration: a listener with acme_domain and no certfile is a TLS listener; defaults are Let\'s Encrypt production and port 80', () => {
  const cfg = load([
    'listener 8883',
    'acme_domain mqtt.example.org  www.example.org   # one or more names',
    'acme_email admin@example.org',
    'password_file /etc/midge/passwd',
    'persistence_location /var/lib/midge',
  ].join('\n'))
  const l = cfg.listeners[0]
  assert.ok(l !== undefined)
  assert.deepEqual(l.acmeDomains, ['mqtt.example.org', 'www.example.org'])
  assert.equal(l.certfile, undefined)
  assert.equal(isTlsListener(l), true)
  assert.deepEqual(acmeListeners(cfg), [{ index: 0, domains: ['mqtt.example.org', 'www.example.org'] }])
  assert.deepEqual(acmeSettings(cfg), {
    directoryUrl: LetsEncryptProduction,
    email: 'admin@example.org',
    caFile: undefined,
    stateDir: '/var/lib/midge/acme',
    challenge: { kind: 'responder', port: 80, always: false },
  })
})

test('acme_webroot, acme_directory, acme_ca_file and acme_state_dir set the manager\'s settings', () => {
  const cfg = load([
    'acme_directory https://acme-staging-v02.api.letsencrypt.org/directory',
    'acme_webroot /var/www/html',
    'acme_ca_file /etc/midge/acme-ca.pem',
    'acme_state_dir /srv/midge/acme',
    'listener 8883',
    'acme_domain MQTT.Example.org.',
  ].join('\n'))
  assert.deepEqual(acmeSettings(cfg), {
    directoryUrl: 'https://acme-staging-v02.api.letsencrypt.org/directory',
    email: undefined,
    caFile: '/etc/midge/acme-ca.pem',
    stateDir: '/srv/midge/acme',
    challenge: { kind: 'webroot', dir: '/var/www/html' },
  })
  assert.deepEqual(cfg.listeners[0]?.acmeDomains, ['mqtt.example.org'])
})

test('acme_domain with certfile, wildcards, IP addresses, a bad URL and colliding first names are refused with the reason', () => {
  const found = errors([
    'listener 8883',
    'acme_domain mqtt.example.org',
    'certfile /etc/c.pem',
    'keyfile /etc/k.pem',
    'listener 8884',
    'acme_domain *.example.org',
    'listener 8885',
    'acme_domain 192.0.2.1',
    'listener 8886',
    'acme_domain a.example.org b.example.org',
    'listener 8887',
    'acme_domain a.example.org',
    'acme_directory http://acme.example.org/directory',
    'acme_email not-an-address',
  ].join('\n'))
  assert.deepEqual(found.map((e) => e.code).sort(), [
    ConfigErrorCode.Conflict, ConfigErrorCode.Conflict, ConfigErrorCode.BadValue, ConfigErrorCode.BadValue, ConfigErrorCode.BadValue, ConfigErrorCode.BadValue,
  ].sort())
  const text = found.map((e) => e.message).join('\n')
  assert.match(text, /listener 8883 has both acme_domain and certfile and keyfile: with acme_domain Midge obtains the certificate itself/)
  assert.match(text, /acme_domain '\*\.example\.org': wildcard names need DNS-01 validation/)
  assert.match(text, /acme_domain '192\.0\.2\.1': an IP address/)
  assert.match(text, /acme_domain 'a\.example\.org' starts with the same name as 'a\.example\.org b\.example\.org'/)
  assert.match(text, /option 'acme_directory' expects an https:\/\/ URL/)
  assert.match(text, /option 'acme_email' expects an email address/)
  assert.equal(found.length, 6)
})

test('acme_* options without any acme_domain listener, and challenge options beside acme_webroot, are warned about', () => {
  const none = load('listener 1883\nallow_anonymous true\nacme_email admin@example.org\n')
  assert.ok(none.warnings.some((w) => /'acme_email' has no effect: no listener has acme_domain/.test(w.message)), JSON.stringify(none.warnings))
  const both = load('listener 8883\nacme_domain mqtt.example.org\nacme_webroot /var/www/html\nacme_challenge_port 8080\n')
  assert.ok(both.warnings.some((w) => /'acme_challenge_port' has no effect with acme_webroot/.test(w.message)), JSON.stringify(both.warnings))
})
