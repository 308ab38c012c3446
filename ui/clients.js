// The connected clients: GET api/clients (the broker lists at most 1000, with the total), then kept live by
// the stream's `client` events, and fetched again every half minute for queue depths and subscriptions.

import { api, errorText, isAdmin, listOf } from './api.js'
import { $, el, fmtAgo, fmtDate, fmtNumber, notice, protocolNames } from './dom.js'

/** As the broker's list, the table stops here; the count still says how many there are. */
const MaxClientRows = 1000

/** clientId → <tr> */
const rowById = new Map()
let clientTotal = 0

function clientRow(c) {
  const subs = listOf(c.subscriptions).map(String)
  const subsCell = el('td', { className: 'subs', textContent: subs.length > 4 ? `${subs.slice(0, 4).join(', ')} +${subs.length - 4}` : subs.join(', '), title: subs.join('\n') })
  const actions = el('td', { className: 'admin-only' })
  if (isAdmin()) {
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
  const shown = rowById.size
  const total = Math.max(clientTotal, shown)
  $('clients-count').textContent = total > shown ? `${shown} of ${total}` : String(shown)
}

export function renderClients(d) {
  const list = listOf(d, 'clients')
  rowById.clear()
  const rows = list.map((c) => {
    const row = clientRow(c)
    rowById.set(String(c.clientId), row)
    return row
  })
  $('clients-table').tBodies[0].replaceChildren(...rows)
  clientTotal = d !== null && typeof d === 'object' && typeof d.total === 'number' ? d.total : list.length
  updateClientCount()
}

export function onClientEvent(e) {
  const c = e.client ?? {}
  const id = String(c.clientId ?? '')
  const old = rowById.get(id)
  if (e.type === 'connected') {
    const row = clientRow(c)
    if (old !== undefined) {
      old.replaceWith(row)
      rowById.set(id, row)
    } else {
      clientTotal++
      if (rowById.size < MaxClientRows) {
        $('clients-table').tBodies[0].append(row)
        rowById.set(id, row)
      }
    }
  } else if (e.type === 'disconnected') {
    // A takeover reads as the old connection's `disconnected` before the new one's `connected` (the broker
    // closes the old one first), so removing the row here never hides a client that is still connected.
    if (old !== undefined) {
      old.remove()
      rowById.delete(id)
    }
    clientTotal = Math.max(0, clientTotal - 1)
  }
  updateClientCount()
}

export async function loadClients() {
  const r = await api('GET', 'api/clients')
  if (r.ok) renderClients(r.data)
}

async function disconnectClient(id) {
  const r = await api('POST', `api/clients/${encodeURIComponent(id)}/disconnect`)
  notice(r.ok ? `Disconnected ${id}.` : `Could not disconnect ${id}: ${errorText(r)}`, !r.ok)
}
