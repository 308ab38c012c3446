/**
 * What the bench needs from a broker under test: a check that it can run here (naming what to
 * install when not), and a way to start it on a port with an equivalent configuration:
 * loopback listener, anonymous access, queues deep enough never to drop a message of a run,
 * Nagle off, no per-connection logging.
 */
import { readFileSync } from 'node:fs'
import type { Spawned } from './process.js'

export interface StartContext {
  port: number
  /** A private directory for config and log files. */
  dir: string
  /** CPU to pin the broker to (-1: none). */
  core: number
  /** RLIMIT_NOFILE to raise to before exec (0 = leave it). */
  nofile: number
}

export interface BrokerDef {
  readonly name: string
  /** null when the broker can run here, else what is missing and how to get it. */
  missing(): string | null
  start(ctx: StartContext): Spawned
  /** One line saying which version runs, for the docs and the log. */
  version(): string
}

/** Repository root, from dist/bench/brokers/. */
export const ROOT = new URL('../../../', import.meta.url).pathname

/** Messages a subscriber may have queued: more than any run publishes, so nothing is dropped. */
export const MAX_QUEUED = 10_000_000

/**
 * uid and gid of the Debian package's `mosquitto` user, which both brokers drop to when started as root
 * (a store they write must be theirs); undefined when not root or there is no such user.
 */
export function mosquittoUser(): { uid: number; gid: number } | undefined {
  if (process.geteuid?.() !== 0) return undefined
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('mosquitto:'))
  const f = line?.split(':')
  return f === undefined ? undefined : { uid: Number(f[2]), gid: Number(f[3]) }
}
