/**
 * A broker child process for interop tests (mosquitto or Midge, see brokers.ts), configured by a
 * mosquitto.conf written here and watched through its log on stderr: readiness and subscriptions are
 * awaited by matching log lines (with `log_type subscribe` both brokers log "CLIENTID QOS FILTER" for
 * each subscription), never by sleeping.
 */
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'

/** What a test asks of its broker; each runner turns it into its own config lines. */
export interface BrokerOptions {
  /** Extra lines for the first listener (certfile, keyfile...). */
  listener?: string[]
  /** Extra lines for the global section. */
  global?: string[]
  /** Default true. With `users`, clients must log in. */
  allowAnonymous?: boolean
  /** More listeners, each its own lines (certfile...); their ports are in `ports`, after `port`. */
  listeners?: string[][]
  /** A password file with these users (made by the broker's own tool); its path is given to `password_file`. */
  users?: Record<string, string>
}

/** The log types both brokers get: the defaults plus `subscribe`, which the waits below depend on. */
export const LogTypes = ['error', 'warning', 'notice', 'information', 'subscribe'].map((t) => `log_type ${t}`)

/** Global lines common to both brokers: anonymous access and a password file, then the log setup. */
export function securityLines (o: BrokerOptions, passwordFile: string | undefined): string[] {
  return [
    `allow_anonymous ${o.allowAnonymous === false ? 'false' : 'true'}`,
    ...(passwordFile === undefined ? [] : [`password_file ${passwordFile}`]),
    'log_dest stderr',
    ...LogTypes,
  ]
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

export class BrokerProcess {
  private log = ''
  private waiters: Array<{ re: RegExp; resolve: () => void }> = []
  private readonly exited: Promise<void>

  /**
   * `ports` may be filled in later (Midge listens on port 0 and logs the port it got); `dir` is removed on stop.
   */
  constructor (readonly name: string, readonly ports: number[], readonly dir: string, private readonly proc: ChildProcess) {
    proc.stderr!.setEncoding('utf8')
    proc.stderr!.on('data', (d: string) => {
      this.log += d
      this.waiters = this.waiters.filter((w) => {
        if (!w.re.test(this.log)) return true
        w.resolve()
        return false
      })
    })
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()))
  }

  get port (): number {
    return this.ports[0]!
  }

  get output (): string {
    return this.log
  }

  /** Resolves once the log matches (already, or later); rejects if the broker exits first. */
  waitForLog (re: RegExp, timeoutMs = 10_000): Promise<void> {
    if (re.test(this.log)) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const fail = (why: string): void => {
        this.waiters = this.waiters.filter((w) => w !== waiter)
        reject(new Error(`${this.name}: log never matched ${re} (${why}):\n${this.log}`))
      }
      const timer = setTimeout(() => fail(`${timeoutMs} ms`), timeoutMs)
      void this.exited.then(() => { clearTimeout(timer); fail(`exited with ${this.proc.exitCode ?? this.proc.signalCode}`) })
      const waiter = { re, resolve: () => { clearTimeout(timer); resolve() } }
      this.waiters.push(waiter)
    })
  }

  /**
   * Resolves once client `id` has subscribed to `filter`. Both brokers log "TIMESTAMP: CLIENTID QOS FILTER"
   * after storing the subscription; only the timestamp differs (mosquitto: epoch seconds, Midge: ISO 8601).
   */
  waitForSubscription (id: string, filter: string): Promise<void> {
    return this.waitForLog(new RegExp(`: ${escapeRe(id)} \\d ${escapeRe(filter)}\\n`))
  }

  async stop (): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM')
      await this.exited
    }
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}
