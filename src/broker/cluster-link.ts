/**
 * What the broker tells a cluster (src/cluster/) and asks of it. The broker holds at most one link, set by the
 * cluster when it joins; with none (cluster off) each call site costs one `undefined` check and nothing else.
 */
import type { WillMessage } from '../protocol/packets.js'
import type { Message } from './message.js'

export interface ClusterLink {
  /** A session of this broker now holds `filter` (group '' = not shared); counted per (group, filter). */
  interestAdded(filter: string, group: string): void
  interestRemoved(filter: string, group: string): void
  /** A message published on this node (client, will, application; never `$SYS/`): forward it to the nodes that want it. */
  forward(msg: Message): void
  /**
   * Share group (group, filter) matched a message being routed here: whether this node's members take it (true)
   * or another node holding the group does (false; the link forwards it there). One delivery per group, cluster-wide.
   */
  sharedHere(group: string, filter: string): boolean
  /**
   * Before a CONNECT's session is attached: makes this node the owner of clientId's session cluster-wide, having
   * the previous owner close its connection (0x8E) and hand the session over. undefined: nothing to wait for.
   */
  claim(clientId: string, cleanStart: boolean): Promise<void> | undefined
  /**
   * The will this node would publish for clientId changed (undefined: none any more; dueAt 0: its connection is
   * open, else the time a delayed will is due): kept in Redis so a survivor publishes it if this node is lost.
   */
  willChanged(clientId: string, will: WillMessage | undefined, dueAt: number): void
  /** clientId's session ended here: its ownership record goes (Redis holds one per session, not per client ever seen). */
  sessionEnded(clientId: string): void
}
