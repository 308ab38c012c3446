/**
 * The one runner of Midge's real binary, `node bin/midge.js ARGS`, for every test that needs the process (a
 * broker, `midge check`, `midge -d`): it follows the output (stdout + stderr) line by line, so tests wait for log
 * events instead of sleeping, and run() takes a command to its end with a bound on how long that may take.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { resolve } from 'node:path'

export const MIDGE = resolve(import.meta.dirname, '../../../bin/midge.js')

export interface Opened {
  family: 'ipv4' | 'ipv6'
  tls: boolean
  address: string
  port: number
  listener: string
}

export class MidgeProcess {
  readonly child: ChildProcess
  readonly lines: string[] = []
  private waiters: Array<{ re: RegExp; from: number; resolve: (m: RegExpMatchArray) => void }> = []
  readonly exited: Promise<number | null>

  /** `wrap`: a command that runs `node bin/midge.js ARGS` itself (e.g. in a namespace), given as its leading arguments. */
  constructor(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; wrap?: string[] } = {}) {
    const [cmd, ...pre] = opts.wrap ?? [process.execPath]
    const argv = opts.wrap === undefined ? [MIDGE, ...args] : [...pre, process.execPath, MIDGE, ...args]
    this.child = spawn(cmd as string, argv, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] })
    let partial = ''
    const onData = (d: Buffer): void => {
      partial += d.toString()
      let nl: number
      while ((nl = partial.indexOf('\n')) !== -1) {
        this.lines.push(partial.slice(0, nl))
        partial = partial.slice(nl + 1)
        this.check()
      }
    }
    this.child.stdout?.on('data', onData)
    this.child.stderr?.on('data', onData)
    this.exited = new Promise((done) => this.child.on('close', (code) => done(code)))
  }

  /**
   * `midge ARGS` to its end: the exit status and all it printed, both streams together (`out`) and apart.
   * `until: 'exit'` stops waiting when the process ends even if a child it forked keeps the pipes open
   * (`midge -d`). A `wrap` command that cannot start reads as status null with the reason in `out`. Killed,
   * and rejected, after `timeoutMs`.
   */
  static async run(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; wrap?: string[]; until?: 'close' | 'exit'; timeoutMs?: number } = {}): Promise<{ code: number | null; out: string; stdout: string; stderr: string }> {
    const m = new MidgeProcess(args, opts)
    const r = { code: null as number | null, out: '', stdout: '', stderr: '' }
    m.child.stdout?.on('data', (d: Buffer) => { r.stdout += d.toString(); r.out += d.toString() })
    m.child.stderr?.on('data', (d: Buffer) => { r.stderr += d.toString(); r.out += d.toString() })
    const timeoutMs = opts.timeoutMs ?? 20_000
    let timer: NodeJS.Timeout | undefined
    const code = await new Promise<number | null>((resolve, reject) => {
      m.child.once('error', (err) => { r.out += `cannot run ${(opts.wrap ?? [process.execPath])[0]}: ${err.message}\n`; resolve(null) })
      m.child.once(opts.until === 'exit' ? 'exit' : 'close', (c: number | null) => resolve(c))
      timer = setTimeout(() => {
        m.child.kill('SIGKILL')
        reject(new Error(`midge ${args.join(' ')} did not finish within ${timeoutMs} ms; output:\n${r.out}`))
      }, timeoutMs)
    }).finally(() => clearTimeout(timer))
    return { ...r, code }
  }

  private check(): void {
    this.waiters = this.waiters.filter((w) => {
      for (let i = w.from; i < this.lines.length; i++) {
        const m = (this.lines[i] as string).match(w.re)
        if (m !== null) { w.resolve(m); return false }
      }
      return true
    })
  }

  /** Resolves with the first log line matching `re` at index `from` or later (default: any line so far). */
  waitFor(re: RegExp, from = 0, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    return new Promise((resolveMatch, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}; log so far:\n${this.lines.join('\n')}`)), timeoutMs)
      const w = { re, from, resolve: (m: RegExpMatchArray) => { clearTimeout(timer); resolveMatch(m) } }
      this.waiters.push(w)
      this.check()
      void this.exited.then(() => {
        if (!this.waiters.includes(w)) return
        clearTimeout(timer)
        reject(new Error(`midge exited while waiting for ${re}; log:\n${this.lines.join('\n')}`))
      })
    })
  }

  /** Every listener socket the broker reported opening, once it has opened `count` of them. */
  async opened(count: number): Promise<Opened[]> {
    const re = /Opening (ipv4|ipv6) (TLS )?listen socket on (\S+) port (\d+) \(listener ([^)]+)\)\./
    for (;;) {
      const found = this.lines.map((l) => l.match(re)).filter((m): m is RegExpMatchArray => m !== null)
      if (found.length >= count) {
        return found.map((m) => ({ family: m[1] as 'ipv4' | 'ipv6', tls: m[2] !== undefined, address: m[3] as string, port: Number(m[4]), listener: m[5] as string }))
      }
      await this.waitFor(re, this.lines.length)
    }
  }

  /**
   * `p`, or a rejection naming `what` and carrying the broker's log if the broker exits first or nothing
   * happens for `timeoutMs` (a client that never hears back must fail the test, not hang it).
   */
  guard<T>(p: Promise<T>, what: string, timeoutMs = 15_000): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const fail = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${timeoutMs} ms; log:\n${this.lines.join('\n')}`)), timeoutMs)
      void this.exited.then((code) => reject(new Error(`${what}: midge exited (status ${code}); log:\n${this.lines.join('\n')}`)))
    })
    fail.catch(() => {})
    return Promise.race([p, fail]).finally(() => clearTimeout(timer))
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM')
    return this.exited
  }
}
