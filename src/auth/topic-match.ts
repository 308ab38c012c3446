/**
 * Topic filter relations the ACL needs, on filters pre-split into levels.
 *
 *   filterMatchesTopic(F, t)  t is one of the topics F matches            (PUBLISH, delivery: per message)
 *   filtersIntersect(A, F)    some topic is matched by both A and F        (SUBSCRIBE: may F ever read via A?)
 *   filterCovers(A, F)        every topic F matches is also matched by A   (SUBSCRIBE: does deny A refuse F?)
 *
 * All three apply [MQTT-4.7.2-1]: a filter whose first level is `+` or `#` never matches a topic that
 * starts with `$`, which is what keeps `$SYS/#` private unless an ACL line names `$SYS` itself.
 * filterMatchesTopic runs per message: it walks the topic string with indexOf/startsWith and allocates nothing.
 */

const DOLLAR = 0x24

/** Splits a filter that has already been validated (see isValidAclFilter). */
export function splitLevels(filter: string): string[] {
  return filter.split('/')
}

/** Mosquitto's mosquitto_sub_topic_check: `+` and `#` fill a whole level, `#` only last, 1..65535 chars. */
export function isValidAclFilter(filter: string): boolean {
  if (filter.length === 0 || filter.length > 65535) return false
  const levels = filter.split('/')
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!
    if (l === '#') {
      if (i !== levels.length - 1) return false
    } else if (l !== '+' && (l.includes('+') || l.includes('#'))) {
      return false
    }
  }
  return true
}

function isWildcard(level: string): boolean {
  return level === '+' || level === '#'
}

export function filterMatchesTopic(levels: readonly string[], topic: string): boolean {
  const tlen = topic.length
  const dollar = tlen > 0 && topic.charCodeAt(0) === DOLLAR
  let pos = 0
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!
    // '#' also matches the parent level ("a/#" matches "a"), so test it before running out of topic.
    if (level === '#') return !(i === 0 && dollar)
    if (pos > tlen) return false
    let end = topic.indexOf('/', pos)
    if (end < 0) end = tlen
    if (level === '+') {
      if (i === 0 && dollar) return false
    } else if (end - pos !== level.length || !topic.startsWith(level, pos)) {
      return false
    }
    pos = end + 1
  }
  return pos === tlen + 1
}

/** The `$` rule at level 0: a wildcard on one side cannot meet a `$` literal on the other. */
function dollarMismatch(a: string, b: string): boolean {
  return (isWildcard(a) && b.charCodeAt(0) === DOLLAR) || (isWildcard(b) && a.charCodeAt(0) === DOLLAR)
}

export function filtersIntersect(a: readonly string[], b: readonly string[]): boolean {
  if (a.length > 0 && b.length > 0 && dollarMismatch(a[0]!, b[0]!)) return false
  const n = Math.max(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a[i]
    const y = b[i]
    if (x === '#' || y === '#') return true
    if (x === undefined || y === undefined) return false
    if (x !== '+' && y !== '+' && x !== y) return false
  }
  return true
}

/** True when `outer` matches every topic `inner` matches (outer ⊇ inner). */
export function filterCovers(outer: readonly string[], inner: readonly string[]): boolean {
  if (outer.length > 0 && inner.length > 0) {
    const o = outer[0]!
    const f = inner[0]!
    // inner may match $-topics that a wildcard-led outer never matches
    if (isWildcard(o) && !isWildcard(f) && f.charCodeAt(0) === DOLLAR) return false
  }
  for (let i = 0; i < outer.length; i++) {
    const o = outer[i]!
    if (o === '#') return true
    const f = inner[i]
    if (f === undefined) return false
    // "+/#" matches every topic with at least one level, which at the root is every topic "#" matches.
    if (f === '#') return i === 0 && o === '+' && outer.length === 2 && outer[1] === '#'
    if (o === '+') continue
    if (f === '+' || f !== o) return false
  }
  return outer.length === inner.length
}
