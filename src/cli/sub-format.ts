/**
 * What `midge sub` prints for a message: the payload (default), "topic payload" (-v), or a -F format, each
 * byte-identical to mosquitto_sub 2.0 for the same message, including its quirks (a field width on %p/%x
 * truncates the payload; an unknown property prints as blank padding; %R pads nothing).
 */
import { cnum, cstr, parseCJson, printCJson } from './cjson.js'
import type { CValue } from './cjson.js'
import { strftime, strftime1 } from './strftime.js'
import type { PublishPacket } from '../protocol/index.js'

export interface OutputOptions {
  format: string | undefined
  verbose: boolean
  eol: boolean
  pretty: boolean
}

/** The instant a message is printed: local time plus the nanoseconds of the current second. */
export interface Stamp {
  date: Date
  ns: number
}

export function now (): Stamp {
  const ms = performance.timeOrigin + performance.now()
  const date = new Date(Math.floor(ms))
  const ns = Math.floor((ms * 1e6) % 1e9)
  return { date, ns }
}

const Percent = new Set(['%', 'A', 'C', 'D', 'E', 'F', 'I', 'l', 'm', 'P', 'p', 'q', 'R', 'S', 'r', 't', 'j', 'J', 'U', 'x', 'X'])
const BackslashEscapes: Record<string, string> = { '\\': '\\', 0: '\0', a: '\x07', e: '\x1b', n: '\n', r: '\r', t: '\t', v: '\x0b' }

/** mosquitto's check_format: null when valid, else its error sentence. */
export function checkFormat (f: string): string | null {
  const len = f.length
  const incomplete = 'Error: Incomplete format specifier.'
  for (let i = 0; i < len; i++) {
    const c = f[i]
    if (c === '%') {
      if (i === len - 1) return incomplete
      if (f[i + 1] === '0' || f[i + 1] === '-') {
        i++
        if (i === len - 1) return incomplete
      }
      while (f[i + 1] !== undefined && f[i + 1]! >= '0' && f[i + 1]! <= '9') {
        i++
        if (i === len - 1) return incomplete
      }
      if (f[i + 1] === '.') {
        i++
        if (i === len - 1) return incomplete
        while (f[i + 1] !== undefined && f[i + 1]! >= '0' && f[i + 1]! <= '9') {
          i++
          if (i === len - 1) return incomplete
        }
      }
      const conv = f[i + 1]!
      if (!Percent.has(conv)) return `Error: Invalid format specifier '${conv}'.`
      i++
    } else if (c === '@') {
      if (i === len - 1) return incomplete
      i++
    } else if (c === '\\') {
      if (i === len - 1) return 'Error: Incomplete escape specifier.'
      if (BackslashEscapes[f[i + 1]!] === undefined) return `Error: Invalid escape specifier '${f[i + 1]}'.`
      i++
    }
  }
  return null
}

const SPACE = 0x20

function pad (out: Buffer[], ch: number, n: number): void {
  if (n > 0) out.push(Buffer.alloc(n, ch))
}

/** printf("%d") with mosquitto's width/alignment/zero-padding choices. */
function printInt (out: Buffer[], v: number, align: string, padCh: number, width: number): void {
  let s = String(v)
  if (width > s.length) {
    if (align === '-') s = s.padEnd(width, ' ')
    else if (padCh === 0x30) s = v < 0 ? '-' + String(-v).padStart(width - 1, '0') : s.padStart(width, '0')
    else s = s.padStart(width, ' ')
  }
  out.push(Buffer.from(s))
}

/** printf("%*.*s") on bytes: precision cuts, width pads with blanks. */
function printStr (out: Buffer[], v: Buffer, align: string, width: number, precision: number): void {
  const b = precision >= 0 && v.length > precision ? v.subarray(0, precision) : v
  if (align !== '-') pad(out, SPACE, width - b.length)
  out.push(b)
  if (align === '-') pad(out, SPACE, width - b.length)
}

/** mosquitto's write_payload: a width truncates, and "%-p" pads by the payload length (printf's -N). */
function printPayload (out: Buffer[], payload: Buffer, hex: 0 | 1 | 2, align: string, padCh: number, width: number): void {
  let len = payload.length
  let padlen: number
  if (width > 0) {
    if (len > width) len = width
    if (hex > 0) {
      len = Math.floor(len / 2)
      padlen = width - len * 2
    } else {
      padlen = width - len
    }
  } else {
    padlen = width - len
  }
  if (align !== '-') pad(out, padCh, padlen)
  const body = payload.subarray(0, len)
  if (hex === 0) out.push(body)
  else out.push(Buffer.from(hex === 1 ? body.toString('hex') : body.toString('hex').toUpperCase()))
  if (align === '-') pad(out, SPACE, Math.abs(padlen))
}

