/**
 * From runs to the bench's output: per scenario and broker, the median of the successful runs
 * (a run with loss or duplicates failed, it is not a fast run); then Midge's ratios to the other
 * brokers, held against the targets of issue #9.
 */
import type { LoadResult } from './load/controller.js'
import type { PlanItem } from './plan.js'

export interface RunRecord {
  run: number
  result: LoadResult | null
  /** Why the run produced no result (broker did not start, generator crashed, ...). */
  error?: string
}

export type Line = Record<string, unknown>

/**
 * The numbers each scenario is judged by, the headline first. `rate` is better higher; the
 * latencies, `ready_s`, `rss_per_conn_b`, `hs_p99_ms` and the broker's CPU per message or
 * connection (`broker_us_per_*`) are better lower.
 */
export function metricsOf(item: PlanItem): string[] {
  switch (item.scenario) {
    case 'latency':
      return ['p50_us', 'p99_us', 'p999_us']
    case 'conns':
      return ['rate', 'ready_s', 'rss_per_conn_b', 'broker_us_per_conn', 'hs_p99_ms']
    default:
      return ['rate', 'broker_us_per_msg', 'p50_us', 'p99_us']
  }
}

const units: Record<string, string> = { fanin: 'msg/s delivered', fanout: 'deliveries/s', latency: 'µs one-way', conns: 'connect+subscribe/s' }

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

function num(r: LoadResult, key: string): number {
  const v = r[key]
  return typeof v === 'number' ? v : NaN
}

/**
 * Whether the generator, not the broker, may have set the pace of a run: it used (nearly) all
 * of its core, or, paced, could not keep the rate. Event-loop busy time alone is not enough:
 * on a shared machine a starved process looks busy while it waits for the CPU.
 */
export function generatorSaturated(item: PlanItem, r: LoadResult): boolean {
  if (item.scenario === 'latency') return num(r, 'pub_rate') < 0.98 * num(r, 'target_rate')
  return num(r, 'gen_cpu_pct') >= 85
}

/** CPU (% of one core) that other processes used during a run above which it counts as noisy. */
export const NOISY_OTHER_CPU_PCT = 25

export function summarize(item: PlanItem, broker: string, runs: RunRecord[], unavailable?: string): Line {
  const head: Line = { id: item.id, scenario: item.scenario, qos: item.qos, broker }
  if (unavailable !== undefined) return { ...head, status: 'unavailable', error: unavailable }
  const metrics = metricsOf(item)
  const ok = runs.filter((r) => r.result?.status === 'ok').map((r) => r.result!)
  const all = runs.filter((r) => r.result !== null).map((r) => r.result!)
  const line: Line = { ...head }
  for (const m of metrics) {
    const v = median(ok.map((r) => num(r, m)).filter((x) => Number.isFinite(x) && x >= 0))
    line[m] = v === null ? null : Math.round(v * 10) / 10
  }
  line.unit = units[item.scenario]
  line.runs = runs.map((r) => (r.result?.status === 'ok' ? (item.scenario === 'latency' ? { p50_us: r.result.p50_us, p99_us: r.result.p99_us, p999_us: r.result.p999_us } : r.result.rate) : null))
  line.ok_runs = ok.length
  line.failed_runs = runs.length - ok.length
  if (item.scenario !== 'conns') {
    line.loss = all.reduce((a, r) => a + num(r, 'loss'), 0)
    line.dups = all.reduce((a, r) => a + num(r, 'dups'), 0)
    line.msgs = ok[0]?.msgs ?? all[0]?.msgs ?? null
  } else {
    line.conns = item.load.conns
    line.failed_conns = all.reduce((a, r) => a + num(r, 'failed') + num(r, 'dropped'), 0)
  }
  const med = (k: string): number | null => {
    const v = median(ok.map((r) => num(r, k)).filter((x) => Number.isFinite(x) && x >= 0))
    return v === null ? null : Math.round(v * 10) / 10
  }
  line.gen_cpu_pct = med('gen_cpu_pct')
  line.gen_cpu_max_pct = ok.length ? Math.max(...ok.map((r) => num(r, 'gen_cpu_pct'))) : null
  line.gen_busy_pct = med('gen_busy_pct')
  if (item.scenario === 'conns') line.gen_us_per_conn = med('gen_us_per_conn')
  else if (item.scenario !== 'latency') line.gen_us_per_msg = med('gen_us_per_msg')
  if (item.scenario === 'latency') line.pace_lag_max_us = med('pace_lag_max_us')
  line.gen_saturated = ok.some((r) => generatorSaturated(item, r))
  line.broker_cpu_pct = med('broker_cpu_pct')
  line.broker_rss_kb = med('broker_rss_kb')
  line.other_cpu_pct = med('other_cpu_pct')
  line.noisy_runs = ok.filter((r) => num(r, 'other_cpu_pct') > NOISY_OTHER_CPU_PCT).length
  line.status = ok.length > 0 ? 'ok' : 'failed'
  const errors = runs
    .filter((r) => r.result?.status !== 'ok')
    .map((r) => `run ${r.run}: ${r.error ?? `${r.result!.status}${r.result!.error ? ` (${String(r.result!.error)})` : ''}, loss ${String(r.result!.loss ?? '-')}, dups ${String(r.result!.dups ?? '-')}`}`)
  if (errors.length) line.errors = errors
  return line
}

