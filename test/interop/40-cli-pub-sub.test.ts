/**
 * `midge pub` and `midge sub` against a real mosquitto broker, next to mosquitto_pub and mosquitto_sub:
 * messages go through in every mode, flags mean the same, and refusals print the same text and exit code.
 *
 * Should also run against Midge's broker once it exists (all but the mosquitto-only log sync).
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Mosquitto } from '../client/support/mosquitto.js'
import { midge, run, runMidge, start } from '../client/support/cli.js'
import type { RunResult } from '../client/support/cli.js'

let broker: Mosquitto
let closedBroker: Mosquitto
let tmp: string
let seq = 0

before(async () => {
  broker = await Mosquitto.start()
  closedBroker = await Mosquitto.start({ allowAnonymous: false })
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-cli-'))
})
after(async () => {
  await broker.stop()
  await closedBroker.stop()
  fs.rmSync(tmp, { recursive: true, force: true })
})

const P = (): string[] => ['-h', '127.0.0.1', '-p', String(broker.port)]

/** Starts mosquitto_sub on `filter`, waits until the broker has its subscription, returns its result. */
async function mosquittoSub (filter: string, args: string[]): Promise<{ result: Promise<RunResult> }> {
  const id = `msub-${++seq}`
  const r = start('mosquitto_sub', [...P(), '-i', id, '-t', filter, ...args])
  await broker.waitForSubscription(id, filter)
  return r // not r.result: an async function would wait for a returned promise, i.e. for the exit
}

async function midgeSub (filter: string, args: string[]): Promise<{ result: Promise<RunResult> }> {
  const id = `gsub-${++seq}`
  const r = midge(['sub', ...P(), '-i', id, '-t', filter, ...args])
  await broker.waitForSubscription(id, filter)
  return r
}

for (const v of ['mqttv31', 'mqttv311', 'mqttv5'] as const) {
  test(`midge pub -V ${v} delivers QoS 0, 1 and 2 messages to mosquitto_sub`, async () => {
    const topic = `pub/${v}`
    const got = await mosquittoSub(`${topic}/#`, ['-v', '-C', '3', '-q', '2'])
    for (const q of ['0', '1', '2']) {
      const r = await runMidge(['pub', ...P(), '-V', v, '-t', `${topic}/q${q}`, '-m', `qos ${q}`, '-q', q])
      assert.equal(r.code, 0, r.stderr)
    }
    const out = await got.result
    assert.equal(out.stdout.toString(), `${topic}/q0 qos 0\n${topic}/q1 qos 1\n${topic}/q2 qos 2\n`)
  })
}

test('midge pub message sources: -f file, -s stdin, -l lines, -n null, --repeat', async () => {
  const file = path.join(tmp, 'payload.bin')
  fs.writeFileSync(file, Buffer.from([0, 1, 2, 0xff, 0x0a]))
  const got = await mosquittoSub('src/#', ['-F', '%t %x', '-C', '9', '-q', '1'])
  const pubs: Array<[string[], string | undefined]> = [
    [['-t', 'src/file', '-f', file], undefined],
    [['-t', 'src/stdin', '-s'], 'whole\ninput'],
    [['-t', 'src/lines', '-l', '-q', '1'], 'l1\n\nl3\r\nl4'],
    [['-t', 'src/null', '-n'], undefined],
    [['-t', 'src/rep', '-m', 'r', '--repeat', '2', '--repeat-delay', '0.01'], undefined],
  ]
  for (const [args, stdin] of pubs) {
    const r = await runMidge(['pub', ...P(), ...args], stdin === undefined ? {} : { stdin })
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
  }
  const hex = (s: string): string => Buffer.from(s).toString('hex')
  assert.equal((await got.result).stdout.toString(), [
    'src/file 000102ff0a',
    `src/stdin ${hex('whole\ninput')}`,
    `src/lines ${hex('l1')}`, 'src/lines ', `src/lines ${hex('l3\r')}`, `src/lines ${hex('l4')}`,
    'src/null ',
    `src/rep ${hex('r')}`, `src/rep ${hex('r')}`,
  ].join('\n') + '\n')
})

