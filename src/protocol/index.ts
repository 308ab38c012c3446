/** Public surface of the MQTT codec. The protocol area imports nothing else from the project. */
export * from './constants.js'
export type * from './packets.js'
export { MqttProtocolError, MqttEncodeError } from './errors.js'
export type { MqttProtocolErrorCode } from './errors.js'
export { varintLength, writeVarint, readVarint, VarintResult, VarintStatus, isVarintValue } from './varint.js'
export { isValidMqttString } from './utf8.js'
export {
  isValidTopicName, isValidTopicFilter, isValidFilterLevels, parseSharedFilter, isValidSharedFilter, topicHasWildcard, topicMatches,
} from './topic.js'
export { Decoder } from './decoder.js'
export type { DecoderOptions } from './decoder.js'
export {
  encode, encodePublish, publishSize, writePublish, encodedSize, encodeConnect, encodeConnack, encodeAck, encodeSubscribe, encodeSuback,
  encodeUnsubscribe, encodeUnsuback, encodeDisconnect, encodeAuth,
} from './encoder.js'
export { PropertyDefs, PropType } from './properties.js'
export type { PropertyDef } from './properties.js'
