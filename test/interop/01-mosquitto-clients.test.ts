/**
 * Interop with the real Eclipse Mosquitto command-line clients (Debian package mosquitto-clients):
 * Midge runs in-process behind startServer on a loopback port; mosquitto_sub / mosquitto_pub talk to it
 * over TCP with MQTT 3.1, 3.1.1 and 5.0. Covers the seed's exchange verbatim, QoS 1/2, retained
 * messages, wills, persistent sessions, shared subscriptions and v5 user properties.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import type { TestContext } from 'node:test'
import { localOnlyPlan, startServer } from '../../src/server/index.js'
import { silentLogger } from '../../src/observability/logger.js'
import type { Broker } from '../../src/broker/broker.js'
import { startTcpBroker, waitUntil, type TcpBroker } from '../helpers/broker-harness.js'
import { freePort } from '../helpers/ports.js'
import { MidgeProcess } from '../helpers/midge-process.js'

const Versions = ['mqttv31', 'mqttv311', 'mqttv5'] as const
type Version = (typeof Versions)[number]

const Package = 'mosquitto-clients'

/** A running mosquitto_sub (or any child): stdout lines as they come, exit awaited with a guard. */
class Proc {
  readonly child: ChildProcess
  stdout = ''
  stderr = ''
  code: number | null | undefined = undefined
  private readonly done: Promise<number | null>
  private spawnError: Error | undefined

  constructor (cmd: string, args: string[], stdin?: string) {
    this.child = spawn(cmd, args, { stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => { this.stdout += s })
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => { this.stderr += s })
    if (stdin !== undefined) this.child.stdin!.end(stdin)
    this.done = new Promise((resolve) => {
      this.child.on('error', (err: NodeJS.ErrnoException) => {
        this.spawnError = err.code === 'ENOENT'
          ? new Error(`${cmd} is not installed: install the Debian package ${Package} (apt-get install ${Package})`)
          : err
        this.code = null
        resolve(null)
      })
      this.child.on('close', (code) => {
        this.code = code
        resolve(code)
      })
    })
  }

  get lines (): string[] {
    return this.stdout.split('\n').filter((l) => l !== '')
  }

