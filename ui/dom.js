// What every part of the page uses: element building, the notice line, and formatting. Data from the broker
// reaches the page only through el() (properties and text nodes), never as HTML: topic names, payloads,
// client ids and log lines are written by strangers.

export const $ = (id) => document.getElementById(id)

/** An element with properties (never HTML) and children (strings become text nodes). */
export function el(tag, props, ...children) {
  const e = document.createElement(tag)
  if (props !== undefined && props !== null) Object.assign(e, props)
  for (const c of children) if (c !== undefined && c !== null) e.append(c)
  return e
}

let noticeTimer
/** One line under the header for the outcome of an action; it goes after a few seconds. */
export function notice(text, isError = false) {
  const n = $('notice')
  n.textContent = text
  n.className = isError ? 'error' : ''
  n.hidden = false
  clearTimeout(noticeTimer)
  noticeTimer = setTimeout(() => { n.hidden = true }, 6000)
}

export const protocolNames = { 3: '3.1', 4: '3.1.1', 5: '5.0' }

/** A time from the API: milliseconds since the epoch, or an ISO string; undefined when there is none. */
export function toDate(x) {
  if (x === undefined || x === null || x === '') return undefined
  const d = new Date(x)
  return Number.isNaN(d.getTime()) ? undefined : d
}

/** Today's times as a clock time, other days with their date. */
export function fmtDate(x) {
  const d = toDate(x)
  if (d === undefined) return x === undefined || x === null ? '' : String(x)
  return new Date().toDateString() === d.toDateString() ? d.toLocaleTimeString() : d.toLocaleString()
}

export function fmtDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds))
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min`
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`
}

export function fmtAgo(x) {
  const d = toDate(x)
  return d === undefined ? '' : `${fmtDuration((Date.now() - d.getTime()) / 1000)} ago`
}

export function fmtNumber(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '0'
  const a = Math.abs(n)
  if (a >= 1e9) return `${(n / 1e9).toFixed(1)} G`
  if (a >= 1e6) return `${(n / 1e6).toFixed(1)} M`
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)} k`
  return a >= 100 || Number.isInteger(n) ? String(Math.round(n)) : n.toFixed(1)
}

export function fmtBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '0 B'
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`
  return `${n < 10 && !Number.isInteger(n) ? n.toFixed(1) : Math.round(n)} B`
}

/** A payload as the API sends it ({payload, base64, truncated}) as one line of text. */
export function payloadOf(v) {
  if (v === undefined || v === null) return ''
  let p = typeof v.payload === 'string' ? v.payload : ''
  if (v.base64 === true) p = `base64:${p}`
  if (v.truncated === true) p += '…'
  return p
}

export function shorten(s, n) {
  return s.length > n ? `${s.slice(0, n)}…` : s
}
