/**
 * What a Connection needs of its byte stream: the part of node:stream's Duplex it uses, so that a net.Socket,
 * a TLSSocket, a WebSocket stream, an in-memory pair or a bare TCP handle (transport/tcp-handle.ts) all fit.
 * Listeners are called with the stream as `this` (Connection's are module-level functions, no closures).
 */
export interface ClientStream {
  on(event: 'data' | 'end' | 'error' | 'close', listener: StreamListener): unknown
  once(event: 'drain' | 'close', listener: StreamListener): unknown
  write(chunk: Buffer): unknown
  cork(): void
  uncork(): void
  end(): unknown
  destroy(): unknown
  pause(): unknown
  resume(): unknown
  isPaused(): boolean
  readonly writableLength: number
  readonly writableEnded: boolean
  readonly writable: boolean
  readonly destroyed: boolean
}

// Each Duplex event has its own listener signature; one type for all of them has to be this loose.
// biome-ignore lint/suspicious/noExplicitAny: the listener of any of Duplex's overloaded events
export type StreamListener = (...args: any[]) => void
