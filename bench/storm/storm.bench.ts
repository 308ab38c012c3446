/**
 * Reconnect storm, Midge beside Mosquitto (issue #18): N clients with persistent sessions (clean session
 * 0), each with Q queued QoS 1 messages, reconnect at once after a broker restart. Per run and broker:
 * start it with persistence on (brokers/*.ts config plus `persistence true`), seed the sessions and
 * queues (bench/load/storm.js seed), stop it politely (both save their store at exit), start it again,
 * then time the storm (storm.js reconnect): from the first connect until every client has Session
 * Present 1 and its Q messages. Brokers in turns (A/B/A/B), broker on one core, clients on the other,
 * both within a raised open-file limit.
 *
 *   node dist/bench/storm/storm.bench.js [--clients N] [--queued Q] [--runs N] [--brokers midge,mosquitto]
 *
 * stdout: one JSON line per run, then per broker (medians) and Midge's ratio; progress on stderr.
 */
import { spawn } from 'node:child_process'
import { chmodSync, chownSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { mosquittoUser, ROOT } from '../brokers/broker.js'
import { midgeConf } from '../brokers/midge.js'
import { mosquittoConf } from '../brokers/mosquitto.js'
import { benchDir, freePort, logTail, nofileLimit, spawnTracked, stopProcess, track, waitForMqtt, wrapCommand, type Spawned } from '../brokers/process.js'
import { procCpuSeconds } from '../load/procstat.js'
import { median } from '../report.js'

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '15000' },
    queued: { type: 'string', default: '3' },
    runs: { type: 'string', default: '3' },
    brokers: { type: 'string', default: 'midge,mosquitto' },
    cores: { type: 'string', default: '0,1' },
  },
})
const N = Number(values.clients)
const Q = Number(values.queued)
const RUNS = Number(values.runs)
const NAMES = values.brokers.split(',')
const [BROKER_CORE, LOAD_CORE] = values.cores.split(',').map(Number) as [number, number]

const note = (m: string): void => { process.stderr.write(`storm: ${m}\n`) }
const out = (o: object): void => { process.stdout.write(`${JSON.stringify(o)}\n`) }
const round2 = (x: number): number => Math.round(x * 100) / 100

function startBroker(name: string, dir: string, port: number, nofile: number): Spawned {
  const store = join(dir, 'store')
  if (name === 'midge') {
    const conf = join(dir, 'midge.conf')
    writeFileSync(conf, `${midgeConf(port)}persistence true\npersistence_location ${store}/\n`)
    return spawnTracked(process.execPath, [join(ROOT, 'bin/midge.js'), '-c', conf], { core: BROKER_CORE, nofile, logPath: join(dir, 'midge.log'), cwd: ROOT })
  }
  const conf = join(dir, 'mosquitto.conf')
  writeFileSync(conf, mosquittoConf(port).replace('persistence false', `persistence true\npersistence_location ${store}/`), { mode: 0o644 })
  return spawnTracked('/usr/sbin/mosquitto', ['-c', conf], { core: BROKER_CORE, nofile, logPath: join(dir, 'mosquitto.log') })
}

function runStorm(mode: 'seed' | 'reconnect', port: number, nofile: number): Promise<Record<string, unknown>> {
  const [file, argv] = wrapCommand(process.execPath, [join(ROOT, 'dist/bench/load/storm.js'), mode, '-p', String(port), '--clients', String(N), '--queued', String(Q)], LOAD_CORE, nofile)
  return new Promise((resolve) => {
    const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'inherit'] })
    track(child)
    let stdout = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (d: string) => { stdout += d })
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>)
      } catch {
        resolve({ status: 'error', error: `storm.js ${mode} exited ${code} without a result` })
      }
    })
  })
}

async function once(name: string, run: number, base: string, nofile: number): Promise<Record<string, unknown>> {
  const dir = join(base, `${name}-${run}`)
  mkdirSync(join(dir, 'store'), { recursive: true })
  chmodSync(dir, 0o755)
  // Both brokers, started as root, write their store as the mosquitto user.
  const user = mosquittoUser()
  if (user !== undefined) chownSync(join(dir, 'store'), user.uid, user.gid)
  const port = await freePort()
  let broker = startBroker(name, dir, port, nofile)
  try {
    await waitForMqtt(broker, port, 20_000)
    const seeded = await runStorm('seed', port, nofile)
    if (seeded.status !== 'ok') return { broker: name, run, status: 'error', error: `seed: ${String(seeded.error ?? seeded.status)}` }
    await stopProcess(broker, 120_000)
    const restarted = performance.now()
    broker = startBroker(name, dir, port, nofile)
    await waitForMqtt(broker, port, 120_000)
    const restartS = (performance.now() - restarted) / 1000
    // CPU the broker spent on the storm: unlike the time, hardly moved by what else the machine runs.
    const cpu0 = procCpuSeconds(broker.pid)
    const storm = await runStorm('reconnect', port, nofile)
    const cpuS = procCpuSeconds(broker.pid) - cpu0
    return { broker: name, run, restart_s: Math.round(restartS * 100) / 100, ...storm, broker_cpu_s: Math.round(cpuS * 100) / 100, seeded_s: seeded.seeded_s }
  } catch (err) {
    return { broker: name, run, status: 'error', error: `${(err as Error).message}\n${logTail(broker.logPath)}` }
  } finally {
    await stopProcess(broker, 120_000)
  }
}

async function main(): Promise<number> {
  const soft = nofileLimit()
  const nofile = N + 1024 > soft ? N + 1024 : 0
  if (nofile > 0) note(`raising the open-file limit to ${nofile} for broker and clients`)
  const base = benchDir('midge-storm-')
  const results = new Map<string, Array<Record<string, unknown>>>(NAMES.map((n) => [n, []]))
  let failures = 0
  for (let run = 1; run <= RUNS; run++) {
    for (const name of NAMES) {
      const r = await once(name, run, base, nofile)
      out(r)
      note(`[${run}/${RUNS}] ${name}: ${r.status === 'ok' ? `restart ${String(r.restart_s)} s, all ${N} back with ${Q} queued each in ${String(r.all_back_s)} s (CONNACKs in ${String(r.connacked_s)} s), broker CPU ${String(r.broker_cpu_s)} s` : `failed: ${String(r.error)}`}`)
      if (r.status === 'ok') results.get(name)!.push(r)
      else failures++
    }
  }
  const summary = new Map<string, number>()
  for (const [name, rs] of results) {
    if (rs.length === 0) continue
    const all = rs.map((r) => r.all_back_s as number)
    summary.set(name, median(all)!)
    out({ bench: 'storm', broker: name, clients: N, queued: Q, runs: rs.length, all_back_s: round2(median(all)!), every: all, restart_s: round2(median(rs.map((r) => r.restart_s as number))!), connacked_s: round2(median(rs.map((r) => r.connacked_s as number))!), broker_cpu_s: round2(median(rs.map((r) => r.broker_cpu_s as number))!) })
  }
  const m = summary.get('midge')
  const q = summary.get('mosquitto')
  if (m !== undefined && q !== undefined) out({ bench: 'storm', ratio: 'midge/mosquitto time', value: Math.round((m / q) * 100) / 100, target: '< 2' })
  if (failures === 0) rmSync(base, { recursive: true, force: true })
  else note(`${failures} run(s) failed; logs kept in ${base}`)
  return failures === 0 ? 0 : 3
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`storm: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
