/** RSS checks for attack tests that must fail as soon as the broker's memory runs away. */
import type { AttackTarget } from './harness.js'

export const MB = 1024 * 1024

/**
 * Awaits p while sampling the broker's RSS every 20 ms; fails as soon as it has grown by `bound` bytes over
 * `before` (or the broker is gone), so a blow-up fails the test at once rather than by a later timeout.
 */
export function withinRss<T>(t: AttackTarget, before: number, bound: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const check = (): void => {
    if (!t.alive) throw new Error('midge is down')
    const grown = t.rss() - before
    if (grown >= bound) throw new Error(`RSS grew by ${Math.round(grown / MB)} MB (bound ${Math.round(bound / MB)} MB)`)
  }
  const blowUp = new Promise<never>((_resolve, reject) => {
    timer = setInterval(() => {
      try { check() } catch (err) { reject(err) }
    }, 20)
  })
  return Promise.race([p.then((v) => { check(); return v }), blowUp]).finally(() => clearInterval(timer))
}
