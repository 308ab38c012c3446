/**
 * The library as a user gets it: the packed tarball installed into an empty project, which runs
 * examples/embedded-app/app.mjs (`import { createBroker } from 'midge'`) while MQTT.js clients log in, publish
 * and subscribe. Checks that the hooks were asked and allowed or refused as the example says, that messages
 * and the application's own publish flowed, that the events were heard, and that internals are not importable.
 *
 * Offline: the tarball's dependencies (ws, acme-client and theirs) come from npm's cache, which `npm ci` of this
 * checkout filled; an install that needs the network fails within the timeout, naming npm's error.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import mqtt from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import { packFreshCopy, ROOT, run } from './pack.js'

/** The app's stdout, line by line, with a wait for a line matching a pattern (no sleeps). */
class Lines {
  readonly all: string[] = []
  private waiters: Array<{ re: RegExp; resolve: (m: RegExpExecArray) => void }> = []
  constructor(stream: NodeJS.ReadableStream) {
    createInterface({ input: stream }).on('line', (line) => {
      this.all.push(line)
      this.waiters = this.waiters.filter((w) => {
        const m = w.re.exec(line)
        if (m !== null) w.resolve(m)
        return m === null
      })
    })
  }

  wait(re: RegExp, what: string, timeoutMs = 15_000): Promise<RegExpExecArray> {
    for (const line of this.all) {
      const m = re.exec(line)
      if (m !== null) return Promise.resolve(m)
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the app did not print ${what} within ${timeoutMs} ms; it printed:\n${this.all.join('\n')}`)), timeoutMs)
      this.waiters.push({ re, resolve: (m) => { clearTimeout(timer); resolve(m) } })
    })
  }
}

function connect(port: number, opts: IClientOptions): Promise<MqttClient> {
  return mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000, ...opts })
}

test('examples/embedded-app runs from the packed package installed by name, against MQTT.js: hooks, application publish and events', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-embedded-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const { tarball, files } = packFreshCopy(dir)
  assert.ok(files.includes('dist/src/index.d.ts'), 'the package lacks its type declarations')

  const project = join(dir, 'app')
  mkdirSync(project)
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'embedded-app-test', private: true, type: 'module' }))
  const installed = run('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund'], project, { ...process.env, npm_config_fetch_retries: '0' })
  assert.equal(installed.status, 0, `npm install of the tarball failed (offline, it needs ws and acme-client in npm's cache, as after npm ci):\n${installed.out}`)
  copyFileSync(join(ROOT, 'examples', 'embedded-app', 'app.mjs'), join(project, 'app.mjs'))

  // Only the root is public: internals are refused by the exports map; types resolve from it.
  const deep = run(process.execPath, ['--input-type=module', '-e', "import('midge/dist/src/broker/broker.js').then(() => console.log('importable'), (e) => console.log(e.code))"], project)
  assert.equal(deep.stdout.trim(), 'ERR_PACKAGE_PATH_NOT_EXPORTED', deep.out)

  // The declarations type-check an application's use of the API (what an editor would show).
  writeFileSync(join(project, 'check.ts'), [
    "import { createBroker, type MidgeBroker, type ClientInfo } from 'midge'",
    "const broker: MidgeBroker = await createBroker({ port: 0, authenticate: async ({ username }) => username === 'a', authorizeSubscribe: (_c: ClientInfo, s) => ({ qos: s.qos }) })",
    "broker.on('dropped', (message, client, reason) => { console.log(message.topic, client.clientId, reason.length) })",
    "const matched: boolean = broker.publish({ topic: 't', payload: new Uint8Array([1]), qos: 1 })",
    "await broker.close()",
    'export { matched }',
  ].join('\n'))
  const typed = run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck', '--typeRoots', join(ROOT, 'node_modules', '@types'), '--types', 'node', 'check.ts'], project)
  assert.equal(typed.status, 0, typed.out)

  const app = spawn(process.execPath, ['app.mjs'], { cwd: project, env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  app.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<number | null>((done) => app.once('exit', (code) => done(code)))
  t.after(() => { if (app.exitCode === null) app.kill('SIGKILL') })
  const lines = new Lines(app.stdout)
  const port = Number((await lines.wait(/^listening (\d+)$/, 'its port'))[1])
  assert.ok(port > 0, stderr)

  // authenticate: the application's accounts decide.
  await assert.rejects(connect(port, { clientId: 'intruder', username: 'sensor-1', password: 'guess' }), /Bad User Name or Password/i)
  await lines.wait(/^authenticate intruder sensor-1 127\.0\.0\.1 refused$/, 'the refused authentication')
  const dashboard = await connect(port, { clientId: 'dash', username: 'dashboard', password: 'dash-secret' })
  const sensor = await connect(port, { clientId: 'sensor-1', username: 'sensor-1', password: 'sensor-secret' })
  await lines.wait(/^authenticate sensor-1 sensor-1 127\.0\.0\.1 allowed$/, 'the allowed authentication')
  try {
    const received: string[] = []
    dashboard.on('message', (topic, payload) => received.push(`${topic}=${payload.toString()}`))
    await dashboard.subscribeAsync(['sensors/#', 'dashboard/#'], { qos: 1 })
    await lines.wait(/^event subscribed dash sensors\/#@1,dashboard\/#@1$/, 'the subscribed event')

    // authorizePublish: a sensor publishes under its own topic only; the dashboard not at all.
    // MQTT.js rejects a PUBACK with a failure code, giving the code as the error's `code`.
    const ackCode = (c: MqttClient, topic: string, payload: string): Promise<number> =>
      c.publishAsync(topic, payload, { qos: 1 }).then((ack) => (ack as { reasonCode?: number } | undefined)?.reasonCode ?? 0, (err: { code?: number }) => err.code ?? -1)
    assert.equal(await ackCode(sensor, 'sensors/sensor-1/temperature', '21.5'), 0)
    assert.equal(await ackCode(sensor, 'sensors/sensor-2/temperature', '99'), 0x87)
    assert.equal(await ackCode(dashboard, 'sensors/dashboard/temperature', '1'), 0x87)
    await lines.wait(/^authorizePublish sensor-1 sensors\/sensor-2\/temperature refused$/, 'the refused publish')
    await lines.wait(/^authorizePublish dash sensors\/dashboard\/temperature refused$/, 'the dashboard\'s refused publish')

    // The application's own publish, caused by the 'published' event, reaches the subscriber.
    await lines.wait(/^event published sensors\/sensor-1\/temperature 21\.5$/, 'the published event')
    await new Promise<void>((done) => {
      const check = (): void => { if (received.includes('dashboard/highest-temperature=21.5')) done(); else dashboard.once('message', check) }
      check()
    })
    assert.deepEqual(received, ['sensors/sensor-1/temperature=21.5', 'dashboard/highest-temperature=21.5'])
  } finally {
    await sensor.endAsync()
    await dashboard.endAsync()
  }
  await lines.wait(/^event disconnected sensor-1 disconnected$/, 'the disconnected event')
  app.kill('SIGTERM')
  assert.equal(await exited, 0, stderr)
  assert.ok(lines.all.includes('stopped'), lines.all.join('\n'))
  assert.ok(lines.all.includes('event connected dash'), lines.all.join('\n'))
})
