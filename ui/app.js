// Midge's dashboard: one page, no framework, no build step, served by the broker's `protocol http` listener
// under a `default-src 'self'` policy (so no inline script or style, and nothing from elsewhere).
//
// Everything shown comes from the broker and much of it from strangers (client ids, user names, topic names,
// payloads, log lines): it reaches the page only through textContent and DOM properties, never innerHTML.
// Live data arrives on one EventSource (api/events); the few things that change slowly (listeners, bridges,
// bans, queue depths) are fetched again every 10 s / 30 s while the tab is visible, never faster.
// Paths are relative, so the page also works behind a reverse proxy that mounts it under a prefix.

const HistorySeconds = 300 // the charts' window: ~5 minutes of 1-second `stats` events
const MaxLogLines = 500
const MaxClientRows = 1000
const MaxTreeNodes = 5000 // topic nodes kept on the page; live topics beyond it wait for a click on their parent
const PayloadShown = 120 // characters of a payload in the tree; the whole (≤ 1 KiB) value is in its tooltip
const OverviewEveryMs = 10_000
const ClientsEveryMs = 30_000

const $ = (id) => document.getElementById(id)

/** An element with properties (never HTML) and children (strings become text nodes). */
function el(tag, props, ...children) {
  const e = document.createElement(tag)
  if (props !== undefined && props !== null) Object.assign(e, props)
  for (const c of children) if (c !== undefined && c !== null) e.append(c)
  return e
}

const state = {
  /** {username, admin, csrf} once logged in. */
  session: null,
  source: null,
  streamOpenedBefore: false,
  timers: [],
  /** clientId → <tr> */
  clientRows: new Map(),
  clientTotal: 0,
  startedAt: 0,
}

// ---------------------------------------------------------------------------------------------------------------
// Talking to the broker

/** One request; non-GET carries the session's CSRF token. A 401 anywhere but the login itself ends the session. */
async function api(method, path, body) {
  const headers = { Accept: 'application/json' }
  if (method !== 'GET' && state.session !== null) headers['X-Midge-CSRF'] = state.session.csrf
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' }
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json'
    init.body = JSON.stringify(body)
  }
  let res
  try {
    res = await fetch(path, init)
  } catch (err) {
    return { status: 0, ok: false, data: `the broker did not answer (${err.message})` }
  }
  const text = await res.text().catch(() => '')
  let data = text
  try {
    data = text === '' ? null : JSON.parse(text)
  } catch {
    // plain-text answer (e.g. a 403's sentence): kept as is
  }
  if (res.status === 401 && path !== 'api/login' && path !== 'api/session' && state.session !== null) sessionEnded()
  return { status: res.status, ok: res.ok, data }
}

function errorText(r) {
  const d = r.data
  if (d !== null && typeof d === 'object' && typeof d.error === 'string') return d.error
  if (d !== null && typeof d === 'object' && typeof d.message === 'string') return d.message
  if (typeof d === 'string' && d.trim() !== '') return d.trim()
  return r.status === 0 ? 'the broker did not answer' : `HTTP ${r.status}`
}

function listOf(d, key) {
  if (Array.isArray(d)) return d
  if (d !== null && typeof d === 'object' && Array.isArray(d[key])) return d[key]
  return []
}

let noticeTimer
function notice(text, isError = false) {
  const n = $('notice')
  n.textContent = text
  n.className = isError ? 'error' : ''
  n.hidden = false
  clearTimeout(noticeTimer)
  noticeTimer = setTimeout(() => { n.hidden = true }, 6000)
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting

const protocolNames = { 3: '3.1', 4: '3.1.1', 5: '5.0' }

function toDate(x) {
  if (x === undefined || x === null || x === '') return undefined
  // Numbers below 1e12 are seconds (a Unix timestamp), above are milliseconds.
  const d = typeof x === 'number' ? new Date(x < 1e12 ? x * 1000 : x) : new Date(x)
  return Number.isNaN(d.getTime()) ? undefined : d
}

function fmtDate(x) {
  const d = toDate(x)
  if (d === undefined) return x === undefined || x === null ? '' : String(x)
  const today = new Date().toDateString() === d.toDateString()
  return today ? d.toLocaleTimeString() : d.toLocaleString()
}

function fmtDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds))
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min`
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`
}

