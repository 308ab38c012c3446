/**
 * The event loop during an autosave compaction of a large store (100,000 retained messages, 10,000
 * sessions with one subscription and 3 queued QoS 1 messages each: bench/persist/big-store.ts). The
 * broker is restored from it in this process, then compacts in the background while a timer keeps
 * changing state (a retained message replaced every millisecond, and a message queued to a session),
 * and perf_hooks.monitorEventLoopDelay records how late the loop ran meanwhile. For comparison, the
 * same state compacted at once (what shutdown does) and the loop's delay while idle.
 *
 *   node dist/bench/persist/compaction.bench.js [--retained N] [--sessions N] [--queued N] [--runs N]
 *
 * One JSON line per measurement on stdout. Target: max delay during the compaction under 20 ms.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { Broker } from '../../src/broker/broker.js'
import { LogStore } from '../../src/persistence/log-store.js'
import { silentLogger } from '../../src/observability/logger.js'
import { buildStore } from './big-store.js'

const { values } = parseArgs({
  options: {
    retained: { type: 'string', default: '100000' },
    sessions: { type: 'string', default: '10000' },
    queued: { type: 'string', default: '3' },
    runs: { type: 'string', default: '3' },
    fsync: { type: 'boolean', default: false },
  },
})
const size = { retained: Number(values.retained), sessions: Number(values.sessions), queued: Number(values.queued) }
const RUNS = Number(values.runs)

const out = (o: object): void => { process.stdout.write(JSON.stringify(o) + '\n') }
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Max and p99 loop delay (ms) while `body` runs. */
async function loopDelay(body: () => Promise<void>): Promise<{ maxMs: number; p99Ms: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 })
  h.enable()
  await body()
  h.disable()
  return { maxMs: Math.round(h.max / 1e4) / 100, p99Ms: Math.round(h.percentile(99) / 1e4) / 100 }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-bench-compact-'))
  try {
    process.stderr.write(`building a store: ${size.retained} retained, ${size.sessions} sessions x (1 subscription + ${size.queued} queued)...\n`)
    buildStore(dir, size)
    const store = new LogStore({ dir, file: 'midge.db', fsync: values.fsync })
    const broker = new Broker({ logger: silentLogger(), sysInterval: 0, autosaveInterval: 0, store })
    await broker.restore()
    const internals = broker as unknown as { compactInBackground(): void }
    // The store's own share of each turn, apart from what else the machine does to the loop.
    // Wall time includes the moments another process had the core; CPU time (of the whole process, GC
    // threads included) is the work itself.
    let longestStep = 0
    let longestStepCpu = 0
    const step = store.compactStep.bind(store)
    store.compactStep = () => {
      const t = performance.now()
      const c = process.cpuUsage()
      try { return step() } finally {
        const cpu = process.cpuUsage(c)
        longestStep = Math.max(longestStep, performance.now() - t)
        longestStepCpu = Math.max(longestStepCpu, (cpu.user + cpu.system) / 1000)
      }
    }
    const idle = await loopDelay(() => sleep(1000))
    out({ bench: 'persist.compaction.idle', ...idle })
    const maxes: number[] = []
    for (let run = 1; run <= RUNS; run++) {
      let changes = 0
      // Changes while the compaction runs: its tail, and state that moves under the snapshot.
      const timer = setInterval(() => {
        broker.publish(`site/${changes % 100}/device/${changes}/state`, Buffer.from(`v${changes}`), 1, true, undefined)
        broker.publish(`cmd/${changes % size.sessions}/set`, Buffer.from('x'), 1, false, undefined)
        void broker.commitStore()
        changes++
      }, 1)
      await sleep(200)
      longestStep = 0
      longestStepCpu = 0
      const started = performance.now()
      const delay = await loopDelay(async () => {
        internals.compactInBackground()
        // With a commit of the timer's under way, the broker begins the compaction when that commit resolves.
        for (let i = 0; i < 200 && !store.compacting; i++) await sleep(1)
        if (!store.compacting) throw new Error('the compaction did not start')
        while (store.compacting) await sleep(5)
      })
      const ms = performance.now() - started
      clearInterval(timer)
      maxes.push(delay.maxMs)
      out({ bench: 'persist.compaction.background', run, ms: Math.round(ms), maxDelayMs: delay.maxMs, p99DelayMs: delay.p99Ms, longestStepMs: Math.round(longestStep * 100) / 100, longestStepCpuMs: Math.round(longestStepCpu * 100) / 100, changesMeanwhile: changes, fileBytes: fs.statSync(path.join(dir, 'midge.db')).size, targetMaxDelayMs: 20 })
    }
    store.sessionSaved('client-0', 0xffffffff, undefined, Date.now()) // one change, so compaction runs
    // As at shutdown (Broker.close): the commit the timer left under way ends first; the store refuses to
    // compact during one (this line measured a refusal before).
    await broker.commitStore()
    const t = performance.now()
    broker.compactStore()
    out({ bench: 'persist.compaction.sync', ms: Math.round(performance.now() - t), note: 'at shutdown (and start-up), before/after listeners: blocks' })
    broker.close()
    out({ bench: 'persist.compaction', ...size, medianMaxDelayMs: median(maxes), targetMaxDelayMs: 20, ok: median(maxes) < 20, node: process.version, cpus: os.cpus().length })
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`compaction bench: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
