/**
 * The crash tests' broker as a child process (crash-broker.ts), killed with SIGKILL, and their seeded
 * random numbers (the kill moments are random but reproducible from a printed seed).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'

const LAUNCHER = path.resolve(import.meta.dirname, 'crash-broker.js')

export class ChildBroker {
  readonly child: ChildProcess
  readonly log: string[] = []
  readonly exited: Promise<void>
  port = 0

  private constructor(dir: string, port: number, extra: string[]) {
    this.child = spawn(process.execPath, [LAUNCHER, dir, String(port), ...extra], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stderr!.on('data', (d: Buffer) => this.log.push(...d.toString().split('\n').filter((l) => l !== '')))
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()))
  }

  /** extra: more arguments for crash-broker.js (its autosave_on_changes). */
  static async start(dir: string, port: number, extra: string[] = []): Promise<ChildBroker> {
    const b = new ChildBroker(dir, port, extra)
    const line = await new Promise<string>((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => reject(new Error(`the broker did not start within 15 s; log:\n${b.log.join('\n')}`)), 15_000)
      b.child.stdout!.on('data', (d: Buffer) => {
        out += d.toString()
        const m = out.match(/PORT (\d+)\n/)
        if (m !== null) { clearTimeout(timer); resolve(m[1]!) }
      })
      void b.exited.then(() => { clearTimeout(timer); reject(new Error(`the broker exited at start-up; log:\n${b.log.join('\n')}`)) })
    })
    b.port = Number(line)
    return b
  }

  kill9(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
    return this.exited
  }

  stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM')
    return this.exited
  }
}

/** Small seeded PRNG (mulberry32): the kill moments are random but reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let r = Math.imul(a ^ (a >>> 15), 1 | a)
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296
  }
}

