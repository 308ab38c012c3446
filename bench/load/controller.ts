/**
 * Drives one load run through its phases, as mqload does:
 *   connect   open every connection, at most `concurrency` handshakes outstanding
 *   run       publish: unpaced, from this thread, or paced (latency), from a worker thread
 *             (pacer-worker.ts) where message j of publisher i is due at t0 + (j*P + i)/R
 *   drain     all published (and, QoS 1, acknowledged): wait for the last deliveries, giving
 *             up after `drainMs` of silence (whatever is missing is loss)
 *   hold      conns only: keep the connections idle, then read the broker's RSS
 * The measurement window runs from the first PUBLISH to the last delivery; the generator's
 * own CPU and event-loop use, and the broker's CPU, are sampled over the same window.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks'
import { Worker } from 'node:worker_threads'
import { State, type Client } from './client.js'
import { Histogram } from './histogram.js'
import type { LoadOptions } from './options.js'
import { machineCpu, procCpuSeconds, procRssKb, selfCpu } from './procstat.js'
import { quotaOf } from './host.js'
import type { PacerData, PacerMessage } from './pacer-worker.js'
import { Publisher } from './publisher.js'
import { Subscriber } from './subscriber.js'

const Phase = { Connect: 0, Run: 1, Drain: 2, Hold: 3, Done: 4 } as const
const TICK_MS = 100
const READ_BUFFER = 256 * 1024
/** Source ports per loopback address before the next 127.0.0.x is used (ephemeral range ~28k). */
const CONNS_PER_SOURCE_ADDRESS = 20_000
const MASK32 = 0xffffffffn

export type Status = 'ok' | 'loss' | 'dups' | 'timeout' | 'error'

export interface LoadResult {
  [key: string]: string | number | boolean | undefined
  status: Status
}

interface CpuSample {
  t: number
  user: number
  system: number
  broker: number
  machine: number
  steal: number
  elu: EventLoopUtilization
}

export class Controller {
  readonly readBuffer = Buffer.allocUnsafe(READ_BUFFER)
  /** Room for one PUBACK per PUBLISH that a full read can hold. */
  readonly ackScratch = Buffer.allocUnsafe((READ_BUFFER / 16) * 4)
  readonly subs: Subscriber[] = []
  readonly pubs: Publisher[] = []
  readonly clients: Client[] = []
  readonly npub: number
  readonly quotas: Float64Array
  readonly bases: Float64Array
  readonly total: number
  readonly expected: number
  readonly latency = new Histogram()
  /** Connect + subscribe times in µs. */
  readonly handshake = new Histogram()

  sent = 0
  acked = 0
  rx = 0
  dups = 0
  foreign = 0
  opened = 0
  ready = 0
  failed = 0
  dropped = 0
  pubsDone = 0
  firstError = ''

  private phase: number = Phase.Connect
  coarseNow = 0
  /** Send stamp of the current batch, and receive stamp of the current read (hrtime halves). */
  txHi = 0
  txLo = 0
  rxHi = 0
  rxLo = 0
  t0Hi = 0
  t0Lo = 0
  warmNs = 0
  private t0 = 0n
  private readonly origin = process.hrtime.bigint()
  // Times below are ns since `origin`.
  private tStart = 0
  private tReady = 0
  private tRun = 0
  private tPubDone = 0
  private tLastRx = 0
  private lagMaxNs = 0
  private rxAtLastTick = 0
  private w0: CpuSample | null = null
  private w1: CpuSample | null = null
  private rssBefore = -1
  private rssReady = -1
  private rssEnd = -1
  private tick: NodeJS.Timeout | null = null
  private deadline: NodeJS.Timeout | null = null
  private hold: NodeJS.Timeout | null = null
  private lastProgress = 0
  private readonly topUps: Publisher[] = []
  private readonly flushTopUpsBound = () => this.flushTopUps()
  private readonly tag: string
  private readonly paced: boolean
  private worker: Worker | null = null
  private resolveDone: (r: LoadResult) => void = () => {}

