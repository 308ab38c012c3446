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
  /**
   * end() after the client's DISCONNECT, for a stream that can do it cheaper (a bare TCP handle closes at once
   * when nothing of ours waits to be written: the client sends nothing more [MQTT-3.14.4-1], so there is no
   * FIN of its own to wait for). Streams without it get end().
   */
  endAfterDisconnect?(): void
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
