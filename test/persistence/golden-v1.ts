/**
 * Store format version 1, written out by hand: an encoder that shares no code with
 * src/persistence (own framing, own CRC-32, own PUBLISH bytes), and the operation list the golden
 * files in test/fixtures/persistence/ are made of. make-golden-v1.ts writes the files from these;
 * 02-log-store-golden-v1.test.ts checks that LogStore reads them (expected state written literally)
 * and that LogStore still writes the same bytes for the same operations.
 *
 * Version 1 layout (all integers big-endian):
 *   file   = "MIDGEDB\0" u32(1) record*
 *   record = u32 bodyLength, u32 crc32(body), body
 *   body   = u8 type, fields
 *   str    = u32 byteLength, UTF-8      bytes = u32 length, bytes      ids and times = f64
 *   message bodies and will messages are MQTT 5 PUBLISH packets (packet id 1 when QoS > 0).
 */

export const RecordType = {
  Session: 1, SessionEnd: 2, Sub: 3, Unsub: 4, Message: 5, Retain: 6, RetainClear: 7, OutQueued: 8,
  OutSent: 9, OutReleased: 10, OutDone: 11, InQos2: 12, InQos2Done: 13, Will: 14, WillClear: 15,
} as const

/** A PUBLISH as the golden files hold it; only the properties the files use. */
export interface GoldenPublish {
  topic: string
  payload: Buffer
  qos: 0 | 1 | 2
  retain: boolean
  payloadFormatIndicator?: number
  messageExpiryInterval?: number
  contentType?: string
  userProperties?: Array<[string, string]>
}

export type Op =
  | ['sessionSaved', string, number, string | undefined, number]
  | ['sessionEnded', string]
  | ['subscriptionAdded', string, { key: string; filter: string; group: string; qos: 0 | 1 | 2; noLocal: boolean; retainAsPublished: boolean; retainHandling: 0 | 1 | 2; subscriptionId: number }]
  | ['subscriptionRemoved', string, string]
  | ['messageSaved', number, number, string, GoldenPublish]
  | ['retainedSet', string, number]
  | ['retainedCleared', string]
  | ['outgoingQueued', string, number, number, 0 | 1 | 2, boolean, number[] | undefined]
  | ['outgoingSent', string, number, number]
  | ['outgoingReleased', string, number]
  | ['outgoingDone', string, number]
  | ['incomingQos2Added', string, number]
  | ['incomingQos2Released', string, number]
  | ['willSaved', string, number, number, GoldenPublish]
  | ['willCleared', string]

