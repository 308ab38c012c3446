/**
 * `npm run bench`: Midge against Mosquitto and Aedes on the scenarios of issue #9.
 *
 * For every scenario, each broker is started fresh on a free loopback port pinned to one core,
 * the load generator (bench/load, a separate process) is pinned to the other, and the brokers
 * take turns run after run (A/B/C/A/B/C...), so that a slow minute of a shared machine hits
 * them alike. stdout gets one JSON line per scenario and broker (the median of its successful
 * runs), then Midge's ratio lines; stderr gets the progress. Every run has a hard time limit
 * and no broker outlives the bench (brokers/process.ts).
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { brokers } from './brokers/index.js'
import { ROOT, type BrokerDef } from './brokers/broker.js'
import { benchDir, freePort, logTail, nofileLimit, stopProcess, track, waitForMqtt, which, wrapCommand } from './brokers/process.js'
import type { LoadResult } from './load/controller.js'
import { defaults, parseCount, Scenarios, toLoadArgs, type Scenario } from './load/options.js'
import { machineCpu } from './load/procstat.js'
import { buildPlan, type PlanItem } from './plan.js'
import { ratioLine, summarize, type Line, type RunRecord } from './report.js'

/** Other processes may use this much of one core (in %) before a run starts regardless. */
const QUIET_PCT = 15

const HELP = `Usage: npm run bench -- [options]     (node dist/bench/run.js [options])

  --scenario LIST   fanin,fanout,latency,conns,persist,auth,start,storm,cluster or all (full sizes). Without it: a quick set of
                    every scenario at small sizes (as --quick), a few minutes in all.
  --brokers LIST    midge,mosquitto,aedes (default: all three; one that cannot run is reported)
  --runs N          runs per scenario and broker, taken in turns; the median is reported (3)
  --quick           small sizes: fanin 100k msgs, fanout 2k msgs x 100 subs, latency 3 s, conns 1k
  -n MSGS           messages for fanin / fanout (1M / 20k; k and M suffixes)
  --qos LIST        QoS of fanin: 0, 1 or 0,1 (both)
  --conns N         connections of the conns scenario (10k; above the open-file limit it is raised)
  --duration S      latency: measured seconds (10); conns: seconds held before reading RSS (12)
  --cores B,L       core of the broker and of the load generator (0,1)
  --quiet-wait S    before each run, wait up to S seconds for other processes to leave the
                    CPUs (under ${QUIET_PCT}% of a core); 0 = never wait (3)
  -v                the load generator's progress every second
`

interface BenchFlags {
  scenarios: Scenario[]
  brokers: string[]
  runs: number
  quick: boolean
  msgs: number
  fanInQos: (0 | 1)[]
  conns: number
  duration: number
  brokerCore: number
  loadCore: number
  quietWait: number
  verbose: boolean
  /** Run the persistence benches (QoS 1 cost of persistence, start-up time of a large store, loop delay during compaction). */
  persist: boolean
  /** Run the password-hashing bench (event-loop latency during a wrong-password CONNECT flood). */
  auth: boolean
  /** Run the start-up bench (start to listening and idle RSS, each broker beside Mosquitto). */
  start: boolean
  /** Run the reconnect storm (15k persistent sessions back after a restart, beside Mosquitto). */
  storm: boolean
  /** Run the cluster bench (1, 2, 3 Midge nodes through Redis against one node; Midge only). */
  cluster: boolean
}

