/**
 * restart_timeout: how long a bridge waits before its next connection attempt. One number is a constant
 * delay; two are Mosquitto's "decorrelated jitter" (AWS architecture blog, "Exponential Backoff And
 * Jitter"): each delay is drawn between the base and three times the previous one, capped, and a
 * successful connection starts again from the base. Many bridges restarting after one outage therefore
 * spread out instead of reconnecting in lockstep.
 */
export class RestartBackoff {
  private delay: number

  /** Seconds. cap 0 means a constant `base`. */
  constructor (private readonly base: number, private readonly cap: number, private readonly random: () => number = Math.random) {
    this.delay = base
  }

  /** Seconds to wait before the next attempt. */
  next (): number {
    if (this.cap <= 0) return this.base
    const previous = this.delay
    const span = Math.max(0, previous * 3 - this.base)
    this.delay = Math.min(this.cap, this.base + this.random() * span)
    return this.delay
  }

  reset (): void {
    this.delay = this.base
  }
}
