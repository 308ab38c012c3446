/**
 * The states of a client connection, in a module of their own: connection.ts, delivery.ts, the handlers and
 * the broker all compare against them, and none of those may import a value from connection.ts (which
 * imports them), or the broker/ modules would load in a cycle.
 *
 *   AwaitConnect --CONNECT--> Authenticating --ok--> Connected --DISCONNECT/error/close--> Closed
 */
export const ConnState = { AwaitConnect: 0, Authenticating: 1, Connected: 2, Closed: 3 } as const
export type ConnStateValue = (typeof ConnState)[keyof typeof ConnState]
