/**
 * `midge sub` output against mosquitto_sub 2.0, side by side: both subscribe to the same broker (each broker
 * of test/client/support/brokers.ts in turn: mosquitto, then Midge), receive the same messages (binary,
 * UTF-8, empty, retained, JSON, with v5 properties) and must print the same bytes for every -F format in the
 * table (and for the default, -v and -N outputs). Time-dependent sequences are compared after masking
 * digits, plus a closeness check of the clocks.
 */
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { MqttClient } from '../../src/client/index.js'
import type { Properties, QoS } from '../../src/protocol/index.js'
import { Brokers } from '../client/support/brokers.js'
import type { BrokerKind, BrokerProcess } from '../client/support/brokers.js'
import { midge, start } from '../client/support/cli.js'
import type { RunResult } from '../client/support/cli.js'

interface Msg {
  topic: string
  payload: Buffer
  qos: QoS
  retain?: boolean
  props?: Properties
}

const messages: Msg[] = [
  { topic: 'ret', payload: Buffer.from('kept'), qos: 1, retain: true },
  { topic: 'text', payload: Buffer.from('hello world'), qos: 0 },
  { topic: 'utf8', payload: Buffer.from('héllo ✓ 𝄞 ünïcode'), qos: 1 },
  { topic: 'empty', payload: Buffer.alloc(0), qos: 0 },
  { topic: 'json', payload: Buffer.from('{"a":[1,2.5,-0,1e21,1.5e-7,123456789012,0.1,3e9], "b":{"c":null,"d":true,"e":"x\\u00e9\\n\\ud834\\udd1e"},"f":[],"g":{}}'), qos: 1 },
  { topic: 'long', payload: Buffer.from('x'.repeat(300)), qos: 0 },
  {
    topic: 'props',
    payload: Buffer.from('with props'),
    qos: 1,
    props: {
      contentType: 'text/plain; charset=utf-8',
      responseTopic: 'reply/here',
      correlationData: Buffer.from('corr-1'),
      userProperties: [['k', 'v'], ['k', 'v2'], ['name', 'välue']],
      payloadFormatIndicator: 1,
      messageExpiryInterval: 100000,
    },
  },
  { topic: 'deep/level/x y', payload: Buffer.from('42'), qos: 0 },
  { topic: 'ünï/cødé', payload: Buffer.from('wide topic'), qos: 0 },
  { topic: 'json/nums', payload: Buffer.from('[1.0, 1e400, 0.1e1, 01, 1E+2, -1.5e-300, 2.2250738585072014e-308, 9007199254740993, 0.30000000000000004, 1e22, 123.456e5, -0.0]'), qos: 0 },
  { topic: 'json/bad', payload: Buffer.from('{"a":}'), qos: 0 },
  { topic: 'json/trailing', payload: Buffer.from('nullx'), qos: 0 },
  { topic: 'json/string', payload: Buffer.from('"tab\\t \\u0001 \\u001f \\/ \\b\\f\\r \u0002raw"'), qos: 0 },
  { topic: 'json/lenient', payload: Buffer.from('\n\t[1., true, false] \n'), qos: 0 },
  // QoS 2 last: both clients deliver them at PUBREL, a round trip later than the QoS 0/1 ones sent after them.
  { topic: 'binary', payload: Buffer.from([0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff, 0x0a, 0x0d, 0x09, 0x22, 0x5c, 0x41]), qos: 2 },
  { topic: 'json/array', payload: Buffer.from(' [1, "two", {"three": 3}, [false]] '), qos: 2 },
]

interface Format {
  name: string
  args: string[]
  env?: NodeJS.ProcessEnv
  /** For time-dependent output: normalise before comparing. */
  mask?: (s: string) => string
}

const digits = (s: string): string => s.replace(/[0-9]/g, '#')
const tst = (s: string): string => s.replace(/"tst":(\t?)"[^"]*"/g, '"tst":$1"T"')

const formats: Format[] = [
  { name: 'default', args: [] },
  { name: '-v', args: ['-v'] },
  { name: '-N', args: ['-N'] },
  { name: '-v -N', args: ['-v', '-N'] },
  { name: 'topic payload', args: ['-F', '%t %p'] },
  { name: 'fields', args: ['-F', '%t|%q|%r|%l|%m|%%'] },
  { name: 'hex', args: ['-F', '%x|%X'] },
  { name: 'topic widths', args: ['-F', '%10t|%-10t|%.3t|%10.3t|%-10.3t|%5t|%-0t|%30.2t'] },
  { name: 'payload widths', args: ['-F', '%5p|%-5p|%05p|%-p|%3x|%08X|%-6x|%0x|%20p'] },
  { name: 'int widths', args: ['-F', '%5l|%-5l|%05l|%-05m|%3q|%0l|%.2l'] },
  { name: 'v5 properties', args: ['-F', '%C|%10C|%-10C|%.2C|%R|%5R|%-5R|%P|%D|%F|%5F|%05E|%S|%5S|%A|%5A|%05A'] },
  { name: '%j', args: ['-F', '%j'], mask: tst },
  { name: '%J', args: ['-F', '%J'], mask: tst },
  { name: '%j --pretty', args: ['-F', '%j', '--pretty'], mask: tst },
  { name: '%J --pretty', args: ['-F', '%J', '--pretty'], mask: tst },
  { name: '%j|%J -N', args: ['-F', '%j|%J', '-N'], mask: tst },
  { name: 'escapes', args: ['-F', '\\t\\n\\\\\\a\\e\\r\\v\\0|end'] },
  { name: 'dates Kolkata', args: ['-F', '@Y-@m-@d @a @A @b @B @C @D @e @F @g @G @h @j @u @U @V @w @W @x @y @Y @z @Z @@ @% @Q @E @n @t|'] },
  { name: 'dates Berlin', args: ['-F', '@z @Z @F'], env: { TZ: 'Europe/Berlin' } },
  { name: 'dates New York', args: ['-F', '@z @Z @x'], env: { TZ: 'America/New_York' } },
  { name: 'dates UTC', args: ['-F', '@z @Z'], env: { TZ: 'UTC' } },
  { name: 'clock', args: ['-F', '@H:@M:@S @I @k @l @r @R @T @X @c @s|%I|%10I|%.4I|%U|@N'], mask: digits },
]

