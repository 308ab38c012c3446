/**
 * Micro benchmark of the hot path: decode and encode a QoS 1 PUBLISH with a 64-byte payload, ours and
 * mqtt-packet's for comparison. One JSON line per measurement on stdout; about 2 s in all.
 * Run: npx tsc -p . && node dist/bench/codec/publish.bench.js
 */
import mqttPacket from 'mqtt-packet'
import { Decoder, encodePublish } from '../../src/protocol/index.js'
import type { Packet, PublishPacket } from '../../src/protocol/index.js'

const PerRun = 1000
const BudgetMs = 450

const publish: PublishPacket = {
  type: 3, topic: 'sensors/building-7/floor-3/temperature', payload: Buffer.alloc(64, 0x61),
  qos: 1, retain: false, dup: false, packetId: 4242, properties: undefined,
}
const wire = encodePublish(publish, 4)
/** 1000 packets back to back, cut into 64 KiB socket-sized chunks. */
const stream = Buffer.concat(Array.from({ length: PerRun }, () => wire))
const chunks: Buffer[] = []
for (let i = 0; i < stream.length; i += 65_536) chunks.push(stream.subarray(i, i + 65_536))

/** Runs fn (doing `ops` operations) until the budget is spent, after a warm-up; returns operations per second. */
function measure (ops: number, fn: () => void): number {
  for (let i = 0; i < 50; i++) fn()
  let done = 0
  const start = process.hrtime.bigint()
  let elapsed = 0
  while (elapsed < BudgetMs) {
    for (let i = 0; i < 20; i++) fn()
    done += 20 * ops
    elapsed = Number(process.hrtime.bigint() - start) / 1e6
  }
  return Math.round(done / (elapsed / 1000))
}

function report (bench: string, opsPerS: number): void {
  process.stdout.write(JSON.stringify({ bench, ops_per_s: opsPerS }) + '\n')
}

let sink = 0
const decoder = new Decoder((p: Packet) => { sink += p.type }, { protocolVersion: 4 })
report('codec.decode.publish', measure(PerRun, () => {
  for (const c of chunks) decoder.push(c)
}))

report('codec.encode.publish', measure(PerRun, () => {
  for (let i = 0; i < PerRun; i++) sink += encodePublish(publish, 4).length
}))

const parser = mqttPacket.parser({ protocolVersion: 4 })
parser.on('packet', (p) => { sink += p.length ?? 0 })
report('mqtt-packet.decode.publish', measure(PerRun, () => {
  for (const c of chunks) parser.parse(c)
}))

const theirs = { cmd: 'publish' as const, topic: publish.topic, payload: publish.payload, qos: 1 as const, retain: false, dup: false, messageId: 4242 }
report('mqtt-packet.encode.publish', measure(PerRun, () => {
  for (let i = 0; i < PerRun; i++) sink += mqttPacket.generate(theirs, { protocolVersion: 4 }).length
}))

if (sink === -1) process.stderr.write('unreachable\n')
