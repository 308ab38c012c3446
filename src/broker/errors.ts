/**
 * Errors a handler throws when a client breaks the protocol. Only the dispatcher (connection.ts) turns
 * one into wire behaviour: a v5 DISCONNECT (or CONNACK) carrying `reasonCode`, or a plain close for 3.x.
 */
export type BrokerErrorCode =
  | 'BRK_ERR_PROTOCOL'
  | 'BRK_ERR_TOPIC_ALIAS'
  | 'BRK_ERR_TOPIC_NAME'
  | 'BRK_ERR_QOS_NOT_SUPPORTED'
  | 'BRK_ERR_RETAIN_NOT_SUPPORTED'
  | 'BRK_ERR_RECEIVE_MAXIMUM'

export class BrokerProtocolError extends Error {
  readonly code: BrokerErrorCode
  readonly reasonCode: number

  constructor(code: BrokerErrorCode, reasonCode: number, message: string) {
    super(message)
    this.name = 'BrokerProtocolError'
    this.code = code
    this.reasonCode = reasonCode
  }
}

/** The one way to throw a plain protocol violation (BRK_ERR_PROTOCOL, reason 0x82 Protocol Error). */
export const protocolViolation = (message: string): BrokerProtocolError =>
  new BrokerProtocolError('BRK_ERR_PROTOCOL', 0x82, message)