/** Formats worth repeating over MQTT 3.1.1 (no properties there). */
const v311 = new Set(['default', '-v', '-v -N', 'fields', 'payload widths', '%j', '%J --pretty'])

/** Formats run at once per test (each one a mosquitto_sub and a midge sub process). */
const BatchSize = 8

/** One broker's comparisons; `prefix` keeps each batch's topics (and retained messages) apart. */
function brokerSuite (kind: BrokerKind): void {
  let broker: BrokerProcess
  let batchNo = 0

  before(async () => { broker = await kind.start() })
  after(async () => { await broker?.stop() })

  async function publishAll (version: 4 | 5, prefix: string, list: Msg[]): Promise<void> {
    const c = new MqttClient({ host: '127.0.0.1', port: broker.port, protocolVersion: version, clientId: `pub-${prefix}` })
    await c.connect()
    for (const m of list) {
      await c.publish(`${prefix}/${m.topic}`, m.payload, { qos: m.qos, retain: m.retain ?? false, properties: version === 5 ? m.props : undefined })
    }
    await c.disconnect()
  }

  /** Runs each format with both programs at once over the same messages; returns their results by format. */
  async function compareBatch (version: 4 | 5, batch: Format[]): Promise<Array<{ f: Format; mosq: RunResult; ours: RunResult }>> {
    const prefix = `cmp${++batchNo}`
    const retained = messages.filter((m) => m.retain === true)
    const live = messages.filter((m) => m.retain !== true)
    await publishAll(version, prefix, retained)
    const common = (id: string): string[] => {
      const a = ['-h', '127.0.0.1', '-p', String(broker.port), '-V', version === 5 ? 'mqttv5' : 'mqttv311', '-q', '2',
        '-C', String(messages.length), '-t', `${prefix}/#`, '-i', id]
      if (version === 5) a.push('-D', 'subscribe', 'subscription-identifier', '9')
      return a
    }
    const runs = batch.map((f, k) => {
      const env = { TZ: 'Asia/Kolkata', ...f.env }
      const mosq = start('mosquitto_sub', [...common(`${prefix}-m${k}`), ...f.args], { env })
      const ours = midge(['sub', ...common(`${prefix}-g${k}`), ...f.args], { env })
      return { f, k, mosq, ours }
    })
    await Promise.all(runs.flatMap(({ k }) => [
      broker.waitForSubscription(`${prefix}-m${k}`, `${prefix}/#`),
      broker.waitForSubscription(`${prefix}-g${k}`, `${prefix}/#`),
    ]))
    await publishAll(version, prefix, live)
    return Promise.all(runs.map(async (r) => ({ f: r.f, mosq: await r.mosq.result, ours: await r.ours.result })))
  }

  for (const version of [5, 4] as const) {
    const table = version === 5 ? formats : formats.filter((f) => v311.has(f.name))
    for (let i = 0; i < table.length; i += BatchSize) {
      const batch = table.slice(i, i + BatchSize)
      test(`midge sub prints what mosquitto_sub prints, MQTT ${version === 5 ? '5' : '3.1.1'}: ${batch.map((f) => f.name).join(', ')}`, async (t) => {
        const results = await compareBatch(version, batch)
        for (const { f, mosq, ours } of results) await t.test(f.name, () => { assertSameOutput(f, mosq, ours) })
      })
    }
  }
}

function show (b: Buffer): string {
  return JSON.stringify(b.toString('latin1'))
}

function assertSameOutput (f: Format, mosq: RunResult, ours: RunResult): void {
  assert.equal(mosq.code, 0, `mosquitto_sub ${f.args.join(' ')} failed: ${mosq.stderr}`)
  assert.equal(ours.code, 0, `midge sub ${f.args.join(' ')} failed: ${ours.stderr}`)
  const m = f.mask === undefined ? mosq.stdout : Buffer.from(f.mask(mosq.stdout.toString('latin1')), 'latin1')
  const o = f.mask === undefined ? ours.stdout : Buffer.from(f.mask(ours.stdout.toString('latin1')), 'latin1')
  assert.ok(m.length > 0, 'mosquitto_sub printed nothing')
  assert.equal(show(o), show(m))
  assert.equal(ours.stderr, mosq.stderr)
  if (f.name === 'clock') {
    // The unmasked %U values of the same message must be close: both clocks print "now".
    const u = (r: RunResult): number[] => [...r.stdout.toString('latin1').matchAll(/\|(\d+\.\d{9})\|/g)].map((x) => Number(x[1]))
    const um = u(mosq)
    const uo = u(ours)
    assert.equal(uo.length, um.length)
    um.forEach((v, k) => assert.ok(Math.abs(v - uo[k]!) < 5, `%U ${uo[k]} vs ${v}`))
  }
}

for (const kind of Brokers) describe(`against ${kind.name}`, () => { brokerSuite(kind) })
