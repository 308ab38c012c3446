/**
 * Child processes of the bench: spawned pinned to a core (`taskset`, which execs, so the pid is
 * the program's own and /proc readings are the broker's), optionally with a raised open-file
 * limit (`prlimit`, which execs too). Every child is tracked and killed when the bench exits,
 * however it exits, so that no broker outlives a run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import { join } from 'node:path'
import { encodeConnect } from '../load/packets.js'

export class BenchError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

const live = new Set<ChildProcess>()

/** Kill `child` if it is still running when the bench exits. */
export function track(child: ChildProcess): void {
  live.add(child)
  child.once('exit', () => live.delete(child))
}

function killAll(): void {
  for (const c of live) c.kill('SIGKILL')
  live.clear()
}

process.on('exit', killAll)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    process.stderr.write(`bench: ${sig}, stopping children\n`)
    killAll()
    process.exit(130)
  })
}

/** Absolute path of a program in PATH (or the given absolute path), or null. */
export function which(cmd: string): string | null {
  if (cmd.startsWith('/')) return existsSync(cmd) ? cmd : null
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = `${dir}/${cmd}`
    if (existsSync(p)) return p
  }
  return null
}

/** The soft open-file limit children inherit. */
export function nofileLimit(): number {
  const r = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' })
  const n = Number(r.stdout.trim())
  return Number.isFinite(n) ? n : Infinity
}

/**
 * A bench's scratch folder. Started as root, a broker reads its config (and writes its store) as its own user:
 * mkdtemp's 0700 would lock it out, and Midge refuses a config its user could not re-read at a reload.
 */
export function benchDir(prefix: string, parent = os.tmpdir()): string {
  const dir = mkdtempSync(join(parent, prefix))
  chmodSync(dir, 0o755)
  return dir
}

export interface SpawnOptions {
  /** CPU to pin to, or -1 for no pinning. */
  core: number
  /** Raise RLIMIT_NOFILE to this many before exec (0 = leave it). */
  nofile: number
  /** stdout and stderr go to this file. */
  logPath: string
  cwd?: string
  /** Keep a pipe on stdin (a Node child can exit when it closes: a watchdog). */
  stdinPipe?: boolean
  env?: NodeJS.ProcessEnv
}

export interface Spawned {
  child: ChildProcess
  pid: number
  logPath: string
  /** Resolves with the exit code (or signal name) once the process has ended. */
  exited: Promise<number | string>
}

export function wrapCommand(cmd: string, args: string[], core: number, nofile: number): [string, string[]] {
  let argv = [cmd, ...args]
  if (core >= 0) argv = ['taskset', '-c', String(core), ...argv]
  if (nofile > 0) argv = ['prlimit', `--nofile=${nofile}:${nofile}`, '--', ...argv]
  return [argv[0]!, argv.slice(1)]
}

export function spawnTracked(cmd: string, args: string[], o: SpawnOptions): Spawned {
  const [file, argv] = wrapCommand(cmd, args, o.core, o.nofile)
  const fd = openSync(o.logPath, 'a')
  const child = spawn(file, argv, {
    cwd: o.cwd,
    env: o.env ?? process.env,
    stdio: [o.stdinPipe === true ? 'pipe' : 'ignore', fd, fd],
  })
  closeSync(fd)
  live.add(child)
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child)
      resolve(code ?? signal ?? -1)
    })
    child.once('error', (err) => {
      live.delete(child)
      resolve(err.message)
    })
  })
  if (child.pid === undefined) throw new BenchError('BENCH_ERR_SPAWN', `cannot start ${cmd}`)
  return { child, pid: child.pid, logPath: o.logPath, exited }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopProcess(p: Spawned, graceMs = 3000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return
  p.child.kill('SIGTERM')
  const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs)
  await p.exited
  clearTimeout(timer)
}

export function logTail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return ''
  }
}

/** A port that was free a moment ago (the kernel's pick for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port
      srv.close(() => resolve(port))
    })
  })
}

/** One CONNECT/CONNACK exchange: true if the broker accepted it. */
function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port })
    let got = Buffer.alloc(0)
    const done = (ok: boolean): void => {
      s.destroy()
      clearTimeout(timer)
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), 1000)
    s.on('connect', () => s.write(encodeConnect(`bench-probe-${process.pid}`, 10)))
    s.on('data', (d) => {
      got = Buffer.concat([got, d])
      if (got.length >= 4) {
        if (got[0] === 0x20 && got[3] === 0) s.end(Buffer.from([0xe0, 0]))
        done(got[0] === 0x20 && got[3] === 0)
      }
    })
    s.on('error', () => done(false))
  })
}

/** Wait until the broker answers CONNECT on `port`; fails early if the process exits. */
export async function waitForMqtt(p: Spawned, port: number, timeoutMs: number): Promise<void> {
  let exitedWith: number | string | null = null
  void p.exited.then((c) => {
    exitedWith = c
  })
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (exitedWith !== null) {
      throw new BenchError('BENCH_ERR_BROKER_EXIT', `exited (${exitedWith}) before accepting connections:\n${logTail(p.logPath)}`)
    }
    if (await probe(port)) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new BenchError('BENCH_ERR_BROKER_START', `no CONNACK on port ${port} within ${timeoutMs} ms:\n${logTail(p.logPath)}`)
}
