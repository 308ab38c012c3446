/**
 * strftime(3) as glibc does it in the C locale, for `midge sub -F` (@X sequences, %I, %j/%J timestamps), so
 * the output matches mosquitto_sub's byte for byte. Local time comes from Node (which honours TZ); the zone
 * abbreviation (%Z) is read from the TZif file glibc would read, since Intl's names differ ("GMT+1" vs "CET").
 */
import fs from 'node:fs'
import path from 'node:path'

const Days = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']
const Months = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December']

const p2 = (n: number): string => (n < 10 ? '0' : '') + String(n)
const s2 = (n: number): string => (n < 10 ? ' ' : '') + String(n)
const p3 = (n: number): string => String(n).padStart(3, '0')

function dayOfYear (d: Date): number {
  const start = Date.UTC(d.getFullYear(), 0, 1)
  const today = Date.UTC(d.getFullYear(), d.getMonth(), d.getDate())
  return (today - start) / 86_400_000
}

/** ISO 8601 week number and week-based year: week 1 is the week holding the year's first Thursday. */
function isoWeek (d: Date): { week: number; year: number } {
  const t = new Date(Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()))
  t.setUTCDate(t.getUTCDate() - ((t.getUTCDay() + 6) % 7) + 3) // the Thursday of d's week
  const year = t.getUTCFullYear()
  const jan4 = new Date(Date.UTC(year, 0, 4))
  const week1Thursday = jan4.getTime() - (((jan4.getUTCDay() + 6) % 7) - 3) * 86_400_000
  return { week: 1 + Math.round((t.getTime() - week1Thursday) / 604_800_000), year }
}

function offset (d: Date): string {
  const off = -d.getTimezoneOffset()
  const a = Math.abs(off)
  return (off < 0 ? '-' : '+') + p2(Math.floor(a / 60)) + p2(a % 60)
}

