/**
 * A Redis of the test's own (Debian's `redis-server`) on a free loopback port, in a scratch folder, with an
 * append-only file fsynced at every write so a restart (stop + start on the same port and folder) keeps what
 * was acknowledged — the cluster's tests restart Redis mid-run. A missing binary is a failure naming the package.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before } from 'node:test'
import { freePort } from './ports.js'

export class TestRedis {
  private child: ChildProcess | undefined
  private output = ''

  private constructor (readonly port: number, readonly dir: string) {}

  /** redis://127.0.0.1:PORT */
  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  static async start (): Promise<TestRedis> {
    if (spawnSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' }).status !== 0) {
      throw new Error('redis-server not found: install the Debian package redis-server (apt-get install -y redis-server)')
    }
    const r = new TestRedis(await freePort(), mkdtempSync(join(tmpdir(), 'midge-redis-')))
    await r.run()
    return r
  }

  /** Starts (again) on the same port and folder; resolves when it answers PING. */
  async run (): Promise<void> {
    if (this.child !== undefined) throw new Error('redis-server is already running')
    this.output = ''
    const child = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '',
      '--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no', '--protected-mode', 'yes',
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    child.stdout?.on('data', (d: Buffer) => { this.output = (this.output + d.toString()).slice(-4000) })
    child.stderr?.on('data', (d: Buffer) => { this.output = (this.output + d.toString()).slice(-4000) })
    child.once('exit', () => { if (this.child === child) this.child = undefined })
    const deadline = Date.now() + 10_000
    while (!(await this.ping())) {
      if (this.child === undefined || Date.now() > deadline) {
        this.child?.kill('SIGKILL')
        throw new Error(`redis-server did not start on port ${this.port}:\n${this.output}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /** Stops it (SIGKILL with `crash`, else a clean SHUTDOWN by SIGTERM) and waits for the exit. */
  async stop (crash = false): Promise<void> {
    const child = this.child
    if (child === undefined) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill(crash ? 'SIGKILL' : 'SIGTERM')
    await exited
  }

  /**
   * Freezes it (SIGSTOP) or thaws it (SIGCONT): connections stay open and nothing answers, as when Redis hangs
   * (a stalled disk under appendfsync always) or the network path to it drops packets without a reset.
   */
  freeze (frozen: boolean): void {
    if (this.child === undefined) throw new Error('redis-server is not running')
    this.child.kill(frozen ? 'SIGSTOP' : 'SIGCONT')
  }

  /** stop() then run(): the same port, the same data. */
  async restart (crash = false): Promise<void> {
    await this.stop(crash)
    await this.run()
  }

  /** Stops it and removes its folder. */
  async close (): Promise<void> {
    await this.stop(true)
    rmSync(this.dir, { recursive: true, force: true })
  }

  /** True when it answers PING with PONG. */
  ping (): Promise<boolean> {
    return new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: this.port })
      let got = ''
      const done = (ok: boolean): void => { s.destroy(); resolve(ok) }
      s.setTimeout(1000, () => done(false))
      s.on('error', () => done(false))
      s.on('connect', () => s.write('PING\r\n'))
      s.on('data', (d) => { got += d.toString(); if (got.includes('\r\n')) done(got.startsWith('+PONG')) })
    })
  }
}

/** What a test file gets from redisForFile(). */
export interface FileRedis {
  /** The file's Redis (started by the file's `before`). */
  readonly server: TestRedis
  /** Registers a client to disconnect after the file's tests (before Redis stops); returns it. */
  track<C extends { disconnect(): void }>(client: C): C
}

/** One Redis for a test file: started before its tests, stopped after them, the clients it tracked disconnected first. */
export function redisForFile(): FileRedis {
  let server: TestRedis | undefined
  const clients: Array<{ disconnect(): void }> = []
  before(async () => {
    server = await TestRedis.start()
  })
  after(async () => {
    for (const c of clients) c.disconnect()
    await server?.close()
  })
  return {
    get server(): TestRedis {
      if (server === undefined) throw new Error('redisForFile: Redis is used before the file\'s before() has run')
      return server
    },
    track(client) {
      clients.push(client)
      return client
    },
  }
}
