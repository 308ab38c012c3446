/**
 * The dashboard (ui/ served by a `protocol http` listener, src/server/dashboard/) in a real browser: Debian's
 * chromium driven by playwright-core, against a real `midge` process with a password file and an ACL, and the
 * Mosquitto command-line clients as the devices. What a person would do: log in, watch a client appear and
 * its messages land in the topic tree, add a user and let a device use it, edit the ACL (a bad line refused
 * with its number), disconnect a client, clear a retained message; a stranger's topic shown as text; a user
 * who is not admin sees no admin action. Every wait is for a condition on the page or in a process' output.
 *
 * The screenshot goes to dist/test-output/dashboard/ (docs/images/dashboard.png is a copy of one).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import mqtt from 'mqtt'
import { chromium, type Browser, type Page } from 'playwright-core'
import { formatPasswordHash, hashPassword } from '../../src/auth/password-hash.js'
import { MidgeProcess } from '../helpers/midge-process.js'

// The page's globals, for the functions that run in the browser (the project compiles without the DOM library,
// and a `lib: dom` reference here would give every file of the build a `document`).
interface PageElement { textContent: string | null }
declare const document: {
  querySelector(selector: string): PageElement | null
  querySelectorAll(selector: string): { length: number }
  getElementById(id: string): PageElement | null
}
declare const window: { __pwned?: number }

const OutputDir = resolve(import.meta.dirname, '../../test-output/dashboard')
const Hostile = '<img src=x onerror="window.__pwned=1">'

/** Debian's chromium; its absence fails the test with the package to install. */
function chromiumPath(): string {
  const found = spawnSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' })
  const path = found.stdout.trim()
  if (found.status !== 0 || path === '') throw new Error('chromium is not installed: install the Debian package chromium (apt-get install chromium)')
  return path
}

/** A mosquitto_pub / mosquitto_sub process: its output as it comes, its exit awaited with a bound. */
class Client {
  readonly child: ChildProcess
  out = ''
  private readonly done: Promise<number | null>
  private readonly waiters: Array<() => void> = []

  constructor(cmd: 'mosquitto_pub' | 'mosquitto_sub', args: string[]) {
    this.child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    const onData = (d: Buffer): void => {
      this.out += d.toString()
      for (const w of this.waiters.splice(0)) w()
    }
    this.child.stdout?.on('data', onData)
    this.child.stderr?.on('data', onData)
    this.done = new Promise((resolveExit, reject) => {
      this.child.on('error', (err: NodeJS.ErrnoException) => {
        reject(err.code === 'ENOENT' ? new Error(`${cmd} is not installed: install the Debian package mosquitto-clients`) : err)
      })
      this.child.on('close', (code) => resolveExit(code))
    })
    this.done.catch(() => {})
  }

  /** Its exit status, failing after `ms`. */
  exit(ms = 10_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_r, reject) => { timer = setTimeout(() => reject(new Error(`${this.child.spawnfile} did not exit within ${ms} ms; output: ${this.out}`)), ms) })
    return Promise.race([this.done, late]).finally(() => clearTimeout(timer))
  }

  /** Resolves once its output contains `text`. */
  async waitOutput(text: string, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms
    while (!this.out.includes(text)) {
      if (Date.now() > deadline) throw new Error(`${this.child.spawnfile}: no "${text}" within ${ms} ms; output: ${this.out}`)
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(0, deadline - Date.now()))
        this.waiters.push(() => { clearTimeout(t); r() })
      })
    }
  }

  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM')
  }
}

let dir: string
let midge: MidgeProcess
let mqttPort: number
let base: string
let browser: Browser
let page: Page
const clients: Client[] = []
/** Dialogs opened and script errors thrown on any page: a page that shows data as text has none. */
const incidents: string[] = []

function mosquitto(cmd: 'mosquitto_pub' | 'mosquitto_sub', args: string[]): Client {
  const c = new Client(cmd, ['-h', '127.0.0.1', '-p', String(mqttPort), ...args])
  clients.push(c)
  return c
}

