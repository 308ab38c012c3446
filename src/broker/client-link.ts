/**
 * What the packet handlers and delivery.ts may use of a client connection: its settled facts (read-only),
 * sending, and the named state transitions. They get this rather than the Connection class, so the read
 * loop, the write queue and the stream stay connection.ts's own business, and they import it as a type only,
 * which keeps broker/ free of runtime import cycles (test/packaging/03-import-cycles).
 */
import type { Connection } from './connection.js'

export type ClientLink = Pick<Connection,
  // facts
  | 'broker' | 'listener' | 'meta' | 'label' | 'state' | 'version' | 'session' | 'clientId' | 'username' | 'will'
  | 'sendWindow' | 'receiveMaximum' | 'clientMaxPacketSize' | 'clientTopicAliasMaximum' | 'privateBridge'
  // sending
  | 'sendPacket' | 'sendWithinLimit' | 'fitToClient' | 'write' | 'isCongested' | 'outgoingAliases'
  // transitions
  | 'begin' | 'identify' | 'beginAuthentication' | 'accept' | 'authenticated' | 'aliasedTopic' | 'setTopicAlias'
  | 'holdRead' | 'finishHeld'
  | 'closeByClient' | 'close'
>
