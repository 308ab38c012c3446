/**
 * Subscription trie and retained index at 100,000 entries: memory per entry, subscribe/unsubscribe rate, match
 * throughput for exact, wildcard-heavy and deep trees, and bytes allocated per match (should be ~0: the publish
 * hot path must allocate nothing but what its visitor does).
 *
 * Run: npx tsc -p . && node --expose-gc dist/bench/broker/trie.bench.js [--n 100000] [--ms 500] [--only exact|wildcard|deep|retained]
 * One JSON line per metric on stdout; progress on stderr. Without --expose-gc the bench enables gc itself.
 */
import { GCProfiler, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { TopicTrie } from '../../src/broker/topic-trie.js'
import { RetainedIndex } from '../../src/broker/retained-index.js'

const N = numberArg('--n', 100_000)
const MEASURE_MS = numberArg('--ms', 500)

function numberArg (name: string, fallback: number): number {
  const at = process.argv.indexOf(name)
  return at === -1 ? fallback : Number(process.argv[at + 1])
}

function getGc (): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (exposed !== undefined) return exposed
  // Same effect as --expose-gc, for runs that forgot the flag.
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}
const gc = getGc()

function heapUsed (): number {
  gc(); gc()
  return process.memoryUsage().heapUsed
}

function report (metric: string, value: number, unit: string, extra: Record<string, unknown> = {}): void {
  const rounded = Math.abs(value) >= 100 ? Math.round(value) : Math.round(value * 100) / 100
  process.stdout.write(JSON.stringify({ bench: 'broker/trie', metric, value: rounded, unit, n: N, ...extra }) + '\n')
}

/**
 * What a heap reading measures is referenced after it: liveness analysis in optimized code lets the GC free a
 * local that is no longer used (the whole index, or the inputs), which made entries look free or negative.
 */
const keepAlive: unknown[] = []

/**
 * s, flattened. Template literals make cons strings that the trie's first charCodeAt/indexOf flattens; the GC then
 * frees the cons cells, which would show up as negative memory per entry. ToNumber flattens in place; the sum
 * keeps the call from being optimized away.
 */
let _flattened = 0
function flat (s: string): string {
  _flattened += Number(s) | 0
  return s
}

/** Stands in for the broker's per-client subscription object. */
class Sub {
  constructor (readonly clientId: string, readonly qos: number) {}
}

let visits = 0
function countVisit (): void { visits++ }

/** Runs fn over topics round robin for about MEASURE_MS; returns matches per second and visits per match. */
function throughput (trie: TopicTrie<Sub>, topics: string[]): { opsPerSec: number, visitsPerMatch: number } {
  const mask = topics.length - 1 // topics.length is a power of two
  for (let i = 0; i < 20_000; i++) trie.match(topics[i & mask]!, countVisit) // warm up the optimizer
  visits = 0
  let ops = 0
  const start = process.hrtime.bigint()
  const deadline = start + BigInt(MEASURE_MS) * 1_000_000n
  let now = start
  while (now < deadline) {
    for (let i = 0; i < 4096; i++) trie.match(topics[(ops + i) & mask]!, countVisit)
    ops += 4096
    now = process.hrtime.bigint()
  }
  const seconds = Number(now - start) / 1e9
  return { opsPerSec: ops / seconds, visitsPerMatch: visits / ops }
}

/**
 * Heap growth over `count` matches with no GC in between, after a warm-up that follows a full GC (a full GC may
 * drop optimized code, whose recompilation would otherwise be counted). Undefined when a GC interfered, which
 * itself means the loop allocated at least a young-generation's worth.
 */
function allocationPerMatch (trie: TopicTrie<Sub>, topics: string[], count: number): number | undefined {
  const mask = topics.length - 1
  gc()
  for (let i = 0; i < 50_000; i++) trie.match(topics[i & mask]!, countVisit)
  const profiler = new GCProfiler() // reports synchronously, unlike a PerformanceObserver
  profiler.start()
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < count; i++) trie.match(topics[i & mask]!, countVisit)
  const after = process.memoryUsage().heapUsed
  const gcs = profiler.stop().statistics.length
  return gcs === 0 ? (after - before) / count : undefined
}

/** A power-of-two array of topics picked by a fixed LCG, so runs are comparable. */
function topicSample (make: (r: number) => string): string[] {
  const out: string[] = []
  let seed = 12345
  for (let i = 0; i < 8192; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    out.push(make(seed))
  }
  return out
}

function measureMatch (name: string, trie: TopicTrie<Sub>, topics: string[]): void {
  const { opsPerSec, visitsPerMatch } = throughput(trie, topics)
  report(`match_${name}`, opsPerSec, 'matches/s', { visitsPerMatch: Math.round(visitsPerMatch * 100) / 100 })
  report(`match_${name}_ns`, 1e9 / opsPerSec, 'ns/match')
  const alloc = allocationPerMatch(trie, topics, 500_000)
  if (alloc === undefined) process.stderr.write(`match_${name}: a GC ran during the allocation check, skipped\n`)
  else report(`match_${name}_alloc`, alloc, 'bytes/match')
}

