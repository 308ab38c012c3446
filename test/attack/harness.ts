/**
 * The attack suite's target: a real Midge process (`node bin/midge.js -c CONF`) on a config the test writes,
 * raw-socket clients against it, and the checks every attack ends with: the process is still up, another
 * client is answered within a bound, and its RSS stayed bounded.
 *
 * Every test here replays one way of hurting a broker exposed to the internet (see docs/security.md, "Threat
 * model"); each is bounded in time and stops what it started.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ProtocolVersion } from '../../src/protocol/constants.js'
import { TestClient } from '../helpers/broker-harness.js'
import { freePort } from '../helpers/ports.js'
import { MidgeProcess } from '../helpers/midge-process.js'

export class AttackTarget {
  private readonly sockets = new Set<net.Socket>()
  private constructor(readonly dir: string, readonly port: number, readonly midge: MidgeProcess) {}

  /**
   * Writes `files` (name → content, relative to a temp dir), then `midge.conf` = `user root`, one listener on
   * 127.0.0.1 at a free port, then `body`; starts Midge and waits until it listens.
   */
  static async start(name: string, body = 'allow_anonymous true\n', files: Record<string, string | Buffer> = {}): Promise<AttackTarget> {
    const dir = mkdtempSync(join(tmpdir(), `midge-attack-${name}-`))
    for (const [f, content] of Object.entries(files)) writeFileSync(join(dir, f), content)
    const port = await freePort()
    writeFileSync(join(dir, 'midge.conf'), `user root\nlistener ${port} 127.0.0.1\n${body}`)
    const midge = new MidgeProcess(['-c', join(dir, 'midge.conf')], { cwd: dir })
    const t = new AttackTarget(dir, port, midge)
    try {
      await midge.opened(1)
    } catch (err) {
      await t.stop()
      throw err
    }
    return t
  }

  path(name: string): string {
    return join(this.dir, name)
  }

  /** A raw TCP socket to the broker (closed by stop()). */
  socket(localAddress?: string): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ host: '127.0.0.1', port: this.port, ...(localAddress === undefined ? {} : { localAddress }) })
      this.sockets.add(s)
      s.on('close', () => this.sockets.delete(s))
      s.once('connect', () => resolve(s))
      s.once('error', reject)
    })
  }

  /** A packet-level client over a fresh socket (not yet connected at the MQTT level). */
  async client(version: ProtocolVersion = 4, localAddress?: string): Promise<TestClient> {
    return new TestClient(await this.socket(localAddress), version)
  }

  /** The broker's resident set size in bytes, from /proc. */
  rss(): number {
    const status = readFileSync(`/proc/${this.midge.child.pid}/status`, 'utf8')
    const m = status.match(/VmRSS:\s+(\d+) kB/)
    if (m === null) throw new Error('no VmRSS in /proc status')
    return Number(m[1]) * 1024
  }

  get alive(): boolean {
    return this.midge.child.exitCode === null && this.midge.child.signalCode === null
  }

  /**
   * Asserts the broker is up and serves a bystander: a fresh client connects, subscribes, gets its own
   * message back and a PINGRESP, all within `withinMs`. Returns the round trip in ms.
   */
  async assertServes(withinMs = 5000, what = 'a bystander'): Promise<number> {
    if (!this.alive) throw new Error(`midge is down (exit ${String(this.midge.child.exitCode ?? this.midge.child.signalCode)}); log:\n${this.midge.lines.join('\n')}`)
    const start = Date.now()
    const c = await this.midge.guard(this.client(4), `${what}: TCP connect`, withinMs)
    try {
      const id = `bystander-${process.pid}-${start}-${Math.random().toString(36).slice(2, 8)}`
      const ack = await this.midge.guard(c.connect({ clientId: id, cleanStart: true, keepAlive: 30 }), `${what}: CONNECT`, withinMs)
      if (ack.reasonCode !== 0) throw new Error(`${what}: CONNACK ${ack.reasonCode}`)
      await this.midge.guard(c.subscribe(`bystander/${id}`), `${what}: SUBSCRIBE`, withinMs)
      c.publish(`bystander/${id}`, 'ping')
      await this.midge.guard(c.publishOn(`bystander/${id}`, withinMs), `${what}: own message back`, withinMs)
      c.send({ type: 12 })
      await this.midge.guard(c.next(13, withinMs), `${what}: PINGRESP`, withinMs)
      const ms = Date.now() - start
      if (ms > withinMs) throw new Error(`${what}: answered after ${ms} ms (bound ${withinMs} ms)`)
      return ms
    } finally {
      c.destroy()
    }
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await this.midge.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** Sleeps ms (for letting a flood land; never as the condition a test asserts). */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Resolves once `s` is closed by the peer, or rejects after `timeoutMs`. */
export function closedWithin(s: net.Socket, timeoutMs: number, what: string): Promise<void> {
  if (s.destroyed || s.readyState === 'closed') return Promise.resolve()
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: still open after ${timeoutMs} ms`)), timeoutMs)
    s.once('close', () => { clearTimeout(t); resolve() })
  })
}
