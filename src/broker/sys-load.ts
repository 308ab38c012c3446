/**
 * Mosquitto's $SYS/broker/load/... averages: each interval, the count's change is scaled to a rate per
 * minute and folded into three exponentially damped averages whose time constants are 1, 5 and 15 minutes
 * (the Unix load average's recipe, with the decay computed from the real time since the last update so a
 * late timer does not skew it). Published as "%.2f".
 */
const Windows = [60, 300, 900] as const
export const LoadWindowNames = ['1min', '5min', '15min'] as const

export class LoadAverage {
  readonly values = [0, 0, 0]
  private last: number

  constructor(start: number) {
    this.last = start
  }

  /** Folds in the counter's current total, `seconds` after the previous update. */
  update(total: number, seconds: number): void {
    const delta = total - this.last
    this.last = total
    if (seconds <= 0) return
    const perMinute = (delta * 60) / seconds
    for (let i = 0; i < Windows.length; i++) {
      const decay = Math.exp(-seconds / (Windows[i] as number))
      this.values[i] = perMinute + decay * ((this.values[i] as number) - perMinute)
    }
  }
}
