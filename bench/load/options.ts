/**
 * Options of one load-generator run (`node dist/bench/load/main.js SCENARIO [flags]`), with
 * mqload's flag names and defaults so the two tools can be run side by side.
 */

export const Scenarios = ['fanin', 'fanout', 'latency', 'conns'] as const
export type Scenario = (typeof Scenarios)[number]

export interface LoadOptions {
  scenario: Scenario
  host: string
  port: number
  /** The subscribers' port when it is not `port` (a cluster: publishers on one node, subscribers on another); 0 = port. */
  subPort: number
  qos: 0 | 1
  /** Messages to publish in all (fanin, fanout); latency derives it from rate and duration. */
  msgs: number
  size: number
  /** Aggregate publish rate in msg/s; 0 publishes as fast as the broker takes it. */
  rate: number
  /** latency: measured seconds; conns: seconds to hold the connections before the RSS reading. */
  duration: number
  /** latency: unmeasured lead-in seconds. */
  warmup: number
  pubs: number
  subs: number
  pairs: number
  conns: number
  /** QoS 1 messages in flight per publisher. */
  window: number
  /** Connection handshakes outstanding at once (mosquitto listens with a backlog of 100). */
  concurrency: number
  keepalive: number
  /** Hard limit of the whole run in seconds. */
  timeout: number
  /** Give up waiting for missing deliveries after this much silence. */
  drainMs: number
  /** Broker pid for CPU and RSS readings; 0 = none. */
  pid: number
  prefix: string
  verbose: boolean
}

export class UsageError extends Error {
  readonly code = 'BENCH_ERR_USAGE'
}

/** `1M`, `20k`, `2.5` -> number. */
export function parseCount(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(s)
  if (!m) throw new UsageError(`bad ${what}: '${s}'`)
  const mult = m[2] === '' ? 1 : m[2] === 'k' || m[2] === 'K' ? 1e3 : 1e6
  return Number(m[1]) * mult
}

export function defaults(scenario: Scenario): LoadOptions {
  return {
    scenario,
    host: '127.0.0.1',
    port: 1883,
    subPort: 0,
    qos: 0,
    msgs: scenario === 'fanout' ? 20_000 : 1_000_000,
    size: 64,
    rate: scenario === 'latency' ? 10_000 : 0,
    duration: scenario === 'conns' ? 5 : 10,
    warmup: scenario === 'latency' ? 1 : 0,
    pubs: 16,
    subs: 100,
    pairs: 10,
    conns: 10_000,
    window: 64,
    concurrency: 100,
    keepalive: 60,
    timeout: 0,
    drainMs: 3000,
    pid: 0,
    prefix: 'bench',
    verbose: false,
  }
}

const flags: Record<string, keyof LoadOptions> = {
  '-h': 'host',
  '-p': 'port',
  '-q': 'qos',
  '-n': 'msgs',
  '-s': 'size',
  '-r': 'rate',
  '-d': 'duration',
  '-w': 'window',
  '-c': 'concurrency',
  '-k': 'keepalive',
  '-t': 'timeout',
  '-T': 'prefix',
  '--pubs': 'pubs',
  '--subs': 'subs',
  '--pairs': 'pairs',
  '--conns': 'conns',
  '--warmup': 'warmup',
  '--drain': 'drainMs',
  '--pid': 'pid',
  '--sub-port': 'subPort',
}

export function parseLoadArgs(argv: string[]): LoadOptions {
  const scenario = argv[0] as Scenario
  if (!Scenarios.includes(scenario)) throw new UsageError(`scenario must be one of ${Scenarios.join(', ')}`)
  const o = defaults(scenario)
  const rec = o as unknown as Record<string, unknown>
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '-v') {
      o.verbose = true
      continue
    }
    const key = flags[a]
    const v = argv[++i]
    if (key === undefined || v === undefined) throw new UsageError(`unknown flag or missing value: ${a}`)
    rec[key] = key === 'host' || key === 'prefix' ? v : parseCount(v, a)
  }
  if (o.qos !== 0 && o.qos !== 1) throw new UsageError('-q must be 0 or 1')
  if (o.size < 16) throw new UsageError('-s must be >= 16 (the payload carries stamp, publisher, sequence)')
  if (o.window < 1 || o.window > 65535) throw new UsageError('-w must be 1..65535')
  if (o.rate > 0 && scenario !== 'latency') throw new UsageError('-r (paced publishing) is for the latency scenario')
  if (o.timeout <= 0) {
    o.timeout = scenario === 'latency' ? o.warmup + o.duration + 60 : scenario === 'conns' ? o.duration + 60 : 60
  }
  return o
}

/** The inverse of parseLoadArgs, for the orchestrator that spawns the generator. */
export function toLoadArgs(o: LoadOptions): string[] {
  const out: string[] = [o.scenario]
  const base = defaults(o.scenario)
  for (const [flag, key] of Object.entries(flags)) {
    if (o[key] !== base[key]) out.push(flag, String(o[key]))
  }
  if (o.verbose) out.push('-v')
  return out
}
