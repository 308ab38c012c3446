/**
 * Subscription index: a trie over topic levels, queried once per PUBLISH to find every matching filter.
 *
 * MQTT 5.0 §4.7 / 3.1.1 §4.7 rules implemented by match():
 *   '+' matches exactly one level, the empty level included ('+/+' matches '/finance').
 *   '#' matches its parent level and any number of levels below ('sport/#' matches 'sport').
 *   A filter whose first level is '+' or '#' never matches a topic starting with '$' [MQTT-4.7.2-1].
 * Filters reaching this file are already validated (no '#' before the last level, wildcards fill whole levels)
 * and carry no '$share/{group}/' prefix; SharedTrie keeps those by group.
 *
 *   root ─┬─ kids ─┬─ 'sport' ─┬─ kids ── 'tennis' ── wild.pound ('#') → entries
 *         │        │           └─ wild.plus ('+') → entries
 *         │        └─ 'news' → entries            (siblings: a list, or a KidTable past LIST_MAX)
 *         └─ wild ─┬─ plus ('+') ── kids ── 'x' …
 *                  └─ pound ('#') → entries
 *
 * Why it looks like this:
 * - Literal children are found by a 30-bit hash of the level, computed while scanning the topic with charCodeAt,
 *   and confirmed by comparing characters in place: match() never cuts a substring, so the publish hot path
 *   allocates nothing but what visit() does. '+' and '#' children sit in their own slots: at most three lookups
 *   per level.
 * - Memory: 100,000 filters of one subscriber each must stay cheap (the broker's budget is ~3 KB per connection in
 *   all). A node has 7 fields; a node's first LIST_MAX children form a sibling list and only wider nodes get a
 *   KidTable, a bucket array chained through the same `sibling` field (~8-16 bytes per child against ~36 for a
 *   Map); the rare wildcard children share one side object; one subscriber is stored in two fields, a Map appears
 *   from the second one. Measured by bench/broker/trie.bench.ts.
 * - match() walks with an explicit, reused stack instead of recursion: a topic may have 32,768 levels and a client
 *   may subscribe to '+/+/…/+' that deep, which would overflow the call stack.
 * - Cost: match() visits each node whose filter prefix matches the topic's prefix, once. That is no exponential
 *   walk but it can be as large as the filters themselves: the 65,536 filters {a,+}^16/x are 196,607 nodes, every
 *   one of them on the path of a/…/a/x (~20 ms), and even a/…/a/y that matches none walks 131,071. So match()
 *   returns the nodes it walked; the broker caps filters per client (max_subscriptions_per_client) and makes a
 *   connection whose packets have cost too many nodes in one turn wait for the next (Connection.yieldRead).
 */

const SLASH = 0x2f
const PLUS = 0x2b
const HASH = 0x23
const DOLLAR = 0x24

/** Children kept in a linked list before a node gets a KidTable: a short list is scanned faster than hashed. */
const LIST_MAX = 8
/** A KidTable shrinking to this many children goes back to a list (half of LIST_MAX: no flapping at the edge). */
const LIST_RETURN = 4
const TABLE_MIN_BUCKETS = 16

/** FNV-1a over UTF-16 code units, cut to 30 bits so it stays a small integer (Smi) that needs no heap box. */
const FNV_OFFSET = 0x811c9dc5 | 0
const FNV_PRIME = 0x01000193
const HASH_MASK = 0x3fffffff

/** Marks a node whose `value` is a Map of several entries rather than the value of the single entry in `key`. */
const MANY: unique symbol = Symbol('many')

/** One topic level. Fields are all assigned in the constructor so every node shares one hidden class. */
class TrieNode<S> {
  readonly level: string
  /** levelHash(level); kept so list scans and table lookups reject most candidates without reading the string. */
  readonly hash: number
  /** Next child of the same parent (list) or of the same bucket (KidTable). */
  sibling: TrieNode<S> | undefined = undefined
  kids: TrieNode<S> | KidTable<S> | undefined = undefined
  wild: WildKids<S> | undefined = undefined
  /** undefined: no entry; a string: the key of the only entry, whose value is `value`; MANY: `value` is a Map. */
  key: string | typeof MANY | undefined = undefined
  value: S | Map<string, S> | undefined = undefined

  constructor (level: string, hash: number) {
    this.level = level
    this.hash = hash
  }

  isEmpty (): boolean {
    return this.key === undefined && this.kids === undefined && this.wild === undefined
  }
}

/** The '+' and '#' children, in one side object because most nodes have neither. */
class WildKids<S> {
  plus: TrieNode<S> | undefined = undefined
  pound: TrieNode<S> | undefined = undefined
}

