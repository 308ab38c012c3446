/**
 * The scenarios of `npm run bench` (issue #9) and their sizes. A plan item is one load
 * configuration, run against every broker; `quick` sizes keep the default set to minutes.
 */
import type { LoadOptions, Scenario } from './load/options.js'

export interface PlanItem {
  /** e.g. 'fanin-q1', the key of the item in the output. */
  id: string
  scenario: Scenario
  qos: 0 | 1
  load: Partial<LoadOptions>
  /** Hard limit for one run of the load generator, seconds. */
  timeout: number
}

export interface PlanFlags {
  scenarios: Scenario[]
  /** QoS levels for fanin (fan-out, latency and conns run at QoS 0). */
  fanInQos: (0 | 1)[]
  quick: boolean
  msgs: number
  conns: number
  duration: number
}

// conns holds 12 s at full size: RSS per *idle* connection, read once the broker has given back the young
// generation the burst grew (observability/young-generation-trim.ts: about 6 s after the burst).
const full = { fanin: 1_000_000, fanout: 20_000, latencyS: 10, conns: 10_000, holdS: 12 }
const quick = { fanin: 100_000, fanout: 2_000, latencyS: 3, conns: 1_000, holdS: 2 }

export function buildPlan(f: PlanFlags): PlanItem[] {
  const size = f.quick ? quick : full
  const items: PlanItem[] = []
  for (const scenario of f.scenarios) {
    switch (scenario) {
      case 'fanin':
        for (const qos of f.fanInQos) {
          const msgs = f.msgs > 0 ? f.msgs : size.fanin
          // Generous: Aedes manages about 10,000 msg/s here, the limit allows for half of that.
          items.push({ id: `fanin-q${qos}`, scenario, qos, load: { msgs, pubs: 16, window: 64 }, timeout: 30 + msgs / 5_000 })
        }
        break
      case 'fanout': {
        const msgs = f.msgs > 0 ? f.msgs : size.fanout
        items.push({ id: 'fanout-q0', scenario, qos: 0, load: { msgs, subs: 100 }, timeout: 30 + (msgs * 100) / 5_000 })
        break
      }
      case 'latency': {
        const duration = f.duration > 0 ? f.duration : size.latencyS
        // Two paces (issue #18): 10k msg/s, where both brokers idle between messages, and 50k, where
        // writes from several publishers land in one turn and flush coalescing shows in the tail.
        items.push({ id: 'latency-q0', scenario, qos: 0, load: { pairs: 10, rate: 10_000, duration, warmup: 1 }, timeout: duration + 40 })
        items.push({ id: 'latency-q0-50k', scenario, qos: 0, load: { pairs: 10, rate: 50_000, duration, warmup: 1 }, timeout: duration + 40 })
        break
      }
      case 'conns': {
        const conns = f.conns > 0 ? f.conns : size.conns
        const hold = f.duration > 0 ? f.duration : size.holdS
        items.push({ id: 'conns', scenario, qos: 0, load: { conns, duration: hold }, timeout: hold + 30 + conns / 500 })
        break
      }
    }
  }
  return items
}
