/**
 * PBKDF2 for the broker's password checks, on worker threads that run at a lower OS priority than the
 * event loop.
 *
 * Why not crypto.pbkdf2 on libuv's thread pool: those threads run at the event loop's priority. On a machine
 * whose cores are busy, a burst of wrong passwords then takes CPU time from the event loop itself. On a
 * loaded 2-core VM, during 200 wrong-password CONNECTs, a ping-pong client's p99 round trip was 8-13 ms
 * with two normal-priority hashing threads and 1-4 ms with one thread at nice 10 (0.4-8 ms without the
 * burst, following the machine's load; bench/auth/auth-latency.bench, runs alternated).
 *
 * Linux keeps a nice value per thread, so each worker lowers its own (os.setPriority(0, …) acts on the
 * calling thread there) and yields to the event loop and to every normal-priority process; on an idle
 * machine the hashing still runs at full speed. Where the call is refused or has no per-thread effect, the
 * threads run at normal priority.
 *
 * Jobs queue FIFO and each thread runs one at a time. Threads start on first use and are unref'd while idle,
 * so they never keep a process alive; one pool serves the whole process (a reload builds new
 * authenticators, and must not leave threads behind).
 */
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'

/** nice(2) value of the hashing threads: weight ~110 against the event loop's 1024 when both want a core. */
export const HASH_THREAD_NICE = 10

const WorkerSource = `
const { parentPort, workerData } = require('node:worker_threads')
const { pbkdf2Sync } = require('node:crypto')
const { performance } = require('node:perf_hooks')
try { require('node:os').setPriority(0, workerData.nice) } catch {}
parentPort.on('message', (m) => {
  const start = performance.now()
  const key = pbkdf2Sync(m.password, m.salt, m.iterations, m.keylen, 'sha512')
  parentPort.postMessage({ key, ms: performance.now() - start })
})
`

/** A derived key and the time its computation took on the hashing thread, in ms (queueing excluded). */
export interface TimedKey {
  key: Buffer
  ms: number
}

interface Job {
  password: Buffer
  salt: Buffer
  iterations: number
  keylen: number
  resolve: (result: TimedKey) => void
  reject: (err: Error) => void
}

export class HashThreads {
  private readonly idle: Worker[] = []
  private readonly running = new Map<Worker, Job>()
  private readonly waiting: Job[] = []
  private started = 0

  constructor(readonly size: number, readonly nice: number = HASH_THREAD_NICE) {}

  /** Jobs waiting for a thread. */
  get queued(): number { return this.waiting.length }

  /** PBKDF2-HMAC-SHA512. */
  async pbkdf2(password: Buffer, salt: Buffer, iterations: number, keylen: number): Promise<Buffer> {
    return (await this.pbkdf2Timed(password, salt, iterations, keylen)).key
  }

  /** PBKDF2-HMAC-SHA512, with the time the thread spent on it (what failure padding is scaled from). */
  pbkdf2Timed(password: Buffer, salt: Buffer, iterations: number, keylen: number): Promise<TimedKey> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ password, salt, iterations, keylen, resolve, reject })
      this.dispatch()
    })
  }

  /**
   * At shutdown: queued checks fail instead of running (a flood of CONNECTs against a 10M-iteration entry
   * queued minutes of hashing before SIGTERM could finish). A check already running can't be interrupted, and
   * Node joins worker threads at exit, so shutdown still waits for at most one hash per thread.
   */
  release(): void {
    for (const job of this.waiting.splice(0)) job.reject(new Error('the broker is shutting down'))
    for (const w of this.running.keys()) w.unref()
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      let w = this.idle.pop()
      if (w === undefined) {
        if (this.started >= this.size) return
        w = this.spawn()
      }
      const job = this.waiting.shift()!
      this.running.set(w, job)
      w.ref()
      w.postMessage({ password: job.password, salt: job.salt, iterations: job.iterations, keylen: job.keylen })
    }
  }

  private spawn(): Worker {
    const w = new Worker(WorkerSource, { eval: true, workerData: { nice: this.nice } })
    this.started++
    w.on('message', (m: { key: Uint8Array; ms: number }) => {
      const job = this.running.get(w)
      this.running.delete(w)
      this.idle.push(w)
      w.unref()
      job?.resolve({ key: Buffer.from(m.key.buffer, m.key.byteOffset, m.key.byteLength), ms: m.ms })
      this.dispatch()
    })
    const lost = (err: Error): void => {
      if (!this.forget(w)) return
      this.running.get(w)?.reject(err)
      this.running.delete(w)
      this.dispatch()
    }
    w.on('error', lost)
    w.on('exit', (code) => lost(new Error(`password hashing thread exited (code ${code})`)))
    return w
  }

  /** Drops a dead thread from the pool; false if it was already dropped. */
  private forget(w: Worker): boolean {
    const i = this.idle.indexOf(w)
    if (i !== -1) this.idle.splice(i, 1)
    if (i === -1 && !this.running.has(w)) return false
    this.started--
    return true
  }
}

// Process-wide on purpose (see the header): threads are per process, not per broker. Only the process's owner
// (`midge serve` at SIGTERM) calls release(); an embedded runtime's close() leaves the pool to the others.
let shared: HashThreads | undefined

/**
 * The process's pool: one thread per core but one (so a core stays for the event loop), at most two
 * (enough to keep a reconnect storm moving; more only takes CPU from the broker).
 */
export function sharedHashThreads(): HashThreads {
  shared ??= new HashThreads(Math.max(1, Math.min(2, availableParallelism() - 1)))
  return shared
}
