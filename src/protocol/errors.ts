/**
 * The one error class of the codec. Callers branch on `code` (stable) or `reasonCode` (the MQTT 5 reason code
 * the broker sends back or disconnects with), never on the message text.
 */
import type { ProtocolVersion } from './constants.js'

export type MqttProtocolErrorCode =
  | 'MQTT_ERR_MALFORMED'
  | 'MQTT_ERR_PROTOCOL'
  | 'MQTT_ERR_TOO_LARGE'
  | 'MQTT_ERR_UNSUPPORTED_VERSION'

export class MqttProtocolError extends Error {
  readonly code: MqttProtocolErrorCode
  /** 0x81 malformed, 0x82 protocol error, 0x95 packet too large, 0x84 unsupported protocol version. */
  readonly reasonCode: number
  /**
   * For MQTT_ERR_UNSUPPORTED_VERSION: the version whose CONNACK the peer will understand (3/4: return code 1,
   * 5: reason code 0x84). Undefined when the protocol name itself is unknown: then close without a CONNACK.
   */
  readonly protocolVersion?: ProtocolVersion

  constructor (code: MqttProtocolErrorCode, reasonCode: number, message: string, protocolVersion?: ProtocolVersion) {
    super(message)
    this.name = 'MqttProtocolError'
    this.code = code
    this.reasonCode = reasonCode
    if (protocolVersion !== undefined) this.protocolVersion = protocolVersion
  }
}

export function malformed (message: string): MqttProtocolError {
  return new MqttProtocolError('MQTT_ERR_MALFORMED', 0x81, message)
}

export function protocolError (message: string): MqttProtocolError {
  return new MqttProtocolError('MQTT_ERR_PROTOCOL', 0x82, message)
}

export function tooLarge (size: number, max: number): MqttProtocolError {
  return new MqttProtocolError('MQTT_ERR_TOO_LARGE', 0x95, `packet of ${size} bytes exceeds the maximum of ${max}`)
}

export function unsupportedVersion (message: string, protocolVersion?: ProtocolVersion): MqttProtocolError {
  return new MqttProtocolError('MQTT_ERR_UNSUPPORTED_VERSION', 0x84, message, protocolVersion)
}

/**
 * Thrown by the encoder when a packet cannot be written (a string over 65,535 bytes, a packet past the
 * 268,435,455-byte limit, a packet type the version lacks): a caller bug, never a peer's fault.
 */
export class MqttEncodeError extends RangeError {
  readonly code = 'MQTT_ERR_ENCODE'
  constructor (message: string) {
    super(message)
    this.name = 'MqttEncodeError'
  }
}
