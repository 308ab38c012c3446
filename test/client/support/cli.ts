/**
 * Runs the client commands (`midge pub/sub`, mosquitto_pub/sub) as child processes, capturing bytes and exit codes;
 * brokers run through test/helpers/midge-process.ts.
 */
import { spawn } from 'node:child_process'
import { MIDGE } from '../../helpers/midge-process.js'


export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: Buffer
  stderr: string
}

export interface RunOptions {
  stdin?: Buffer | string
  env?: NodeJS.ProcessEnv
  /** Failure guard only: the process is killed and the run rejected past it. */
  timeoutMs?: number
}

export interface Running {
  result: Promise<RunResult>
  kill(signal?: NodeJS.Signals): void
}

export function start (cmd: string, args: string[], o: RunOptions = {}): Running {
  const child = spawn(cmd, args, { env: { ...process.env, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  let err = ''
  child.stdout.on('data', (d: Buffer) => out.push(d))
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d: string) => { err += d })
  child.stdin.on('error', () => {}) // a program that exits before reading stdin is not a test failure here
  if (o.stdin !== undefined) child.stdin.end(o.stdin)
  else child.stdin.end()
  const timeoutMs = o.timeoutMs ?? 20_000
  const result = new Promise<RunResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${timeoutMs} ms; stderr: ${err}`))
    }, timeoutMs)
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      // A missing peer is a failure that names its package, never a skip.
      reject(e.code === 'ENOENT' && cmd.startsWith('mosquitto_') ? new Error(`${cmd} is missing: install the Debian package mosquitto-clients`, { cause: e }) : e)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err })
    })
  })
  return { result, kill: (s = 'SIGTERM') => { child.kill(s) } }
}

export function run (cmd: string, args: string[], o: RunOptions = {}): Promise<RunResult> {
  return start(cmd, args, o).result
}

export function midge (args: string[], o: RunOptions = {}): Running {
  return start(process.execPath, [MIDGE, ...args], o)
}

export function runMidge (args: string[], o: RunOptions = {}): Promise<RunResult> {
  return midge(args, o).result
}
