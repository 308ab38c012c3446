/** UNSUBSCRIBE: remove each filter; v5 reports per filter whether it existed [MQTT-3.11.3-1]. */
import type { UnsubscribePacket } from '../../protocol/packets.js'
import { PacketType, ReasonCode } from '../../protocol/constants.js'
import { isValidTopicFilter } from '../../protocol/topic.js'
import type { ClientLink } from '../client-link.js'

export function handleUnsubscribe(conn: ClientLink, p: UnsubscribePacket): void {
  const broker = conn.broker
  const session = conn.session!
  const mount = conn.listener.mountPoint
  const codes: number[] = []
  const removedFilters: string[] | undefined = broker.events.listeners.unsubscribed !== undefined ? [] : undefined
  for (const f of p.topicFilters) {
    if (!isValidTopicFilter(f)) {
      codes.push(ReasonCode.TopicFilterInvalid)
      continue
    }
    const key = mount === '' ? f : mountFilter(mount, f)
    const removed = broker.unsubscribe(session, key)
    codes.push(removed ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted)
    if (removed && removedFilters !== undefined) removedFilters.push(key)
    if (removed && broker.options.logger.enabled('unsubscribe')) broker.options.logger.log('unsubscribe', `${session.clientId} ${f}`)
  }
  conn.sendPacket({ type: PacketType.Unsuback, packetId: p.packetId, reasonCodes: conn.version === 5 ? codes : [] })
  if (removedFilters !== undefined && removedFilters.length > 0) broker.events.emit('unsubscribed', session.identity, removedFilters)
}

/** Prefixes a filter with the listener's mount point, keeping a $share/group/ prefix in front. */
export function mountFilter(mount: string, filter: string): string {
  if (filter.startsWith('$share/')) {
    const slash = filter.indexOf('/', 7)
    if (slash !== -1) return filter.slice(0, slash + 1) + mount + filter.slice(slash + 1)
  }
  return mount + filter
}