  constructor(readonly opts: LoadOptions) {
    const o = opts
    const tag = `mb${process.pid % 100000}`
    let nsub: number
    let npub: number
    switch (o.scenario) {
      case 'fanin':
        nsub = 1
        npub = o.pubs
        this.total = o.msgs
        break
      case 'fanout':
        nsub = o.subs
        npub = 1
        this.total = o.msgs
        break
      case 'latency':
        nsub = npub = o.pairs
        this.total = Math.round(o.rate * (o.warmup + o.duration))
        break
      case 'conns':
        nsub = o.conns
        npub = 0
        this.total = 0
        break
    }
    this.npub = npub
    this.expected = this.total * (o.scenario === 'fanout' ? nsub : 1)
    this.quotas = new Float64Array(npub)
    this.bases = new Float64Array(npub)
    for (let i = 0; i < nsub; i++) {
      const topic =
        o.scenario === 'conns' ? `${o.prefix}/c/${i}` : o.scenario === 'fanout' ? `${o.prefix}/x` : o.scenario === 'fanin' ? `${o.prefix}/#` : `${o.prefix}/${i}`
      const s = new Subscriber(this, i, topic, `${tag}-s${i}`)
      if (this.total > 0) s.allocateBitmap(this.total)
      this.subs.push(s)
      this.clients.push(s)
    }
    this.tag = tag
    this.paced = o.rate > 0 && npub > 0
    let base = 0
    for (let i = 0; i < npub; i++) {
      this.quotas[i] = quotaOf(this.total, npub, i)
      this.bases[i] = base
      base += this.quotas[i]!
      if (this.paced) continue // the publishers live in the pacer worker
      const topic = o.scenario === 'fanout' ? `${o.prefix}/x` : `${o.prefix}/${i}`
      const p = new Publisher(this, i, topic, `${tag}-p${i}`)
      p.quota = this.quotas[i]!
      this.pubs.push(p)
      this.clients.push(p)
    }
  }

  private now(): number {
    return Number(process.hrtime.bigint() - this.origin)
  }

  running(): boolean {
    return this.phase === Phase.Run
  }

  stampSend(): void {
    const t = process.hrtime.bigint()
    this.txHi = Number(t >> 32n)
    this.txLo = Number(t & MASK32)
  }

  stampReceive(): void {
    const t = process.hrtime.bigint()
    this.rxHi = Number(t >> 32n)
    this.rxLo = Number(t & MASK32)
    this.tLastRx = Number(t - this.origin)
  }

  run(): Promise<LoadResult> {
    const o = this.opts
    return new Promise((resolve) => {
      this.resolveDone = resolve
      if (o.pid > 0) {
        this.rssBefore = procRssKb(o.pid)
        if (this.rssBefore < 0) {
          this.finish('error', `cannot read /proc/${o.pid}/status`)
          return
        }
      }
      this.tStart = this.now()
      this.coarseNow = performance.now()
      if (o.scenario === 'conns') this.w0 = this.w1 = this.sample()
      this.tick = setInterval(() => this.onTick(), TICK_MS)
      this.deadline = setTimeout(() => this.onDeadline(), o.timeout * 1000)
      this.openMore()
    })
  }

  private sample(): CpuSample {
    const cpu = selfCpu()
    const m = machineCpu()
    return {
      machine: m.busy,
      steal: m.steal,
      t: this.now(),
      user: cpu.user,
      system: cpu.system,
      broker: this.opts.pid > 0 ? procCpuSeconds(this.opts.pid) : -1,
      elu: performance.eventLoopUtilization(),
    }
  }

  private openMore(): void {
    const o = this.opts
    const n = this.clients.length
    const spread = n > CONNS_PER_SOURCE_ADDRESS && o.host === '127.0.0.1'
    while (this.phase === Phase.Connect && this.opened < n && this.opened - (this.ready + this.failed + this.dropped) < o.concurrency) {
      const i = this.opened++
      this.clients[i]!.open(spread ? `127.0.0.${1 + Math.floor(i / CONNS_PER_SOURCE_ADDRESS)}` : undefined)
    }
    if (this.phase === Phase.Connect && this.ready + this.failed + this.dropped === n) this.allConnected()
  }