test('midge pub -r retains; midge sub --retained-only, -R, --remove-retained and -T behave as mosquitto_sub', async () => {
  for (const [t, m] of [['ret/a', 'A'], ['ret/b', 'B']]) {
    assert.equal((await runMidge(['pub', ...P(), '-t', t!, '-m', m!, '-r', '-q', '1'])).code, 0)
  }
  // --retained-only ends at the first live message, printing only the retained ones.
  const only = await midgeSub('ret/#', ['-v', '--retained-only'])
  assert.equal((await run('mosquitto_pub', [...P(), '-t', 'ret/live', '-m', 'L'])).code, 0)
  const o = await only.result
  assert.equal(o.code, 0)
  assert.equal(o.stdout.toString(), 'ret/a A\nret/b B\n')

  // -R skips retained messages; -T filters topics out.
  const skip = await midgeSub('ret/#', ['-v', '-R', '-T', 'ret/x', '-C', '1'])
  await run('mosquitto_pub', [...P(), '-t', 'ret/x', '-m', 'filtered'])
  await run('mosquitto_pub', [...P(), '-t', 'ret/y', '-m', 'shown'])
  assert.equal((await skip.result).stdout.toString(), 'ret/y shown\n')

  // --remove-retained clears what it receives (except -T ones): a later subscriber sees only ret/b.
  const remove = await midgeSub('ret/#', ['-v', '--remove-retained', '-T', 'ret/b', '-C', '1'])
  assert.equal((await remove.result).stdout.toString(), 'ret/a A\n')
  const after = await run('mosquitto_sub', [...P(), '-t', 'ret/#', '-v', '-W', '1'])
  assert.equal(after.stdout.toString(), 'ret/b B\n')
  assert.equal(after.code, 27)
})