/** Every record type at least once; the expected result is spelled out in the golden test. */
export const goldenOpsV1: Op[] = [
  ['sessionSaved', 'sub-1', 3600, 'alice', 1_700_000_000_000],
  ['subscriptionAdded', 'sub-1', { key: 'sensors/+/temp', filter: 'sensors/+/temp', group: '', qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 1, subscriptionId: 42 }],
  ['subscriptionAdded', 'sub-1', { key: '$share/grp/jobs/#', filter: 'jobs/#', group: 'grp', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0 }],
  ['subscriptionAdded', 'sub-1', { key: 'tmp/x', filter: 'tmp/x', group: '', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 2, subscriptionId: 5 }],
  ['subscriptionRemoved', 'sub-1', 'tmp/x'],
  ['messageSaved', 1, 0, 'pub-1', { topic: 'sensors/a/temp', payload: Buffer.from('21.5'), qos: 1, retain: false }],
  ['messageSaved', 2, 1_900_000_000_000, 'pub-2', { topic: 'status/door', payload: Buffer.from('open'), qos: 1, retain: true, payloadFormatIndicator: 1, messageExpiryInterval: 3600, contentType: 'text/plain', userProperties: [['k', 'v'], ['k', 'w']] }],
  ['retainedSet', 'status/door', 2],
  ['messageSaved', 3, 0, '', { topic: 'old/retained', payload: Buffer.from('x'), qos: 0, retain: true }],
  ['retainedSet', 'old/retained', 3],
  ['retainedCleared', 'old/retained'],
  ['messageSaved', 4, 0, 'pub-1', { topic: 'sensors/b/temp', payload: Buffer.from([0x00, 0xff, 0x10]), qos: 2, retain: false }],
  ['outgoingQueued', 'sub-1', 1, 1, 1, false, [42]],
  ['outgoingQueued', 'sub-1', 2, 4, 2, false, [42, 7]],
  ['outgoingQueued', 'sub-1', 3, 1, 1, false, undefined],
  ['outgoingQueued', 'sub-1', 4, 4, 2, true, undefined],
  ['outgoingSent', 'sub-1', 2, 10],
  ['outgoingSent', 'sub-1', 1, 11],
  ['outgoingReleased', 'sub-1', 2],
  ['outgoingSent', 'sub-1', 3, 12],
  ['outgoingDone', 'sub-1', 3],
  ['incomingQos2Added', 'sub-1', 7],
  ['incomingQos2Added', 'sub-1', 65535],
  ['incomingQos2Released', 'sub-1', 7],
  ['sessionSaved', 'gone', 60, undefined, 0],
  ['subscriptionAdded', 'gone', { key: 'a', filter: 'a', group: '', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: 0 }],
  ['sessionEnded', 'gone'],
  ['sessionSaved', 'willer', 0xffffffff, undefined, 1_700_000_001_000],
  ['willSaved', 'willer', 1_700_000_031_000, 30, { topic: 'wills/willer', payload: Buffer.from('offline'), qos: 1, retain: true, contentType: 'text/plain' }],
  ['sessionSaved', 'open-will', 600, 'bob', 0],
  ['willSaved', 'open-will', 0, 0, { topic: 'wills/open', payload: Buffer.alloc(0), qos: 0, retain: false }],
  ['sessionSaved', 'no-will', 600, undefined, 0],
  ['willSaved', 'no-will', 0, 0, { topic: 'wills/none', payload: Buffer.from('n'), qos: 2, retain: false }],
  ['willCleared', 'no-will'],
]

// ---- the independent encoder ----------------------------------------------------------------------

const crcTable: number[] = []
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? (0xedb88320 ^ (c >>> 1)) >>> 0 : c >>> 1
  crcTable.push(c >>> 0)
}

export function crc32Ieee(bytes: Buffer): number {
  let c = 0xffffffff
  for (const b of bytes) c = (crcTable[(c ^ b) & 0xff]! ^ (c >>> 8)) >>> 0
  return (c ^ 0xffffffff) >>> 0
}

const u8 = (v: number): Buffer => Buffer.from([v])
const u16 = (v: number): Buffer => Buffer.from([v >> 8, v & 0xff])
function u32(v: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32BE(v); return b }
function f64(v: number): Buffer { const b = Buffer.alloc(8); b.writeDoubleBE(v); return b }
const str = (s: string): Buffer => { const b = Buffer.from(s, 'utf8'); return Buffer.concat([u32(b.length), b]) }
const bytes = (b: Buffer): Buffer => Buffer.concat([u32(b.length), b])
const mqttStr = (s: string): Buffer => { const b = Buffer.from(s, 'utf8'); return Buffer.concat([u16(b.length), b]) }

function varint(n: number): Buffer {
  const out: number[] = []
  do {
    let d = n % 128
    n = Math.floor(n / 128)
    if (n > 0) d |= 0x80
    out.push(d)
  } while (n > 0)
  return Buffer.from(out)
}