  onReady(c: Client): void {
    this.ready++
    this.handshake.record((performance.now() - c.tOpen) * 1000)
    this.openMore()
  }

  onClientError(c: Client, msg: string, wasReady: boolean): void {
    if (this.phase === Phase.Done) return
    if (this.opts.scenario !== 'conns') {
      const role = c instanceof Publisher ? 'publisher' : 'subscriber'
      this.finish('error', `${role} ${c.idx}: ${msg}`)
      return
    }
    if (wasReady) {
      this.ready--
      this.dropped++
    } else {
      this.failed++
    }
    if (this.firstError === '') this.firstError = msg
    if (this.failed + this.dropped <= 5 || this.opts.verbose) process.stderr.write(`load: connection ${c.idx}: ${msg}\n`)
    if (this.phase === Phase.Connect) this.openMore()
  }

  private allConnected(): void {
    this.tReady = this.now()
    if (this.opts.scenario === 'conns') {
      this.w1 = this.sample()
      if (this.ready === 0) {
        this.finish('error', `no connection succeeded (first error: ${this.firstError})`)
        return
      }
      if (this.opts.pid > 0) this.rssReady = procRssKb(this.opts.pid)
      this.phase = Phase.Hold
      this.hold = setTimeout(() => this.finish('ok'), this.opts.duration * 1000)
      return
    }
    if (this.paced) this.startPacer()
    else this.startRun()
  }

  /** Paced runs: the publishers connect in their own thread; the run starts when they are ready. */
  private startPacer(): void {
    const data: PacerData & { total: number } = { opts: this.opts, tag: this.tag, total: this.total }
    const w = new Worker(new URL('./pacer-worker.js', import.meta.url), { workerData: data })
    this.worker = w
    w.on('message', (m: PacerMessage) => {
      if (m.type === 'ready') this.startRun()
      else if (m.type === 'error') this.finish('error', m.error)
      else {
        this.sent = m.sent
        this.lagMaxNs = m.lagMaxNs
        this.pubsDone = this.npub
        this.checkPublished()
      }
    })
    w.on('error', (err) => this.finish('error', `pacer worker: ${err.message}`))
  }

  private startRun(): void {
    const o = this.opts
    this.phase = Phase.Run
    this.t0 = process.hrtime.bigint()
    this.t0Hi = Number(this.t0 >> 32n)
    this.t0Lo = Number(this.t0 & MASK32)
    this.tRun = Number(this.t0 - this.origin)
    this.warmNs = o.warmup * 1e9
    this.w0 = this.w1 = this.sample()
    for (const p of this.pubs) {
      if (p.quota === 0) {
        p.done = true
        this.pubsDone++
      }
    }
    if (this.worker !== null) {
      this.worker.postMessage({ type: 'start', t0: this.t0.toString() })
      return
    }
    for (const p of this.pubs) {
      if (o.qos === 0) p.pump()
      else p.topUp(p.quota)
    }
    this.checkPublished()
  }

  /**
   * QoS 1 window top-ups wait for the end of the poll phase (setImmediate), so that a
   * subscriber's PUBACKs, written as soon as its read is parsed, never queue behind sixteen
   * publishers' writes: a broker that holds few messages in flight to the subscriber
   * (mosquitto: 20) is paced by how fast those come back.
   */
  deferTopUp(p: Publisher): void {
    if (p.topUpPending) return
    p.topUpPending = true
    this.topUps.push(p)
    if (this.topUps.length === 1) setImmediate(this.flushTopUpsBound)
  }

  private flushTopUps(): void {
    const list = this.topUps
    for (let i = 0; i < list.length; i++) {
      const p = list[i]!
      p.topUpPending = false
      if (this.phase === Phase.Run) p.topUp(p.quota)
    }
    list.length = 0
  }

  onPublisherDone(_p: Publisher): void {
    this.pubsDone++
    this.checkPublished()
  }

  private checkPublished(): void {
    if (this.phase !== Phase.Run || this.pubsDone < this.npub) return
    this.tPubDone = this.now()
    this.phase = Phase.Drain
    this.afterDeliveries()
  }