function fmtAgo(x) {
  const d = toDate(x)
  return d === undefined ? '' : `${fmtDuration((Date.now() - d.getTime()) / 1000)} ago`
}

function fmtNumber(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '0'
  const a = Math.abs(n)
  if (a >= 1e9) return `${(n / 1e9).toFixed(1)} G`
  if (a >= 1e6) return `${(n / 1e6).toFixed(1)} M`
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)} k`
  return a >= 100 || Number.isInteger(n) ? String(Math.round(n)) : n.toFixed(1)
}

function fmtBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '0 B'
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`
  return `${Math.round(n)} B`
}

/** A payload as sent by the broker: a string, or {payload, base64|encoding, truncated}. */
function payloadOf(v) {
  if (v === undefined || v === null) return ''
  if (typeof v === 'string') return v
  let p = typeof v.payload === 'string' ? v.payload : ''
  if (v.base64 === true || v.encoding === 'base64' || v.binary === true) p = `base64:${p}`
  if (v.truncated === true) p += '…'
  return p
}

function shorten(s, n) {
  return s.length > n ? `${s.slice(0, n)}…` : s
}

// ---------------------------------------------------------------------------------------------------------------
// Charts: two series over the last HistorySeconds, drawn by hand on a canvas (a chart library would outweigh the
// whole page). Redrawn at most once per animation frame and not at all while the tab is hidden.

class RateChart {
  constructor(canvas, format) {
    this.canvas = canvas
    this.format = format
    this.in = new Float64Array(HistorySeconds)
    this.out = new Float64Array(HistorySeconds)
    this.count = 0
    this.head = 0
    this.pending = false
  }

  push(a, b) {
    this.in[this.head] = Number.isFinite(a) ? a : 0
    this.out[this.head] = Number.isFinite(b) ? b : 0
    this.head = (this.head + 1) % HistorySeconds
    if (this.count < HistorySeconds) this.count++
    this.schedule()
  }

  schedule() {
    if (this.pending || document.hidden) return
    this.pending = true
    requestAnimationFrame(() => {
      this.pending = false
      this.draw()
    })
  }

  draw() {
    const c = this.canvas
    const ratio = window.devicePixelRatio || 1
    const w = Math.max(100, c.clientWidth)
    const h = Math.max(60, c.clientHeight)
    if (c.width !== Math.round(w * ratio) || c.height !== Math.round(h * ratio)) {
      c.width = Math.round(w * ratio)
      c.height = Math.round(h * ratio)
    }
    const g = c.getContext('2d')
    if (g === null) return
    const css = getComputedStyle(document.documentElement)
    const color = (name) => css.getPropertyValue(name).trim() || '#888'
    g.setTransform(ratio, 0, 0, ratio, 0, 0)
    g.clearRect(0, 0, w, h)
    let max = 0
    for (let i = 0; i < this.count; i++) max = Math.max(max, this.in[i], this.out[i])
    max = niceCeiling(max)
    const left = 56
    const top = 6
    const bottom = h - 16
    const plotW = w - left - 4
    // Grid and scale: 0, half, max; the time axis in minutes back from now.
    g.font = '11px system-ui, sans-serif'
    g.fillStyle = color('--muted')
    g.strokeStyle = color('--grid')
    g.lineWidth = 1
    g.textAlign = 'right'
    g.textBaseline = 'middle'
    for (const f of [0, 0.5, 1]) {
      const y = Math.round(bottom - f * (bottom - top)) + 0.5
      g.beginPath()
      g.moveTo(left, y)
      g.lineTo(w - 4, y)
      g.stroke()
      g.fillText(this.format(max * f), left - 4, y)
    }
    g.textAlign = 'center'
    g.textBaseline = 'alphabetic'
    for (let m = 0; m <= HistorySeconds / 60; m++) {
      const x = left + plotW - (m * 60 * plotW) / (HistorySeconds - 1)
      g.fillText(m === 0 ? 'now' : `-${m} min`, Math.min(Math.max(x, left + 14), w - 16), h - 3)
    }
    const series = (data, stroke) => {
      if (this.count === 0) return
      g.strokeStyle = stroke
      g.lineWidth = 1.5
      g.beginPath()
      for (let i = 0; i < this.count; i++) {
        // oldest first: the sample `count - i` seconds ago sits that far left of "now"
        const idx = (this.head - this.count + i + HistorySeconds) % HistorySeconds
        const x = left + plotW - ((this.count - 1 - i) * plotW) / (HistorySeconds - 1)
        const y = bottom - (data[idx] / max) * (bottom - top)
        if (i === 0) g.moveTo(x, y)
        else g.lineTo(x, y)
      }
      g.stroke()
    }
    series(this.in, color('--in'))
    series(this.out, color('--out'))
  }
}