/** One conversion; unknown ones come out as written ("%Q"), as glibc does. */
export function strftime1 (c: string, d: Date): string {
  switch (c) {
    case 'a': return Days[d.getDay()]!.slice(0, 3)
    case 'A': return Days[d.getDay()]!
    case 'b': case 'h': return Months[d.getMonth()]!.slice(0, 3)
    case 'B': return Months[d.getMonth()]!
    case 'c': return `${strftime1('a', d)} ${strftime1('b', d)} ${s2(d.getDate())} ${strftime1('T', d)} ${d.getFullYear()}`
    case 'C': return p2(Math.floor(d.getFullYear() / 100))
    case 'd': return p2(d.getDate())
    case 'D': case 'x': return `${p2(d.getMonth() + 1)}/${p2(d.getDate())}/${p2(d.getFullYear() % 100)}`
    case 'e': return s2(d.getDate())
    case 'F': return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}`
    case 'g': return p2(isoWeek(d).year % 100)
    case 'G': return String(isoWeek(d).year)
    case 'H': return p2(d.getHours())
    case 'I': return p2(d.getHours() % 12 === 0 ? 12 : d.getHours() % 12)
    case 'j': return p3(dayOfYear(d) + 1)
    case 'k': return s2(d.getHours())
    case 'l': return s2(d.getHours() % 12 === 0 ? 12 : d.getHours() % 12)
    case 'm': return p2(d.getMonth() + 1)
    case 'M': return p2(d.getMinutes())
    case 'n': return '\n'
    case 'p': return d.getHours() < 12 ? 'AM' : 'PM'
    case 'P': return d.getHours() < 12 ? 'am' : 'pm'
    case 'r': return `${strftime1('I', d)}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${strftime1('p', d)}`
    case 'R': return `${p2(d.getHours())}:${p2(d.getMinutes())}`
    case 's': return String(Math.floor(d.getTime() / 1000))
    case 'S': return p2(d.getSeconds())
    case 't': return '\t'
    case 'T': case 'X': return `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`
    case 'u': return String(d.getDay() === 0 ? 7 : d.getDay())
    case 'U': return p2(Math.floor((dayOfYear(d) + 7 - d.getDay()) / 7))
    case 'V': return p2(isoWeek(d).week)
    case 'w': return String(d.getDay())
    case 'W': return p2(Math.floor((dayOfYear(d) + 7 - ((d.getDay() + 6) % 7)) / 7))
    case 'y': return p2(d.getFullYear() % 100)
    case 'Y': return String(d.getFullYear())
    case 'z': return offset(d)
    case 'Z': return zoneAbbreviation(d)
    case '%': return '%'
    default: return '%' + c
  }
}

/** A whole format string (conversions are single letters: no flags or E/O modifiers). */
export function strftime (format: string, d: Date): string {
  let out = ''
  for (let i = 0; i < format.length; i++) {
    const ch = format[i]!
    if (ch === '%' && i + 1 < format.length) out += strftime1(format[++i]!, d)
    else out += ch
  }
  return out
}

// ---- %Z: the abbreviation glibc would print ----

interface Zone {
  /** Transition times (seconds) and the type index in force from each. */
  times: number[]
  idx: number[]
  types: Array<{ off: number; abbr: string }>
  /** From the footer TZ string: the names for standard and daylight time, and the standard offset. */
  std?: { name: string; off: number }
  dst?: string
}

// Process-wide on purpose: the zone follows the process's TZ, and is re-read whenever TZ changes.
let zoneCache: { tz: string | undefined; zone: Zone | null } | null = null

function loadZone (): Zone | null {
  const tz = process.env.TZ
  if (zoneCache !== null && zoneCache.tz === tz) return zoneCache.zone
  let zone: Zone | null = null
  try {
    const name = tz === undefined ? undefined : tz.replace(/^:/, '')
    const file = name === undefined || name === '' ? '/etc/localtime'
      : path.isAbsolute(name) ? name : path.join('/usr/share/zoneinfo', name)
    if (fs.existsSync(file)) zone = parseTzif(fs.readFileSync(file))
    else if (name !== undefined) zone = { times: [], idx: [], types: [], ...parsePosixTz(name) }
  } catch {
    zone = null
  }
  zoneCache = { tz, zone }
  return zone
}

function parseTzif (b: Buffer): Zone | null {
  if (b.toString('latin1', 0, 4) !== 'TZif') return null
  const version = b[4] ?? 0
  let pos = 0
  let wide = false
  const counts = (at: number): number[] => [0, 1, 2, 3, 4, 5].map((k) => b.readUInt32BE(at + 20 + 4 * k))
  let [isut, isstd, leap, timecnt, typecnt, charcnt] = counts(0) as [number, number, number, number, number, number]
  if (version >= 0x32) {
    pos = 44 + timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut
    ;[isut, isstd, leap, timecnt, typecnt, charcnt] = counts(pos) as [number, number, number, number, number, number]
    wide = true
  }
  let at = pos + 44
  const times: number[] = []
  for (let k = 0; k < timecnt; k++) {
    times.push(wide ? Number(b.readBigInt64BE(at)) : b.readInt32BE(at))
    at += wide ? 8 : 4
  }
  const idx = [...b.subarray(at, at + timecnt)]
  at += timecnt
  const raw: Array<{ off: number; ai: number }> = []
  for (let k = 0; k < typecnt; k++) {
    raw.push({ off: b.readInt32BE(at), ai: b[at + 5]! })
    at += 6
  }
  const chars = b.subarray(at, at + charcnt)
  const types = raw.map((t) => ({ off: t.off, abbr: chars.toString('latin1', t.ai, chars.indexOf(0, t.ai)) }))
  at += charcnt + leap * (wide ? 12 : 8) + isstd + isut
  const zone: Zone = { times, idx, types }
  if (wide) {
    const footer = b.toString('latin1', at).split('\n')[1]
    if (footer !== undefined && footer !== '') Object.assign(zone, parsePosixTz(footer))
  }
  return zone
}

/** "CET-1CEST,M3.5.0,M10.5.0/3" -> names CET/CEST, standard offset +3600. */
function parsePosixTz (s: string): { std?: { name: string; off: number }; dst?: string } {
  const m = /^(<[^>]+>|[A-Za-z]{3,})([+-]?\d{1,2})(?::(\d{2}))?(?::\d{2})?(<[^>]+>|[A-Za-z]{3,})?/.exec(s)
  if (m === null) return {}
  const strip = (n: string): string => n.replace(/^<|>$/g, '')
  const hours = Number(m[2])
  const mins = m[3] === undefined ? 0 : Number(m[3])
  const off = -(Math.sign(hours) || (m[2]!.startsWith('-') ? -1 : 1)) * (Math.abs(hours) * 3600 + mins * 60)
  const out: { std?: { name: string; off: number }; dst?: string } = { std: { name: strip(m[1]!), off } }
  if (m[4] !== undefined) out.dst = strip(m[4])
  return out
}

export function zoneAbbreviation (d: Date): string {
  const zone = loadZone()
  const off = -d.getTimezoneOffset() * 60
  if (zone !== null) {
    const t = Math.floor(d.getTime() / 1000)
    const last = zone.times.length - 1
    if ((last < 0 || t >= zone.times[last]!) && zone.std !== undefined) {
      return off === zone.std.off || zone.dst === undefined ? zone.std.name : zone.dst
    }
    let type = zone.types[0]
    for (let k = last; k >= 0; k--) {
      if (zone.times[k]! <= t) { type = zone.types[zone.idx[k]!]; break }
    }
    // A type whose offset disagrees with Node's is stale data: prefer any type with the right offset.
    if (type !== undefined && type.off !== off) type = zone.types.find((x) => x.off === off) ?? type
    if (type !== undefined) return type.abbr
  }
  const parts = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d)
  return parts.find((p) => p.type === 'timeZoneName')?.value ?? ''
}
