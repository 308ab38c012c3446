/**
 * The dashboard's bounded parts on their own (server/dashboard/): the last-values map, the log ring, the
 * session table's idle expiry, a live stream whose reader does not read, payloads shown as text or base64.
 */
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import type http from 'node:http'
import { test } from 'node:test'
import { LastValues, payloadView, PayloadViewBytes } from '../../src/server/dashboard/last-values.js'
import { LiveStream, StreamLimits } from '../../src/server/dashboard/live-stream.js'
import { LogRing } from '../../src/server/dashboard/log-ring.js'
import { cookieValue, csrfMatches, SessionStore } from '../../src/server/dashboard/sessions.js'

test('last values: at most `max` topics, the least recently written dropped; payload copies cut to 1 KiB', () => {
  const lv = new LastValues(3)
  for (const t of ['a', 'b', 'c']) lv.record(t, Buffer.from(t), 0, false, 1)
  lv.record('a', Buffer.from('a2'), 1, true, 2)
  lv.record('d', Buffer.alloc(5000, 0x41), 2, false, 3)
  assert.deepEqual([...lv.topics()], ['c', 'a', 'd'])
  assert.equal(lv.get('b'), undefined)
  const d = lv.get('d')
  assert.deepEqual([d?.head.length, d?.size, d?.qos], [PayloadViewBytes, 5000, 2])
  assert.deepEqual(lv.get('a'), { head: Buffer.from('a2'), size: 2, qos: 1, retain: true, at: 2 })
})

test('payloads: UTF-8 as text (a character cut at 1 KiB is dropped whole), anything else as base64', () => {
  assert.deepEqual(payloadView(Buffer.from('héllo'), 6), { payload: 'héllo', base64: false, truncated: false, size: 6 })
  const euros = Buffer.from('€'.repeat(400)) // 1200 bytes, 3 per character: 1024 cuts the 342nd
  const cut = payloadView(euros, euros.length)
  assert.deepEqual([cut.payload, cut.base64, cut.truncated], ['€'.repeat(341), false, true])
  const bin = Buffer.from([0, 0xff, 0x80])
  assert.deepEqual(payloadView(bin, 3), { payload: bin.toString('base64'), base64: true, truncated: false, size: 3 })
})

test('log ring: keeps the latest lines in order, never more than its size', () => {
  const ring = new LogRing(4)
  assert.deepEqual(ring.recent(10), [])
  for (let i = 1; i <= 3; i++) ring.write(`l${i}`)
  assert.deepEqual(ring.recent(10), ['l1', 'l2', 'l3'])
  for (let i = 4; i <= 9; i++) ring.write(`l${i}`)
  assert.deepEqual(ring.recent(10), ['l6', 'l7', 'l8', 'l9'])
  assert.deepEqual(ring.recent(2), ['l8', 'l9'])
})

test('sessions: idle ones expire, use keeps one alive, endUser ends all of a user and runs their onEnd', () => {
  let now = 0
  const store = new SessionStore(() => now, { maxSessions: 3, idleMs: 1000 })
  const a = store.create('alice', '::1')
  const b = store.create('bob', '::1')
  now = 900
  assert.equal(store.get(a.token), a.session)
  now = 1500
  assert.equal(store.get(b.token), undefined, 'bob idle for 1500 ms')
  assert.equal(store.get(a.token), a.session, 'alice used 600 ms ago')
  let ended = 0
  a.session.onEnd.add(() => { ended++ })
  store.create('alice', '::1')
  assert.equal(store.endUser('alice'), 2)
  assert.equal(ended, 1)
  assert.equal(store.size, 0)
  assert.equal(store.get('x'.repeat(1000)), undefined)
  assert.equal(csrfMatches(a.session, a.session.csrf), true)
  assert.equal(csrfMatches(a.session, `${a.session.csrf.slice(1)}`), false)
  assert.equal(cookieValue('a=1; midge_session=tok; b=2', 'midge_session'), 'tok')
})

/** A response whose peer never reads: everything written stays buffered. */
class StalledResponse extends EventEmitter {
  statusCode = 0
  writableLength = 0
  destroyed = false
  readonly headers = new Map<string, string>()
  setHeader(k: string, v: string): void { this.headers.set(k.toLowerCase(), v) }
  flushHeaders(): void {}
  write(text: string): boolean {
    this.writableLength += Buffer.byteLength(text)
    return false
  }
  destroy(): void {
    this.destroyed = true
    this.emit('close')
  }
}

test('a live stream whose reader stalls: optional events stop past 64 KiB buffered, the stream closes past 1 MiB', () => {
  const res = new StalledResponse()
  const stream = new LiveStream(res as unknown as http.ServerResponse)
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  let closed = false
  stream.whenClosed(() => { closed = true })
  const event = { line: 'x'.repeat(1000) }
  while (res.writableLength <= StreamLimits.dropAboveBytes) stream.send('log', event, true)
  const stuck = res.writableLength
  for (let i = 0; i < 100; i++) stream.send('log', event, true)
  assert.equal(res.writableLength, stuck, 'optional events are dropped while the reader is behind')
  while (!closed && res.writableLength <= StreamLimits.closeAboveBytes + 2000) stream.send('client', event)
  assert.equal(closed, true)
  assert.equal(res.destroyed, true)
  assert.ok(res.writableLength <= StreamLimits.closeAboveBytes + 2000)
  stream.send('client', event)
  assert.equal(stream.isClosed, true)
})
