// The topic tree: one level at a time (GET api/topics?prefix=, the broker's retained messages and the last
// values it saw while a dashboard was open), kept live by the stream's `message` events for the levels open
// on the page. A closed level is dropped from the page and fetched again when opened, so the page holds only
// what is shown, and at most MaxTreeNodes of it.

import { api, errorText, isAdmin, listOf } from './api.js'
import { $, el, fmtDate, notice, payloadOf, shorten } from './dom.js'

const MaxTreeNodes = 5000 // live topics beyond it wait for a click on their parent
const PayloadShown = 120 // characters of a payload in the tree; the whole (≤ 1 KiB) value is in its tooltip

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
    if (isAdmin()) {
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

export function onMessageEvent(m) {
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
      const value = { payload: m.payload, base64: m.base64, truncated: m.truncated, qos: m.qos, at: typeof m.at === 'number' ? m.at : Date.now() }
      node.last = value
      // An empty retained message removes the topic's retained one, as in the broker.
      if (m.retain === true) node.retained = m.size === 0 || m.payload === '' ? undefined : value
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

/** A fresh tree whose first level is fetched (after login, and after the stream reconnects). */
export function loadTree() {
  return loadLevel(makeRoot())
}
