/**
 * The per-turn lists of the write path (a connection's packets, the pipeline's dirty and ending connections)
 * are emptied by replacing them with `[]`, then mostly get one item before the next flush. An empty literal's
 * first push gives it room for 17 (~150 B); a one-item literal holds exactly one, and grows as usual after.
 */
export function appended<T>(list: T[], item: T): T[] {
  if (list.length === 0) return [item]
  list.push(item)
  return list
}
