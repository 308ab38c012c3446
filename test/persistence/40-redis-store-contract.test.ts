/** The Store contract (contract.ts) run against the Redis store, on a Redis of the test's own. */
import { after, before } from 'node:test'
import { Redis } from 'ioredis'
import { RedisStore } from '../../src/persistence/redis-store.js'
import { TestRedis } from '../helpers/redis-server.js'
import { storeContract } from './contract.js'

let server: TestRedis | undefined
const clients: Redis[] = []
let places = 0

before(async () => {
  server = await TestRedis.start()
})

after(async () => {
  for (const c of clients) c.disconnect()
  await server?.close()
})

storeContract({
  name: 'RedisStore',
  place: () => {
    // A fresh place is a fresh key prefix; each instance has its own connection, as a restarted broker would.
    const prefix = `contract${++places}:`
    return () => {
      const redis = new Redis(server!.url, { lazyConnect: false })
      clients.push(redis)
      return new RedisStore({ redis, prefix, nodeId: 'n1' })
    }
  },
})
