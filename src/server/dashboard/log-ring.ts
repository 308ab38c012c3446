/**
 * The dashboard's recent log lines: a fixed-size ring fed as a logger tap (observability/logger.ts), so it
 * holds what the log shows whatever log_dest says, and costs one array store per line.
 */
import type { LogSink } from '../../observability/logger.js'

export const LogRingSize = 500

export class LogRing implements LogSink {
  private readonly lines: string[] = []
  private next = 0
  /** Called for each line after it is stored (the live stream's `log` event); set while a stream is open. */
  onLine: ((line: string) => void) | undefined = undefined

  constructor(private readonly size = LogRingSize) {}

  write(line: string): void {
    if (this.lines.length < this.size) this.lines.push(line)
    else this.lines[this.next] = line
    this.next = (this.next + 1) % this.size
    this.onLine?.(line)
  }

  /** The latest `n` lines, oldest first. */
  recent(n: number): string[] {
    const count = Math.max(0, Math.min(n, this.lines.length))
    const out: string[] = []
    const len = this.lines.length
    // When full, the oldest line sits at `next`; before that, at 0.
    const start = len < this.size ? 0 : this.next
    for (let i = len - count; i < len; i++) out.push(this.lines[(start + i) % len] as string)
    return out
  }
}
