/**
 * Joining a cluster (cluster_redis): loaded by the runtime only when the option is set, so a single node never
 * loads ioredis or anything here.
 */
import type { Broker } from '../broker/broker.js'
import type { Logger } from '../observability/logger.js'
import { Cluster } from './cluster.js'
import { ClusterStore } from './cluster-store.js'
import { DefaultCommitTimeoutMs } from '../persistence/redis-store.js'
import { parseRedisUrl, redisOptions } from './redis-url.js'

export { Cluster } from './cluster.js'
export { ClusterStore } from './cluster-store.js'

/** The key prefix of a cluster's keys and its store's. */
export const ClusterPrefix = 'midge:'

export interface JoinOptions {
  url: string
  nodeId: string | undefined
  logger: Logger
  /** persistence true: the store the broker was given (openClusterStore); sessions move through it. */
  store?: ClusterStore | undefined
}

/** persistence true in a cluster: the Redis store, on its own connection to the cluster's Redis. */
export async function openClusterStore (url: string, nodeId: string, logger: Logger): Promise<ClusterStore> {
  const { Redis } = await import('ioredis')
  // Fails fast while Redis is away (the store keeps its diff), instead of queueing commands; and fails a command
  // Redis leaves unanswered (frozen) after the store's commit timeout, so that a claim or a session's load
  // cannot wait on it for ever (the client is then served here, or refused with Server unavailable).
  const redis = new Redis({ ...redisOptions(parseRedisUrl(url)), enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true, commandTimeout: DefaultCommitTimeoutMs })
  redis.on('error', () => { /* the cluster reports Redis going away, once */ })
  try {
    await redis.connect()
  } catch (err) {
    redis.disconnect()
    throw new Error(`cluster: cannot reach Redis at ${parseRedisUrl(url).display} to read the persistent state: ${(err as Error).message}`)
  }
  return new ClusterStore(redis, ClusterPrefix, nodeId, logger)
}

export async function joinCluster (broker: Broker, o: JoinOptions): Promise<Cluster> {
  const { Redis } = await import('ioredis')
  const cluster = new Cluster(broker, { redis: parseRedisUrl(o.url), nodeId: o.nodeId, prefix: ClusterPrefix, logger: o.logger, sessions: o.store }, Redis)
  if (o.store !== undefined) o.store.reachable = () => cluster.up
  try {
    await cluster.start()
  } catch (err) {
    await cluster.close().catch(() => undefined)
    throw err
  }
  return cluster
}
