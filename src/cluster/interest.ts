/**
 * Routing by interest. This node's filters are counted (many sessions may hold one filter; only the first and
 * the last change what the other nodes must know), and each change waits for the next commit to go to Redis.
 * The other nodes' filters are kept in tries of node ids (the broker's own TopicTrie and SharedTrie, so a
 * remote match follows exactly the local matching rules), fed by the interest channel and reloaded whole
 * after a node joins or Redis comes back.
 *
 * An interest key is the filter as subscribed: `a/+/b`, or `$share/group/a/+/b` for a share group.
 */
import { SharedTrie, TopicTrie } from '../broker/topic-trie.js'

export function interestKey (filter: string, group: string): string {
  return group === '' ? filter : `$share/${group}/${filter}`
}

/** [group, filter] of a key ('' group: not shared). */
export function splitKey (key: string): [string, string] {
  if (!key.startsWith('$share/')) return ['', key]
  const slash = key.indexOf('/', 7)
  return [key.slice(7, slash), key.slice(slash + 1)]
}

export class LocalInterest {
  readonly counts = new Map<string, number>()
  /** Keys whose presence changed since the last commit: true = now held, false = gone. */
  readonly changes = new Map<string, boolean>()

  add (key: string): void {
    const n = this.counts.get(key) ?? 0
    this.counts.set(key, n + 1)
    if (n === 0) this.changes.set(key, true)
  }

  remove (key: string): void {
    const n = this.counts.get(key)
    if (n === undefined) return
    if (n > 1) {
      this.counts.set(key, n - 1)
      return
    }
    this.counts.delete(key)
    this.changes.set(key, false)
  }
}

export class RemoteInterest {
  readonly plain = new TopicTrie<string>()
  readonly shared = new SharedTrie<string>()
  /** Keys per node, to drop a node's interest whole. */
  private readonly byNode = new Map<string, Set<string>>()

  get nodes (): IterableIterator<string> {
    return this.byNode.keys()
  }

  has (node: string): boolean {
    return this.byNode.has(node)
  }

  add (node: string, key: string): void {
    let keys = this.byNode.get(node)
    if (keys === undefined) this.byNode.set(node, keys = new Set())
    if (keys.has(key)) return
    keys.add(key)
    const [group, filter] = splitKey(key)
    if (group === '') this.plain.add(filter, node, node)
    else this.shared.add(group, filter, node, node)
  }

  remove (node: string, key: string): void {
    const keys = this.byNode.get(node)
    if (keys === undefined || !keys.delete(key)) return
    const [group, filter] = splitKey(key)
    if (group === '') this.plain.remove(filter, node)
    else this.shared.remove(group, filter, node)
  }

  /** Replaces what is known of `node` by `keys` (a fresh read of its hash). */
  reset (node: string, keys: Iterable<string>): void {
    this.drop(node)
    this.byNode.set(node, new Set())
    for (const k of keys) this.add(node, k)
  }

  drop (node: string): void {
    const keys = this.byNode.get(node)
    if (keys === undefined) return
    for (const k of [...keys]) this.remove(node, k)
    this.byNode.delete(node)
  }
}
