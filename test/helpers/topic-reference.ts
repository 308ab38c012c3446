/**
 * Two filter-against-topic matchers written from the spec text (MQTT 5.0 section 4.7), deliberately naive and
 * independent of src/: the oracles that protocol's topicMatches, the broker's TopicTrie and RetainedIndex, and the
 * ACL are held to. One splits into levels, the other builds a regular expression, so a mistake would have to be
 * made twice, in two styles, to pass unseen.
 */

/** Level by level: '+' one level, '#' its parent and all below, no wildcard-led filter matches a '$' topic [MQTT-4.7.2-1]. */
export function referenceMatch (filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length) return false
    if (f[i] !== '+' && f[i] !== t[i]) return false
  }
  return f.length === t.length
}

/** One regular expression per filter. */
export function regexMatch (filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const parts = filter.split('/')
  let re = ''
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!
    if (p === '#') { re += i === 0 ? '.*' : '(?:/.*)?'; break }
    re += (i === 0 ? '' : '/') + (p === '+' ? '[^/]*' : esc(p))
  }
  return new RegExp(`^${re}$`).test(topic)
}