async function logIn(p: Page, username: string, password: string): Promise<void> {
  p.on('dialog', (d) => { incidents.push(d.message()); void d.dismiss() })
  p.on('pageerror', (err) => { incidents.push(`page error: ${err.message}`) })
  await p.goto(base)
  await p.fill('#login-user', username)
  await p.fill('#login-password', password)
  await p.click('#login-form button[type=submit]')
  await p.waitForSelector('#app-view:not([hidden])')
  // Live: the event stream is open, so nothing that happens from now on is missed.
  await p.waitForSelector('#live.on')
}

/** Opens the tree level by level down to `topic` and returns its item's selector. */
async function openTopic(p: Page, topic: string): Promise<string> {
  const levels = topic.split('/')
  for (let i = 1; i < levels.length; i++) {
    const sel = itemOf(levels.slice(0, i).join('/'))
    await p.waitForSelector(sel)
    if (await p.getAttribute(`${sel} > button.toggle`, 'aria-expanded') !== 'true') await p.click(`${sel} > button.toggle`)
  }
  const sel = itemOf(topic)
  await p.waitForSelector(sel)
  return sel
}

/** A selector for the tree item of `topic` (any characters: JSON-quoted into the attribute selector). */
function itemOf(topic: string): string {
  return `#topic-tree li[data-topic=${JSON.stringify(topic)}]`
}

function clientRow(id: string): string {
  return `#clients-table tbody tr[data-client-id=${JSON.stringify(id)}]`
}

before(async () => {
  const executablePath = chromiumPath()
  dir = mkdtempSync(join(tmpdir(), 'midge-dashboard-'))
  const line = async (user: string, pw: string): Promise<string> => `${user}:${formatPasswordHash(await hashPassword(pw))}\n`
  writeFileSync(join(dir, 'passwd'), (await line('admin', 'admin-pw')) + (await line('viewer', 'viewer-pw')) + (await line('device', 'device-pw')))
  writeFileSync(join(dir, 'acl'), [
    'user admin', 'topic read $SYS/#', 'topic write $CONTROL/#', 'topic readwrite #', '',
    'user viewer', 'topic read $SYS/#', 'topic read #', '',
    'user device', 'topic readwrite #', '',
  ].join('\n'))
  const conf = join(dir, 'midge.conf')
  writeFileSync(conf, [
    'user root',
    'log_dest stdout',
    'sys_interval 1',
    `password_file ${join(dir, 'passwd')}`,
    `acl_file ${join(dir, 'acl')}`,
    'listener 0 127.0.0.1',
    'listener 0 127.0.0.1',
    'protocol http',
    '',
  ].join('\n'))
  midge = new MidgeProcess(['-c', conf], { cwd: dir })
  const [tcp] = await midge.opened(1)
  mqttPort = (tcp as { port: number }).port
  const httpPort = Number((await midge.waitFor(/Opening ipv4 http listen socket on \S+ port (\d+)/))[1])
  base = `http://127.0.0.1:${httpPort}/`
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] })
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  page.setDefaultTimeout(15_000)
})