test('midge sub -E exits after SUBACK, -U unsubscribes, -W times out with exit code 27 as mosquitto_sub', async () => {
  const e = await runMidge(['sub', ...P(), '-t', 'e/1', '-t', 'e/2', '-q', '1', '-E', '-d', '-i', 'exiter'])
  assert.equal(e.code, 0, e.stderr)
  assert.match(e.stdout.toString(), /Client exiter sending SUBSCRIBE \(Mid: 1, Topic: e\/1, QoS: 1, Options: 0x00\)\n.*Topic: e\/2.*\n(.*\n)*Subscribed \(mid: 1\): 1, 1\n/)
  const w = await runMidge(['sub', ...P(), '-t', 'w/#', '-W', '1'])
  const wm = await run('mosquitto_sub', [...P(), '-t', 'w/#', '-W', '1'])
  assert.equal(w.code, 27)
  assert.equal(w.code, wm.code)
  assert.equal(w.stderr, wm.stderr)
  // -c with -U: a persistent session's subscription is removed by a later -U.
  assert.equal((await runMidge(['sub', ...P(), '-c', '-i', 'persist', '-t', 'u/#', '-q', '1', '-E'])).code, 0)
  const u = await runMidge(['sub', ...P(), '-c', '-i', 'persist', '-U', 'u/#', '-t', 'u/other', '-E', '-d'])
  assert.equal(u.code, 0, u.stderr)
  assert.match(u.stdout.toString(), /sending UNSUBSCRIBE \(Mid: 2, Topic: u\/#\)/)
})

test('midge pub -d prints the same trace as mosquitto_pub -d', async () => {
  for (const args of [['-q', '2', '-V', '5'], ['-q', '1', '-r'], ['-q', '0', '--repeat', '2']]) {
    const common = [...P(), '-i', 'trace-id', '-t', 'trace/x', '-m', 'hello', '-d', ...args]
    const ours = await runMidge(['pub', ...common])
    const theirs = await run('mosquitto_pub', common)
    assert.equal(ours.code, theirs.code)
    assert.equal(ours.stdout.toString(), theirs.stdout.toString(), args.join(' '))
  }
})

test('midge sub --will-topic: the broker publishes the will when midge sub dies', async () => {
  const got = await mosquittoSub('will/#', ['-v', '-C', '1'])
  const id = `will-${++seq}`
  const dying = midge(['sub', ...P(), '-i', id, '-t', 'will/ignored', '--will-topic', 'will/gone', '--will-payload', 'bye', '--will-qos', '1'])
  await broker.waitForSubscription(id, 'will/ignored')
  dying.kill('SIGKILL')
  await dying.result
  assert.equal((await got.result).stdout.toString(), 'will/gone bye\n')
})

/** Runs the same arguments through both programs; their stderr and exit codes must match. */
async function sameFailure (tool: 'pub' | 'sub', args: string[], port: number): Promise<void> {
  const full = ['-h', '127.0.0.1', '-p', String(port), ...args]
  const ours = await runMidge([tool, ...full])
  const theirs = await run(`mosquitto_${tool}`, full)
  assert.equal(ours.stderr, theirs.stderr, `${tool} ${args.join(' ')}`)
  assert.equal(ours.code, theirs.code, `${tool} ${args.join(' ')}`)
}

test('refusals by the broker: not authorised (3.1, 3.1.1, 5) prints mosquitto\'s text and exit code', async () => {
  for (const v of ['mqttv31', 'mqttv311', 'mqttv5']) {
    await sameFailure('pub', ['-V', v, '-t', 'a', '-m', 'x'], closedBroker.port)
    await sameFailure('sub', ['-V', v, '-t', 'a'], closedBroker.port)
  }
  const r = await runMidge(['pub', '-h', '127.0.0.1', '-p', String(closedBroker.port), '-V', 'mqttv5', '-t', 'a', '-m', 'x'])
  assert.equal(r.code, 135)
  assert.match(r.stderr, /^Connection error: Not authorized\n/)
})

test('connection refused (nothing listening) prints "Error: Connection refused" and exits 1', async () => {
  const port = await import('../client/support/mosquitto.js').then((m) => m.freePort())
  await sameFailure('pub', ['-t', 'a', '-m', 'x'], port)
  await sameFailure('sub', ['-t', 'a'], port)
})

const badFlags: Array<['pub' | 'sub', string[]]> = [
  ['pub', ['-t', 'a', '-m', 'x', '--bogus']],
  ['pub', ['-t', 'a', '-q', '3', '-m', 'x']],
  ['pub', ['-t', 'a', '-m', 'x', '-q']],
  ['pub', ['-t', 'a/#', '-m', 'x']],
  ['pub', ['-t', 'a', '-m', 'x', '-p', '70000']],
  ['pub', ['-t', 'a', '-m', 'x', '-c']],
  ['pub', ['-t', 'a', '-m', 'x', '-n']],
  ['pub', ['-t', 'a', '-m', 'x', '-i', 'a', '-I', 'b']],
  ['pub', ['-t', 'a', '-m', 'x', '--repeat', '0']],
  ['pub', ['-t', 'a', '-m', 'x', '--will-payload', 'x']],
  ['pub', ['-t', 'a', '-m', 'x', '--will-retain']],
  ['pub', ['-t', 'a', '-m', 'x', '--cert', 'c']],
  ['pub', ['-t', 'a', '-m', 'x', '-F', '%t']],
  ['pub', ['-t', 'a', '-m', 'x', '-v']],
  ['pub', ['-L', 'mqtt://h']],
  ['pub', ['-t', 'a', '-m', 'x', '-D', 'foo', 'user-property', 'a', 'b']],
  ['pub', ['-t', 'a', '-m', 'x', '-D', 'publish', 'user-property', 'a']],
  ['pub', ['-t', 'a', '-m', 'x', '-D', 'publish', 'bogus', '1']],
  ['pub', ['-t', 'a', '-m', 'x', '-D', 'publish', 'subscription-identifier', '1']],
  ['pub', ['-t', 'a', '-m', 'x', '-D', 'publish', 'payload-format-indicator', '300']],
  ['pub', ['-t', 'a', '-m', 'x', '-x', 'abc']],
  ['pub', ['-t', 'a', '-m', 'x', '-V', '5', '-x', '-1']],
  ['sub', ['-t', 'a', '-F', '%Z']],
  ['sub', ['-t', 'a', '-F', '%e']],
  ['sub', ['-t', 'a', '-F', '%']],
  ['sub', ['-t', 'a', '-F', '%5']],
  ['sub', ['-t', 'a', '-F', '%-']],
  ['sub', ['-t', 'a', '-F', '%.5']],
  ['sub', ['-t', 'a', '-F', '\\q']],
  ['sub', ['-t', 'a', '-F', 'x\\']],
  ['sub', ['-t', 'a', '-F', '@']],
  ['sub', ['-t', 'a', '-C', '0']],
  ['sub', ['-t', 'a', '-W', '0']],
  ['sub', ['-t', 'a', '-R', '--retained-only']],
  ['sub', ['-v']],
  ['sub', ['-t', 'a', '-m', 'x']],
  ['sub', ['-t', 'a', '-r']],
  ['sub', ['-t', 'a/#/b']],
  ['sub', ['-t', 'a', '-T', 'a/#/b']],
  ['sub', ['-t', 'a', '-U', 'a/#/b']],
  ['sub', ['-t', 'a', '-k', '2']],
  ['sub', ['-t', 'a', '-V', '6']],
]

test('unknown flags and bad values are refused with mosquitto\'s sentence and usage hint', async () => {
  const check = async ([tool, args]: ['pub' | 'sub', string[]]): Promise<void> => {
    const [ours, theirs] = await Promise.all([runMidge([tool, ...args]), run(`mosquitto_${tool}`, args)])
    const expected = theirs.stderr.replace(/mosquitto_(pub|sub)/g, 'midge $1').replace(/\n\n\n/g, '\n\n')
    assert.equal(ours.stderr, expected, `${tool} ${args.join(' ')}`)
    assert.equal(ours.code, 1, `${tool} ${args.join(' ')}`)
    assert.equal(theirs.code, 1)
  }
  for (let i = 0; i < badFlags.length; i += 4) await Promise.all(badFlags.slice(i, i + 4).map(check))
})
