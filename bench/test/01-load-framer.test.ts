import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Framer, MalformedError, type FrameSink } from '../load/framer.js'

class Collect implements FrameSink {
  frames: string[] = []
  onFrame(first: number, buf: Buffer, start: number, end: number): void {
    this.frames.push(`${first.toString(16)}:${buf.subarray(start, end).toString('hex')}`)
  }
}

// Three packets written out by hand: PUBACK id 0x0102, a PUBLISH whose Remaining Length (130)
// takes two bytes, and PINGRESP.
const puback = Buffer.from([0x40, 0x02, 0x01, 0x02])
const publishBody = Buffer.alloc(130, 0x61)
const publish = Buffer.concat([Buffer.from([0x30, 0x82, 0x01]), publishBody])
const pingresp = Buffer.from([0xd0, 0x00])
const stream = Buffer.concat([puback, publish, pingresp])
const expected = ['40:0102', `30:${publishBody.toString('hex')}`, 'd0:']

test('framer: whole stream in one read', () => {
  const sink = new Collect()
  new Framer().feed(stream, 0, stream.length, sink)
  assert.deepEqual(sink.frames, expected)
})

test('framer: the stream cut at every offset into two reads', () => {
  for (let cut = 0; cut <= stream.length; cut++) {
    const sink = new Collect()
    const f = new Framer()
    f.feed(stream, 0, cut, sink)
    f.feed(stream, cut, stream.length, sink)
    assert.deepEqual(sink.frames, expected, `cut at ${cut}`)
  }
})

test('framer: one byte per read', () => {
  const sink = new Collect()
  const f = new Framer()
  for (let i = 0; i < stream.length; i++) f.feed(stream, i, i + 1, sink)
  assert.deepEqual(sink.frames, expected)
})

test('framer: a read buffer reused between reads does not corrupt a stashed tail', () => {
  const sink = new Collect()
  const f = new Framer()
  const shared = Buffer.alloc(stream.length)
  stream.copy(shared, 0, 0, 10)
  f.feed(shared, 0, 10, sink)
  shared.fill(0xee)
  stream.copy(shared, 0, 10)
  f.feed(shared, 0, stream.length - 10, sink)
  assert.deepEqual(sink.frames, expected)
})

test('framer: a Remaining Length longer than four bytes is malformed', () => {
  const bad = Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])
  assert.throws(() => new Framer().feed(bad, 0, bad.length, new Collect()), MalformedError)
})