/** "%Y-%m-%dT%H:%M:%S.<micro>Z%z": mosquitto overwrites strftime's output, leaving this odd 'Z'. */
function jsonTime (st: Stamp): string {
  const d = st.date
  return `${strftime('%Y-%m-%dT%H:%M:%S', d)}.${String(Math.floor(st.ns / 1000)).padStart(6, '0')}Z${strftime1('z', d)}`
}

/** %j (escaped payload) / %J (payload parsed as JSON): null when %J's payload is not JSON. */
function jsonMessage (msg: PublishPacket, st: Stamp, escaped: boolean): CValue | null {
  const entries: Array<[Buffer, CValue]> = [
    [Buffer.from('tst'), cstr(jsonTime(st))],
    [Buffer.from('topic'), cstr(msg.topic)],
    [Buffer.from('qos'), cnum(msg.qos)],
    [Buffer.from('retain'), cnum(msg.retain ? 1 : 0)],
    [Buffer.from('payloadlen'), cnum(msg.payload.length)],
  ]
  if (msg.qos > 0) entries.push([Buffer.from('mid'), cnum(msg.packetId)])
  if (msg.properties !== undefined) entries.push([Buffer.from('properties'), jsonProperties(msg)])
  let payload: CValue
  if (msg.payload.length === 0) payload = { t: 'null' }
  else if (escaped) payload = cstr(msg.payload)
  else {
    const parsed = parseCJson(msg.payload)
    if (parsed === null) return null
    payload = parsed
  }
  entries.push([Buffer.from('payload'), payload])
  return { t: 'object', entries }
}

/** Properties in wire order (the decoder keeps it), with mosquitto's names. */
function jsonProperties (msg: PublishPacket): CValue {
  const entries: Array<[Buffer, CValue]> = []
  const props = msg.properties!
  // mosquitto reads topic-alias with the wrong identifier and prints whatever its 16-bit scratch held last:
  // 0, or the length of a correlation-data read before it.
  let scratch16 = 0
  for (const key of Object.keys(props) as Array<keyof typeof props>) {
    switch (key) {
      case 'payloadFormatIndicator': entries.push([Buffer.from('payload-format-indicator'), cnum(props.payloadFormatIndicator!)]); break
      case 'messageExpiryInterval': entries.push([Buffer.from('message-expiry-interval'), cnum(props.messageExpiryInterval!)]); break
      case 'contentType': entries.push([Buffer.from('content-type'), cstr(props.contentType!)]); break
      case 'responseTopic': entries.push([Buffer.from('response-topic'), cstr(props.responseTopic!)]); break
      case 'correlationData':
        scratch16 = props.correlationData!.length
        entries.push([Buffer.from('correlation-data'), cstr(props.correlationData!)])
        break
      case 'subscriptionIdentifiers':
        for (const id of props.subscriptionIdentifiers!) entries.push([Buffer.from('subscription-identifier'), cnum(id)])
        break
      case 'topicAlias': entries.push([Buffer.from('topic-alias'), cnum(scratch16)]); break
      case 'userProperties': {
        const user: Array<[Buffer, CValue]> = props.userProperties!.map(([k, v]) => [Buffer.from(k), cstr(v)])
        entries.push([Buffer.from('user-properties'), { t: 'object', entries: user }])
        break
      }
      default: break
    }
  }
  return { t: 'object', entries }
}

/**
 * The bytes to print for one message, and an error sentence for stderr (%J with a non-JSON payload: the
 * rest of the line still prints, as mosquitto does).
 */
export function formatMessage (msg: PublishPacket, o: OutputOptions, st: Stamp): { out: Buffer; error: string | null } {
  const out: Buffer[] = []
  let error: string | null = null
  if (o.format !== undefined) {
    error = formatted(msg, o, st, out)
    if (o.eol) out.push(Buffer.from('\n'))
  } else if (o.verbose) {
    if (msg.payload.length > 0) {
      out.push(Buffer.from(msg.topic + ' '), msg.payload)
      if (o.eol) out.push(Buffer.from('\n'))
    } else if (o.eol) {
      out.push(Buffer.from(`${msg.topic} (null)\n`))
    }
  } else if (msg.payload.length > 0) {
    out.push(msg.payload)
    if (o.eol) out.push(Buffer.from('\n'))
  }
  return { out: Buffer.concat(out), error }
}

