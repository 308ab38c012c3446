/**
 * Issue #12 item 2: the will is published from the socket-close handler (Connection.close -> connectionClosed
 * -> publishWill) and from the sweep timer. An error there used to escape the event handler and end the
 * process; now it is logged with the client id, and the rest of the close (session end or expiry) still runs.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Authorizer, ClientIdentity } from '../../src/auth/types.js'
import { Logger, type LogType } from '../../src/observability/logger.js'
import { setup } from '../helpers/broker-harness.js'

/** Allows everything, but throws on the second canPublish for `topic` (the first is the CONNECT's check). */
function throwingOnWill(topic: string): Authorizer {
  let calls = 0
  return {
    canPublish: (_c: ClientIdentity, t: string) => {
      if (t === topic && ++calls > 1) throw new Error('authorizer backend unavailable')
      return true
    },
    canSubscribe: () => true,
    canRead: () => true,
  }
}

test('[MQTT-3.1.2-8] an error while publishing the will on close is logged with the client id; the broker and the session bookkeeping carry on', async (t) => {
  const lines: Array<[LogType, string]> = []
  const logger = new Logger({ types: ['error'], timestamp: false, sinks: [{ write: (line, type) => { lines.push([type, line]) } }] })
  const h = setup(t, { logger, authorizer: throwingOnWill('will/boom') })
  const watch = await h.client(4, { clientId: 'watch' })
  await watch.subscribe('#')
  const c = await h.client(4, { clientId: 'boom', will: { topic: 'will/boom', payload: Buffer.from('x'), qos: 0, retain: false } })
  c.destroy()
  await c.waitClosed()
  await watch.sync()
  assert.ok(lines.some(([type, l]) => type === 'error' && l.includes('boom') && l.includes('authorizer backend unavailable')), `logged: ${JSON.stringify(lines)}`)
  assert.equal(h.broker.sessions.has('boom'), false, 'the clean session still ended')
  // The broker still serves: a new client with the same id connects and a message goes round.
  const again = await h.client(4, { clientId: 'boom' })
  again.publish('after', 'still here')
  assert.equal((await watch.publishOn('after')).payload.toString(), 'still here')
})