after(async () => {
  for (const c of clients) c.stop()
  await browser?.close()
  await midge?.stop()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

test('an admin logs in; a mosquitto_pub -l client appears in the clients table and its messages in the topic tree, live', async () => {
  await logIn(page, 'admin', 'admin-pw')
  assert.equal(await page.textContent('#who'), 'admin (admin)')

  const pub = mosquitto('mosquitto_pub', ['-i', 'dash-pub', '-u', 'device', '-P', 'device-pw', '-t', 'sensors/kitchen/temp', '-r', '-q', '1', '-l'])
  await page.waitForSelector(clientRow('dash-pub'))
  assert.equal(await page.textContent(`${clientRow('dash-pub')} td:nth-child(3)`), 'device')

  pub.child.stdin?.write('21.5\n')
  const temp = await openTopic(page, 'sensors/kitchen/temp')
  await page.waitForFunction((sel) => document.querySelector(`${sel} .retained`)?.textContent === '21.5', temp)

  // Opened: later messages arrive by the event stream.
  pub.child.stdin?.write('22.0\n')
  await page.waitForFunction((sel) => document.querySelector(`${sel} .last`)?.textContent === '22.0', temp)

  // The rate charts are fed by the stream's `stats` events; the log shows the client's connection.
  await page.waitForFunction(() => (document.getElementById('msg-now')?.textContent ?? '') !== '')
  await page.waitForFunction(() => (document.getElementById('log-lines')?.textContent ?? '').includes('dash-pub'))

  // A subscriber's filters are in its row; the session survives a reload.
  const sub = mosquitto('mosquitto_sub', ['-i', 'dash-sub', '-u', 'device', '-P', 'device-pw', '-t', 'sensors/#', '-t', 'alarms/+', '-v'])
  await sub.waitOutput('sensors/kitchen/temp 22.0')
  await page.reload()
  await page.waitForSelector('#app-view:not([hidden])')
  await page.waitForFunction((sel) => document.querySelector(`${sel} td.subs`)?.textContent === 'sensors/#, alarms/+', clientRow('dash-sub'))
  await page.waitForSelector('#live.on')
  assert.equal(await page.isVisible('#login-view'), false)
})

test('a topic and a client id made of HTML are shown as text, never run', async () => {
  const sub = mosquitto('mosquitto_sub', ['-i', Hostile, '-u', 'device', '-P', 'device-pw', '-t', 'x'])
  await page.waitForSelector(clientRow(Hostile))
  const pub = mosquitto('mosquitto_pub', ['-u', 'device', '-P', 'device-pw', '-t', `${Hostile}/<svg onload="window.__pwned=3">`, '-m', '<script>window.__pwned=2</script>', '-r', '-q', '1'])
  assert.equal(await pub.exit(), 0, pub.out)
  const item = await openTopic(page, `${Hostile}/<svg onload="window.__pwned=3">`)
  await page.waitForFunction((sel) => document.querySelector(`${sel} .retained`)?.textContent === '<script>window.__pwned=2</script>', item)
  assert.equal(await page.textContent(`${itemOf(Hostile)} > .name`), Hostile)
  assert.equal(await page.textContent(`${clientRow(Hostile)} td.id`), Hostile)
  const injected = await page.evaluate(() => ({
    pwned: window.__pwned,
    elements: document.querySelectorAll('main img, main script, main svg').length,
  }))
  assert.deepEqual(injected, { pwned: undefined, elements: 0 })
  assert.deepEqual(incidents, [])
  sub.stop()
  await page.waitForSelector(clientRow(Hostile), { state: 'detached' })
})

test('an admin adds a user and mosquitto_pub logs in with it; a bad ACL line is refused with its number, a good ACL lets the user publish', async () => {
  await page.fill('#user-name', 'newuser')
  await page.fill('#user-password', 'new-pw-1')
  await page.click('#user-form button[type=submit]')
  await page.waitForSelector('#user-list li[data-user="newuser"]')

  // The password file is read again without a restart: the new user connects, a wrong password does not.
  const ok = mosquitto('mosquitto_pub', ['-u', 'newuser', '-P', 'new-pw-1', '-t', 'sensors/new', '-m', 'hello', '-q', '1'])
  assert.equal(await ok.exit(), 0, ok.out)
  const wrong = mosquitto('mosquitto_pub', ['-u', 'newuser', '-P', 'not-it', '-t', 'sensors/new', '-m', 'hello', '-q', '1'])
  assert.notEqual(await wrong.exit(), 0, wrong.out)

  const original = await page.inputValue('#acl-text')
  const withBad = `${original.replace(/\n*$/, '\n')}\nuser newuser\ntopic write sensors/#\nthis is not an acl line\n`
  const badLine = withBad.split('\n').indexOf('this is not an acl line') + 1
  await page.fill('#acl-text', withBad)
  await page.click('#acl-save')
  await page.waitForSelector(`#acl-errors li[data-line="${badLine}"]`)
  assert.match(await page.textContent('#acl-status') ?? '', /^Not saved/)

  await page.fill('#acl-text', withBad.replace('this is not an acl line\n', ''))
  await page.click('#acl-save')
  await page.waitForFunction(() => document.getElementById('acl-status')?.textContent === 'Saved and loaded.')

  const sub = mosquitto('mosquitto_sub', ['-i', 'dash-acl', '-u', 'device', '-P', 'device-pw', '-t', 'sensors/new', '-C', '1'])
  await page.waitForSelector(clientRow('dash-acl'))
  const pub = mosquitto('mosquitto_pub', ['-u', 'newuser', '-P', 'new-pw-1', '-t', 'sensors/new', '-m', 'from newuser', '-q', '1'])
  assert.equal(await pub.exit(), 0, pub.out)
  await sub.waitOutput('from newuser')
  const item = await openTopic(page, 'sensors/new')
  await page.waitForFunction((sel) => document.querySelector(`${sel} .last`)?.textContent === 'from newuser', item)
})

test('an admin disconnects a client and clears a retained message from the page', async () => {
  const victim = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: 'to-kick', username: 'device', password: 'device-pw', reconnectPeriod: 0, protocolVersion: 5 })
  const closed = new Promise<void>((r) => victim.once('close', () => r()))
  await page.click(`${clientRow('to-kick')} button.disconnect`)
  await page.waitForSelector(clientRow('to-kick'), { state: 'detached' })
  await midge.guard(closed, 'the disconnected client closing')

  const temp = await openTopic(page, 'sensors/kitchen/temp')
  await page.click(`${temp} button.clear-retained`)
  await page.waitForSelector(`${temp} .retained`, { state: 'detached' })
  // The broker's own word, not the page's: the level read again has no retained value.
  const level = await page.evaluate(async () => (await fetch('api/topics?prefix=sensors/kitchen')).json())
  const entry = (level as Array<{ topic: string; retained?: unknown }>).find((e) => e.topic === 'sensors/kitchen/temp')
  assert.ok(entry !== undefined && entry.retained === undefined, JSON.stringify(level))

  mkdirSync(OutputDir, { recursive: true })
  await page.screenshot({ path: join(OutputDir, 'dashboard.png'), fullPage: true })
})