/** Children of a wide node: power-of-two bucket array, chains through TrieNode.sibling, load factor at most 1. */
class KidTable<S> {
  buckets: Array<TrieNode<S> | undefined>
  mask: number
  count = 0

  constructor (size: number) {
    this.buckets = emptyBuckets<S>(size)
    this.mask = size - 1
  }

  insert (kid: TrieNode<S>): void {
    if (this.count >= this.buckets.length) this.resize(this.buckets.length * 2)
    const i = kid.hash & this.mask
    kid.sibling = this.buckets[i]
    this.buckets[i] = kid
    this.count++
  }

  remove (kid: TrieNode<S>): void {
    const i = kid.hash & this.mask
    let n = this.buckets[i]
    if (n === kid) {
      this.buckets[i] = kid.sibling
    } else {
      while (n !== undefined && n.sibling !== kid) n = n.sibling
      if (n === undefined) return
      n.sibling = kid.sibling
    }
    kid.sibling = undefined
    this.count--
    if (this.buckets.length > TABLE_MIN_BUCKETS && this.count < this.buckets.length >> 2) {
      this.resize(this.buckets.length >> 1)
    }
  }

  /** Unlinks every child into a sibling list and returns its head. */
  toList (): TrieNode<S> | undefined {
    let head: TrieNode<S> | undefined
    for (let i = 0; i < this.buckets.length; i++) {
      let n = this.buckets[i]
      while (n !== undefined) {
        const next: TrieNode<S> | undefined = n.sibling
        n.sibling = head
        head = n
        n = next
      }
    }
    return head
  }

  private resize (size: number): void {
    const old = this.buckets
    this.buckets = emptyBuckets<S>(size)
    this.mask = size - 1
    for (let b = 0; b < old.length; b++) {
      let n = old[b]
      while (n !== undefined) {
        const next: TrieNode<S> | undefined = n.sibling
        const i = n.hash & this.mask
        n.sibling = this.buckets[i]
        this.buckets[i] = n
        n = next
      }
    }
  }
}

/** Filled by push, so V8 keeps the array packed (no hole checks on read). */
function emptyBuckets<S> (size: number): Array<TrieNode<S> | undefined> {
  const buckets: Array<TrieNode<S> | undefined> = []
  for (let i = 0; i < size; i++) buckets.push(undefined)
  return buckets
}

function levelHash (s: string, start: number, end: number): number {
  let h = FNV_OFFSET
  for (let i = start; i < end; i++) h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME)
  return h & HASH_MASK
}

/** Whether node.level equals s[start, end), compared in place. */
function levelIs<S> (node: TrieNode<S>, hash: number, s: string, start: number, end: number): boolean {
  if (node.hash !== hash) return false
  const level = node.level
  if (level.length !== end - start) return false
  for (let i = 0; i < level.length; i++) {
    if (level.charCodeAt(i) !== s.charCodeAt(start + i)) return false
  }
  return true
}

function findKid<S> (parent: TrieNode<S>, hash: number, s: string, start: number, end: number): TrieNode<S> | undefined {
  const kids = parent.kids
  let n = kids instanceof KidTable ? kids.buckets[hash & kids.mask] : kids
  while (n !== undefined) {
    if (levelIs(n, hash, s, start, end)) return n
    n = n.sibling
  }
  return undefined
}

function addKid<S> (parent: TrieNode<S>, kid: TrieNode<S>): void {
  const kids = parent.kids
  if (kids instanceof KidTable) {
    kids.insert(kid)
    return
  }
  let count = 0
  for (let n = kids; n !== undefined; n = n.sibling) count++
  if (count < LIST_MAX) {
    kid.sibling = kids
    parent.kids = kid
    return
  }
  const table = new KidTable<S>(TABLE_MIN_BUCKETS)
  for (let n = kids; n !== undefined;) {
    const next: TrieNode<S> | undefined = n.sibling
    table.insert(n)
    n = next
  }
  table.insert(kid)
  parent.kids = table
}

function removeKid<S> (parent: TrieNode<S>, kid: TrieNode<S>): void {
  const wild = parent.wild
  if (wild !== undefined && (wild.plus === kid || wild.pound === kid)) {
    if (wild.plus === kid) wild.plus = undefined
    else wild.pound = undefined
    if (wild.plus === undefined && wild.pound === undefined) parent.wild = undefined
    return
  }
  const kids = parent.kids
  if (kids instanceof KidTable) {
    kids.remove(kid)
    if (kids.count <= LIST_RETURN) parent.kids = kids.toList()
    return
  }
  if (kids === kid) {
    parent.kids = kid.sibling
  } else {
    for (let n = kids; n !== undefined; n = n.sibling) {
      if (n.sibling === kid) { n.sibling = kid.sibling; break }
    }
  }
  kid.sibling = undefined
}

