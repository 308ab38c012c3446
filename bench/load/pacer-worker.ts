/**
 * The publishers of a paced run (latency), in a worker thread of their own. Message j of
 * publisher i is due at t0 + (j*P + i)/R; between two due times the thread sleeps in
 * Atomics.wait, a futex wait with microsecond resolution, where Node's timers only know whole
 * milliseconds. The main thread keeps the subscribers and blocks in epoll as usual, so both
 * sides sleep until they have work and are woken promptly, as a C tool's timerfd + epoll would
 * be. (A single thread spinning on setImmediate instead keeps its core 100% busy, and on a
 * shared machine the scheduler then deschedules it for milliseconds at a time.)
 *
 * Protocol with the main thread: -> 'ready' when every publisher has its CONNACK; <- 'start'
 * with t0; -> 'done' with the count sent and the worst pacing lag; -> 'error'.
 */
import { parentPort, workerData } from 'node:worker_threads'
import type { Client } from './client.js'
import { quotaOf, type Host } from './host.js'
import type { LoadOptions } from './options.js'
import { Publisher } from './publisher.js'

export interface PacerData {
  opts: LoadOptions
  tag: string
}

export type PacerMessage =
  | { type: 'ready' }
  | { type: 'done'; sent: number; lagMaxNs: number }
  | { type: 'error'; error: string }

/** Longest single sleep, so that the thread's own event loop still turns now and then. */
const MAX_SLEEP_MS = 2

class PacedPublishers implements Host {
  readonly readBuffer = Buffer.allocUnsafe(16 * 1024)
  coarseNow = performance.now()
  sent = 0
  acked = 0
  txHi = 0
  txLo = 0
  lagMaxNs = 0
  private readonly pubs: Publisher[] = []
  private ready = 0
  private done = 0
  private t0 = 0n
  private live = false
  private failed = false
  private readonly sleeper = new Int32Array(new SharedArrayBuffer(4))
  private readonly paceBound = () => this.pace()
  private readonly tick: NodeJS.Timeout

  constructor(
    readonly opts: LoadOptions,
    tag: string,
    total: number,
  ) {
    for (let i = 0; i < opts.pairs; i++) {
      const p = new Publisher(this, i, `${opts.prefix}/${i}`, `${tag}-p${i}`)
      p.quota = quotaOf(total, opts.pairs, i)
      this.pubs.push(p)
    }
    this.tick = setInterval(() => {
      this.coarseNow = performance.now()
      const due = (opts.keepalive * 1000) / 2
      for (const p of this.pubs) if (opts.keepalive > 0 && p.state === 4 && this.coarseNow - p.lastTx >= due) p.ping()
    }, 1000)
    for (const p of this.pubs) p.open(undefined)
  }

  private post(m: PacerMessage): void {
    parentPort!.postMessage(m)
  }

  stampSend(): void {
    const t = process.hrtime.bigint()
    this.txHi = Number(t >> 32n)
    this.txLo = Number(t & 0xffffffffn)
  }

  running(): boolean {
    return this.live
  }

  onReady(_c: Client): void {
    if (++this.ready === this.pubs.length) this.post({ type: 'ready' })
  }

  onClientError(c: Client, msg: string): void {
    if (this.failed) return
    this.failed = true
    this.live = false
    this.post({ type: 'error', error: `publisher ${c.idx}: ${msg}` })
  }

  onPublisherDone(_p: Publisher): void {
    if (++this.done === this.pubs.length) {
      this.live = false
      this.post({ type: 'done', sent: this.sent, lagMaxNs: this.lagMaxNs })
    }
  }

  deferTopUp(p: Publisher): void {
    p.topUp(p.quota)
  }

  start(t0: bigint): void {
    this.t0 = t0
    this.live = true
    for (const p of this.pubs) {
      if (p.quota === 0) {
        p.done = true
        this.onPublisherDone(p)
      }
    }
    this.pace()
  }

  private pace(): void {
    if (!this.live) return
    const rate = this.opts.rate
    const P = this.pubs.length
    this.stampSend()
    const elapsed = Number(process.hrtime.bigint() - this.t0)
    const slots = (elapsed * rate) / 1e9
    let next = Infinity
    for (let i = 0; i < P; i++) {
      const p = this.pubs[i]!
      if (p.sent >= p.quota) continue
      const due = slots < i ? 0 : Math.min(p.quota, Math.floor((slots - i) / P) + 1)
      if (p.sent < due) {
        const sched = ((p.sent * P + i) * 1e9) / rate
        if (elapsed - sched > this.lagMaxNs) this.lagMaxNs = elapsed - sched
        p.sendUpTo(due)
      }
      if (p.sent < p.quota) next = Math.min(next, ((p.sent * P + i) * 1e9) / rate)
    }
    if (next === Infinity) return // all written; the last write's callback reports 'done'
    const sleepMs = (next - Number(process.hrtime.bigint() - this.t0)) / 1e6
    if (sleepMs > 0) Atomics.wait(this.sleeper, 0, 0, Math.min(sleepMs, MAX_SLEEP_MS))
    setImmediate(this.paceBound)
  }

  close(): void {
    this.live = false
    clearInterval(this.tick)
    for (const p of this.pubs) p.close()
  }
}

if (parentPort !== null) {
  const data = workerData as PacerData & { total: number }
  const pacer = new PacedPublishers(data.opts, data.tag, data.total)
  parentPort.on('message', (m: { type: 'start'; t0: string } | { type: 'close' }) => {
    if (m.type === 'start') pacer.start(BigInt(m.t0))
    else {
      pacer.close()
      parentPort!.close()
    }
  })
}
