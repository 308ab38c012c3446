/** The Store contract (contract.ts) run against the Redis store, on a Redis of the test's own. */
import { Redis } from 'ioredis'
import { RedisStore } from '../../src/persistence/redis-store.js'
import { redisForFile } from '../helpers/redis-server.js'
import { storeContract } from './contract.js'

const testRedis = redisForFile()
let places = 0

storeContract({
  name: 'RedisStore',
  place: () => {
    // A fresh place is a fresh key prefix; each instance has its own connection, as a restarted broker would.
    const prefix = `contract${++places}:`
    return () => {
      const redis = new Redis(testRedis.server.url, { lazyConnect: false })
      testRedis.track(redis)
      return new RedisStore({ redis, prefix, nodeId: 'n1' })
    }
  },
})
