// The broker's card ($SYS values), the listeners with their certificates, the bridges, failed logins and
// bans: all from GET api/overview, fetched again every few seconds (they change slowly; the rates come live).

import { api, listOf } from './api.js'
import { $, el, fmtBytes, fmtDate, fmtDuration, fmtNumber, toDate } from './dom.js'

const sysFacts = new Map()
let startedAt = 0

export function resetOverview() {
  $('sys').replaceChildren()
  sysFacts.clear()
  startedAt = 0
}

/** Moves the uptime on between fetches (called with each `stats` event). */
export function tickUptime() {
  if (startedAt > 0) setFact('uptime', fmtDuration((Date.now() - startedAt) / 1000))
}

function setFact(key, value) {
  let dd = sysFacts.get(key)
  if (dd === undefined) {
    const dt = el('dt', { textContent: key })
    dd = el('dd')
    $('sys').append(dt, dd)
    sysFacts.set(key, dd)
  }
  dd.textContent = value
}

export function renderOverview(o) {
  if (o === null || typeof o !== 'object') return
  if (typeof o.version === 'string') $('broker-version').textContent = o.version
  if (typeof o.uptime === 'number') {
    startedAt = Date.now() - o.uptime * 1000
    setFact('uptime', fmtDuration(o.uptime))
  }
  if (o.sys !== null && typeof o.sys === 'object') {
    // The load averages are Prometheus' and Grafana's business, and certificates, bridges and log lines have
    // panels of their own: the card shows the broker's current counts.
    const keys = Object.keys(o.sys).filter((k) => !/^(\$SYS\/broker\/)?(load|tls|connection|log)\//.test(k) && !/(version|uptime)$/.test(k)).sort()
    for (const k of keys) {
      const value = String(o.sys[k])
      // Mosquitto's formats are kept for Home Assistant; byte counts are easier to read scaled.
      setFact(k.replace(/^\$SYS\/broker\//, ''), /(^|\/)(heap\/|bytes)/.test(k) && /^\d+$/.test(value) ? fmtBytes(Number(value)) : value)
    }
  }
  renderListeners(listOf(o.listeners))
  renderBridges(listOf(o.bridges))
  if (typeof o.authFailures === 'number') $('auth-failures').textContent = String(o.authFailures)
  renderBans(listOf(o.bans))
}

function fmtAddress(a) {
  if (a === null || typeof a !== 'object') return String(a)
  const host = String(a.address ?? a.host ?? '')
  return `${host.includes(':') ? `[${host}]` : host}:${a.port ?? ''}`
}

function renderListeners(list) {
  const rows = list.map((l) => {
    const cert = el('td')
    if (l.tls !== undefined && l.tls !== null) {
      const t = l.tls
      cert.append(el('div', { textContent: String(t.subject ?? ''), title: `issuer: ${t.issuer ?? ''}` }))
      const expires = toDate(t.notAfter)
      if (expires !== undefined) {
        const days = Math.floor((expires.getTime() - Date.now()) / 86_400_000)
        const cls = days < 0 ? 'bad' : days < 14 ? 'warn' : ''
        cert.append(el('div', { className: cls, textContent: `expires ${expires.toLocaleDateString()} (${days < 0 ? 'expired' : `${days} days`})` }))
      }
      if (t.acme !== undefined && t.acme !== null) {
        const a = t.acme
        const parts = [`ACME: ${a.state ?? ''}`]
        if (a.nextRenewal !== undefined && a.nextRenewal !== null) parts.push(`renews ${fmtDate(a.nextRenewal)}`)
        cert.append(el('div', { textContent: parts.join(', ') }))
        if (a.lastError) cert.append(el('div', { className: 'bad', textContent: String(a.lastError) }))
      }
    }
    return el('tr', null,
      el('td', { textContent: String(l.name ?? '') }),
      el('td', { textContent: String(l.kind ?? '') }),
      el('td', { textContent: listOf(l.addresses).map(fmtAddress).join(', ') }),
      el('td', { className: l.state === 'open' ? 'ok' : 'warn', textContent: String(l.state ?? '') }),
      cert)
  })
  $('listeners-table').tBodies[0].replaceChildren(...rows)
}

function renderBridges(list) {
  const rows = list.map((b) => el('tr', null,
    el('td', { textContent: String(b.name ?? '') }),
    el('td', { className: b.state === 'connected' ? 'ok' : 'warn', textContent: String(b.state ?? '') }),
    el('td', { textContent: String(b.address ?? '') }),
    el('td', { textContent: fmtNumber(Number(b.queued ?? 0)) }),
    el('td', { className: 'bad', textContent: b.lastError ? String(b.lastError) : '' })))
  if (rows.length === 0) rows.push(el('tr', null, el('td', { colSpan: 5, className: 'muted', textContent: 'no bridges configured' })))
  $('bridges-table').tBodies[0].replaceChildren(...rows)
}

function renderBans(list) {
  const rows = list.map((b) => el('tr', null, el('td', { textContent: String(b.address ?? '') }), el('td', { textContent: fmtDate(b.until) })))
  if (rows.length === 0) rows.push(el('tr', null, el('td', { colSpan: 2, className: 'muted', textContent: 'no address is banned' })))
  $('bans-table').tBodies[0].replaceChildren(...rows)
}

export async function loadOverview() {
  const r = await api('GET', 'api/overview')
  if (r.ok) renderOverview(r.data)
}
