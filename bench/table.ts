/**
 * `node dist/bench/table.js < results.jsonl`: the JSON lines of `npm run bench` as the markdown
 * table of docs/performance.md (one row per scenario, one column group per broker).
 */
import { readFileSync } from 'node:fs'

type Line = Record<string, unknown>

const lines: Line[] = readFileSync(0, 'utf8')
  .split('\n')
  .filter((l) => l.startsWith('{'))
  .map((l) => JSON.parse(l) as Line)

const results = lines.filter((l) => typeof l.broker === 'string')
const ratios = lines.filter((l) => typeof l.ratio === 'string')
const brokers = [...new Set(results.map((l) => l.broker as string))]
/** Lines written before plan items had an id are keyed by scenario and QoS. */
const keyOf = (l: Line): string => (typeof l.id === 'string' ? l.id : `${String(l.scenario)}-q${String(l.qos)}`)
const keys = [...new Set(results.map(keyOf))]

const k = (n: unknown): string => (typeof n === 'number' ? n.toLocaleString('en-US', { maximumFractionDigits: n >= 100 ? 0 : 1 }) : '–')
const ratioOf = (n: unknown): string => (typeof n === 'number' ? n.toFixed(2) : '–')

function cell(l: Line | undefined): string {
  if (l === undefined) return '–'
  if (l.status !== 'ok') return `${String(l.status)}${Array.isArray(l.errors) ? ` (${String(l.errors[0]).split('\n')[0]!.slice(0, 60)})` : ''}`
  const sat = l.gen_saturated === true ? ' ‡' : ''
  switch (l.scenario) {
    case 'latency':
      return `${k(l.p50_us)} / ${k(l.p99_us)} / ${k(l.p999_us)} µs${sat}`
    case 'conns':
      return `${k(l.rate)}/s, ${k(l.rss_per_conn_b)} B/conn, ${k(l.broker_us_per_conn)} µs CPU/conn${sat}`
    default:
      return `${k(l.rate)}/s, ${k(l.broker_us_per_msg)} µs CPU/msg${sat}`
  }
}

const out: string[] = []
out.push(`| scenario | ${brokers.join(' | ')} | midge/mosquitto (target) |`)
out.push(`|---|${brokers.map(() => '---|').join('')}---|`)
for (const key of keys) {
  const row = brokers.map((b) => cell(results.find((l) => keyOf(l) === key && l.broker === b)))
  const r = ratios.find((l) => keyOf(l) === key && l.ratio === 'midge/mosquitto')
  let ratio = '–'
  if (r !== undefined) {
    const t = (r.targets ?? {}) as Record<string, string>
    const parts = Object.keys(t).map((m) => `${m} ${m === 'midge_rss_per_conn_b' ? k(r[m]) : ratioOf(r[m])} (${t[m]})`)
    ratio = `${parts.join(', ')}${r.meets === true ? ' ✓' : r.meets === false ? ' ✗' : ''}${r.limited_by_generator === true ? ' ‡' : ''}`
  }
  out.push(`| ${key} | ${row.join(' | ')} | ${ratio} |`)
}
process.stdout.write(out.join('\n') + '\n\n‡ the generator was saturated in at least one run (gen_saturated)\n')
