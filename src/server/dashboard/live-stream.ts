/**
 * One dashboard tab's live stream: Server-Sent Events over a response kept open (GET /api/events). A comment
 * line every HeartbeatMs keeps proxies and the browser from timing it out and finds dead peers; `retry`
 * tells the browser to reconnect after a drop, and every new stream starts from the current state (no
 * replay), so a reconnect is always safe. A peer that stops reading cannot make us buffer: past
 * DropAboveBytes sampled messages are skipped, past CloseAboveBytes the stream is closed.
 */
import type http from 'node:http'

export const StreamLimits = {
  /** Per listener; further requests get 429. */
  maxStreams: 16,
  heartbeatMs: 15_000,
  dropAboveBytes: 64 * 1024,
  closeAboveBytes: 1024 * 1024,
  retryMs: 3000,
} as const

export class LiveStream {
  private readonly heartbeat: NodeJS.Timeout
  private closed = false
  private readonly onClose = new Set<() => void>()

  /**
   * `mayRead`: whether the viewer's ACL lets it read a topic; a `message` event on any other is not sent.
   * `revoked`: asked every second (hub.ts) whether the viewer has lost the right to the dashboard since the
   * stream opened (removed from the password file, $SYS/# taken away by the ACL): it then closes.
   */
  constructor(
    private readonly res: http.ServerResponse,
    readonly mayRead: (topic: string) => boolean = () => true,
    readonly revoked: () => boolean = () => false,
  ) {
    res.statusCode = 200
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8')
    res.setHeader('Cache-Control', 'no-store')
    res.setHeader('X-Accel-Buffering', 'no')
    res.flushHeaders()
    res.write(`retry: ${StreamLimits.retryMs}\n\n`)
    this.heartbeat = setInterval(() => { this.raw(': ping\n\n') }, StreamLimits.heartbeatMs)
    this.heartbeat.unref()
    res.on('close', () => this.close())
    res.on('error', () => this.close())
  }

  get isClosed(): boolean { return this.closed }

  /** Sends one event; `optional` events are skipped while the peer is behind. */
  send(event: string, data: unknown, optional = false): void {
    if (this.closed) return
    if (optional && this.res.writableLength > StreamLimits.dropAboveBytes) return
    this.raw(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
  }

  whenClosed(fn: () => void): void {
    if (this.closed) fn()
    else this.onClose.add(fn)
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.heartbeat)
    if (!this.res.destroyed) this.res.destroy()
    for (const fn of this.onClose) {
      try {
        fn()
      } catch { /* a closing stream's bookkeeping must not throw into a socket event */ }
    }
    this.onClose.clear()
  }

  private raw(text: string): void {
    if (this.closed) return
    if (this.res.writableLength > StreamLimits.closeAboveBytes) {
      this.close()
      return
    }
    this.res.write(text)
  }
}