/** Targets for Midge/Mosquitto (issues #9 and #18): ratio bounds, and one absolute bound. */
const targets: Record<string, Record<string, [op: '>=' | '<=', bound: number]>> = {
  'fanin-q0': { rate: ['>=', 1.0] },
  'fanout-q0': { rate: ['>=', 1.0] },
  'fanin-q1': { rate: ['>=', 1.5] },
  // Issue #18: p99 within 1.5x of Mosquitto at 10k and at 50k msg/s.
  'latency-q0': { p50_us: ['<=', 1.5], p99_us: ['<=', 1.5] },
  'latency-q0-50k': { p50_us: ['<=', 1.5], p99_us: ['<=', 1.5] },
  // Issue #18: connect+subscribe at Mosquitto's rate at 10k connections, each broker fresh.
  conns: { rate: ['>=', 1.0] },
}
/** RSS per idle subscribed connection, bytes: an absolute target for Midge (issue #18, at 10k and 18k). */
const RSS_PER_CONN_TARGET = 4 * 1024
/**
 * Below this many connections RSS per connection is not judged: the young generation the start-up grew and the
 * trim gives back (observability/young-generation-trim.ts) is worth more than 1,000 connections, so the quick
 * set's figure (1k, held 2 s) says more about the moment it was read than about connections.
 */
const RSS_JUDGED_FROM_CONNS = 10_000

export function ratioLine(item: PlanItem, midge: Line, other: Line): Line {
  const line: Line = { ratio: `midge/${String(other.broker)}`, id: item.id, scenario: item.scenario, qos: item.qos }
  const want = other.broker === 'mosquitto' ? targets[item.id] : undefined
  const checks: (boolean | null)[] = []
  for (const m of metricsOf(item)) {
    const a = midge[m]
    const b = other[m]
    const r = typeof a === 'number' && typeof b === 'number' && b > 0 ? Math.round((a / b) * 1000) / 1000 : null
    line[m] = r
    const t = want?.[m]
    if (t !== undefined) checks.push(r === null ? null : t[0] === '>=' ? r >= t[1] : r <= t[1])
  }
  const saturated = midge.gen_saturated === true || other.gen_saturated === true
  if (saturated) line.limited_by_generator = true
  if (want !== undefined) {
    const tgt: Record<string, string> = {}
    for (const [k, [op, v]] of Object.entries(want)) tgt[k] = `${op}${v}`
    if (item.scenario === 'conns') {
      const rss = midge.rss_per_conn_b
      line.midge_rss_per_conn_b = rss
      if ((item.load.conns ?? 0) >= RSS_JUDGED_FROM_CONNS) {
        tgt.midge_rss_per_conn_b = `<=${RSS_PER_CONN_TARGET}`
        checks.push(typeof rss === 'number' ? rss <= RSS_PER_CONN_TARGET : null)
      }
    }
    line.targets = tgt
    line.meets = checks.includes(false) ? false : checks.includes(null) ? null : true
  }
  return line
}
