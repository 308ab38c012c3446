/**
 * `midge pub` and `midge sub` next to mosquitto_pub and mosquitto_sub, against each broker of the table in
 * test/client/support/brokers.ts (a real mosquitto and Midge's own): messages go through in every mode,
 * flags mean the same, and refusals print the same text and exit code as mosquitto's clients do for the
 * same answer. Each broker suite shares one open and one closed broker.
 */
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseClientArgs } from '../../src/cli/client-args.js'
import { refusedArgsOutput } from '../../src/cli/client-usage.js'
import { Brokers, startBrokers } from '../client/support/brokers.js'
import type { BrokerKind, BrokerProcess, Refusal } from '../client/support/brokers.js'
import { freePort } from '../helpers/ports.js'
import { midge, run, runMidge, start } from '../client/support/cli.js'
import type { RunResult } from '../client/support/cli.js'

const Versions = ['mqttv31', 'mqttv311', 'mqttv5'] as const

/** Runs the same arguments through both programs; their stderr and exit codes must match. Returns ours. */
async function sameFailure (tool: 'pub' | 'sub', args: string[], port: number): Promise<RunResult> {
  const full = ['-h', '127.0.0.1', '-p', String(port), ...args]
  const [ours, theirs] = await Promise.all([runMidge([tool, ...full]), run(`mosquitto_${tool}`, full)])
  assert.equal(ours.stderr, theirs.stderr, `${tool} ${args.join(' ')}`)
  assert.equal(ours.code, theirs.code, `${tool} ${args.join(' ')}`)
  return ours
}

/** What mosquitto_pub 2.0.11 prints for each CONNACK refusal (mosquitto_sub prints the first line only). */
const RefusedText: Record<number, string> = {
  4: 'Connection error: Connection Refused: bad user name or password.\nError: The connection was refused.\n',
  5: 'Connection error: Connection Refused: not authorised.\nError: The connection was refused.\n',
  0x86: 'Connection error: Bad User Name or Password\nError: A network protocol error occurred when communicating with the broker.\n',
  0x87: 'Connection error: Not authorized\nError: A network protocol error occurred when communicating with the broker.\n',
}

const Credentials: Record<Refusal, string[]> = {
  anonymous: [],
  'wrong-password': ['-u', 'alice', '-P', 'wrong'],
  'unknown-user': ['-u', 'mallory', '-P', 'secret'],
}