/** The end index of the level starting at `start` (the next '/' or s.length). */
function levelEnd (s: string, start: number): number {
  const slash = s.indexOf('/', start)
  return slash === -1 ? s.length : slash
}

function isWildcard (s: string, start: number, end: number, char: number): boolean {
  return end - start === 1 && s.charCodeAt(start) === char
}

function emit<S> (node: TrieNode<S>, visit: (value: S, key: string) => void): void {
  const key = node.key
  if (key === undefined) return
  // Map.prototype.forEach calls visit(value, key, map): the extra argument is ignored and no iterator is made.
  if (key === MANY) (node.value as Map<string, S>).forEach(visit)
  else visit(node.value as S, key)
}

/**
 * Per-match working memory, reused across calls so match() allocates nothing once warm; it grows (rarely) for
 * deeper topics or wider walks. A nested match() (from inside a visit callback) gets its own.
 */
class MatchScratch<S> {
  /** levelStart[i], levelEnd[i], levelHashes[i]: where topic level i lies and its hash. */
  levelStart = new Int32Array(16)
  levelEnd = new Int32Array(16)
  levelHashes = new Int32Array(16)
  stackNodes: Array<TrieNode<S> | undefined> = []
  stackDepth = new Int32Array(32)

  /** Splits topic into the level arrays; returns the number of levels (at least one). */
  split (topic: string): number {
    let count = 0
    let start = 0
    let h = FNV_OFFSET
    const len = topic.length
    for (let i = 0; i <= len; i++) {
      const c = i === len ? SLASH : topic.charCodeAt(i)
      if (c !== SLASH) {
        h = Math.imul(h ^ c, FNV_PRIME)
        continue
      }
      if (count === this.levelStart.length) this.growLevels()
      this.levelStart[count] = start
      this.levelEnd[count] = i
      this.levelHashes[count] = h & HASH_MASK
      count++
      start = i + 1
      h = FNV_OFFSET
    }
    return count
  }

  growLevels (): void {
    const size = this.levelStart.length * 2
    const starts = new Int32Array(size); starts.set(this.levelStart); this.levelStart = starts
    const ends = new Int32Array(size); ends.set(this.levelEnd); this.levelEnd = ends
    const hashes = new Int32Array(size); hashes.set(this.levelHashes); this.levelHashes = hashes
  }

  growStack (): void {
    const depth = new Int32Array(this.stackDepth.length * 2)
    depth.set(this.stackDepth)
    this.stackDepth = depth
  }
}

export class TopicTrie<S> {
  private readonly root = new TrieNode<S>('', 0)
  private count = 0
  private readonly scratch = new MatchScratch<S>()
  private matching = false
  /**
   * remove()'s path from the root, written by index and cleared after use (an array per call was ~150 B of
   * garbage per unsubscribe and closed clean session); remove calls no outside code, so it never nests.
   */
  private readonly path: Array<TrieNode<S> | undefined> = []

  /** Number of (filter, key) entries. */
  get size (): number { return this.count }

  /**
   * Adds or replaces the entry of `key` under `filter` (validated, without '$share/'). Returns the value it
   * replaced, if any.
   */
  add (filter: string, key: string, value: S): S | undefined {
    let node = this.root
    let start = 0
    for (;;) {
      const end = levelEnd(filter, start)
      node = this.descend(node, filter, start, end)
      if (end === filter.length) break
      start = end + 1
    }
    return this.putEntry(node, key, value)
  }

  /** Removes the entry of `key` under `filter` and prunes nodes left empty. Returns the removed value. */
  remove (filter: string, key: string): S | undefined {
    const path = this.path
    const removed = this.removeAlong(path, filter, key)
    // The nodes it holds may be pruned ones: not kept alive by the scratch.
    for (let i = 0; i < path.length && path[i] !== undefined; i++) path[i] = undefined
    return removed
  }

