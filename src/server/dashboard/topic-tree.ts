/**
 * GET /api/topics: one level of the topic tree below a prefix, from the retained messages (the broker's
 * RetainedIndex walks only that level) and the last values seen while a dashboard was open (last-values.ts).
 * The viewer sees what its ACL would let an MQTT client of the same user see: a branch only if it may
 * subscribe to something below it, a payload only if it may read that topic. Logging in needs $SYS/#
 * only, so without this a monitoring account would read every device's messages.
 */
import type { Message } from '../../broker/message.js'
import type { RetainedIndex } from '../../broker/retained-index.js'
import { type LastValues, payloadView, type PayloadView } from './last-values.js'

/** Children listed per level at most; the reply says how many there are. */
export const TopicLevelMax = 1000

export interface TopicNode {
  name: string
  topic: string
  children: number
  /** `at`: when it was stored, known only if a dashboard saw it published (a Message carries no time). */
  retained?: PayloadView & { qos: number; at: number | null }
  last?: PayloadView & { qos: number; at: number }
}

interface Building {
  name: string
  kids: Set<string>
  retained?: TopicNode['retained']
  last?: TopicNode['last']
}

/** What the viewer's ACL allows: `branch` for a topic and everything below it, `read` for one topic's payload. */
export interface TopicViewer {
  branch(topic: string): boolean
  read(topic: string): boolean
}

export const SeeAll: TopicViewer = { branch: () => true, read: () => true }

export function topicLevel(prefix: string | undefined, retained: RetainedIndex<Message>, last: LastValues, viewer: TopicViewer = SeeAll): { topics: TopicNode[]; total: number } {
  const nodes = new Map<string, Building>()
  const node = (name: string): Building => {
    let n = nodes.get(name)
    if (n === undefined) {
      n = { name, kids: new Set() }
      nodes.set(name, n)
    }
    return n
  }
  const lead = prefix === undefined ? '' : `${prefix}/`
  const level = retained.level(prefix, TopicLevelMax)
  for (const e of level.entries) {
    const n = node(e.level)
    for (const k of e.children) n.kids.add(k)
    if (e.msg !== undefined) n.retained = { ...payloadView(e.msg.payload, e.msg.payload.length), qos: e.msg.qos, at: retainedAt(last, lead + e.level) }
  }
  for (const topic of last.topics()) {
    if (!topic.startsWith(lead)) continue
    const slash = topic.indexOf('/', lead.length)
    const name = topic.slice(lead.length, slash === -1 ? undefined : slash)
    if (!nodes.has(name) && nodes.size >= TopicLevelMax) continue
    const n = node(name)
    if (slash === -1) {
      const v = last.get(topic)
      if (v !== undefined) n.last = { ...payloadView(v.head, v.size), qos: v.qos, at: v.at }
    } else if (n.kids.size < TopicLevelMax) {
      const next = topic.indexOf('/', slash + 1)
      n.kids.add(topic.slice(slash + 1, next === -1 ? undefined : next))
    }
  }
  const topics = [...nodes.values()]
    .filter((n) => viewer.branch(lead + n.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((n): TopicNode => ({
      name: n.name, topic: lead + n.name, children: n.kids.size,
      ...(n.retained === undefined || !viewer.read(lead + n.name) ? {} : { retained: n.retained }),
      ...(n.last === undefined || !viewer.read(lead + n.name) ? {} : { last: n.last }),
    }))
  return { topics, total: Math.max(level.total, topics.length) }
}

/** When the retained message was stored, if a dashboard saw it published and nothing followed on its topic. */
function retainedAt(last: LastValues, topic: string): number | null {
  const v = last.get(topic)
  return v?.retain === true ? v.at : null
}