function brokerSuite (kind: BrokerKind): void {
  let broker: BrokerProcess
  let closedBroker: BrokerProcess
  let tmp: string
  let seq = 0

  before(async () => {
    ;[broker, closedBroker] = await startBrokers(kind, [{}, { allowAnonymous: false, users: { alice: 'secret' } }]) as [BrokerProcess, BrokerProcess]
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-cli-'))
  })
  after(async () => {
    await Promise.all([broker?.stop(), closedBroker?.stop()])
    if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true })
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

  test('midge pub -V mqttv31, mqttv311 and mqttv5 deliver QoS 0, 1 and 2 messages to mosquitto_sub', async () => {
    const got = await mosquittoSub('pub/#', ['-v', '-C', '9', '-q', '2'])
    for (const v of Versions) {
      // Three publishers at once: each is a separate connection, so only the order within one is fixed.
      await Promise.all(['0', '1', '2'].map(async (q) => {
        const r = await runMidge(['pub', ...P(), '-V', v, '-t', `pub/${v}/q${q}`, '-m', `qos ${q}`, '-q', q])
        assert.equal(r.code, 0, r.stderr)
      }))
    }
    const lines = (await got.result).stdout.toString().split('\n')
    assert.deepEqual(lines.sort(), ['', ...Versions.flatMap((v) => ['0', '1', '2'].map((q) => `pub/${v}/q${q} qos ${q}`))].sort())
  })

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
    for (const [t, m] of [['ret/a', 'A'], ['ret/b', 'B']] as const) {
      const r = await runMidge(['pub', ...P(), '-t', t, '-m', m, '-r', '-q', '1'])
      assert.equal(r.code, 0, r.stderr)
    }
    // --retained-only ends at the first live message, printing only the retained ones: the broker queues
    // them while handling SUBSCRIBE, before the live one published once the subscription is logged.
    const only = await midgeSub('ret/#', ['-v', '--retained-only'])
    assert.equal((await run('mosquitto_pub', [...P(), '-t', 'ret/live', '-m', 'L'])).code, 0)
    const o = await only.result
    assert.equal(o.code, 0, o.stderr)
    assert.deepEqual(o.stdout.toString().split('\n').sort(), ['', 'ret/a A', 'ret/b B'])

    // -R skips retained messages; -T filters topics out.
    const skip = await midgeSub('ret/#', ['-v', '-R', '-T', 'ret/x', '-C', '1'])
    await run('mosquitto_pub', [...P(), '-t', 'ret/x', '-m', 'filtered'])
    await run('mosquitto_pub', [...P(), '-t', 'ret/y', '-m', 'shown'])
    assert.equal((await skip.result).stdout.toString(), 'ret/y shown\n')

    // --remove-retained clears what it receives (except -T ones): a later subscriber sees only ret/b.
    const remove = await midgeSub('ret/#', ['-v', '--remove-retained', '-T', 'ret/b', '-C', '1'])
    const removed = await remove.result
    assert.equal(removed.code, 0, removed.stderr)
    assert.equal(removed.stdout.toString(), 'ret/a A\n')
    const left = await mosquittoSub('ret/#', ['-v', '--retained-only'])
    assert.equal((await run('mosquitto_pub', [...P(), '-t', 'ret/live', '-m', 'L'])).code, 0)
    assert.equal((await left.result).stdout.toString(), 'ret/b B\n')
  })

  test('midge sub -T uses the one topic matcher: + one level (the empty one too), # the parent level and below', async () => {
    const sub = await midgeSub('tf/#', ['-v', '-T', 'tf/+/x', '-T', 'tf/p/#', '-C', '2'])
    for (const t of ['tf/a/x', 'tf//x', 'tf/p', 'tf/p/q/r', 'tf/a/y', 'tf/a/x/deeper']) {
      assert.equal((await run('mosquitto_pub', [...P(), '-t', t, '-m', 'm', '-q', '1'])).code, 0)
    }
    const r = await sub.result
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout.toString(), 'tf/a/y m\ntf/a/x/deeper m\n')
  })

  test('midge sub -E exits after SUBACK, -U unsubscribes, -W times out with exit code 27 as mosquitto_sub', async () => {
    const [e, w, wm] = await Promise.all([
      runMidge(['sub', ...P(), '-t', 'e/1', '-t', 'e/2', '-q', '1', '-E', '-d', '-i', 'exiter']),
      runMidge(['sub', ...P(), '-t', 'w/#', '-W', '1']),
      run('mosquitto_sub', [...P(), '-t', 'w/#', '-W', '1']),
    ])
    assert.equal(e.code, 0, e.stderr)
    assert.match(e.stdout.toString(), /Client exiter sending SUBSCRIBE \(Mid: 1, Topic: e\/1, QoS: 1, Options: 0x00\)\n.*Topic: e\/2.*\n(.*\n)*Subscribed \(mid: 1\): 1, 1\n/)
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

  test(`refusals by the broker (3.1, 3.1.1, 5): ${kind.name}'s CONNACK codes, printed as mosquitto_pub/sub print them`, async () => {
    const port = closedBroker.port
    for (const v of Versions) {
      await Promise.all((Object.keys(Credentials) as Refusal[]).map(async (why) => {
        const expected = kind.refusals[why][v === 'mqttv5' ? 'v5' : 'v3']
        const ours = await sameFailure('pub', ['-V', v, '-t', 'a', '-m', 'x', ...Credentials[why]], port)
        assert.equal(ours.code, expected, `${v} ${why}`)
        assert.equal(ours.stderr, RefusedText[expected], `${v} ${why}`)
      }))
    }
    for (const v of ['mqttv311', 'mqttv5']) {
      for (const why of ['anonymous', 'wrong-password'] as const) {
        const ours = await sameFailure('sub', ['-V', v, '-t', 'a', ...Credentials[why]], port)
        assert.equal(ours.code, kind.refusals[why][v === 'mqttv5' ? 'v5' : 'v3'])
      }
    }
    const welcome = await runMidge(['pub', '-h', '127.0.0.1', '-p', String(port), '-u', 'alice', '-P', 'secret', '-t', 'a', '-m', 'x'])
    assert.equal(welcome.code, 0, welcome.stderr)
  })
}

for (const kind of Brokers) describe(`against ${kind.name}`, () => { brokerSuite(kind) })

test('connection refused (nothing listening) prints "Error: Connection refused" and exits 1', async () => {
  const port = await freePort()
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

/** mosquitto's stderr for a refused command line, with our program name (and one blank line fewer before the hint). */
const asMidge = (stderr: string): string => stderr.replace(/mosquitto_(pub|sub)/g, 'midge $1').replace(/\n\n\n/g, '\n\n')

test('unknown flags and bad values are refused with mosquitto\'s sentence and usage hint', async () => {
  // The table is checked in-process (a process per case would cost half a second each); two end-to-end
  // runs below show the commands print exactly this.
  for (const [tool, args] of badFlags) {
    const theirs = await run(`mosquitto_${tool}`, args)
    assert.equal(theirs.code, 1)
    const parsed = parseClientArgs(tool, args)
    assert.ok(!parsed.ok && !parsed.help, `accepted: ${tool} ${args.join(' ')}`)
    assert.equal(refusedArgsOutput(tool, parsed.error, parsed.showUsage).stderr, asMidge(theirs.stderr), `${tool} ${args.join(' ')}`)
  }
  for (const [tool, args] of [badFlags[0]!, badFlags.find(([t]) => t === 'sub')!]) {
    const [ours, theirs] = await Promise.all([runMidge([tool, ...args]), run(`mosquitto_${tool}`, args)])
    assert.equal(ours.stderr, asMidge(theirs.stderr), `${tool} ${args.join(' ')}`)
    assert.equal(ours.code, 1)
  }
})
