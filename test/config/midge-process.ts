/**
 * Runs `node bin/midge.js ARGS` as a child process and follows its log (stdout + stderr) line by line,
 * so tests wait for log events instead of sleeping.
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

  constructor(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.child = spawn(process.execPath, [MIDGE, ...args], { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
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
