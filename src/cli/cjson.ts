/**
 * The JSON that mosquitto_sub's %j and %J print, reproduced byte for byte: mosquitto builds it with cJSON,
 * whose parser is lenient in its own ways (numbers via strtod, literal prefixes) and whose printer has its
 * own number format (%d, else %1.15g, else %1.17g), escapes and tab indentation. Strings are bytes, as in C:
 * they end at the first NUL.
 */

export type CValue =
  | { t: 'null' } | { t: 'false' } | { t: 'true' }
  | { t: 'number'; n: number }
  | { t: 'string'; s: Buffer }
  | { t: 'array'; items: CValue[] }
  | { t: 'object'; entries: Array<[Buffer, CValue]> }

const NestingLimit = 1000

class Parser {
  pos = 0
  depth = 0
  constructor (readonly b: Buffer) {}

  ws (): void {
    while (this.pos < this.b.length && this.b[this.pos]! <= 32 && this.b[this.pos] !== 0) this.pos++
  }

  startsWith (lit: string): boolean {
    return this.b.toString('latin1', this.pos, this.pos + lit.length) === lit
  }

  value (): CValue | null {
    const c = this.b[this.pos]
    if (c === undefined) return null
    if (this.startsWith('null')) { this.pos += 4; return { t: 'null' } }
    if (this.startsWith('false')) { this.pos += 5; return { t: 'false' } }
    if (this.startsWith('true')) { this.pos += 4; return { t: 'true' } }
    if (c === 0x22) return this.string()
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number()
    if (c === 0x5b) return this.array()
    if (c === 0x7b) return this.object()
    return null
  }

  /** cJSON copies the run of [0-9+-eE.] and lets strtod take the longest number it can from it. */
  number (): CValue | null {
    let end = this.pos
    while (end < this.b.length && /[0-9+\-eE.]/.test(String.fromCharCode(this.b[end]!))) end++
    const run = this.b.toString('latin1', this.pos, end)
    const m = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/.exec(run)
    if (m === null) return null
    this.pos += m[0].length
    return { t: 'number', n: Number(m[0]) }
  }

  string (): CValue | null {
    const b = this.b
    let i = this.pos + 1
    const out: number[] = []
    while (true) {
      const c = b[i]
      if (c === undefined || c === 0) return null
      if (c === 0x22) break
      if (c !== 0x5c) { out.push(c); i++; continue }
      const e = b[i + 1]
      switch (e) {
        case 0x62: out.push(8); break
        case 0x66: out.push(12); break
        case 0x6e: out.push(10); break
        case 0x72: out.push(13); break
        case 0x74: out.push(9); break
        case 0x22: case 0x5c: case 0x2f: out.push(e); break
        case 0x75: {
          const cp = this.unicode(i)
          if (cp === null) return null
          i += cp.len - 2
          out.push(...Buffer.from(String.fromCodePoint(cp.cp), 'utf8'))
          break
        }
        default: return null
      }
      i += 2
    }
    this.pos = i + 1
    return { t: 'string', s: Buffer.from(out) }
  }

  /** \uXXXX at i (the backslash), with a following low surrogate when the first is a high one. */
  unicode (i: number): { cp: number; len: number } | null {
    const hex = (at: number): number => {
      const h = this.b.toString('latin1', at, at + 4)
      return /^[0-9a-fA-F]{4}$/.test(h) ? parseInt(h, 16) : -1
    }
    const first = hex(i + 2)
    if (first < 0 || (first >= 0xdc00 && first <= 0xdfff)) return null
    if (first >= 0xd800 && first <= 0xdbff) {
      if (this.b[i + 6] !== 0x5c || this.b[i + 7] !== 0x75) return null
      const second = hex(i + 8)
      if (second < 0xdc00 || second > 0xdfff) return null
      return { cp: 0x10000 + (((first & 0x3ff) << 10) | (second & 0x3ff)), len: 12 }
    }
    return { cp: first, len: 6 }
  }

  array (): CValue | null {
    if (++this.depth > NestingLimit) return null
    this.pos++
    const items: CValue[] = []
    this.ws()
    if (this.b[this.pos] === 0x5d) { this.pos++; this.depth--; return { t: 'array', items } }
    while (true) {
      this.ws()
      const v = this.value()
      if (v === null) return null
      items.push(v)
      this.ws()
      const c = this.b[this.pos]
      if (c === 0x2c) { this.pos++; continue }
      if (c === 0x5d) { this.pos++; break }
      return null
    }
    this.depth--
    return { t: 'array', items }
  }

