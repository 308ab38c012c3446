/**
 * Retained messages: at most one per topic name, in a tree of topic levels so a SUBSCRIBE's filter walks only the
 * branches it can match ('a/b/+' looks at the children of 'a/b' and nothing else) instead of scanning every topic.
 *
 * Matching follows MQTT 5.0 §4.7 / 3.1.1 §4.7 seen from the filter side: '+' takes every child of one level
 * (the empty level included), '#' takes the node it hangs under and its whole subtree ('sport/#' gets 'sport'),
 * and a filter starting with '+' or '#' skips topics starting with '$' [MQTT-4.7.2-1].
 *
 * Not on the per-message fan-out path (set() runs once per retained PUBLISH, match() once per SUBSCRIBE), so levels
 * are plain substrings here. Memory still matters with 100,000 retained topics: up to LIST_MAX children are kept
 * in a sibling list and a Map is made only past that; a node stores the caller's topic string, not a copy.
 * Walks use an explicit stack: topics may be 32,768 levels deep.
 */

const DOLLAR = 0x24
const LIST_MAX = 8

class RetainedNode<M> {
  readonly level: string
  sibling: RetainedNode<M> | undefined = undefined
  firstKid: RetainedNode<M> | undefined = undefined
  kidTable: Map<string, RetainedNode<M>> | undefined = undefined
  /** The full topic name when this node holds a message; undefined otherwise. */
  topic: string | undefined = undefined
  msg: M | undefined = undefined

  constructor (level: string) {
    this.level = level
  }

  kid (level: string): RetainedNode<M> | undefined {
    if (this.kidTable !== undefined) return this.kidTable.get(level)
    for (let n = this.firstKid; n !== undefined; n = n.sibling) {
      if (n.level === level) return n
    }
    return undefined
  }

  addKid (kid: RetainedNode<M>): void {
    if (this.kidTable !== undefined) {
      this.kidTable.set(kid.level, kid)
      return
    }
    let count = 0
    for (let n = this.firstKid; n !== undefined; n = n.sibling) count++
    if (count < LIST_MAX) {
      kid.sibling = this.firstKid
      this.firstKid = kid
      return
    }
    const table = new Map<string, RetainedNode<M>>()
    for (let n = this.firstKid; n !== undefined;) {
      const next: RetainedNode<M> | undefined = n.sibling
      n.sibling = undefined
      table.set(n.level, n)
      n = next
    }
    table.set(kid.level, kid)
    this.firstKid = undefined
    this.kidTable = table
  }

  removeKid (kid: RetainedNode<M>): void {
    if (this.kidTable !== undefined) {
      this.kidTable.delete(kid.level)
      if (this.kidTable.size === 0) this.kidTable = undefined
      return
    }
    if (this.firstKid === kid) {
      this.firstKid = kid.sibling
    } else {
      for (let n = this.firstKid; n !== undefined; n = n.sibling) {
        if (n.sibling === kid) { n.sibling = kid.sibling; break }
      }
    }
    kid.sibling = undefined
  }

  /** Pushes every child onto the stack; at the root, children whose level starts with '$' are left out if asked. */
  pushKids (stack: Array<RetainedNode<M>>, depths: number[] | undefined, depth: number, skipDollar: boolean): void {
    if (this.kidTable !== undefined) {
      for (const n of this.kidTable.values()) {
        if (skipDollar && n.level.charCodeAt(0) === DOLLAR) continue
        stack.push(n); depths?.push(depth)
      }
      return
    }
    for (let n = this.firstKid; n !== undefined; n = n.sibling) {
      if (skipDollar && n.level.charCodeAt(0) === DOLLAR) continue
      stack.push(n); depths?.push(depth)
    }
  }

  isEmpty (): boolean {
    return this.topic === undefined && this.firstKid === undefined && this.kidTable === undefined
  }
}

export class RetainedIndex<M> {
  private readonly root = new RetainedNode<M>('')
  private count = 0

  /** Number of retained messages. */
  get size (): number { return this.count }

  /** Stores msg as the retained message of topic (a topic name), replacing any; returns the replaced one. */
  set (topic: string, msg: M): M | undefined {
    let node = this.root
    let start = 0
    for (;;) {
      const end = levelEnd(topic, start)
      const level = topic.slice(start, end)
      let kid = node.kid(level)
      if (kid === undefined) {
        kid = new RetainedNode<M>(level)
        node.addKid(kid)
      }
      node = kid
      if (end === topic.length) break
      start = end + 1
    }
    const previous = node.msg
    if (node.topic === undefined) this.count++
    node.topic = topic
    node.msg = msg
    return previous
  }

  get (topic: string): M | undefined {
    return this.find(topic)?.msg
  }

