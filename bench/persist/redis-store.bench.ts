/**
 * The Redis store's commit rate on a loopback Redis: how many commits (MULTI/EXEC round trips) and store
 * records per second one broker can make durable. A turn carries R records: QoS 1 messages to persistent
 * sessions, each saved, queued and sent (3 records), and acknowledged on the next turn (1 record), the
 * pattern of a QoS 1 stream to online persistent subscribers. Commits run one after another, as the
 * broker runs them. Redis is started here (Debian's redis-server) with appendonly and the given
 * appendfsync ('always': each EXEC is on disk before it answers; 'everysec': Redis's default).
 *
 *   node dist/bench/persist/redis-store.bench.js [--seconds S] [--records LIST] [--fsync always,everysec]
 *
 * One JSON line per measurement on stdout; brokerCpuUsPerRecord is this process's CPU time (the store and
 * the Redis client, the part a broker pays) per record.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { RedisStore } from '../../src/persistence/redis-store.js'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    records: { type: 'string', default: '4,40,400,4000' },
    fsync: { type: 'string', default: 'always,everysec' },
    payload: { type: 'string', default: '100' },
  },
})
const SECONDS = Number(values.seconds)
const PAYLOAD = Buffer.alloc(Number(values.payload), 0x78)

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

async function startRedis(fsync: string): Promise<{ child: ChildProcess; port: number; dir: string }> {
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-bench-redis-'))
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', fsync], { stdio: 'ignore' })
  child.once('error', (err) => { process.stderr.write(`redis-server: ${err.message} (install the Debian package redis-server)\n`); process.exit(1) })
  // Queued until redis-server listens: the client retries every 50 ms.
  const probe = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 50, maxRetriesPerRequest: null })
  probe.on('error', () => {})
  await probe.ping()
  probe.disconnect()
  return { child, port, dir }
}

async function measure(redis: Redis, fsync: string, records: number): Promise<void> {
  const store = new RedisStore({ redis, prefix: `bench${records}:`, nodeId: 'bench' })
  await store.load()
  const sessions = 100
  for (let s = 0; s < sessions; s++) store.sessionSaved(`c${s}`, 3600, undefined, 0)
  await store.commit()
  const perTurn = Math.max(1, Math.round(records / 4))
  let id = 1
  let pending: Array<[string, number]> = []
  let commits = 0
  let written = 0
  const cpu0 = process.cpuUsage()
  const started = process.hrtime.bigint()
  const until = started + BigInt(SECONDS * 1e9)
  while (process.hrtime.bigint() < until) {
    for (const [c, oid] of pending) store.outgoingDone(c, oid)
    written += pending.length
    pending = []
    for (let i = 0; i < perTurn; i++, id++) {
      const c = `c${id % sessions}`
      store.messageSaved({ id, topic: `t/${id % 1000}`, payload: PAYLOAD, qos: 1, retain: false, properties: undefined, expiresAt: 0, origin: 'p' })
      store.outgoingQueued(c, { oid: id, messageId: id, qos: 1, retain: false, subscriptionIds: undefined, packetId: 0, released: false })
      store.outgoingSent(c, id, (id % 65535) + 1)
      pending.push([c, id])
    }
    written += 3 * perTurn
    await store.commit()
    commits++
  }
  const s = Number(process.hrtime.bigint() - started) / 1e9
  const cpu = process.cpuUsage(cpu0)
  process.stdout.write(`${JSON.stringify({ bench: 'redis-store-commit', appendfsync: fsync, recordsPerCommit: perTurn * 4, commitsPerSec: Math.round(commits / s), recordsPerSec: Math.round(written / s), msPerCommit: Number((1000 * s / commits).toFixed(3)), brokerCpuUsPerRecord: Number(((cpu.user + cpu.system) / written).toFixed(2)) })}\n`)
}

async function main(): Promise<void> {
  for (const fsync of values.fsync.split(',')) {
    const r = await startRedis(fsync)
    const redis = new Redis({ port: r.port, host: '127.0.0.1' })
    try {
      for (const n of values.records.split(',').map(Number)) await measure(redis, fsync, n)
    } finally {
      redis.disconnect()
      r.child.kill('SIGKILL')
      fs.rmSync(r.dir, { recursive: true, force: true })
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
