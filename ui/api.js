// Talking to the broker's dashboard API (src/server/dashboard/): JSON both ways, the session cookie sent by
// the browser, and the session's CSRF token on every request that changes something.

/** The logged-in session, {username, admin, csrf}, or null. */
export const session = { current: null }

let lost = () => {}
/** What to do when the broker says the session is gone (expired, logged out elsewhere, user removed). */
export function onSessionLost(fn) {
  lost = fn
}

export const isAdmin = () => session.current?.admin === true

/**
 * One request, answered as {status, ok, data} (data: parsed JSON, else the text); never throws. A 401 to
 * anything but the login and the session check ends the session on the page.
 */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' }
  if (method !== 'GET' && session.current !== null) headers['X-Midge-CSRF'] = session.current.csrf
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
    // a plain-text answer (a proxy's error page, say): kept as text
  }
  if (res.status === 401 && path !== 'api/login' && path !== 'api/session' && session.current !== null) lost()
  return { status: res.status, ok: res.ok, data }
}

/** The broker's sentence for a refusal ({error}), else what there is. */
export function errorText(r) {
  const d = r.data
  if (d !== null && typeof d === 'object' && typeof d.error === 'string') return d.error
  if (typeof d === 'string' && d.trim() !== '') return d.trim()
  return r.status === 0 ? 'the broker did not answer' : `HTTP ${r.status}`
}

/** `d` if it is an array, else its array-valued `key`, else []: never trust a shape to be there. */
export function listOf(d, key) {
  if (Array.isArray(d)) return d
  if (d !== null && typeof d === 'object' && Array.isArray(d[key])) return d[key]
  return []
}