function formatted (msg: PublishPacket, o: OutputOptions, st: Stamp, out: Buffer[]): string | null {
  const f = o.format!
  const len = f.length
  let error: string | null = null
  for (let i = 0; i < len; i++) {
    const c = f[i]!
    if (c === '%') {
      if (i >= len - 1) continue
      let align = ''
      let padCh = SPACE
      let width = 0
      let precision = -1
      i++
      if (f[i] === '-') { align = '-'; if (i < len - 1) i++ }
      if (f[i] === '0') { padCh = 0x30; if (i < len - 1) i++ }
      while (i < len - 1 && f[i]! >= '0' && f[i]! <= '9') { width = width * 10 + Number(f[i]); i++ }
      if (f[i] === '.' && i < len - 1) {
        i++
        precision = 0
        while (i < len - 1 && f[i]! >= '0' && f[i]! <= '9') { precision = precision * 10 + Number(f[i]); i++ }
      }
      if (i < len) error = percent(msg, o, st, out, f[i]!, align, padCh, width, precision) ?? error
    } else if (c === '@') {
      if (i >= len - 1) continue
      i++
      const x = f[i]!
      if (x === '@') out.push(Buffer.from('@'))
      else if (x === 'N') out.push(Buffer.from(String(st.ns).padStart(9, '0')))
      else out.push(Buffer.from(strftime1(x, st.date)))
    } else if (c === '\\') {
      if (i >= len - 1) continue
      i++
      const e = BackslashEscapes[f[i]!]
      if (e !== undefined) out.push(Buffer.from(e, 'latin1'))
    } else {
      // Copy the literal run up to the next special character at once.
      let j = i + 1
      while (j < len && f[j] !== '%' && f[j] !== '@' && f[j] !== '\\') j++
      out.push(Buffer.from(f.slice(i, j)))
      i = j - 1
    }
  }
  return error
}

function percent (msg: PublishPacket, o: OutputOptions, st: Stamp, out: Buffer[], conv: string, align: string, padCh: number, width: number, precision: number): string | null {
  const props = msg.properties
  const intOrBlank = (v: number | undefined): void => {
    if (v === undefined) pad(out, padCh, width)
    else printInt(out, v, align, padCh, width)
  }
  const strOrBlank = (v: string | undefined): void => {
    if (v === undefined) pad(out, SPACE, width)
    else printStr(out, Buffer.from(v), align, width, precision)
  }
  switch (conv) {
    case '%': out.push(Buffer.from('%')); break
    case 'A': intOrBlank(props?.topicAlias); break
    case 'C': strOrBlank(props?.contentType); break
    case 'D': if (props?.correlationData !== undefined) out.push(props.correlationData); break
    case 'E': intOrBlank(props?.messageExpiryInterval === undefined ? undefined : props.messageExpiryInterval | 0); break
    case 'F': intOrBlank(props?.payloadFormatIndicator); break
    case 'I': printStr(out, Buffer.from(strftime('%FT%T%z', st.date)), align, width, precision); break
    case 'j': case 'J': {
      const v = jsonMessage(msg, st, conv === 'j')
      if (v === null) return `Error: Message payload is not valid JSON on topic ${msg.topic}.`
      printCJson(v, o.pretty, out)
      break
    }
    case 'l': printInt(out, msg.payload.length, align, padCh, width); break
    case 'm': printInt(out, msg.packetId, align, padCh, width); break
    case 'P': {
      const up = props?.userProperties
      if (up !== undefined) out.push(Buffer.from(up.map(([k, v]) => `${k}:${v}`).join(' ')))
      break
    }
    case 'p': printPayload(out, msg.payload, 0, align, padCh, width); break
    case 'q': out.push(Buffer.from(String(msg.qos))); break
    case 'R': if (props?.responseTopic !== undefined) printStr(out, Buffer.from(props.responseTopic), align, width, precision); break
    case 'r': out.push(Buffer.from(msg.retain ? '1' : '0')); break
    case 'S': intOrBlank(props?.subscriptionIdentifiers?.[0]); break
    case 't': printStr(out, Buffer.from(msg.topic), align, width, precision); break
    case 'U': out.push(Buffer.from(`${Math.floor(st.date.getTime() / 1000)}.${String(st.ns).padStart(9, '0')}`)); break
    case 'x': printPayload(out, msg.payload, 1, align, padCh, width); break
    case 'X': printPayload(out, msg.payload, 2, align, padCh, width); break
    default: break
  }
  return null
}
