/**
 * Assembling a running Midge. startMidge (runtime.ts) builds everything a MidgeConfig names and is what
 * `midge serve` and createBroker use; startServer (start-server.ts) is its lower layer: one Broker with its
 * store and plain/websockets listeners from a ServerPlan, which tests and benchmarks also use directly.
 */
export { localOnlyPlan, startServer, type ListenerPlan, type RunningServer, type ServerPlan } from './start-server.js'
export { MidgeRuntime, startMidge, type ListenerKind, type RuntimeEvents, type RuntimeListener, type StartOptions } from './runtime.js'
export type { ReloadSource } from './reload.js'
export { StartFailure } from './start-failure.js'