  /** Removes the retained message of topic and prunes emptied nodes; returns the removed message. */
  delete (topic: string): M | undefined {
    const path: Array<RetainedNode<M>> = [this.root]
    let node: RetainedNode<M> | undefined = this.root
    let start = 0
    for (;;) {
      const end = levelEnd(topic, start)
      node = node.kid(topic.slice(start, end))
      if (node === undefined) return undefined
      path.push(node)
      if (end === topic.length) break
      start = end + 1
    }
    if (node.topic === undefined) return undefined
    const removed = node.msg
    node.topic = undefined
    node.msg = undefined
    this.count--
    for (let i = path.length - 1; i > 0; i--) {
      const n = path[i]!
      if (!n.isEmpty()) break
      path[i - 1]!.removeKid(n)
    }
    return removed
  }

  /**
   * False when no retained message can match filter: its first level is a name no retained topic begins with
   * (most subscriptions, with only $SYS retained), answered without match's split and stacks.
   */
  mayMatch (filter: string): boolean {
    if (this.count === 0) return false
    const slash = filter.indexOf('/')
    const first = slash < 0 ? filter : filter.slice(0, slash)
    return first === '+' || first === '#' || this.root.kid(first) !== undefined
  }

  /**
   * Calls visit(msg, topic) for every retained message whose topic matches filter (a validated topic filter
   * without '$share/'). The order is unspecified. visit may delete the message it is given (an expired one, say);
   * messages it sets may or may not be visited.
   */
  match (filter: string, visit: (msg: M, topic: string) => void): void {
    const levels = filter.split('/')
    const stack: Array<RetainedNode<M>> = [this.root]
    const depths: number[] = [0]
    while (stack.length > 0) {
      const node = stack.pop()!
      const d = depths.pop()!
      if (d === levels.length) {
        if (node.topic !== undefined) visit(node.msg as M, node.topic)
        continue
      }
      const level = levels[d]!
      if (level === '#') {
        // The node '#' hangs under and all of its subtree; at the root, '$' topics stay out [MQTT-4.7.2-1].
        if (node.topic !== undefined) visit(node.msg as M, node.topic)
        this.visitBelow(node, d === 0, visit)
      } else if (level === '+') {
        node.pushKids(stack, depths, d + 1, d === 0) // [MQTT-4.7.2-1]
      } else {
        const kid = node.kid(level)
        if (kid !== undefined) { stack.push(kid); depths.push(d + 1) }
      }
    }
  }

  /**
   * Every retained message, '$' topics included, as a walk that may be paused while the index changes (a
   * compaction reads it across event-loop turns): a message present from the start of the walk to its
   * end is visited once; one set or deleted meanwhile may or may not be. Each node's children are
   * taken when the node is visited, and a deleted node is only ever left detached with no message.
   */
  * messages (): Generator<M, void, undefined> {
    const stack: Array<RetainedNode<M>> = []
    this.root.pushKids(stack, undefined, 0, false)
    while (stack.length > 0) {
      const node = stack.pop()!
      node.pushKids(stack, undefined, 0, false)
      if (node.topic !== undefined) yield node.msg as M
    }
  }

  /**
   * One level of the tree, for browsing (the dashboard's topic tree): the children of the node at `prefix`
   * (undefined: the top level), each with its retained message if any and the names of its own children.
   * Lists at most `max` children, and at most `max` names under each; `total` counts all children.
   */
  level (prefix: string | undefined, max: number): { entries: Array<{ level: string; msg: M | undefined; children: string[] }>; total: number } {
    const node = prefix === undefined ? this.root : this.find(prefix)
    const entries: Array<{ level: string; msg: M | undefined; children: string[] }> = []
    if (node === undefined) return { entries, total: 0 }
    const kids: Array<RetainedNode<M>> = []
    node.pushKids(kids, undefined, 0, false)
    for (const k of kids) {
      if (entries.length >= max) break
      const grandchildren: Array<RetainedNode<M>> = []
      k.pushKids(grandchildren, undefined, 0, false)
      entries.push({ level: k.level, msg: k.topic === undefined ? undefined : k.msg, children: grandchildren.slice(0, max).map((g) => g.level) })
    }
    return { entries, total: kids.length }
  }

  clear (): void {
    this.root.firstKid = undefined
    this.root.kidTable = undefined
    this.count = 0
  }

  private find (topic: string): RetainedNode<M> | undefined {
    let node: RetainedNode<M> | undefined = this.root
    let start = 0
    for (;;) {
      const end = levelEnd(topic, start)
      node = node.kid(topic.slice(start, end))
      if (node === undefined) return undefined
      if (end === topic.length) return node
      start = end + 1
    }
  }

  /** Visits every message strictly below node. */
  private visitBelow (top: RetainedNode<M>, skipDollar: boolean, visit: (msg: M, topic: string) => void): void {
    const stack: Array<RetainedNode<M>> = []
    top.pushKids(stack, undefined, 0, skipDollar)
    while (stack.length > 0) {
      const node = stack.pop()!
      if (node.topic !== undefined) visit(node.msg as M, node.topic)
      node.pushKids(stack, undefined, 0, false)
    }
  }
}

function levelEnd (s: string, start: number): number {
  const slash = s.indexOf('/', start)
  return slash === -1 ? s.length : slash
}
