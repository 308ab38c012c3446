/**
 * Midge as a library: `import { createBroker } from 'midge'` (docs/embedding.md). Public exports only;
 * everything else under dist/src is internal and may change (the package's `exports` map refuses deep imports).
 */
export { createBroker } from './api/create-broker.js'
export type { CreateBrokerOptions, HandleOptions, MidgeBroker, MidgeEventMap, MidgeEventName, PublishOptions } from './api/create-broker.js'
export type { BrokerEventMap, BrokerEventName, BrokerListener } from './broker/events.js'
export type {
  AuthenticateHook, AuthenticateRequest, AuthorizeDeliverHook, AuthorizePublishHook, AuthorizeSubscribeHook,
  BrokerHooks, ClientInfo, HookRefusal, MessageInfo,
} from './broker/hooks.js'
export type { Broker } from './broker/broker.js'
export type { BrokerOptions, ListenerInfo } from './broker/options.js'
export type { MidgeConfig } from './config/types.js'
export type { LogType } from './observability/logger.js'
export type { Properties } from './protocol/packets.js'
export type { QoS } from './protocol/constants.js'
export { ConfigError, ConfigInvalidError } from './config/errors.js'
export { loadConfig, loadConfigText } from './config/load.js'
export { MidgeRuntime, startMidge, StartFailure } from './server/index.js'
export type { ListenerKind, ReloadSource, RuntimeEvents, RuntimeListener, StartOptions } from './server/index.js'
