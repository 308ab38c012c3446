/** The MQTT client's public surface: used by `midge pub`/`midge sub`, the bridge, and embedders. */
export { MqttClient } from './client.js'
export type { PublishOptions, SubscribeRequest } from './client.js'
export { ClientError, ClientErrorCode, classifySocketError } from './errors.js'
export type { TlsFailureReason } from './errors.js'
export type { ClientOptions, WillOptions } from './options.js'