  private removeAlong (path: Array<TrieNode<S> | undefined>, filter: string, key: string): S | undefined {
    let node: TrieNode<S> | undefined = this.root
    path[0] = node
    let depth = 1
    let start = 0
    for (;;) {
      const end = levelEnd(filter, start)
      node = this.child(node, filter, start, end)
      if (node === undefined) return undefined
      path[depth++] = node
      if (end === filter.length) break
      start = end + 1
    }
    let removed: S | undefined
    if (node.key === MANY) {
      const entries = node.value as Map<string, S>
      if (!entries.has(key)) return undefined
      removed = entries.get(key)
      entries.delete(key)
      if (entries.size === 1) {
        // Back to the single-entry form so a node that once had two subscribers stays small.
        for (const [k, v] of entries) { node.key = k; node.value = v }
      }
    } else if (node.key === key) {
      removed = node.value as S
      node.key = undefined
      node.value = undefined
    } else {
      return undefined
    }
    this.count--
    for (let i = depth - 1; i > 0; i--) {
      const n = path[i]!
      if (!n.isEmpty()) break
      removeKid(path[i - 1]!, n)
    }
    return removed
  }

  get (filter: string, key: string): S | undefined {
    let node: TrieNode<S> | undefined = this.root
    let start = 0
    for (;;) {
      const end = levelEnd(filter, start)
      node = this.child(node, filter, start, end)
      if (node === undefined) return undefined
      if (end === filter.length) break
      start = end + 1
    }
    if (node.key === MANY) return (node.value as Map<string, S>).get(key)
    return node.key === key ? node.value as S : undefined
  }

  /**
   * Calls visit(value, key) for every entry whose filter matches `topic` (a topic name, no wildcards): once per
   * matching filter, so a client subscribed through overlapping filters is visited once for each. The order is
   * unspecified. Entries added or removed by visit itself may or may not be visited in this call.
   * Returns the number of trie nodes walked: the cost of the call, which the broker budgets per client.
   */
  match (topic: string, visit: (value: S, key: string) => void): number {
    const nested = this.matching
    const sc = nested ? new MatchScratch<S>() : this.scratch
    this.matching = true
    try {
      const levels = sc.split(topic)
      const starts = sc.levelStart
      const ends = sc.levelEnd
      const hashes = sc.levelHashes
      // [MQTT-4.7.2-1] topics beginning with '$' are not matched by a leading '+' or '#'.
      const dollar = topic.charCodeAt(0) === DOLLAR
      const nodes = sc.stackNodes
      let depths = sc.stackDepth
      nodes[0] = this.root
      depths[0] = 0
      let sp = 1
      let walked = 0
      while (sp > 0) {
        sp--
        walked++
        const node = nodes[sp]!
        nodes[sp] = undefined
        const d = depths[sp]!
        const wild = node.wild
        if (d === levels) {
          // Every topic level consumed: this node's own filter matches, and so does its '#' child
          // ('sport/#' matches 'sport').
          emit(node, visit)
          if (wild !== undefined && wild.pound !== undefined) emit(wild.pound, visit)
          continue
        }
        // Up to two pushes follow; grow first so the loop body stays branch-light.
        if (sp + 2 > depths.length) { sc.growStack(); depths = sc.stackDepth }
        if (wild !== undefined && (d !== 0 || !dollar)) {
          if (wild.pound !== undefined) emit(wild.pound, visit)
          if (wild.plus !== undefined) {
            nodes[sp] = wild.plus
            depths[sp] = d + 1
            sp++
          }
        }
        if (node.kids !== undefined) {
          const kid = findKid(node, hashes[d]!, topic, starts[d]!, ends[d]!)
          if (kid !== undefined) {
            nodes[sp] = kid
            depths[sp] = d + 1
            sp++
          }
        }
      }
      return walked
    } finally {
      this.matching = nested
    }
  }

  /** Walks to (and creates if needed) the child of node for filter level [start, end). */
  private descend (node: TrieNode<S>, filter: string, start: number, end: number): TrieNode<S> {
    const plus = isWildcard(filter, start, end, PLUS)
    if (plus || isWildcard(filter, start, end, HASH)) {
      if (node.wild === undefined) node.wild = new WildKids<S>()
      const wild = node.wild
      if (plus) return wild.plus ?? (wild.plus = new TrieNode<S>('+', 0))
      return wild.pound ?? (wild.pound = new TrieNode<S>('#', 0))
    }
    const hash = levelHash(filter, start, end)
    let kid = findKid(node, hash, filter, start, end)
    if (kid === undefined) {
      kid = new TrieNode<S>(filter.slice(start, end), hash)
      addKid(node, kid)
    }
    return kid
  }

  private child (node: TrieNode<S>, filter: string, start: number, end: number): TrieNode<S> | undefined {
    if (isWildcard(filter, start, end, PLUS)) return node.wild?.plus
    if (isWildcard(filter, start, end, HASH)) return node.wild?.pound
    return findKid(node, levelHash(filter, start, end), filter, start, end)
  }

