/**
 * What a connection needs from whoever runs it: the Controller (every scenario), or the paced
 * publishers' worker thread (latency; see pacer-worker.ts).
 */
import type { Client } from './client.js'
import type { LoadOptions } from './options.js'
import type { Publisher } from './publisher.js'

export interface Host {
  readonly opts: LoadOptions
  /** One read buffer for every connection of the thread (net `onread`). */
  readonly readBuffer: Buffer
  /** performance.now() as of the last tick: keepalive bookkeeping only. */
  coarseNow: number
  sent: number
  acked: number
  /** Send stamp of the batch being encoded (process.hrtime.bigint() split in 32-bit halves). */
  txHi: number
  txLo: number
  stampSend(): void
  running(): boolean
  onReady(c: Client): void
  onClientError(c: Client, msg: string, wasReady: boolean): void
  onPublisherDone(p: Publisher): void
  deferTopUp(p: Publisher): void
}

/** Messages of publisher `i` of `npub` when `total` are shared out: the first ones take the remainder. */
export function quotaOf(total: number, npub: number, i: number): number {
  return Math.floor(total / npub) + (i < total % npub ? 1 : 0)
}