  /** Waits for the process to exit (failing after timeoutMs) and returns its exit code. */
  async exit (timeoutMs = 10_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined
    const guard = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.child.spawnfile} did not exit within ${timeoutMs} ms; stdout: ${JSON.stringify(this.stdout)} stderr: ${JSON.stringify(this.stderr)}`)), timeoutMs)
    })
    try {
      const code = await Promise.race([this.done, guard])
      if (this.spawnError !== undefined) throw this.spawnError
      return code
    } finally {
      clearTimeout(timer)
    }
  }

  async waitLines (n: number, timeoutMs = 10_000): Promise<string[]> {
    await waitUntil(() => this.lines.length >= n || this.code !== undefined, `${n} line(s) from ${this.child.spawnfile}`, timeoutMs)
    if (this.spawnError !== undefined) throw this.spawnError
    if (this.lines.length < n) throw new Error(`${this.child.spawnfile} exited with ${String(this.code)} after ${this.lines.length} line(s); stderr: ${this.stderr}`)
    return this.lines
  }

  kill (signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.code === undefined) this.child.kill(signal)
  }
}

function sub (t: TestContext, args: string[]): Proc {
  const p = new Proc('mosquitto_sub', args)
  t.after(async () => {
    p.kill('SIGKILL')
    await p.exit().catch(() => {})
  })
  return p
}

/** Runs mosquitto_pub to completion and asserts it succeeded. */
async function pub (args: string[], stdin?: string): Promise<void> {
  const p = new Proc('mosquitto_pub', args, stdin)
  const code = await p.exit()
  assert.equal(code, 0, `mosquitto_pub ${args.join(' ')} failed: ${p.stderr}`)
}

/** True once some session of the broker holds a subscription with exactly this filter. */
function subscribers (broker: Broker, filter: string): number {
  let n = 0
  for (const s of broker.sessions.values()) if (s.connection !== null && s.subscriptions.has(filter)) n++
  return n
}

async function subscribed (broker: Broker, filter: string, count = 1): Promise<void> {
  await waitUntil(() => subscribers(broker, filter) >= count, `${count} subscriber(s) on '${filter}'`)
}

async function broker (t: TestContext): Promise<TcpBroker> {
  const b = await startTcpBroker()
  t.after(() => b.close())
  return b
}

const conn = (b: TcpBroker, v: Version): string[] => ['-h', '127.0.0.1', '-p', String(b.port), '-V', v]

test('the seed exchange verbatim: mosquitto_sub -h localhost -t test / mosquitto_pub -h localhost -t test -m "hello world" (plus -p)', async (t) => {
  const port = await freePort({ ipv6: true })
  const plan = localOnlyPlan(port)
  plan.broker = { logger: silentLogger(), sysInterval: 0 }
  const server = await startServer(plan)
  t.after(() => server.close())
  assert.ok(server.listeners.length >= 1)
  const s = sub(t, ['-h', 'localhost', '-t', 'test', '-p', String(port)])
  await subscribed(server.broker, 'test')
  await pub(['-h', 'localhost', '-t', 'test', '-m', 'hello world', '-p', String(port)])
  assert.deepEqual(await s.waitLines(1), ['hello world'])
  s.kill('SIGTERM')
  assert.equal(await s.exit(), 0, 'mosquitto_sub exits cleanly on SIGTERM')
})

async function waitUntilAsync (cond: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now()
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

test('the seed exchange against the real binary: node bin/midge.js -p PORT, then mosquitto_sub / mosquitto_pub -h localhost', async (t) => {
  const port = await freePort({ ipv6: true })
  const midge = new MidgeProcess(['-p', String(port)])
  t.after(async () => {
    midge.child.kill('SIGKILL')
    await midge.exited
  })
  // Its log says when both loopback sockets are open; a broker that dies first fails with its log.
  await midge.guard(midge.opened(2), 'midge -p to open its listeners', 30_000)
  const s = sub(t, ['-h', 'localhost', '-t', 'test', '-p', String(port)])
  // no in-process broker to look at: publish until the subscriber has caught one (it subscribes within ms)
  await waitUntilAsync(async () => {
    await pub(['-h', 'localhost', '-t', 'test', '-m', 'hello world', '-p', String(port)])
    await new Promise((r) => setTimeout(r, 100))
    return s.lines.length > 0
  }, 'mosquitto_sub to print the message')
  assert.equal(s.lines[0], 'hello world')
  s.kill('SIGTERM')
  assert.equal(await s.exit(), 0)
  assert.equal(await midge.stop(), 0, `midge exits with status 0 on SIGTERM; output: ${midge.lines.join('\n')}`)
})

for (const v of Versions) {
  test(`${v}: mosquitto_sub receives what mosquitto_pub sends (QoS 0)`, async (t) => {
    const b = await broker(t)
    const s = sub(t, [...conn(b, v), '-t', 'test', '-C', '1'])
    await subscribed(b.broker, 'test')
    await pub([...conn(b, v), '-t', 'test', '-m', 'hello world'])
    assert.equal(await s.exit(), 0)
    assert.deepEqual(s.lines, ['hello world'])
  })

  test(`${v}: QoS 1 and QoS 2 end to end, delivered at min(publish, subscribe) QoS`, async (t) => {
    const b = await broker(t)
    const s2 = sub(t, [...conn(b, v), '-t', 'qos/t', '-q', '2', '-C', '3', '-F', '%q %p'])
    const s1 = sub(t, [...conn(b, v), '-t', 'qos/t', '-q', '1', '-C', '3', '-F', '%q %p'])
    await subscribed(b.broker, 'qos/t', 2)
    for (const q of ['0', '1', '2']) await pub([...conn(b, v), '-t', 'qos/t', '-q', q, '-m', `at${q}`])
    assert.equal(await s2.exit(), 0)
    assert.equal(await s1.exit(), 0)
    assert.deepEqual(s2.lines, ['0 at0', '1 at1', '2 at2'])
    assert.deepEqual(s1.lines, ['0 at0', '1 at1', '1 at2'])
  })

  test(`${v}: retained message (-r) reaches a later subscriber with the retain flag; a live one without it`, async (t) => {
    const b = await broker(t)
    await pub([...conn(b, v), '-t', 'ret/t', '-q', '1', '-r', '-m', 'kept'])
    const s = sub(t, [...conn(b, v), '-t', 'ret/t', '-C', '2', '-F', '%r %p'])
    await subscribed(b.broker, 'ret/t')
    await pub([...conn(b, v), '-t', 'ret/t', '-m', 'live'])
    assert.equal(await s.exit(), 0)
    assert.deepEqual(s.lines, ['1 kept', '0 live'])
    // clearing with an empty retained message: a new subscriber sees only live traffic
    await pub([...conn(b, v), '-t', 'ret/t', '-r', '-n'])
    const after = sub(t, [...conn(b, v), '-t', 'ret/t', '-C', '1', '-F', '%r %p'])
    await subscribed(b.broker, 'ret/t')
    await pub([...conn(b, v), '-t', 'ret/t', '-m', 'fresh'])
    assert.equal(await after.exit(), 0)
    assert.deepEqual(after.lines, ['0 fresh'])
  })

  test(`${v}: the will of a killed mosquitto_sub (--will-topic) is published`, async (t) => {
    const b = await broker(t)
    const watch = sub(t, [...conn(b, v), '-t', 'will/t', '-C', '1'])
    const dying = sub(t, [...conn(b, v), '-t', 'anything', '--will-topic', 'will/t', '--will-payload', 'gone', '--will-qos', '1'])
    await subscribed(b.broker, 'will/t')
    await subscribed(b.broker, 'anything')
    dying.kill('SIGKILL')
    assert.equal(await watch.exit(), 0)
    assert.deepEqual(watch.lines, ['gone'])
  })

  test(`${v}: a persistent session (-c -i) gets the QoS 1 messages published while it was offline`, async (t) => {
    const b = await broker(t)
    const id = `persist-${v}`
    const first = sub(t, [...conn(b, v), '-c', '-i', id, '-q', '1', '-t', 'persist/t'])
    await subscribed(b.broker, 'persist/t')
    first.kill('SIGTERM')
    await first.exit()
    await waitUntil(() => b.broker.sessions.get(id)?.connection === null, `session ${id} offline`)
    await pub([...conn(b, v), '-t', 'persist/t', '-q', '1', '-l'], 'm1\nm2\nm3\n')
    const again = sub(t, [...conn(b, v), '-c', '-i', id, '-q', '1', '-t', 'persist/t', '-C', '3'])
    assert.equal(await again.exit(), 0)
    assert.deepEqual(again.lines, ['m1', 'm2', 'm3'])
  })
}

for (const v of ['mqttv311', 'mqttv5'] as const) {
  test(`${v}: a shared subscription ($share/g/t) splits messages between two mosquitto_sub`, async (t) => {
    const b = await broker(t)
    const a = sub(t, [...conn(b, v), '-t', '$share/g/share/t', '-q', '1'])
    const c = sub(t, [...conn(b, v), '-t', '$share/g/share/t', '-q', '1'])
    await subscribed(b.broker, '$share/g/share/t', 2)
    await pub([...conn(b, v), '-t', 'share/t', '-q', '1', '-l'], 'a\nb\nc\nd\n')
    await waitUntil(() => a.lines.length + c.lines.length >= 4, 'four shared deliveries')
    assert.deepEqual([...a.lines, ...c.lines].sort(), ['a', 'b', 'c', 'd'], 'each message exactly once')
    assert.equal(a.lines.length, 2, `round robin: ${JSON.stringify(a.lines)} / ${JSON.stringify(c.lines)}`)
    assert.equal(c.lines.length, 2)
  })
}

test('mqttv5: user properties (-D publish user-property) reach mosquitto_sub unchanged', async (t) => {
  const b = await broker(t)
  const s = sub(t, [...conn(b, 'mqttv5'), '-t', 'props/t', '-C', '1', '-F', '%P|%p'])
  await subscribed(b.broker, 'props/t')
  await pub([...conn(b, 'mqttv5'), '-t', 'props/t', '-m', 'body', '-D', 'publish', 'user-property', 'colour', 'blue', '-D', 'publish', 'user-property', 'size', 'XL'])
  assert.equal(await s.exit(), 0)
  assert.deepEqual(s.lines, ['colour:blue size:XL|body'])
})

test('mqttv5 subscriber and mqttv31 publisher interoperate through Midge', async (t) => {
  const b = await broker(t)
  const s = sub(t, [...conn(b, 'mqttv5'), '-t', 'mix/#', '-q', '2', '-C', '1', '-v'])
  await subscribed(b.broker, 'mix/#')
  await pub([...conn(b, 'mqttv31'), '-t', 'mix/old', '-q', '2', '-m', 'from 3.1'])
  assert.equal(await s.exit(), 0)
  assert.deepEqual(s.lines, ['mix/old from 3.1'])
})