function parseFlags(argv: string[]): BenchFlags | null {
  const f: BenchFlags = {
    scenarios: [...Scenarios],
    brokers: ['midge', 'mosquitto', 'aedes'],
    runs: 3,
    quick: true,
    msgs: 0,
    fanInQos: [0, 1],
    conns: 0,
    duration: 0,
    brokerCore: 0,
    loadCore: 1,
    persist: false,
    auth: false,
    start: false,
    storm: false,
    cluster: false,
    quietWait: 3,
    verbose: false,
  }
  let quickFlag = false
  let scenarioFlag = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const v = (): string => {
      const x = argv[++i]
      if (x === undefined) throw new Error(`${a} needs a value`)
      return x
    }
    switch (a) {
      case '--help':
      case '-h':
        return null
      case '--scenario':
      case '--scenarios': {
        const list = v()
        scenarioFlag = true
        if (list === 'all') {
          f.scenarios = [...Scenarios]
          f.persist = true
          f.auth = true
          f.start = true
          f.storm = true
          f.cluster = true
        } else {
          const names = list.split(',')
          // `persist` is Midge against itself (persistence off vs on), run by bench/persist/ after the rest;
          // `auth` is Midge alone too (bench/auth/).
          f.persist = names.includes('persist')
          f.auth = names.includes('auth')
          // `start` spawns each broker by itself, no load generator (bench/start/).
          f.start = names.includes('start')
          // `storm` restarts each broker between seeding and reconnecting (bench/storm/).
          f.storm = names.includes('storm')
          // `cluster` starts its own Redis and Midge nodes (bench/cluster/).
          f.cluster = names.includes('cluster')
          f.scenarios = names.filter((s) => s !== 'persist' && s !== 'auth' && s !== 'start' && s !== 'storm' && s !== 'cluster') as Scenario[]
          for (const s of f.scenarios) if (!Scenarios.includes(s)) throw new Error(`unknown scenario '${s}' (${Scenarios.join(', ')}, persist, auth, start, storm, cluster, all)`)
        }
        break
      }
      case '--brokers':
        f.brokers = v().split(',')
        for (const b of f.brokers) if (!(b in brokers)) throw new Error(`unknown broker '${b}' (${Object.keys(brokers).join(', ')})`)
        break
      case '--runs':
        f.runs = Math.max(1, Math.floor(parseCount(v(), a)))
        break
      case '--quick':
        quickFlag = true
        break
      case '-n':
        f.msgs = parseCount(v(), a)
        break
      case '--qos':
        f.fanInQos = v().split(',').map((q) => {
          if (q !== '0' && q !== '1') throw new Error('--qos takes 0, 1 or 0,1')
          return Number(q) as 0 | 1
        })
        break
      case '--conns':
        f.conns = parseCount(v(), a)
        break
      case '--duration':
        f.duration = parseCount(v(), a)
        break
      case '--cores': {
        const [b, l] = v().split(',').map(Number)
        if (!Number.isInteger(b) || !Number.isInteger(l)) throw new Error('--cores takes BROKER,LOAD core numbers')
        f.brokerCore = b!
        f.loadCore = l!
        break
      }
      case '--quiet-wait':
        f.quietWait = parseCount(v(), a)
        break
      case '-v':
        f.verbose = true
        break
      default:
        throw new Error(`unknown option '${a}' (--help lists them)`)
    }
  }
  f.quick = quickFlag || !scenarioFlag
  return f
}

function out(line: Line): void {
  process.stdout.write(JSON.stringify(line) + '\n')
}

