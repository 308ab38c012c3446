/**
 * What the subscribers of the Mosquitto scenario must receive, checked the same way against Midge after the
 * import (30-*) and against mosquitto itself restarted on its own file (34-*), so the expectations are
 * Mosquitto's behaviour, not Midge's.
 */
import assert from 'node:assert/strict'
import { PacketType } from '../../src/protocol/constants.js'
import type { PublishPacket } from '../../src/protocol/packets.js'
import type { TestClient } from '../helpers/broker-harness.js'
import { LongExpiry, type Queued } from './mosquitto-scenario.js'

export /** The next `n` PUBLISH packets, in arrival order. */
async function publishes(c: TestClient, n: number): Promise<PublishPacket[]> {
  const out: PublishPacket[] = []
  while (out.length < n) out.push(await c.waitFor(PacketType.Publish, () => true, 10_000))
  return out
}

export function assertQueued(got: PublishPacket[], want: Queued[], v5: boolean, who: string): void {
  assert.deepEqual(got.map((p) => p.topic), want.map((q) => q.topic), `${who}: topics in Mosquitto's queue order`)
  for (const [i, q] of want.entries()) {
    const p = got[i]!
    assert.ok(p.payload.equals(q.payload), `${who} ${q.topic}: payload`)
    assert.equal(p.qos, q.qos, `${who} ${q.topic}: QoS`)
    assert.equal(p.dup, false, `${who} ${q.topic}: never sent before, so no DUP`)
    // A 3.1.1 subscriber gets live messages with RETAIN 0; the v5 one asked for Retain As Published.
    assert.equal(p.retain, v5 && q.retain, `${who} ${q.topic}: RETAIN`)
    if (!v5) continue
    assert.deepEqual(p.properties?.subscriptionIdentifiers, [42], `${who} ${q.topic}: subscription identifier`)
    assert.deepEqual(p.properties?.userProperties, q.properties?.userProperties, `${who} ${q.topic}: user properties`)
    assert.equal(p.properties?.contentType, q.properties?.contentType, `${who} ${q.topic}: content type`)
    assert.equal(p.properties?.responseTopic, q.properties?.responseTopic, `${who} ${q.topic}: response topic`)
    assert.deepEqual(p.properties?.correlationData, q.properties?.correlationData, `${who} ${q.topic}: correlation data`)
    assert.equal(p.properties?.payloadFormatIndicator, q.properties?.payloadFormatIndicator, `${who} ${q.topic}: payload format`)
    if (q.properties?.messageExpiryInterval !== undefined) {
      const left = p.properties?.messageExpiryInterval ?? 0
      assert.ok(left > LongExpiry - 600 && left <= LongExpiry, `${who} ${q.topic}: expiry counts down from Mosquitto's (${left})`)
    }
  }
}

export async function ackAll(c: TestClient, ps: PublishPacket[]): Promise<void> {
  for (const p of ps) await c.ack(p)
}

