/** The Store contract (contract.ts) run against the embedded append-only LogStore. */
import { LogStore } from '../../src/persistence/log-store.js'
import { storeContract } from './contract.js'
import { tempDir } from './tmp-dir.js'

storeContract({
  name: 'LogStore',
  place: (t) => {
    const dir = tempDir(t)
    return () => new LogStore({ dir, file: 'midge.db', fsync: false })
  },
})

storeContract({
  name: 'LogStore with fsync',
  place: (t) => {
    const dir = tempDir(t)
    return () => new LogStore({ dir, file: 'midge.db', fsync: true })
  },
})
