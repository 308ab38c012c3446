// Midge's dashboard: the page's entry module. No framework and no build step; the broker's `protocol http`
// listener serves these files under `default-src 'self'` (no inline script or style, nothing from elsewhere).
//
// Live data comes on one EventSource (api/events): rates every second, clients, a sample of the messages,
// log lines. What changes slowly (listeners, bridges, bans, queue depths) is fetched again every 10 s / 30 s
// while the tab is visible, never faster. After the stream reconnects, everything is fetched again rather
// than trusted. Paths are relative, so the page also works under a reverse proxy's prefix.
//
// Files: api.js (requests, session), dom.js (elements, formats), rate-chart.js, overview.js, clients.js,
// topic-tree.js, admin.js.

import { bindAdmin, loadAcl, loadUsers } from './admin.js'
import { api, errorText, listOf, onSessionLost, session } from './api.js'
import { loadClients, onClientEvent } from './clients.js'
import { $, el, fmtBytes, fmtNumber } from './dom.js'
import { loadOverview, resetOverview, tickUptime } from './overview.js'
import { RateChart } from './rate-chart.js'
import { loadTree, onMessageEvent } from './topic-tree.js'

const MaxLogLines = 500
const OverviewEveryMs = 10_000
const ClientsEveryMs = 30_000
const StreamRetryMs = 5_000

const charts = {}
let source = null
let streamOpenedBefore = false
let timers = []

// ---------------------------------------------------------------------------------------------------------------
// Rates and log lines

function onStats(d) {
  const r = d.rates ?? {}
  charts.messages.push(Number(r.msgIn), Number(r.msgOut))
  charts.bytes.push(Number(r.bytesIn), Number(r.bytesOut))
  $('msg-now').textContent = `${fmtNumber(Number(r.msgIn))} / ${fmtNumber(Number(r.msgOut))}`
  $('bytes-now').textContent = `${fmtBytes(Number(r.bytesIn))} / ${fmtBytes(Number(r.bytesOut))}`
  if (typeof d.authFailures === 'number') $('auth-failures').textContent = String(d.authFailures)
  tickUptime()
}

function appendLog(lines) {
  const ol = $('log-lines')
  const atBottom = ol.scrollTop + ol.clientHeight >= ol.scrollHeight - 4
  for (const line of lines) {
    const text = String(line)
    ol.append(el('li', { textContent: text, className: /error|warning|refused|denied|banned|failed/i.test(text) ? 'warn' : '' }))
  }
  while (ol.children.length > MaxLogLines) ol.firstElementChild.remove()
  // Follow new lines unless the reader has scrolled up to read older ones.
  if (atBottom) ol.scrollTop = ol.scrollHeight
}

async function loadLog() {
  const r = await api('GET', 'api/log?n=200')
  if (!r.ok) return
  $('log-lines').replaceChildren()
  appendLog(listOf(r.data, 'lines'))
}

// ---------------------------------------------------------------------------------------------------------------
// The live stream

/** An event handler that ignores unparsable data and never lets one bad event stop the others. */
function handler(fn) {
  return (ev) => {
    let d
    try {
      d = JSON.parse(ev.data)
    } catch {
      return
    }
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
  source = es
  es.addEventListener('open', () => {
    setLive(true)
    $('live').title = 'live updates'
    if (streamOpenedBefore) void resync()
    streamOpenedBefore = true
  })
  es.addEventListener('error', () => {
    setLive(false)
    if (es.readyState !== EventSource.CLOSED || source !== es) return
    // The browser gave up: the answer was not a stream (the session is gone, or 429: too many tabs open).
    source = null
    void api('GET', 'api/session').then((r) => {
      if (session.current === null) return
      if (r.ok) {
        // The session holds, so the broker refused the stream itself.
        $('live').title = 'no live updates: the broker refused the stream (too many dashboard tabs open?); retrying'
        timers.push(setTimeout(openStream, StreamRetryMs))
      } else if (r.status === 0) {
        timers.push(setTimeout(openStream, StreamRetryMs))
      } else {
        sessionEnded(errorText(r))
      }
    })
  })
  es.addEventListener('stats', handler(onStats))
  es.addEventListener('client', handler(onClientEvent))
  es.addEventListener('message', handler(onMessageEvent))
  es.addEventListener('log', handler((d) => appendLog([d.line])))
}

function closeStream() {
  if (source !== null) source.close()
  source = null
  setLive(false)
}

function resync() {
  return Promise.all([loadOverview(), loadClients(), loadTree(), loadLog()])
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

async function start(s) {
  session.current = s
  streamOpenedBefore = false
  const admin = s.admin === true
  document.body.classList.toggle('admin', admin)
  $('who').textContent = `${s.username}${admin ? ' (admin)' : ''}`
  $('who').hidden = false
  $('logout').hidden = false
  $('login-view').hidden = true
  $('app-view').hidden = false
  $('users').hidden = !admin
  $('acl').hidden = !admin
  resetOverview()
  openStream()
  timers.push(setInterval(() => { if (!document.hidden) void loadOverview() }, OverviewEveryMs))
  timers.push(setInterval(() => { if (!document.hidden) void loadClients() }, ClientsEveryMs))
  await Promise.all([resync(), ...(admin ? [loadUsers(), loadAcl()] : [])])
}

function stop() {
  closeStream()
  for (const t of timers) {
    clearInterval(t)
    clearTimeout(t)
  }
  timers = []
  session.current = null
  document.body.classList.remove('admin')
}

function sessionEnded(why) {
  if (session.current === null) return
  stop()
  showLogin(`Your session has ended${why === undefined ? '' : ` (${why})`}; please log in again.`)
}

async function login(ev) {
  ev.preventDefault()
  const username = $('login-user').value
  const password = $('login-password').value
  const r = await api('POST', 'api/login', { username, password })
  $('login-password').value = ''
  if (!r.ok) {
    showLogin(r.status === 401 ? 'Wrong user name or password.' : errorText(r))
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
  onSessionLost(() => sessionEnded())
  $('login-form').addEventListener('submit', (ev) => { void login(ev) })
  $('logout').addEventListener('click', () => { void logout() })
  bindAdmin()
  const redraw = () => { for (const c of Object.values(charts)) c.schedule() }
  document.addEventListener('visibilitychange', () => { if (!document.hidden) redraw() })
  window.addEventListener('resize', redraw)
  void api('GET', 'api/session').then((r) => {
    if (r.ok && r.data !== null && typeof r.data === 'object') void start(r.data)
    else showLogin(r.status === 401 || r.status === 0 ? undefined : errorText(r))
  })
}

init()