/** One subscription per topic, bench/c/<i>; keys and values exist before the trie (the broker holds them anyway). */
function benchExact (): void {
  process.stderr.write(`exact: ${N} subscriptions on bench/c/<i>\n`)
  const filters: string[] = []
  const subs: Sub[] = []
  for (let i = 0; i < N; i++) { filters.push(flat(`bench/c/${i}`)); subs.push(new Sub(flat(`client-${i}`), 1)) }
  const base = heapUsed()
  const rssBase = process.memoryUsage().rss
  const trie = new TopicTrie<Sub>()
  let start = process.hrtime.bigint()
  for (let i = 0; i < N; i++) trie.add(filters[i]!, subs[i]!.clientId, subs[i]!)
  const addNs = Number(process.hrtime.bigint() - start)
  const bytes = heapUsed() - base
  report('add', N / (addNs / 1e9), 'adds/s')
  report('heap_per_subscription', bytes / N, 'bytes', { shape: 'bench/c/<i>, one client each' })
  report('rss_per_subscription', (process.memoryUsage().rss - rssBase) / N, 'bytes', { shape: 'bench/c/<i>' })
  keepAlive.push(filters, subs, trie)
  measureMatch('exact', trie, topicSample((r) => `bench/c/${r % N}`))
  measureMatch('exact_miss', trie, topicSample((r) => `bench/d/${r % N}`))
  start = process.hrtime.bigint()
  for (let i = 0; i < N; i++) trie.remove(filters[i]!, subs[i]!.clientId)
  report('remove', N / (Number(process.hrtime.bigint() - start) / 1e9), 'removes/s')
  if (trie.size !== 0) throw new Error('remove left entries behind')
  keepAlive.length = 0
}

/** 1000 sites x 100 devices; a tenth of the filters has each wildcard shape, the rest are exact. */
function benchWildcard (): void {
  process.stderr.write(`wildcard: ${N} subscriptions, mixed filters\n`)
  const trie = new TopicTrie<Sub>()
  const sites = 1000
  const devices = 100
  const base = heapUsed()
  for (let i = 0; i < N; i++) {
    const s = i % sites
    const d = Math.floor(i / sites) % devices
    let filter: string
    switch (i % 10) {
      case 6: filter = `site/${s}/dev/+/temp`; break
      case 7: filter = `site/${s}/#`; break
      case 8: filter = `+/${s}/dev/${d}/+`; break
      case 9: filter = `site/+/dev/${d}/temp`; break
      default: filter = `site/${s}/dev/${d}/${i % 10 < 3 ? 'temp' : 'hum'}`
    }
    trie.add(filter, `client-${i}`, new Sub(`client-${i}`, 0))
  }
  report('heap_per_subscription_wildcard', (heapUsed() - base) / N, 'bytes', { shape: 'mixed, keys and values included' })
  measureMatch('wildcard', trie, topicSample((r) => `site/${r % sites}/dev/${(r >>> 10) % devices}/temp`))
}

/** 10-level topics, '+' at a random level in a fifth of the filters; random topics, mostly missing at the end. */
function benchDeep (): void {
  process.stderr.write(`deep: ${N} subscriptions, 10 levels\n`)
  const trie = new TopicTrie<Sub>()
  const levelOf = (r: number, depth: number): string => `l${depth}-${(r >>> depth) % 4}`
  for (let i = 0; i < N; i++) {
    const r = Math.imul(i + 1, 2654435761) >>> 0
    const levels: string[] = []
    for (let depth = 0; depth < 9; depth++) levels.push(levelOf(r, depth))
    levels.push(String(i % 1000))
    if (i % 5 === 0) levels[r % 9] = '+'
    trie.add(levels.join('/'), `client-${i}`, new Sub(`client-${i}`, 0))
  }
  measureMatch('deep', trie, topicSample((r) => {
    const levels: string[] = []
    for (let depth = 0; depth < 9; depth++) levels.push(levelOf(r, depth))
    levels.push(String(r % 1000))
    return levels.join('/')
  }))
}

/** N retained messages on bench/r/<i>, then a device tree for narrow wildcards and a subtree walk. */
function benchRetained (): void {
  process.stderr.write(`retained: ${N} messages\n`)
  const topics: string[] = []
  const payload = { payload: Buffer.alloc(0) }
  for (let i = 0; i < N; i++) topics.push(flat(`bench/r/${i}`))
  const base = heapUsed()
  const index = new RetainedIndex<object>()
  const start = process.hrtime.bigint()
  for (let i = 0; i < N; i++) index.set(topics[i]!, payload)
  report('retained_set', N / (Number(process.hrtime.bigint() - start) / 1e9), 'sets/s')
  report('retained_heap_per_message', (heapUsed() - base) / N, 'bytes', { shape: 'bench/r/<i>, topic strings excluded' })
  keepAlive.push(topics, index)

  const devices = new RetainedIndex<object>()
  for (let i = 0; i < N; i++) devices.set(`dev/${i % 10_000}/${['state', 'temp', 'hum', 'fw', 'ip', 'rssi', 'up', 'cfg', 'led', 'bat'][Math.floor(i / 10_000) % 10]!}`, payload)
  let hits = 0
  const countHit = (): void => { hits++ }
  const filters = topicSample((r) => `dev/${r % 10_000}/+`)
  let ops = 0
  const t0 = process.hrtime.bigint()
  while (ops < 50_000) { devices.match(filters[ops & 8191]!, countHit); ops++ }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  report('retained_match_narrow', ops / seconds, 'matches/s', { filter: 'dev/<i>/+', hitsPerMatch: hits / ops })
  hits = 0
  const t1 = process.hrtime.bigint()
  devices.match('dev/#', countHit)
  keepAlive.length = 0
  report('retained_match_subtree', hits / (Number(process.hrtime.bigint() - t1) / 1e9), 'messages/s', { filter: 'dev/#', hits })
}

// Each section is a function so its trie is garbage once it returns and does not skew the next heap reading.
const sections: Record<string, () => void> = {
  exact: benchExact, wildcard: benchWildcard, deep: benchDeep, retained: benchRetained
}
const only = process.argv.indexOf('--only')
for (const [name, run] of Object.entries(sections)) {
  if (only === -1 || process.argv[only + 1] === name) run()
}
