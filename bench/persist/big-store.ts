/**
 * The large store of the persistence benches: RETAINED retained messages (64-byte payloads) and SESSIONS
 * persistent sessions, each with one subscription and QUEUED queued QoS 1 messages, written as midge.db
 * (by close(), which writes what is buffered at once).
 */
import { LogStore } from '../../src/persistence/log-store.js'

export function buildStore(dir: string, size: { retained: number; sessions: number; queued: number }): void {
  const { retained: RETAINED, sessions: SESSIONS, queued: QUEUED } = size
  const store = new LogStore({ dir, file: 'midge.db', fsync: false })
  store.load()
  const payload = Buffer.alloc(64, 0x61)
  let id = 1
  for (let i = 0; i < RETAINED; i++) {
    const topic = `site/${i % 100}/device/${i}/state`
    store.messageSaved({ id, topic, payload, qos: 1, retain: true, properties: undefined, expiresAt: 0, origin: `dev-${i}` })
    store.retainedSet(topic, id++)
  }
  let oid = 1
  for (let s = 0; s < SESSIONS; s++) {
    const clientId = `client-${s}`
    store.sessionSaved(clientId, 0xffffffff, undefined, Date.now())
    store.subscriptionAdded(clientId, { key: `cmd/${s}/#`, filter: `cmd/${s}/#`, group: '', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0 })
    for (let q = 0; q < QUEUED; q++) {
      store.messageSaved({ id, topic: `cmd/${s}/set`, payload, qos: 1, retain: false, properties: undefined, expiresAt: 0, origin: 'controller' })
      store.outgoingQueued(clientId, { oid: oid++, messageId: id++, qos: 1, retain: false, subscriptionIds: undefined, packetId: 0, released: false })
    }
  }
  store.close()
}

