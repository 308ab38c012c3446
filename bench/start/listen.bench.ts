/**
 * Start to listening and idle RSS, Midge beside Mosquitto (issue #18): each broker is started fresh with
 * the bench's equivalent config (brokers/*.ts), pinned to the broker core, the brokers in turns; the time
 * from spawn until its port accepts a TCP connection, and VmRSS once it has sat idle for a second.
 *
 *   node dist/bench/start/listen.bench.js [--runs N] [--brokers midge,mosquitto,node] [--core C] [--idle-ms MS]
 *
 * stdout: one JSON line per broker (medians, every run), then Midge's ratio line; progress on stderr.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { brokers as mqttBrokers } from '../brokers/index.js'
import type { BrokerDef } from '../brokers/broker.js'
import { benchDir, freePort, spawnTracked, stopProcess } from '../brokers/process.js'
import { median } from '../report.js'

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '7' },
    brokers: { type: 'string', default: 'midge,mosquitto' },
    core: { type: 'string', default: '0' },
    'idle-ms': { type: 'string', default: '1000' },
  },
})
const RUNS = Number(values.runs)
const NAMES = values.brokers.split(',')
const CORE = Number(values.core)
const IDLE_MS = Number(values['idle-ms'])
const LIMIT_MS = 15_000

/**
 * `--brokers node`: the floor, a bare ES-module `net.createServer().listen()` in the same Node (no MQTT), so
 * what is Node's own start and memory and what is Midge's can be told apart.
 */
const bareNode: BrokerDef = {
  name: 'node',
  missing: () => null,
  start: (ctx) => spawnTracked(process.execPath, ['--input-type=module', '-e', `(await import('node:net')).default.createServer(() => {}).listen(${ctx.port}, '127.0.0.1')`], { core: ctx.core, nofile: ctx.nofile, logPath: join(ctx.dir, 'node.log') }),
  version: () => `Node ${process.version}`,
}
const brokers: Record<string, BrokerDef> = { ...mqttBrokers, node: bareNode }

/** True once something accepts a TCP connection on the port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { s.destroy(); resolve(false) })
  })
}

function rssKb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? null : Number(m[1])
  } catch {
    return null
  }
}

interface Run { listen_ms: number; rss_kb: number | null }

async function once(name: string, dir: string): Promise<Run | string> {
  const def = brokers[name]!
  const port = await freePort()
  const runDir = join(dir, `${name}-${port}`)
  mkdirSync(runDir, { recursive: true })
  const t0 = process.hrtime.bigint()
  const b = def.start({ port, dir: runDir, core: CORE, nofile: 0 })
  let gone = false
  void b.exited.then(() => { gone = true })
  try {
    for (;;) {
      if (gone) return `${name} exited before listening (log: ${b.logPath})`
      if (await accepts(port)) break
      if (Number(process.hrtime.bigint() - t0) / 1e6 > LIMIT_MS) return `${name} not listening after ${LIMIT_MS} ms`
      // 1 ms between attempts: the start times measured are 50-1000 ms.
      await new Promise((r) => setTimeout(r, 1))
    }
    const listenMs = Number(process.hrtime.bigint() - t0) / 1e6
    await new Promise((r) => setTimeout(r, IDLE_MS))
    return { listen_ms: Math.round(listenMs * 10) / 10, rss_kb: rssKb(b.pid) }
  } finally {
    await stopProcess(b)
  }
}

async function main(): Promise<number> {
  const dir = benchDir('midge-bench-start-')
  const runs = new Map<string, Run[]>(NAMES.map((n) => [n, []]))
  let failures = 0
  // Run 0 is a warm-up, not counted: the page cache gets the files, and Midge's bench wrapper asks
  // `midge check` once (brokers/midge.ts) inside its first start.
  for (let i = 0; i <= RUNS; i++) {
    for (const name of NAMES) {
      const missing = brokers[name] === undefined ? `unknown broker ${name}` : brokers[name]!.missing()
      if (missing !== null) { if (i === 0) process.stderr.write(`bench: ${name}: cannot run: ${missing}\n`); continue }
      const r = await once(name, dir)
      if (i === 0) continue
      if (typeof r === 'string') { failures++; process.stderr.write(`bench: [start ${i}/${RUNS}] ${r}\n`); continue }
      runs.get(name)!.push(r)
      process.stderr.write(`bench: [start ${i}/${RUNS}] ${name}: listening after ${r.listen_ms} ms, idle RSS ${r.rss_kb} kB\n`)
    }
  }
  const lines = new Map<string, { listen_ms: number | null; idle_rss_kb: number | null }>()
  for (const [name, rs] of runs) {
    if (rs.length === 0) continue
    const line = {
      scenario: 'start',
      broker: name,
      listen_ms: median(rs.map((r) => r.listen_ms)),
      idle_rss_kb: median(rs.flatMap((r) => (r.rss_kb === null ? [] : [r.rss_kb]))),
      runs: rs,
      unit: 'ms from spawn to an accepted TCP connection; VmRSS after idle-ms',
    }
    lines.set(name, line)
    process.stdout.write(JSON.stringify(line) + '\n')
  }
  const m = lines.get('midge')
  for (const [name, o] of lines) {
    if (name === 'midge' || m === undefined) continue
    const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : Math.round((a / b) * 100) / 100)
    process.stdout.write(JSON.stringify({
      scenario: 'start',
      ratio: `midge/${name}`,
      listen_ms: ratio(m.listen_ms, o.listen_ms),
      idle_rss_kb: ratio(m.idle_rss_kb, o.idle_rss_kb),
      // Issue #18's targets: listening within 250 ms, idle RSS at most 45 MB.
      targets: { listen_ms: 250, idle_rss_kb: 45 * 1024 },
      meets: { listen_ms: m.listen_ms !== null && m.listen_ms <= 250, idle_rss_kb: m.idle_rss_kb !== null && m.idle_rss_kb <= 45 * 1024 },
    }) + '\n')
  }
  if (failures === 0) rmSync(dir, { recursive: true, force: true })
  return failures === 0 ? 0 : 3
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