  object (): CValue | null {
    if (++this.depth > NestingLimit) return null
    this.pos++
    const entries: Array<[Buffer, CValue]> = []
    this.ws()
    if (this.b[this.pos] === 0x7d) { this.pos++; this.depth--; return { t: 'object', entries } }
    while (true) {
      this.ws()
      if (this.b[this.pos] !== 0x22) return null
      const k = this.string()
      if (k === null || k.t !== 'string') return null
      this.ws()
      if (this.b[this.pos] !== 0x3a) return null
      this.pos++
      this.ws()
      const v = this.value()
      if (v === null) return null
      entries.push([k.s, v])
      this.ws()
      const c = this.b[this.pos]
      if (c === 0x2c) { this.pos++; continue }
      if (c === 0x7d) { this.pos++; break }
      return null
    }
    this.depth--
    return { t: 'object', entries }
  }
}

/** cJSON_ParseWithOpts(require_null_terminated): the whole buffer must be one value, whitespace around. */
export function parseCJson (b: Buffer): CValue | null {
  const p = new Parser(b)
  p.ws()
  const v = p.value()
  if (v === null) return null
  p.ws()
  return p.pos === b.length ? v : null
}

/** C's printf("%1.<prec>g"). */
export function formatG (d: number, prec: number): string {
  if (d === 0) return Object.is(d, -0) ? '-0' : '0'
  const exp = Number(d.toExponential(prec - 1).split('e')[1])
  if (exp < -4 || exp >= prec) {
    const [mant, e] = d.toExponential(prec - 1).split('e') as [string, string]
    const m = mant.includes('.') ? mant.replace(/0+$/, '').replace(/\.$/, '') : mant
    const sign = e.startsWith('-') ? '-' : '+'
    const digits = e.replace(/^[+-]/, '')
    return `${m}e${sign}${digits.length < 2 ? '0' + digits : digits}`
  }
  const fixed = d.toFixed(prec - 1 - exp)
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed
}

/**
 * cJSON as Debian's libcjson1 (which mosquitto_sub links) prints numbers: "%1.15g", or "%1.17g" when that does
 * not read back within one DBL_EPSILON (relative); no integer shortcut, so -0 prints "-0", 3e9 "3000000000",
 * 0.30000000000000004 "0.3" and 2^53 "9.00719925474099e+15".
 */
function printNumber (d: number): string {
  if (!Number.isFinite(d)) return 'null'
  const g15 = formatG(d, 15)
  const back = Number(g15)
  const close = Math.abs(back - d) <= Math.max(Math.abs(back), Math.abs(d)) * Number.EPSILON
  return close ? g15 : formatG(d, 17)
}

const Escapes: Record<number, string> = { 0x22: '\\"', 0x5c: '\\\\', 8: '\\b', 12: '\\f', 10: '\\n', 13: '\\r', 9: '\\t' }

function printString (s: Buffer, out: Buffer[]): void {
  const nul = s.indexOf(0)
  const b = nul >= 0 ? s.subarray(0, nul) : s
  let start = 0
  out.push(Buffer.from('"'))
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!
    if (c >= 32 && c !== 0x22 && c !== 0x5c) continue
    if (i > start) out.push(b.subarray(start, i))
    out.push(Buffer.from(Escapes[c] ?? '\\u' + c.toString(16).padStart(4, '0'), 'latin1'))
    start = i + 1
  }
  if (start < b.length) out.push(b.subarray(start))
  out.push(Buffer.from('"'))
}

function print (v: CValue, pretty: boolean, depth: number, out: Buffer[]): void {
  switch (v.t) {
    case 'null': case 'false': case 'true': out.push(Buffer.from(v.t)); return
    case 'number': out.push(Buffer.from(printNumber(v.n))); return
    case 'string': printString(v.s, out); return
    case 'array': {
      out.push(Buffer.from('['))
      v.items.forEach((item, i) => {
        print(item, pretty, depth + 1, out)
        if (i < v.items.length - 1) out.push(Buffer.from(pretty ? ', ' : ','))
      })
      out.push(Buffer.from(']'))
      return
    }
    case 'object': {
      out.push(Buffer.from(pretty ? '{\n' : '{'))
      const tabs = '\t'.repeat(depth + 1)
      v.entries.forEach(([k, item], i) => {
        if (pretty) out.push(Buffer.from(tabs))
        printString(k, out)
        out.push(Buffer.from(pretty ? ':\t' : ':'))
        print(item, pretty, depth + 1, out)
        if (i < v.entries.length - 1) out.push(Buffer.from(','))
        if (pretty) out.push(Buffer.from('\n'))
      })
      if (pretty) out.push(Buffer.from('\t'.repeat(depth)))
      out.push(Buffer.from('}'))
    }
  }
}

/** cJSON_Print (pretty: tabs and newlines) or cJSON_PrintUnformatted, appended to out. */
export function printCJson (v: CValue, pretty: boolean, out: Buffer[]): void {
  print(v, pretty, 0, out)
}

export const cstr = (s: string | Buffer): CValue => ({ t: 'string', s: typeof s === 'string' ? Buffer.from(s) : s })
export const cnum = (n: number): CValue => ({ t: 'number', n })
