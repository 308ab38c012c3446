/**
 * persistence true in a cluster: the Redis store (persistence/redis-store.ts) on a connection of its own,
 * tolerant of Redis going away. A commit that failed would stop the broker (a file store that cannot be
 * written must not acknowledge); a cluster node instead serves its local clients while Redis is unreachable
 * (docs/cluster.md): its commits then resolve at once, the store keeps every change in its diff, and the
 * first commit after Redis is back sends them all (the diff holds final values, so that is correct whether
 * or not Redis had applied a commit cut off by the outage).
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../observability/logger.js'
import { RedisStore } from '../persistence/redis-store.js'

export class ClusterStore extends RedisStore {
  /** Set by the cluster when it joins: whether Redis answers now. */
  reachable: () => boolean = () => true
  private readonly connection: Redis
  private readonly log: Logger

  constructor (redis: Redis, prefix: string, nodeId: string, log: Logger) {
    super({ redis, prefix, nodeId })
    this.connection = redis
    this.log = log
  }

  override commit (): Promise<void> {
    if (!this.reachable()) return Promise.resolve()
    return super.commit().catch((err: unknown) => {
      // Kept for the next commit by the store; the cluster has said (once) that Redis is away.
      this.log.debug(`Cluster: store commit deferred: ${(err as Error).message}`)
    })
  }

  override async close (): Promise<void> {
    if (this.reachable()) await super.close().catch(() => undefined)
    this.connection.disconnect()
  }
}
