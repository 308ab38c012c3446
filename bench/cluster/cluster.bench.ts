/**
 * `npm run bench -- --scenario cluster` (issue #17): what crossing nodes costs. Fan-in (publishers → one
 * subscriber on `bench/#`) with the publishers on the first node and the subscriber on the last, for
 *   single   one Midge, no cluster (the reference)
 *   1 node   the same with cluster_redis (nothing crosses: the cost of being in a cluster)
 *   2, 3     nodes, each message crossing from the first node to the last through Redis
 * at QoS 0 and 1, configurations in turns (A/B/C/D/A/B/C/D...). Per run: msg/s at the subscriber and the CPU
 * time of every broker process (and of Redis) per message. All on this machine: brokers, Redis and the load
 * generator share its cores, so the multi-node figures are a lower bound of what separate machines give.
 *
 *   node dist/bench/cluster/cluster.bench.js [-n MSGS] [--runs N] [--qos 0,1]
 *
 * stdout: one JSON line per run, then the median per configuration and QoS; progress on stderr.
 */
import { spawn, spawnSync } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ROOT } from '../brokers/broker.js'
import { midgeConf } from '../brokers/midge.js'
import { benchDir, freePort, logTail, spawnTracked, stopProcess, waitForMqtt, type Spawned } from '../brokers/process.js'
import { procCpuSeconds } from '../load/procstat.js'
import { median } from '../report.js'

const { values } = parseArgs({
  options: {
    n: { type: 'string', short: 'n', default: '200000' },
    runs: { type: 'string', default: '3' },
    qos: { type: 'string', default: '0,1' },
  },
})
const N = Number(values.n)
const RUNS = Number(values.runs)
const QOS = values.qos.split(',').map(Number) as Array<0 | 1>
const Configs = [{ name: 'single', nodes: 1, cluster: false }, { name: '1 node', nodes: 1, cluster: true }, { name: '2 nodes', nodes: 2, cluster: true }, { name: '3 nodes', nodes: 3, cluster: true }]

const note = (m: string): void => { process.stderr.write(`cluster bench: ${m}\n`) }
const out = (o: object): void => { process.stdout.write(`${JSON.stringify(o)}\n`) }

async function startRedis (dir: string): Promise<Spawned> {
  const port = await freePort()
  // As a production cluster would run it: append-only, fsync every second.
  const r = spawnTracked('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec'], { core: -1, nofile: 0, logPath: join(dir, 'redis.log') })
  const deadline = Date.now() + 10_000
  while (spawnSync('redis-cli', ['-p', String(port), 'ping']).stdout?.toString().trim() !== 'PONG') {
    if (Date.now() > deadline) throw new Error(`redis-server did not start:\n${logTail(join(dir, 'redis.log'))}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return Object.assign(r, { port })
}

async function startNodes (dir: string, nodes: number, redisPort: number | undefined): Promise<Array<{ p: Spawned; port: number }>> {
  const started: Array<{ p: Spawned; port: number }> = []
  for (let i = 0; i < nodes; i++) {
    const port = await freePort()
    const conf = join(dir, `node${i}.conf`)
    // The bench's own scratch folder is root's: the brokers stay root rather than switch to 'mosquitto'.
    writeFileSync(conf, 'user root\n' + midgeConf(port) + (redisPort === undefined ? '' : `cluster_redis redis://127.0.0.1:${redisPort}\ncluster_node_id n${i}\nlog_type notice\n`))
    const p = spawnTracked(process.execPath, [join(ROOT, 'bin/midge.js'), '-c', conf], { core: -1, nofile: 0, logPath: join(dir, `node${i}.log`), cwd: ROOT })
    await waitForMqtt(p, port, 15_000)
    started.push({ p, port })
  }
  if (redisPort !== undefined) {
    // Every node has heard of every other's interest once the last one has joined and announced: give the
    // announcements a moment (the load's subscriber subscribes after this, and its interest is announced at SUBACK).
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  return started
}

function runLoad (pubPort: number, subPort: number, qos: 0 | 1): Promise<Record<string, unknown>> {
  const args = [join(ROOT, 'dist/bench/load/main.js'), 'fanin', '-p', String(pubPort), '--sub-port', String(subPort), '-q', String(qos), '-n', String(N), '--pubs', '4', '--subs', '1', '-t', '120']
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
    let text = ''
    child.stdout.on('data', (d: Buffer) => { text += d.toString() })
    child.on('close', () => {
      try { resolve(JSON.parse(text.trim().split('\n').pop() ?? '{}') as Record<string, unknown>) } catch { resolve({ status: 'error', error: text.slice(0, 200) }) }
    })
  })
}

async function main (): Promise<void> {
  const dir = benchDir('midge-cluster-bench-')
  const results: Array<{ config: string; qos: number; rate: number; cpuUsPerMsg: number; redisUsPerMsg: number; status: string }> = []
  try {
    for (let run = 0; run < RUNS; run++) {
      for (const qos of QOS) {
        for (const c of Configs) {
          const runDir = benchDir('run-', dir)
          const redis = c.cluster ? await startRedis(runDir) : undefined
          const nodes = await startNodes(runDir, c.nodes, redis === undefined ? undefined : (redis as Spawned & { port: number }).port)
          try {
            const cpu0 = nodes.map((n) => procCpuSeconds(n.p.pid))
            const redis0 = redis === undefined ? 0 : procCpuSeconds(redis.pid)
            const r = await runLoad(nodes[0]!.port, nodes[nodes.length - 1]!.port, qos)
            const cpu = nodes.reduce((sum, n, i) => sum + procCpuSeconds(n.p.pid) - cpu0[i]!, 0)
            const redisCpu = redis === undefined ? 0 : procCpuSeconds(redis.pid) - redis0
            const row = { config: c.name, qos, run, rate: Number(r['rate'] ?? 0), cpuUsPerMsg: Math.round((cpu / N) * 1e6 * 100) / 100, redisUsPerMsg: Math.round((redisCpu / N) * 1e6 * 100) / 100, status: String(r['status']) }
            out(row)
            results.push(row)
            note(`${c.name} QoS ${qos} run ${run + 1}: ${row.rate} msg/s, ${row.cpuUsPerMsg} µs broker CPU/msg, ${row.redisUsPerMsg} µs Redis CPU/msg (${row.status})`)
          } finally {
            for (const n of nodes) await stopProcess(n.p)
            if (redis !== undefined) await stopProcess(redis)
          }
        }
      }
    }
    for (const qos of QOS) {
      for (const c of Configs) {
        const rows = results.filter((r) => r.qos === qos && r.config === c.name && r.status === 'ok')
        if (rows.length === 0) continue
        const med = (xs: number[]): number => Math.round((median(xs) ?? 0) * 100) / 100
        out({ summary: true, config: c.name, qos, rate: med(rows.map((r) => r.rate)), cpuUsPerMsg: med(rows.map((r) => r.cpuUsPerMsg)), redisUsPerMsg: med(rows.map((r) => r.redisUsPerMsg)), runs: rows.length })
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`cluster bench: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
