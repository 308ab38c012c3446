/**
 * MQTT string rules (3.1.1 section 1.5.3, 5.0 section 1.5.4): well-formed UTF-8 (no surrogates, no overlongs)
 * and no U+0000. Other control characters and non-characters are allowed (the spec says SHOULD NOT, not MUST NOT).
 */
import { isUtf8 } from 'node:buffer'

export function isValidMqttString (buf: Buffer, start: number, end: number): boolean {
  // ASCII fast path: topics and client ids are nearly always ASCII, and a JS loop beats the native call for them.
  for (let i = start; i < end; i++) {
    const b = buf[i]!
    if (b === 0) return false
    if (b > 127) return isValidUtf8NoNul(buf, i, end)
  }
  return true
}

/** The slow path: from the first non-ASCII byte. In well-formed UTF-8 a 0 byte can only be U+0000 itself. */
export function isValidUtf8NoNul (buf: Buffer, start: number, end: number): boolean {
  const view = buf.subarray(start, end)
  return isUtf8(view) && view.indexOf(0) === -1
}