  /** After every subscriber read: done once every expected delivery is in and all is published. */
  afterDeliveries(): void {
    if (this.phase === Phase.Drain && this.rx >= this.expected) this.complete()
  }

  private complete(): void {
    if (this.rx >= this.expected) this.w1 = this.sample()
    const loss = this.expected - this.rx
    this.finish(loss > 0 ? 'loss' : this.dups > 0 ? 'dups' : 'ok')
  }

  private onTick(): void {
    this.coarseNow = performance.now()
    const o = this.opts
    if (o.keepalive > 0) {
      const due = (o.keepalive * 1000) / 2
      for (const c of this.clients) if (c.state === State.Ready && this.coarseNow - c.lastTx >= due) c.ping()
    }
    // The CPU window ends at the last tick that saw deliveries, so that a drain timeout's
    // silent tail does not dilute it.
    if ((this.phase === Phase.Run || this.phase === Phase.Drain) && this.rx !== this.rxAtLastTick) this.w1 = this.sample()
    this.rxAtLastTick = this.rx
    if (o.verbose) this.progress()
    if (this.phase === Phase.Drain) {
      const last = Math.max(this.tLastRx, this.tPubDone)
      if (this.now() - last >= o.drainMs * 1e6) this.complete()
    }
  }

  private progress(): void {
    const t = this.now()
    if (t - this.lastProgress < 1e9) return
    this.lastProgress = t
    const rss = this.opts.pid > 0 ? ` broker VmRSS ${procRssKb(this.opts.pid)} kB` : ''
    process.stderr.write(
      `[${((t - this.tStart) / 1e9).toFixed(1)}s] ready=${this.ready}/${this.clients.length} sent=${this.sent} received=${this.rx}${rss}\n`,
    )
  }

  private onDeadline(): void {
    process.stderr.write(
      `load: timeout after ${this.opts.timeout} s (ready ${this.ready}/${this.clients.length}, sent ${this.sent}, received ${this.rx}/${this.expected})\n`,
    )
    if (this.phase === Phase.Run || this.phase === Phase.Drain) this.w1 = this.sample()
    this.finish('timeout', 'hard time limit reached')
  }

  private finish(status: Status, error?: string): void {
    if (this.phase === Phase.Done) return
    this.phase = Phase.Done
    if (this.tick) clearInterval(this.tick)
    if (this.deadline) clearTimeout(this.deadline)
    if (this.hold) clearTimeout(this.hold)
    if (this.worker !== null) void this.worker.terminate()
    if (this.opts.pid > 0) this.rssEnd = procRssKb(this.opts.pid)
    if (error !== undefined) process.stderr.write(`load: ${status}: ${error}\n`)
    const result = this.report(status, error)
    for (const c of this.clients) c.close()
    this.resolveDone(result)
  }

