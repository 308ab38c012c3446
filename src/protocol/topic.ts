/**
 * Topic name and filter rules (3.1.1 section 4.7, 5.0 section 4.7 and 4.8.2 for $share). Scans use charCodeAt,
 * never split(), since the broker runs them per PUBLISH/SUBSCRIBE.
 */

const Slash = 47
const Plus = 43
const Hash = 35
const Dollar = 36
/** A UTF-16 unit is at most 3 UTF-8 bytes, so strings this short cannot pass the 65,535-byte limit. */
const SafeLength = 21_845
const SharePrefix = '$share/'

/** At most 65,535 UTF-8 bytes: what a topic or filter field can hold [MQTT-1.5.4-1]. */
export function withinByteLimit (s: string): boolean {
  return s.length <= SafeLength || Buffer.byteLength(s) <= 65_535
}

/** PUBLISH topic: non-empty, no wildcard, no U+0000, at most 65,535 UTF-8 bytes [MQTT-4.7.3-1, MQTT-3.3.2-2]. */
export function isValidTopicName (t: string): boolean {
  const n = t.length
  if (n === 0) return false
  for (let i = 0; i < n; i++) {
    const c = t.charCodeAt(i)
    if (c === Plus || c === Hash || c === 0) return false
  }
  return withinByteLimit(t)
}

/**
 * The level rules alone: '#' only as the whole last level [MQTT-4.7.1-2], '+' only as a whole level [MQTT-4.7.1-3],
 * no U+0000, 1 to 65,535 UTF-8 bytes. For filters matched as written, where '$share/' is an ordinary first level:
 * acl_file lines (as mosquitto_sub_topic_check, which knows no shares). isValidTopicFilter adds the share rule.
 */
export function isValidFilterLevels (f: string): boolean {
  const n = f.length
  if (n === 0) return false
  for (let i = 0; i < n; i++) {
    const c = f.charCodeAt(i)
    if (c === Plus) {
      if ((i > 0 && f.charCodeAt(i - 1) !== Slash) || (i + 1 < n && f.charCodeAt(i + 1) !== Slash)) return false
    } else if (c === Hash) {
      if ((i > 0 && f.charCodeAt(i - 1) !== Slash) || i !== n - 1) return false
    } else if (c === 0) {
      return false
    }
  }
  return withinByteLimit(f)
}

/**
 * SUBSCRIBE/UNSUBSCRIBE filter. A filter starting with '$share/' must also be a valid shared subscription
 * (see isValidSharedFilter), so a broker that checks this first can trust parseSharedFilter's result.
 */
export function isValidTopicFilter (f: string): boolean {
  if (!isValidFilterLevels(f)) return false
  return !f.startsWith(SharePrefix) || isValidSharedFilter(f)
}

/**
 * Splits '$share/{group}/{filter}'. Returns null when f is not a shared filter. Never throws: a malformed share
 * ('$share/', '$share/g', '$share//x') still returns its raw parts; isValidSharedFilter says whether they are usable.
 */
export function parseSharedFilter (f: string): { group: string; filter: string } | null {
  if (!f.startsWith(SharePrefix)) return null
  const slash = f.indexOf('/', SharePrefix.length)
  if (slash === -1) return { group: f.slice(SharePrefix.length), filter: '' }
  return { group: f.slice(SharePrefix.length, slash), filter: f.slice(slash + 1) }
}

/** Non-empty share name without '+', '#' or '/' [MQTT-4.8.2-1, MQTT-4.8.2-2], followed by a valid filter. */
export function isValidSharedFilter (f: string): boolean {
  const p = parseSharedFilter(f)
  if (p === null || p.group.length === 0) return false
  const g = p.group
  for (let i = 0; i < g.length; i++) {
    const c = g.charCodeAt(i)
    if (c === Plus || c === Hash || c === 0) return false
  }
  return isValidFilterLevels(p.filter)
}

export function topicHasWildcard (f: string): boolean {
  for (let i = 0; i < f.length; i++) {
    const c = f.charCodeAt(i)
    if (c === Plus || c === Hash) return true
  }
  return false
}

/**
 * Whether topic name `topic` matches `filter` [MQTT-4.7]: '+' is one whole level, the empty one included ('+/+'
 * matches '/x'); '#' is its parent level and everything below ('a/#' matches 'a') [MQTT-4.7.1-2]; a filter whose
 * first level is '+' or '#' never matches a topic starting with '$' [MQTT-4.7.2-1]. `filter` is a valid filter
 * without a '$share/{group}/' prefix. The one matcher of the project (bridge topic maps, acl_file, `sub -T`, the
 * mosquitto.db import); the broker's TopicTrie is an index over many filters that applies the same rules.
 * Index scans, no split: it runs per message on the bridge and for every ACL line.
 */
export function topicMatches (filter: string, topic: string): boolean {
  const fl = filter.length
  const tl = topic.length
  const f0 = filter.charCodeAt(0)
  if (topic.charCodeAt(0) === Dollar && (f0 === Hash || f0 === Plus)) return false
  let fi = 0
  let ti = 0
  for (;;) {
    const c = filter.charCodeAt(fi)
    if (c === Hash) return true
    if (c === Plus) { // the whole of this topic level
      while (ti < tl && topic.charCodeAt(ti) !== Slash) ti++
      fi++
    } else {
      while (fi < fl && filter.charCodeAt(fi) !== Slash) {
        if (ti >= tl || topic.charCodeAt(ti) !== filter.charCodeAt(fi)) return false
        fi++
        ti++
      }
      if (ti < tl && topic.charCodeAt(ti) !== Slash) return false
    }
    // Both sit at the end of a level.
    if (fi >= fl) return ti >= tl
    fi++ // the filter's '/'
    if (ti >= tl) return filter.charCodeAt(fi) === Hash && fi + 1 === fl // "a/#" matches "a"
    ti++ // the topic's '/'
  }
}
