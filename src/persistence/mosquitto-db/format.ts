/**
 * Constants of Mosquitto's persistence file (mosquitto.db), as its 1.x and 2.0.x brokers write it.
 * Learnt from Mosquitto's src/persist.h, persist_read*.c and persist_write*.c; the layouts are described
 * in reader.ts next to the code that reads them.
 */

/** The first 15 bytes of every mosquitto.db. */
export const MosquittoMagic = Buffer.from([0x00, 0xb5, 0x00, ...Buffer.from('mosquitto db', 'latin1')])

/** Header: magic, a 4-byte CRC Mosquitto never fills in, the format version (big-endian u32). */
export const HeaderSize = MosquittoMagic.length + 4 + 4

/** 6 = Mosquitto 2.0.x; 5 = 1.6.x (MQTT 5); 4 = 1.5.6..1.5.x; 3 = 1.0..1.5.5. */
export const SupportedVersions = [3, 4, 5, 6] as const

export const ChunkType = {
  Cfg: 1,
  MsgStore: 2,
  ClientMsg: 3,
  Retain: 4,
  Sub: 5,
  Client: 6,
} as const

export const ChunkNames: Record<number, string> = { 1: 'CFG', 2: 'MSG_STORE', 3: 'CLIENT_MSG', 4: 'RETAIN', 5: 'SUB', 6: 'CLIENT' }

/** Mosquitto's enum mosquitto_msg_state (mosquitto_broker_internal.h), the state of one client message. */
export const MsgState = {
  Invalid: 0,
  PublishQos0: 1,
  PublishQos1: 2,
  WaitForPuback: 3,
  PublishQos2: 4,
  WaitForPubrec: 5,
  ResendPubrel: 6,
  WaitForPubrel: 7,
  ResendPubcomp: 8,
  WaitForPubcomp: 9,
  SendPubrec: 10,
  Queued: 11,
} as const

/** enum mosquitto_msg_direction. */
export const Direction = { In: 0, Out: 1 } as const

/** Subscription option bits as Mosquitto 2.0 persists them (no Retain Handling: it only acts at SUBSCRIBE). */
export const SubOption = { NoLocal: 0x04, RetainAsPublished: 0x08 } as const

/** Mosquitto stores it too for v3.1.1 clean-session-0 clients. */
export { NeverExpires } from '../../protocol/constants.js'

export function isMosquittoDb(head: Buffer): boolean {
  return head.length >= MosquittoMagic.length && head.subarray(0, MosquittoMagic.length).equals(MosquittoMagic)
}