  private report(status: Status, error: string | undefined): LoadResult {
    const o = this.opts
    const w0 = this.w0
    const w1 = this.w1
    const win = w0 && w1 ? (w1.t - w0.t) / 1e9 : 0
    const okWin = win >= 0.05
    const r1 = (x: number): number => Math.round(x * 10) / 10
    const genUser = okWin ? (100 * (w1!.user - w0!.user)) / win : -1
    const genSys = okWin ? (100 * (w1!.system - w0!.system)) / win : -1
    const genBusy = okWin ? r1(100 * performance.eventLoopUtilization(w1!.elu, w0!.elu).utilization) : -1
    const brokerCpuS = w0 && w1 && o.pid > 0 && w0.broker >= 0 && w1.broker >= 0 ? w1.broker - w0.broker : -1
    const brokerCpu = okWin && o.pid > 0 && w0!.broker >= 0 && w1!.broker >= 0 ? r1((100 * (w1!.broker - w0!.broker)) / win) : -1
    // Everything else the machine ran meanwhile (other jobs of a shared host): a high value
    // means the run's numbers say more about the neighbours than about the broker.
    const other = okWin && brokerCpu >= 0 && w0!.machine >= 0 ? Math.max(0, r1((100 * (w1!.machine - w0!.machine)) / win - (genUser + genSys) - brokerCpu)) : -1
    const steal = okWin && w0!.steal >= 0 ? r1((100 * (w1!.steal - w0!.steal)) / win) : -1
    const common = {
      gen_cpu_pct: okWin ? r1(genUser + genSys) : -1,
      gen_user_pct: okWin ? r1(genUser) : -1,
      gen_sys_pct: okWin ? r1(genSys) : -1,
      gen_busy_pct: genBusy,
      broker_cpu_pct: brokerCpu,
      broker_rss_kb: this.rssEnd,
      other_cpu_pct: other,
      steal_pct: steal,
      status,
      ...(error !== undefined ? { error } : {}),
    }
    if (o.scenario === 'conns') {
      const readyS = this.tReady > 0 ? (this.tReady - this.tStart) / 1e9 : 0
      const done = this.ready + this.dropped
      const h = this.handshake
      return {
        scenario: 'conns',
        conns: o.conns,
        qos: o.qos,
        ready: this.ready,
        failed: this.failed,
        dropped: this.dropped,
        ready_s: Math.round(readyS * 1000) / 1000,
        rate: readyS > 0 ? Math.round(done / readyS) : 0,
        hs_p50_ms: r1(h.percentile(50) / 1000),
        hs_p99_ms: r1(h.percentile(99) / 1000),
        hs_max_ms: r1(h.max / 1000),
        rss_before_kb: this.rssBefore,
        rss_ready_kb: this.rssReady,
        rss_held_kb: this.rssEnd,
        // CPU the broker spent per connection: comparable even when the generator sets the pace.
        broker_us_per_conn: brokerCpuS >= 0 && done > 0 ? r1((brokerCpuS * 1e6) / done) : -1,
        // The generator's own cost per connection: 1e6 / this is the rate at which it saturates.
        gen_us_per_conn: okWin && done > 0 ? r1(((genUser + genSys) / 100) * win * 1e6 / done) : -1,
        rss_per_conn_b: this.ready > 0 && this.rssEnd > 0 && this.rssBefore > 0 ? Math.round(((this.rssEnd - this.rssBefore) * 1024) / this.ready) : -1,
        ...common,
      }
    }
    const el = this.tLastRx > this.tRun && this.tRun > 0 ? (this.tLastRx - this.tRun) / 1e9 : 0
    const pubEl = this.tPubDone > this.tRun && this.tRun > 0 ? (this.tPubDone - this.tRun) / 1e9 : 0
    const h = this.latency
    const us = (ns: number): number => r1(ns / 1000)
    return {
      scenario: o.scenario,
      qos: o.qos,
      pubs: this.npub,
      subs: this.subs.length,
      size: o.size,
      msgs: this.total,
      sent: this.sent,
      expected: this.expected,
      received: this.rx,
      dups: this.dups,
      loss: this.expected - this.rx,
      foreign: this.foreign,
      elapsed_s: Math.round(el * 1000) / 1000,
      rate: el > 0 ? Math.round(this.rx / el) : 0,
      pub_rate: pubEl > 0 ? Math.round(this.sent / pubEl) : 0,
      // CPU the broker spent per delivery, over the measured window: comparable even when the
      // generator or a busy machine sets the pace (within the 10 ms resolution of /proc).
      broker_us_per_msg: brokerCpuS >= 0 && this.rx > 0 && okWin ? Math.round((brokerCpuS * 1e7) / this.rx) / 10 : -1,
      // The generator's own cost per delivery (publishing included): 1e6 / this is the rate at
      // which its core would saturate.
      gen_us_per_msg: okWin && this.rx > 0 ? Math.round((((genUser + genSys) / 100) * win * 1e7) / this.rx) / 10 : -1,
      target_rate: o.rate,
      p50_us: us(h.percentile(50)),
      p90_us: us(h.percentile(90)),
      p99_us: us(h.percentile(99)),
      p999_us: us(h.percentile(99.9)),
      max_us: us(h.max),
      mean_us: us(h.mean()),
      samples: h.n,
      pace_lag_max_us: us(this.lagMaxNs),
      ...common,
    }
  }
}
