/**
 * Filter-against-filter relations the ACL needs for SUBSCRIBE, on filters pre-split into levels. Matching a
 * filter against a topic name (PUBLISH, delivery) is protocol/topic.ts's topicMatches, the project's one matcher;
 * these two extend its rules to a wildcard on both sides:
 *
 *   filtersIntersect(A, F)    some topic is matched by both A and F        (SUBSCRIBE: may F ever read via A?)
 *   filterCovers(A, F)        every topic F matches is also matched by A   (SUBSCRIBE: does deny A refuse F?)
 *
 * Both apply [MQTT-4.7.2-1]: a filter whose first level is `+` or `#` never matches a topic that starts with
 * `$`, which is what keeps `$SYS/#` private unless an ACL line names `$SYS` itself.
 */

const DOLLAR = 0x24

/** Splits a filter that has already been validated (isValidFilterLevels). */
export function splitLevels(filter: string): string[] {
  return filter.split('/')
}

function isWildcard(level: string): boolean {
  return level === '+' || level === '#'
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