  private putEntry (node: TrieNode<S>, key: string, value: S): S | undefined {
    if (node.key === MANY) {
      const entries = node.value as Map<string, S>
      const had = entries.has(key)
      const previous = entries.get(key)
      entries.set(key, value)
      if (!had) this.count++
      return previous
    }
    if (node.key === undefined) {
      node.key = key
      node.value = value
      this.count++
      return undefined
    }
    if (node.key === key) {
      const previous = node.value as S
      node.value = value
      return previous
    }
    node.value = new Map<string, S>([[node.key, node.value as S], [key, value]])
    node.key = MANY
    this.count++
    return undefined
  }
}

/** One member of a shared subscription group: fixed shape, handed out by SharedGroup.next() without copying. */
export class SharedMember<S> {
  readonly key: string
  value: S

  constructor (key: string, value: S) {
    this.key = key
    this.value = value
  }
}

/**
 * The members of one '$share/{group}/{filter}' subscription. The broker delivers each matching message to one
 * member: next() hands them out round robin. To skip offline members, call next() up to members.length times,
 * or read `members` and set `cursor` (the index next() returns next) directly.
 */
export class SharedGroup<S> {
  readonly name: string
  readonly filter: string
  /** In insertion order; a replaced member keeps its place. */
  readonly members: Array<SharedMember<S>> = []
  cursor = 0
  private readonly byKey = new Map<string, SharedMember<S>>()

  constructor (name: string, filter: string) {
    this.name = name
    this.filter = filter
  }

  get size (): number { return this.members.length }

  next (): SharedMember<S> | undefined {
    const members = this.members
    if (members.length === 0) return undefined
    if (this.cursor >= members.length) this.cursor = 0
    const member = members[this.cursor]
    this.cursor = this.cursor + 1 === members.length ? 0 : this.cursor + 1
    return member
  }

  get (key: string): S | undefined {
    return this.byKey.get(key)?.value
  }

  /** Returns the replaced value or undefined when key is new. */
  set (key: string, value: S): S | undefined {
    const member = this.byKey.get(key)
    if (member !== undefined) {
      const previous = member.value
      member.value = value
      return previous
    }
    const made = new SharedMember(key, value)
    this.byKey.set(key, made)
    this.members.push(made)
    return undefined
  }

  /** Returns the removed value, if key was a member. The cursor keeps pointing at the same next member. */
  delete (key: string): S | undefined {
    const member = this.byKey.get(key)
    if (member === undefined) return undefined
    this.byKey.delete(key)
    const at = this.members.indexOf(member)
    this.members.splice(at, 1)
    if (at < this.cursor) this.cursor--
    if (this.cursor >= this.members.length) this.cursor = 0
    return member.value
  }
}

/**
 * Shared subscriptions ('$share/{group}/{filter}', MQTT 5.0 §4.8.2). One SharedGroup per (group, filter); match()
 * reports each matching group once, and the broker picks one member per message.
 */
export class SharedTrie<S> {
  /** Groups stored as TopicTrie entries keyed by group name: the same trie, one entry per (filter, group). */
  private readonly groups = new TopicTrie<SharedGroup<S>>()
  private count = 0

  /** Number of (group, filter, key) entries. */
  get size (): number { return this.count }

  /** Number of (group, filter) groups. */
  get groupCount (): number { return this.groups.size }

  add (group: string, filter: string, key: string, value: S): S | undefined {
    let g = this.groups.get(filter, group)
    if (g === undefined) {
      g = new SharedGroup<S>(group, filter)
      this.groups.add(filter, group, g)
    }
    const had = g.size
    const previous = g.set(key, value)
    if (g.size !== had) this.count++
    return previous
  }

  remove (group: string, filter: string, key: string): S | undefined {
    const g = this.groups.get(filter, group)
    if (g === undefined) return undefined
    const had = g.size
    const removed = g.delete(key)
    if (g.size !== had) this.count--
    if (g.size === 0) this.groups.remove(filter, group)
    return removed
  }

  get (group: string, filter: string, key: string): S | undefined {
    return this.groups.get(filter, group)?.get(key)
  }

  /** The group of (group, filter), if it has members. */
  group (group: string, filter: string): SharedGroup<S> | undefined {
    return this.groups.get(filter, group)
  }

  /** Calls visitGroup once for every group whose filter matches topic (same rules as TopicTrie.match). */
  match (topic: string, visitGroup: (group: SharedGroup<S>) => void): number {
    return this.groups.match(topic, visitGroup)
  }
}
