/**
 * Start-up (restore) time of a persistent Midge: a store with 100,000 retained messages and 10,000
 * persistent sessions, each with one subscription and 3 queued QoS 1 messages, is written once, then
 * loaded by a new broker (LogStore.load + Broker.restore) several times. Also the time of one
 * compaction (autosave) of that state, which blocks the event loop while it runs.
 *
 *   node dist/bench/persist/startup.bench.js [--retained N] [--sessions N] [--queued N] [--runs N]
 *
 * One JSON line per measurement on stdout, progress on stderr. Target: restore under 3 s.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { Broker } from '../../src/broker/broker.js'
import { LogStore } from '../../src/persistence/log-store.js'
import { buildStore } from './big-store.js'
import { silentLogger } from '../../src/observability/logger.js'

const { values } = parseArgs({
  options: {
    retained: { type: 'string', default: '100000' },
    sessions: { type: 'string', default: '10000' },
    queued: { type: 'string', default: '3' },
    runs: { type: 'string', default: '3' },
  },
})
const RETAINED = Number(values.retained)
const SESSIONS = Number(values.sessions)
const QUEUED = Number(values.queued)
const RUNS = Number(values.runs)

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}
const ms = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6
const out = (o: object): void => { process.stdout.write(JSON.stringify(o) + '\n') }

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-bench-startup-'))
  try {
    process.stderr.write(`building a store: ${RETAINED} retained, ${SESSIONS} sessions x (1 subscription + ${QUEUED} queued)...\n`)
    let t = process.hrtime.bigint()
    buildStore(dir, { retained: RETAINED, sessions: SESSIONS, queued: QUEUED })
    const file = path.join(dir, 'midge.db')
    out({ bench: 'persist.startup.build', retained: RETAINED, sessions: SESSIONS, queuedPerSession: QUEUED, fileBytes: fs.statSync(file).size, ms: Math.round(ms(t)) })
    const restores: number[] = []
    const loads: number[] = []
    for (let run = 1; run <= RUNS; run++) {
      t = process.hrtime.bigint()
      const store = new LogStore({ dir, file: 'midge.db', fsync: false })
      const broker = new Broker({ logger: silentLogger(), sysInterval: 0, autosaveInterval: 0, store })
      const lt = process.hrtime.bigint()
      const loadOnly = store.load.bind(store)
      let loadMs = 0
      store.load = () => { const s = loadOnly(); loadMs = ms(lt); return s }
      await broker.restore()
      const total = ms(t)
      restores.push(total)
      loads.push(loadMs)
      if (broker.sessions.size !== SESSIONS || broker.retained.size !== RETAINED) throw new Error(`restored ${broker.sessions.size} sessions and ${broker.retained.size} retained`)
      out({ bench: 'persist.startup.restore', run, ms: Math.round(total), storeLoadMs: Math.round(loadMs), heapMB: Math.round(process.memoryUsage().heapUsed / 1048576) })
      if (run === RUNS) {
        store.sessionSaved('client-0', 0xffffffff, undefined, Date.now()) // one change, so compaction runs
        t = process.hrtime.bigint()
        broker.compactStore()
        out({ bench: 'persist.compact', ms: Math.round(ms(t)), fileBytes: fs.statSync(file).size })
      }
      broker.close()
    }
    out({ bench: 'persist.startup', retained: RETAINED, sessions: SESSIONS, queuedPerSession: QUEUED, medianMs: Math.round(median(restores)), medianStoreLoadMs: Math.round(median(loads)), targetMs: 3000, ok: median(restores) < 3000, node: process.version, cpus: os.cpus().length })
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

await main()
