// The admin's panels: the password file's users (add, set a password, remove) and the ACL file (edited as
// text; the broker checks it with its own parser and answers the bad line's number). Shown only to a session
// the broker calls admin; the broker checks again at every action, so hiding them is for clarity only.

import { api, errorText, listOf } from './api.js'
import { $, el, notice } from './dom.js'

export async function loadUsers() {
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

export async function loadAcl() {
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

/** Wires the users form and the ACL's Save button (once, at start). */
export function bindAdmin() {
  $('user-form').addEventListener('submit', (ev) => { void saveUser(ev) })
  $('acl-save').addEventListener('click', () => { void saveAcl() })
}