test('a user who may read $SYS but not write $CONTROL sees no admin action, and the broker refuses one; logging out ends the session', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  try {
    const viewer = await context.newPage()
    viewer.setDefaultTimeout(15_000)
    await logIn(viewer, 'viewer', 'viewer-pw')
    assert.equal(await viewer.textContent('#who'), 'viewer')
    await viewer.waitForSelector(clientRow('dash-sub'))
    await openTopic(viewer, 'sensors/new')
    assert.equal(await viewer.isVisible('#users'), false)
    assert.equal(await viewer.isVisible('#acl'), false)
    assert.equal(await viewer.locator('button.disconnect, button.clear-retained, #user-form button:visible, #acl-save:visible').count(), 0)
    const status = await viewer.evaluate(async () => {
      const csrf = ((await (await fetch('api/session')).json()) as { csrf: string }).csrf
      const r = await fetch('api/users/intruder', { method: 'PUT', headers: { 'Content-Type': 'application/json', 'X-Midge-CSRF': csrf }, body: JSON.stringify({ password: 'x' }) })
      return r.status
    })
    assert.equal(status, 403)
    await viewer.screenshot({ path: join(OutputDir, 'dashboard-viewer.png'), fullPage: true })
    await viewer.click('#logout')
    await viewer.waitForSelector('#login-view:not([hidden])')
    assert.equal(await viewer.evaluate(async () => (await fetch('api/session')).status), 401)
    // No script error on either page in the whole session, and no dialog opened by anything shown.
    assert.deepEqual(incidents, [])
  } finally {
    await context.close()
  }
})
