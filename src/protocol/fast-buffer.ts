/**
 * Buffer.prototype methods Node has shipped since v0.x but @types/node does not declare. They skip the
 * encoding-name dispatch of toString()/write(), which shows on the hot path (mqtt-packet and undici use them too).
 */
export interface FastBuffer extends Buffer {
  latin1Slice (start: number, end: number): string
  utf8Slice (start: number, end: number): string
  latin1Write (s: string, offset: number, length: number): number
  utf8Write (s: string, offset: number, length: number): number
}