function note(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`)
}

/** Run the load generator once; resolves with its JSON result or an error text. */
function runLoad(args: string[], core: number, nofile: number, limitS: number): Promise<{ result: LoadResult | null; error?: string }> {
  const script = join(ROOT, 'dist/bench/load/main.js')
  const [file, argv] = wrapCommand(process.execPath, [script, ...args], core, nofile)
  return new Promise((resolve) => {
    const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'inherit'] })
    track(child)
    let stdout = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (d: string) => (stdout += d))
    // The generator has its own limit (-t); this one catches a generator that hangs anyway.
    const killer = setTimeout(() => {
      note(`load generator still running ${limitS + 15} s after start: killing it`)
      child.kill('SIGKILL')
    }, (limitS + 15) * 1000)
    child.on('close', (code, signal) => {
      clearTimeout(killer)
      const last = stdout.trim().split('\n').pop() ?? ''
      try {
        resolve({ result: JSON.parse(last) as LoadResult })
      } catch {
        resolve({ result: null, error: `load generator exited (${code ?? signal}) without a result` })
      }
    })
  })
}

function describe(r: LoadResult): string {
  const n = (k: string): string => (typeof r[k] === 'number' ? Math.round(r[k] as number).toLocaleString('en-US') : '-')
  const common = `gen CPU ${n('gen_cpu_pct')}% (busy ${n('gen_busy_pct')}%), broker CPU ${n('broker_cpu_pct')}%, RSS ${n('broker_rss_kb')} kB, others ${n('other_cpu_pct')}% CPU`
  if (r.scenario === 'conns') return `${r.status}: ${n('ready')} ready in ${String(r.ready_s)} s = ${n('rate')} conn/s, ${n('rss_per_conn_b')} B/conn; ${common}`
  if (r.scenario === 'latency') return `${r.status}: p50 ${String(r.p50_us)} µs, p99 ${String(r.p99_us)} µs, p99.9 ${String(r.p999_us)} µs, loss ${n('loss')}, pace lag max ${n('pace_lag_max_us')} µs; ${common}`
  return `${r.status}: ${n('rate')} msg/s, loss ${n('loss')}, dups ${n('dups')}; ${common}`
}

/**
 * On a shared machine, wait (a bounded time) for a moment when other processes leave the CPUs
 * alone: between runs nothing of the bench is running, so all busy time is someone else's.
 */
async function waitQuiet(maxS: number): Promise<void> {
  const end = Date.now() + maxS * 1000
  let busy = 0
  while (Date.now() < end) {
    const a = machineCpu().busy
    await new Promise((r) => setTimeout(r, 500))
    busy = ((machineCpu().busy - a) / 0.5) * 100
    if (a < 0 || busy < QUIET_PCT) return
  }
  if (maxS > 0) note(`other processes still use ${Math.round(busy)}% CPU after ${maxS} s of waiting: running anyway`)
}

async function runOnce(item: PlanItem, def: BrokerDef, run: number, f: BenchFlags, logDir: string, nofile: number): Promise<RunRecord> {
  const dir = join(logDir, `${item.id}-${def.name}-${run}`)
  mkdirSync(dir, { recursive: true })
  await waitQuiet(f.quietWait)
  const port = await freePort()
  let broker: ReturnType<BrokerDef['start']> | undefined
  try {
    broker = def.start({ port, dir, core: f.brokerCore, nofile })
    await waitForMqtt(broker, port, 15_000)
  } catch (err) {
    if (broker) await stopProcess(broker)
    return { run, result: null, error: `${def.name} did not start: ${(err as Error).message}` }
  }
  const load = { ...defaults(item.scenario), ...item.load, qos: item.qos, port, pid: broker.pid, timeout: item.timeout, verbose: f.verbose }
  const { result, error } = await runLoad(toLoadArgs(load), f.loadCore, nofile, item.timeout)
  const diedEarly = broker.child.exitCode !== null || broker.child.signalCode !== null
  await stopProcess(broker)
  if (diedEarly) {
    return { run, result: null, error: `${def.name} exited during the run:\n${logTail(broker.logPath)}` }
  }
  return error !== undefined ? { run, result: null, error } : { run, result }
}

function checkTools(f: BenchFlags, needPrlimit: boolean): boolean {
  let ok = true
  if (which('taskset') === null) {
    note("taskset not found: install the Debian package 'util-linux' (it pins broker and load to their cores)")
    ok = false
  }
  if (needPrlimit && which('prlimit') === null) {
    note("prlimit not found: install the Debian package 'util-linux' (it raises the open-file limit for --conns)")
    ok = false
  }
  const cpus = os.availableParallelism()
  if (Math.max(f.brokerCore, f.loadCore) >= cpus || f.brokerCore === f.loadCore) {
    note(`--cores ${f.brokerCore},${f.loadCore} needs two distinct cores below ${cpus}`)
    ok = false
  }
  return ok
}

async function main(): Promise<number> {
  let f: BenchFlags | null
  try {
    f = parseFlags(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`)
    return 4
  }
  if (f === null) {
    process.stdout.write(HELP)
    return 0
  }
  const plan = buildPlan(f)
  const maxConns = Math.max(0, ...plan.filter((p) => p.scenario === 'conns').map((p) => p.load.conns ?? 0))
  const soft = nofileLimit()
  const nofile = maxConns + 1024 > soft ? maxConns + 1024 : 0
  if (!checkTools(f, nofile > 0)) return 1
  if (nofile > 0 && spawnSync('prlimit', [`--nofile=${nofile}:${nofile}`, 'true']).status !== 0) {
    note(
      `--conns ${maxConns} needs ${nofile} open files per process, but the limit (${soft}) cannot be raised here ` +
        `(raising the hard limit needs CAP_SYS_RESOURCE; 'ulimit -Hn' shows it): use --conns ${Math.max(0, soft - 1024)} or less`,
    )
    return 1
  }

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU'
  note(`machine: ${os.availableParallelism()} cores, ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}`)
  note(`broker on core ${f.brokerCore}, load generator on core ${f.loadCore}; ${f.runs} run(s) each, brokers in turns`)
  const available = new Map<string, string | null>()
  for (const b of f.brokers) {
    const missing = brokers[b]!.missing()
    available.set(b, missing)
    note(missing === null ? `${b}: ${brokers[b]!.version()}` : `${b}: cannot run: ${missing}`)
  }
  note(`plan: ${plan.map((p) => p.id).join(', ')}${f.quick ? ' (quick sizes)' : ''}`)

  const logDir = benchDir('midge-bench-')
  let failures = 0
  const lines = new Map<string, Line>()
  for (const item of plan) {
    const records = new Map<string, RunRecord[]>(f.brokers.map((b) => [b, []]))
    for (let run = 1; run <= f.runs; run++) {
      for (const b of f.brokers) {
        if (available.get(b) !== null) continue
        const rec = await runOnce(item, brokers[b]!, run, f, logDir, nofile)
        records.get(b)!.push(rec)
        note(`[${item.id} ${run}/${f.runs}] ${b}: ${rec.result ? describe(rec.result) : `failed: ${rec.error}`}`)
        if (rec.result?.status !== 'ok') failures++
      }
    }
    for (const b of f.brokers) {
      const line = summarize(item, b, records.get(b)!, available.get(b) ?? undefined)
      lines.set(`${item.id}/${b}`, line)
      out(line)
    }
  }
  for (const item of plan) {
    const m = lines.get(`${item.id}/midge`)
    if (m === undefined || m.status !== 'ok') continue
    for (const b of f.brokers) {
      const o = lines.get(`${item.id}/${b}`)
      if (b !== 'midge' && o !== undefined && o.status === 'ok') out(ratioLine(item, m, o))
    }
  }
  if (f.persist) {
    // Their JSON lines go to stdout beside the others; they pin nothing, so quote them as ratios only.
    // qos1-cost with fsync and Mosquitto (no persistence) in the same turns: the two targets of issue #18.
    for (const [script, args] of [['qos1-cost', f.quick ? ['-n', '30000', '--fsync', '--mosquitto'] : ['--fsync', '--mosquitto']], ['startup', f.quick ? ['--retained', '20000', '--sessions', '2000'] : []], ['compaction', f.quick ? ['--retained', '20000', '--sessions', '2000'] : []]] as const) {
      note(`persist: running bench/persist/${script}.bench`)
      const r = spawnSync(process.execPath, [join(import.meta.dirname, 'persist', `${script}.bench.js`), ...args], { stdio: ['ignore', 'inherit', 'inherit'] })
      if (r.status !== 0) failures++
    }
  }
  if (f.auth) {
    note('auth: running bench/auth/auth-latency.bench')
    const r = spawnSync(process.execPath, [join(import.meta.dirname, 'auth', 'auth-latency.bench.js')], { stdio: ['ignore', 'inherit', 'inherit'] })
    if (r.status !== 0) failures++
  }
  if (f.start) {
    note('start: running bench/start/listen.bench')
    const brokersHere = f.brokers.filter((b) => b !== 'aedes' && available.get(b) === null)
    const r = spawnSync(process.execPath, [join(import.meta.dirname, 'start', 'listen.bench.js'), '--runs', String(Math.max(f.runs, 5)), '--brokers', brokersHere.join(','), '--core', String(f.brokerCore)], { stdio: ['ignore', 'inherit', 'inherit'] })
    if (r.status !== 0) failures++
  }
  if (f.storm) {
    note('storm: running bench/storm/storm.bench')
    const brokersHere = f.brokers.filter((b) => b !== 'aedes' && available.get(b) === null)
    const r = spawnSync(process.execPath, [join(import.meta.dirname, 'storm', 'storm.bench.js'), '--runs', String(f.runs), '--brokers', brokersHere.join(','), '--cores', `${f.brokerCore},${f.loadCore}`, ...(f.quick ? ['--clients', '2000'] : [])], { stdio: ['ignore', 'inherit', 'inherit'] })
    if (r.status !== 0) failures++
  }
  if (f.cluster) {
    note('cluster: running bench/cluster/cluster.bench')
    const r = spawnSync(process.execPath, [join(import.meta.dirname, 'cluster', 'cluster.bench.js'), '--runs', String(f.runs), ...(f.quick ? ['-n', '50000'] : [])], { stdio: ['ignore', 'inherit', 'inherit'] })
    if (r.status !== 0) failures++
  }
  if (failures === 0) rmSync(logDir, { recursive: true, force: true })
  else note(`${failures} run(s) failed; broker logs kept in ${logDir}`)
  return failures === 0 ? 0 : 3
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  },
)
