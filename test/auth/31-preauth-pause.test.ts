/**
 * Nothing is read from a connection while its CONNECT is authenticated (issue #12, item 5), in-process with
 * an authenticator the test releases by hand: the stream is paused until CONNACK, then what the client
 * sent meanwhile is handled in order, and a refused client's connection still closes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { AuthRequest, AuthResult, Authenticator } from '../../src/auth/types.js'
import { ConnState } from '../../src/broker/conn-state.js'
import { PacketType } from '../../src/protocol/constants.js'
import { setup } from '../helpers/broker-harness.js'

class Gate implements Authenticator {
  readonly held: Array<(r: AuthResult) => void> = []
  authenticate(_req: AuthRequest): Promise<AuthResult> {
    return new Promise((settle) => this.held.push(settle))
  }
}

test('the connection is paused while its CONNECT is authenticated; what came meanwhile is handled after CONNACK', async (t) => {
  const gate = new Gate()
  const h = setup(t, { authenticator: gate })
  const c = h.raw(4)
  c.send(c.connectPacket({ clientId: 'held', username: 'u', password: Buffer.from('p') }))
  await new Promise((r) => setImmediate(r))
  const conn = [...h.broker.connections][0]!
  assert.equal(conn.state, ConnState.Authenticating)
  assert.equal(conn.stream.isPaused(), true, 'not read while authenticating')
  // Sent while paused: stays unread (in the stream) until CONNACK.
  c.send({ type: PacketType.Subscribe, packetId: 7, subscriptions: [{ topicFilter: 'a/b', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }] })
  c.send({ type: PacketType.Pingreq })
  await new Promise((r) => setImmediate(r))
  assert.equal(c.history.length, 0, 'nothing answered before the check is done')
  gate.held[0]!({ ok: true, username: 'u' })
  const ack = await c.next(PacketType.Connack)
  assert.equal(ack.reasonCode, 0)
  assert.equal((await c.next(PacketType.Suback)).packetId, 7)
  await c.next(PacketType.Pingresp)
  assert.equal(conn.stream.isPaused(), false)
})

test('a client refused after an asynchronous check is closed, though its stream was paused', async (t) => {
  const gate = new Gate()
  const h = setup(t, { authenticator: gate })
  const c = h.raw(5)
  c.send(c.connectPacket({ clientId: 'refused', username: 'u', password: Buffer.from('p') }))
  await new Promise((r) => setImmediate(r))
  c.send({ type: PacketType.Pingreq })
  gate.held[0]!({ ok: false, reason: 'busy', detail: 'test' })
  const ack = await c.next(PacketType.Connack)
  assert.equal(ack.reasonCode, 0x89, 'v5: Server busy')
  await c.waitClosed()
})
