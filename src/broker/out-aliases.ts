/**
 * The topic aliases Midge uses towards one MQTT 5 client (section 3.3.2.3.4), bounded by its Topic Alias Maximum
 * and by the bytes of the topics they stand for (max_outgoing_topic_alias_bytes): a client receiving endless
 * unique long topics must not make us keep every one. When full, the least recently assigned alias number is
 * re-mapped; the PUBLISH that re-maps it carries both the topic and the alias, which replaces the client's old
 * mapping.
 */
export class OutAliases {
  readonly byTopic = new Map<string, number>()
  /** Topic of alias n at n - 1; '' for a number freed to make room in bytes. */
  readonly topics: string[] = []
  /** UTF-8 bytes of topics[i]. */
  private readonly sizes: number[] = []
  /** UTF-8 bytes of the topics mapped now. */
  bytes = 0
  /** Index in `topics` of the next alias to re-map (round robin: least recently assigned first). */
  private cursor = 0

  /** A new alias for topic (not mapped yet), or 0 when it may not have one. */
  assign(topic: string, maxCount: number, maxBytes: number): number {
    const len = Buffer.byteLength(topic)
    if (len > maxBytes) return 0
    const topics = this.topics
    let alias = 0
    if (topics.length < maxCount && this.bytes + len <= maxBytes) {
      topics.push(topic)
      this.sizes.push(len)
      alias = topics.length
    } else {
      // Re-map the least recently assigned alias, and free the ones after it until the topic fits.
      while (alias === 0 || this.bytes + len > maxBytes) {
        if (this.cursor >= topics.length) this.cursor = 0
        const i = this.cursor++
        if (topics[i] !== '') this.free(i)
        if (alias === 0) alias = i + 1
      }
      topics[alias - 1] = topic
      this.sizes[alias - 1] = len
    }
    this.byTopic.set(topic, alias)
    this.bytes += len
    return alias
  }

  /** Undoes assign() for a PUBLISH that was never sent: the client never learnt the mapping. */
  unassign(alias: number): void {
    this.free(alias - 1)
  }

  private free(i: number): void {
    this.byTopic.delete(this.topics[i]!)
    this.bytes -= this.sizes[i]!
    this.topics[i] = ''
    this.sizes[i] = 0
  }
}
