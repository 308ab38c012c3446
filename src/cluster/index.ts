/**
 * Joining a cluster (cluster_redis): loaded by the runtime only when the option is set, so a single node never
 * loads ioredis or anything here.
 */
import type { Broker } from '../broker/broker.js'
import type { Logger } from '../observability/logger.js'
import { Cluster, type SessionDirectory } from './cluster.js'
import { parseRedisUrl } from './redis-url.js'

export { Cluster } from './cluster.js'

export interface JoinOptions {
  url: string
  nodeId: string | undefined
  logger: Logger
  sessions?: SessionDirectory | undefined
}

export async function joinCluster (broker: Broker, o: JoinOptions): Promise<Cluster> {
  const { Redis } = await import('ioredis')
  const cluster = new Cluster(broker, { redis: parseRedisUrl(o.url), nodeId: o.nodeId, logger: o.logger, sessions: o.sessions }, Redis)
  try {
    await cluster.start()
  } catch (err) {
    await cluster.close().catch(() => undefined)
    throw err
  }
  return cluster
}