/** 1, 2 or 5 times a power of ten, at least `v` (and at least 1, so an idle broker draws a flat line). */
function niceCeiling(v) {
  if (!(v > 1)) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

const charts = {}

function onStats(d) {
  const r = d.rates !== undefined && d.rates !== null ? d.rates : d
  charts.messages.push(Number(r.msgIn), Number(r.msgOut))
  charts.bytes.push(Number(r.bytesIn), Number(r.bytesOut))
  $('msg-now').textContent = `${fmtNumber(Number(r.msgIn))} / ${fmtNumber(Number(r.msgOut))}`
  $('bytes-now').textContent = `${fmtBytes(Number(r.bytesIn))} / ${fmtBytes(Number(r.bytesOut))}`
  if (typeof d.authFailures === 'number') $('auth-failures').textContent = String(d.authFailures)
  if (state.startedAt > 0) setFact('uptime', fmtDuration((Date.now() - state.startedAt) / 1000))
}

// ---------------------------------------------------------------------------------------------------------------
// Overview: $SYS values, listeners, bridges, authentication failures and bans

const sysFacts = new Map()

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

function renderOverview(o) {
  if (o === null || typeof o !== 'object') return
  if (typeof o.version === 'string') $('broker-version').textContent = o.version
  if (typeof o.uptime === 'number') {
    state.startedAt = Date.now() - o.uptime * 1000
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

async function loadOverview() {
  const r = await api('GET', 'api/overview')
  if (r.ok) renderOverview(r.data)
}

// ---------------------------------------------------------------------------------------------------------------
// Clients

function clientRow(c) {
  const subs = listOf(c.subscriptions).map(String)
  const subsCell = el('td', { className: 'subs', textContent: subs.length > 4 ? `${subs.slice(0, 4).join(', ')} +${subs.length - 4}` : subs.join(', '), title: subs.join('\n') })
  const actions = el('td', { className: 'admin-only' })
  if (state.session?.admin === true) {
    actions.append(el('button', { type: 'button', className: 'small disconnect', textContent: 'Disconnect', onclick: () => { void disconnectClient(String(c.clientId)) } }))
  }
  const row = el('tr', null,
    el('td', { className: 'id', textContent: String(c.clientId ?? '') }),
    el('td', { textContent: String(c.address ?? '') }),
    el('td', { textContent: c.username === undefined || c.username === null ? '' : String(c.username) }),
    el('td', { textContent: protocolNames[c.protocol] ?? String(c.protocol ?? '') }),
    el('td', { textContent: String(c.listener ?? '') }),
    // The clock time stays true without redrawing; the tooltip says how long ago it was when drawn.
    el('td', { textContent: fmtDate(c.connectedAt), title: fmtAgo(c.connectedAt) }),
    el('td', { className: 'num', textContent: `${fmtNumber(Number(c.queued ?? 0))} / ${fmtNumber(Number(c.inflight ?? 0))}` }),
    subsCell,
    actions)
  row.dataset.clientId = String(c.clientId ?? '')
  return row
}

function updateClientCount() {
  const shown = state.clientRows.size
  const total = Math.max(state.clientTotal, shown)
  $('clients-count').textContent = total > shown ? `${shown} of ${total}` : String(shown)
}

function renderClients(d) {
  const list = listOf(d, 'clients')
  state.clientRows.clear()
  const rows = list.map((c) => {
    const row = clientRow(c)
    state.clientRows.set(String(c.clientId), row)
    return row
  })
  $('clients-table').tBodies[0].replaceChildren(...rows)
  state.clientTotal = d !== null && typeof d === 'object' && typeof d.total === 'number' ? d.total : list.length
  updateClientCount()
}

function onClientEvent(e) {
  const c = e.client ?? {}
  const id = String(c.clientId ?? '')
  const old = state.clientRows.get(id)
  if (e.type === 'connected') {
    const row = clientRow(c)
    if (old !== undefined) {
      old.replaceWith(row)
      state.clientRows.set(id, row)
    } else {
      state.clientTotal++
      // As the broker's list, the table stops at MaxClientRows; the count still says how many there are.
      if (state.clientRows.size < MaxClientRows) {
        $('clients-table').tBodies[0].append(row)
        state.clientRows.set(id, row)
      }
    }
  } else if (e.type === 'disconnected') {
    // A takeover reads as the old connection's `disconnected` before the new one's `connected` (the broker
    // closes the old one first), so removing the row here never hides a client that is still connected.
    if (old !== undefined) {
      old.remove()
      state.clientRows.delete(id)
    }
    state.clientTotal = Math.max(0, state.clientTotal - 1)
  }
  updateClientCount()
}

async function loadClients() {
  const r = await api('GET', 'api/clients')
  if (r.ok) renderClients(r.data)
}

async function disconnectClient(id) {
  const r = await api('POST', `api/clients/${encodeURIComponent(id)}/disconnect`)
  notice(r.ok ? `Disconnected ${id}.` : `Could not disconnect ${id}: ${errorText(r)}`, !r.ok)
}

// ---------------------------------------------------------------------------------------------------------------
// Topic tree: one level at a time (api/topics?prefix=), kept live by `message` events for the levels open on
// the page. A collapsed level is dropped from the page and fetched again when opened.

/** topic → node; the root is keyed by null because '' is a real topic level ("/a" starts with one). */
const treeNodes = new Map()
/** <li> → its node, for ordering siblings and dropping a level. */
const nodeOfItem = new WeakMap()

function makeRoot() {
  const root = { topic: null, name: '', ul: $('topic-tree'), loaded: false, childCount: 0, li: null }
  treeNodes.clear()
  treeNodes.set(null, root)
  return root
}

function renderValues(node) {
  const v = node.values
  v.replaceChildren()
  if (node.retained !== undefined) {
    const text = payloadOf(node.retained)
    v.append(el('span', { className: 'retained', textContent: shorten(text, PayloadShown), title: `retained, QoS ${node.retained.qos ?? 0}${node.retained.at ? `, ${fmtDate(node.retained.at)}` : ''}\n${text}` }))
    if (state.session?.admin === true) {
      v.append(el('button', { type: 'button', className: 'small clear-retained', textContent: 'Clear retained', onclick: () => { void clearRetained(node) } }))
    }
  }
  if (node.last !== undefined) {
    const text = payloadOf(node.last)
    v.append(el('span', { className: text === '' ? 'last empty' : 'last', textContent: shorten(text, PayloadShown), title: `last message, QoS ${node.last.qos ?? 0}${node.last.at ? `, ${fmtDate(node.last.at)}` : ''}\n${text}` }))
  }
}

function renderToggle(node) {
  // A leaf keeps an invisible toggle, so names at one level line up.
  node.toggle.classList.toggle('leaf', node.childCount === 0)
  node.toggle.disabled = node.childCount === 0
  node.toggle.textContent = node.expanded ? '▾' : '▸'
  node.toggle.setAttribute('aria-expanded', String(node.expanded))
  node.count.textContent = node.childCount > 0 ? String(node.childCount) : ''
}

/** Adds `entry` ({name, topic, children, retained?, last?}) under `parent`, in name order. */
function addNode(parent, entry) {
  if (treeNodes.size >= MaxTreeNodes) return undefined
  const node = {
    topic: String(entry.topic),
    name: String(entry.name ?? ''),
    childCount: Number(entry.children ?? 0) || 0,
    retained: entry.retained ?? undefined,
    last: entry.last ?? undefined,
    expanded: false,
    loaded: false,
  }
  node.toggle = el('button', { type: 'button', className: 'toggle', title: 'show the next level', onclick: () => { void toggleNode(node) } })
  node.count = el('span', { className: 'count' })
  node.values = el('span', { className: 'values' })
  node.ul = el('ul', { hidden: true })
  const label = el('span', { className: node.name === '' ? 'name empty' : 'name', textContent: node.name === '' ? '(empty level)' : node.name, title: node.topic })
  node.li = el('li', null, node.toggle, label, node.count, node.values, node.ul)
  node.li.dataset.topic = node.topic
  nodeOfItem.set(node.li, node)
  renderToggle(node)
  renderValues(node)
  let before = null
  for (const sibling of parent.ul.children) {
    const other = nodeOfItem.get(sibling)
    if (other !== undefined && other.name > node.name) {
      before = sibling
      break
    }
  }
  parent.ul.insertBefore(node.li, before)
  treeNodes.set(node.topic, node)
  return node
}

function dropChildren(node) {
  for (const li of node.ul.children) {
    const child = nodeOfItem.get(li)
    if (child !== undefined) {
      dropChildren(child)
      treeNodes.delete(child.topic)
    }
  }
  node.ul.replaceChildren()
  node.loaded = false
}

/**
 * Levels being fetched, and the messages that arrived meanwhile: the answer may predate them, so they are
 * applied again on top of it (bounded: a flood while loading keeps only the latest).
 */
let levelsLoading = 0
let heldMessages = []
const MaxHeldMessages = 200

async function loadLevel(node) {
  const prefix = node.topic === null ? '' : node.topic
  levelsLoading++
  let r
  try {
    r = await api('GET', `api/topics?prefix=${encodeURIComponent(prefix)}`)
    if (r.ok) showLevel(node, listOf(r.data, 'topics'))
  } finally {
    levelsLoading--
  }
  if (levelsLoading === 0 && heldMessages.length > 0) {
    const held = heldMessages
    heldMessages = []
    for (const m of held) onMessageEvent(m)
  }
  if (!r.ok) {
    notice(`Could not read the topic tree: ${errorText(r)}`, true)
  }
}

function showLevel(node, entries) {
  dropChildren(node)
  for (const entry of entries) addNode(node, entry)
  node.loaded = true
  if (node.topic !== null) {
    node.childCount = entries.length
    renderToggle(node)
  } else if (entries.length === 0) {
    node.ul.append(el('li', { className: 'muted placeholder', textContent: 'no topics yet' }))
  }
}

async function toggleNode(node) {
  if (node.expanded) {
    node.expanded = false
    dropChildren(node)
    node.ul.hidden = true
    renderToggle(node)
    return
  }
  node.expanded = true
  node.ul.hidden = false
  renderToggle(node)
  await loadLevel(node)
}

function onMessageEvent(m) {
  if (typeof m.topic !== 'string') return
  if (levelsLoading > 0) {
    heldMessages.push(m)
    if (heldMessages.length > MaxHeldMessages) heldMessages.shift()
    return
  }
  const levels = m.topic.split('/')
  let parent = treeNodes.get(null)
  if (parent === undefined || !parent.loaded) return
  for (let i = 0; i < levels.length; i++) {
    const topic = levels.slice(0, i + 1).join('/')
    const leaf = i === levels.length - 1
    let node = treeNodes.get(topic)
    if (node === undefined) {
      // Only levels open on the page grow; a closed one fetches the truth when it is opened.
      if (!parent.loaded) return
      if (parent.topic === null) parent.ul.querySelector('.placeholder')?.remove()
      node = addNode(parent, { name: levels[i], topic, children: leaf ? 0 : 1 })
      if (node === undefined) return
      if (parent.topic !== null) {
        parent.childCount++
        renderToggle(parent)
      }
    } else if (!leaf && node.childCount === 0) {
      node.childCount = 1
      renderToggle(node)
    }
    if (leaf) {
      const value = m.payload !== null && typeof m.payload === 'object' ? m.payload : { payload: m.payload, base64: m.base64, encoding: m.encoding, truncated: m.truncated }
      const at = typeof m.at === 'number' ? m.at : Date.now()
      node.last = { ...value, qos: m.qos, at }
      if (m.retain === true) node.retained = payloadOf(value) === '' ? undefined : { ...value, qos: m.qos, at }
      renderValues(node)
      node.li.classList.remove('flash')
      void node.li.offsetWidth // restarts the highlight animation
      node.li.classList.add('flash')
    }
    parent = node
  }
}

async function clearRetained(node) {
  const r = await api('DELETE', `api/retained?topic=${encodeURIComponent(node.topic)}`)
  if (r.ok) {
    node.retained = undefined
    renderValues(node)
    notice(`Cleared the retained message of ${node.topic}.`)
  } else {
    notice(`Could not clear ${node.topic}: ${errorText(r)}`, true)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Log

function appendLog(lines) {
  const ol = $('log-lines')
  const atBottom = ol.scrollTop + ol.clientHeight >= ol.scrollHeight - 4
  for (const l of lines) {
    const text = typeof l === 'string' ? l : String(l?.line ?? '')
    ol.append(el('li', { textContent: text, className: /error|warning|refused|denied|banned/i.test(text) ? 'warn' : '' }))
  }
  while (ol.children.length > MaxLogLines) ol.firstElementChild.remove()
  if (atBottom) ol.scrollTop = ol.scrollHeight
}

async function loadLog() {
  const r = await api('GET', 'api/log?n=200')
  if (!r.ok) return
  $('log-lines').replaceChildren()
  appendLog(listOf(r.data, 'lines'))
}

// ---------------------------------------------------------------------------------------------------------------
// Admin: users and the ACL (shown only to a session the broker calls admin; the broker checks every action again)

async function loadUsers() {
  const r = await api('GET', 'api/users')
  const ul = $('user-list')
  if (!r.ok) {
    ul.replaceChildren(el('li', { className: 'muted', textContent: errorText(r) }))
    return
  }
  const names = listOf(r.data, 'users').map((u) => (typeof u === 'string' ? u : String(u?.username ?? u?.name ?? '')))
  ul.replaceChildren(...names.map((name) => {
    const remove = el('button', { type: 'button', className: 'small danger', textContent: 'Remove' })
    // Two clicks, so a stray one cannot lock a device out.
    remove.onclick = () => {
      if (remove.dataset.armed !== 'yes') {
        remove.dataset.armed = 'yes'
        remove.textContent = `Remove ${name}?`
        setTimeout(() => { remove.dataset.armed = ''; remove.textContent = 'Remove' }, 5000)
        return
      }
      void removeUser(name)
    }
    const setPw = el('button', { type: 'button', className: 'small', textContent: 'Set password', onclick: () => {
      $('user-name').value = name
      $('user-password').focus()
    } })
    const li = el('li', null, el('span', { className: 'name', textContent: name }), setPw, remove)
    li.dataset.user = name
    return li
  }))
}

async function saveUser(ev) {
  ev.preventDefault()
  const name = $('user-name').value.trim()
  const password = $('user-password').value
  if (name === '' || password === '') return
  const r = await api('PUT', `api/users/${encodeURIComponent(name)}`, { password })
  if (r.ok) {
    $('user-password').value = ''
    $('user-name').value = ''
    notice(`Saved user ${name}.`)
    await loadUsers()
  } else {
    notice(`Could not save user ${name}: ${errorText(r)}`, true)
  }
}

async function removeUser(name) {
  const r = await api('DELETE', `api/users/${encodeURIComponent(name)}`)
  notice(r.ok ? `Removed user ${name}.` : `Could not remove ${name}: ${errorText(r)}`, !r.ok)
  await loadUsers()
}

async function loadAcl() {
  const r = await api('GET', 'api/acl')
  $('acl-errors').replaceChildren()
  if (!r.ok) {
    $('acl-text').value = ''
    $('acl-text').disabled = true
    $('acl-save').disabled = true
    $('acl-status').textContent = errorText(r)
    return
  }
  $('acl-text').disabled = false
  $('acl-save').disabled = false
  $('acl-text').value = typeof r.data?.text === 'string' ? r.data.text : ''
  $('acl-file').textContent = typeof r.data?.file === 'string' ? r.data.file : ''
  $('acl-status').textContent = ''
}

/** Selects line `n` (1-based) of the ACL text, so an error's line is one click away. */
function selectAclLine(n) {
  const ta = $('acl-text')
  const lines = ta.value.split('\n')
  const start = lines.slice(0, n - 1).reduce((sum, l) => sum + l.length + 1, 0)
  ta.focus()
  ta.setSelectionRange(start, start + (lines[n - 1]?.length ?? 0))
}

async function saveAcl() {
  const status = $('acl-status')
  const errors = $('acl-errors')
  status.textContent = 'saving…'
  errors.replaceChildren()
  const r = await api('PUT', 'api/acl', { text: $('acl-text').value })
  if (r.ok) {
    status.textContent = 'Saved and loaded.'
    // Lines the broker accepts but doubts (e.g. a rule no user can reach) are worth a look.
    const warnings = listOf(r.data?.warnings).map(String)
    errors.replaceChildren(...warnings.map((w) => el('li', { className: 'warn', textContent: w })))
    return
  }
  const list = listOf(r.data?.errors)
  status.textContent = list.length > 0 ? `Not saved: ${list.length} error${list.length === 1 ? '' : 's'}.` : `Not saved: ${errorText(r)}`
  errors.replaceChildren(...list.map((e) => {
    const li = el('li', null, el('button', { type: 'button', className: 'link', textContent: `line ${e.line}`, onclick: () => selectAclLine(Number(e.line)) }), `: ${String(e.message ?? '')}`)
    li.dataset.line = String(e.line)
    return li
  }))
}

// ---------------------------------------------------------------------------------------------------------------
// The live stream

function parseData(ev) {
  try {
    return JSON.parse(ev.data)
  } catch {
    return null
  }
}

/** An event handler that ignores unparsable data and never lets one bad event stop the others. */
function handler(fn) {
  return (ev) => {
    const d = parseData(ev)
    if (d === null || typeof d !== 'object') return
    try {
      fn(d)
    } catch (err) {
      console.error(`dashboard: ${ev.type} event`, err)
    }
  }
}

function setLive(on) {
  const live = $('live')
  live.textContent = on ? 'live' : 'offline'
  live.className = on ? 'live on' : 'live'
}

function openStream() {
  closeStream()
  const es = new EventSource('api/events')
  state.source = es
  es.addEventListener('open', () => {
    setLive(true)
    // After a reconnect, events were missed: fetch the state again rather than trust the page.
    if (state.streamOpenedBefore) void resync()
    state.streamOpenedBefore = true
  })
  es.addEventListener('error', () => {
    setLive(false)
    if (es.readyState === EventSource.CLOSED && state.source === es) {
      // The browser gave up (the answer was not a stream: a 401 or 429); ask whether the session still holds.
      state.source = null
      void api('GET', 'api/session').then((r) => {
        if (r.status === 401) sessionEnded()
        else if (state.session !== null) state.timers.push(setTimeout(openStream, 5000))
      })
    }
  })
  es.addEventListener('stats', handler(onStats))
  es.addEventListener('client', handler(onClientEvent))
  es.addEventListener('message', handler(onMessageEvent))
  es.addEventListener('log', handler((d) => appendLog([d])))
}

function closeStream() {
  if (state.source !== null) state.source.close()
  state.source = null
  setLive(false)
}

async function resync() {
  await Promise.all([loadOverview(), loadClients(), loadLevel(treeNodes.get(null) ?? makeRoot()), loadLog()])
}

// ---------------------------------------------------------------------------------------------------------------
// Session

function showLogin(message) {
  $('app-view').hidden = true
  $('login-view').hidden = false
  $('logout').hidden = true
  $('who').hidden = true
  const err = $('login-error')
  err.hidden = message === undefined
  err.textContent = message ?? ''
  $('login-user').focus()
}

async function start(session) {
  state.session = session
  state.streamOpenedBefore = false
  const admin = session.admin === true
  document.body.classList.toggle('admin', admin)
  $('who').textContent = `${session.username}${admin ? ' (admin)' : ''}`
  $('who').hidden = false
  $('logout').hidden = false
  $('login-view').hidden = true
  $('app-view').hidden = false
  $('users').hidden = !admin
  $('acl').hidden = !admin
  $('sys').replaceChildren()
  sysFacts.clear()
  makeRoot()
  openStream()
  await Promise.all([loadOverview(), loadClients(), loadLevel(treeNodes.get(null)), loadLog(), ...(admin ? [loadUsers(), loadAcl()] : [])])
  state.timers.push(setInterval(() => { if (!document.hidden) void loadOverview() }, OverviewEveryMs))
  state.timers.push(setInterval(() => { if (!document.hidden) void loadClients() }, ClientsEveryMs))
}

function stop() {
  closeStream()
  for (const t of state.timers) {
    clearInterval(t)
    clearTimeout(t)
  }
  state.timers = []
  state.session = null
  document.body.classList.remove('admin')
}

function sessionEnded() {
  if (state.session === null) return
  stop()
  showLogin('Your session has ended; please log in again.')
}

async function login(ev) {
  ev.preventDefault()
  const username = $('login-user').value
  const password = $('login-password').value
  const r = await api('POST', 'api/login', { username, password })
  $('login-password').value = ''
  if (!r.ok) {
    const why = r.status === 401 ? 'Wrong user name or password.' : r.status === 429 ? 'Too many failed logins from this address; try again later.' : errorText(r)
    showLogin(why)
    return
  }
  await start(r.data)
}

async function logout() {
  await api('POST', 'api/logout')
  stop()
  showLogin()
}

function init() {
  charts.messages = new RateChart($('chart-messages'), fmtNumber)
  charts.bytes = new RateChart($('chart-bytes'), fmtBytes)
  $('login-form').addEventListener('submit', (ev) => { void login(ev) })
  $('logout').addEventListener('click', () => { void logout() })
  $('user-form').addEventListener('submit', (ev) => { void saveUser(ev) })
  $('acl-save').addEventListener('click', () => { void saveAcl() })
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) for (const c of Object.values(charts)) c.schedule()
  })
  window.addEventListener('resize', () => { for (const c of Object.values(charts)) c.schedule() })
  void api('GET', 'api/session').then((r) => {
    if (r.ok && r.data !== null && typeof r.data === 'object') void start(r.data)
    else showLogin(r.status === 401 || r.status === 0 ? undefined : errorText(r))
  })
}

init()