/** An MQTT 5 PUBLISH, properties in identifier order (as MQTT 5 section 2.2.2.2 numbers them). */
export function publishV5(p: GoldenPublish): Buffer {
  const props: Buffer[] = []
  if (p.payloadFormatIndicator !== undefined) props.push(u8(0x01), u8(p.payloadFormatIndicator))
  if (p.messageExpiryInterval !== undefined) props.push(u8(0x02), u32(p.messageExpiryInterval))
  if (p.contentType !== undefined) props.push(u8(0x03), mqttStr(p.contentType))
  for (const [k, v] of p.userProperties ?? []) props.push(u8(0x26), mqttStr(k), mqttStr(v))
  const propBytes = Buffer.concat(props)
  const variable = Buffer.concat([mqttStr(p.topic), p.qos > 0 ? u16(1) : Buffer.alloc(0), varint(propBytes.length), propBytes, p.payload])
  return Buffer.concat([u8(0x30 | (p.qos << 1) | (p.retain ? 1 : 0)), varint(variable.length), variable])
}

function body(op: Op): Buffer {
  const T = RecordType
  switch (op[0]) {
    case 'sessionSaved': return Buffer.concat([u8(T.Session), str(op[1]), u32(op[2]), op[3] === undefined ? u8(0) : Buffer.concat([u8(1), str(op[3])]), f64(op[4])])
    case 'sessionEnded': return Buffer.concat([u8(T.SessionEnd), str(op[1])])
    case 'subscriptionAdded': {
      const s = op[2]
      const flags = (s.noLocal ? 1 : 0) | (s.retainAsPublished ? 2 : 0) | (s.retainHandling << 2)
      return Buffer.concat([u8(T.Sub), str(op[1]), str(s.key), str(s.filter), str(s.group), u8(s.qos), u8(flags), u32(s.subscriptionId)])
    }
    case 'subscriptionRemoved': return Buffer.concat([u8(T.Unsub), str(op[1]), str(op[2])])
    case 'messageSaved': return Buffer.concat([u8(T.Message), f64(op[1]), f64(op[2]), str(op[3]), bytes(publishV5(op[4]))])
    case 'retainedSet': return Buffer.concat([u8(T.Retain), str(op[1]), f64(op[2])])
    case 'retainedCleared': return Buffer.concat([u8(T.RetainClear), str(op[1])])
    case 'outgoingQueued': {
      const ids = op[6] ?? []
      return Buffer.concat([u8(T.OutQueued), str(op[1]), f64(op[2]), f64(op[3]), u8(op[4]), u8(op[5] ? 1 : 0), u8(ids.length), ...ids.map(u32)])
    }
    case 'outgoingSent': return Buffer.concat([u8(T.OutSent), str(op[1]), f64(op[2]), u16(op[3])])
    case 'outgoingReleased': return Buffer.concat([u8(T.OutReleased), str(op[1]), f64(op[2])])
    case 'outgoingDone': return Buffer.concat([u8(T.OutDone), str(op[1]), f64(op[2])])
    case 'incomingQos2Added': return Buffer.concat([u8(T.InQos2), str(op[1]), u16(op[2])])
    case 'incomingQos2Released': return Buffer.concat([u8(T.InQos2Done), str(op[1]), u16(op[2])])
    case 'willSaved': return Buffer.concat([u8(T.Will), str(op[1]), f64(op[2]), u32(op[3]), bytes(publishV5(op[4]))])
    case 'willCleared': return Buffer.concat([u8(T.WillClear), str(op[1])])
  }
}

/** One framed record. */
export function record(op: Op): Buffer {
  const b = body(op)
  return Buffer.concat([u32(b.length), u32(crc32Ieee(b)), b])
}

export const headerV1 = Buffer.concat([Buffer.from('MIDGEDB\0', 'latin1'), u32(1)])

/** A whole version 1 file holding `ops`, and where each record starts (for making damaged copies). */
export function encodeV1(ops: Op[]): { file: Buffer; offsets: number[] } {
  const parts: Buffer[] = [headerV1]
  const offsets: number[] = []
  let pos = headerV1.length
  for (const op of ops) {
    const r = record(op)
    offsets.push(pos)
    parts.push(r)
    pos += r.length
  }
  return { file: Buffer.concat(parts), offsets }
}
