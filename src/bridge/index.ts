/**
 * Bridges to other brokers (mosquitto.conf `connection` blocks): startBridges() runs them beside a Broker,
 * using only its public API (handle() for the local session, publish() for what comes in).
 */
import type { Broker } from '../broker/broker.js'
import type { Logger } from '../observability/logger.js'
import { Bridge } from './bridge.js'
import type { BridgeOptions } from './options.js'

export { Bridge, BridgeState } from './bridge.js'
export type { BridgeStateValue } from './bridge.js'
export type { BridgeAddress, BridgeDirection, BridgeOptions, BridgeTlsOptions, BridgeTlsVersion, BridgeTopicSpec } from './options.js'
export { BridgeTopic, mapIncoming, mapOutgoing, topicSpecProblem } from './topic-map.js'
export { RestartBackoff } from './backoff.js'

export interface RunningBridges {
  readonly bridges: readonly Bridge[]
  /** Stops every bridge (final notifications, DISCONNECT); call before broker.close(). */
  stop(): Promise<void>
}

export function startBridges (broker: Broker, list: readonly BridgeOptions[], logger: Logger): RunningBridges {
  const bridges = list.map((o) => new Bridge(broker, o, logger))
  for (const b of bridges) b.start()
  return {
    bridges,
    async stop () {
      await Promise.all(bridges.map((b) => b.stop()))
    },
  }
}
