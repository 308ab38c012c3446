/**
 * CRC-32 (IEEE), table driven; node:zlib's crc32 arrives only in Node 22. Guards each log record, so it is
 * on the persistent QoS 1 path: slice-by-8 (eight tables, eight bytes a step) is 2.3x the byte-at-a-time
 * loop on 100-byte records (docs/performance.md, fourth round).
 */
const T = new Int32Array(8 * 256)
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  T[n] = c
}
// T[k * 256 + n]: the CRC of byte n followed by k zero bytes.
for (let n = 0; n < 256; n++) {
  for (let k = 1; k < 8; k++) {
    const prev = T[(k - 1) * 256 + n]!
    T[k * 256 + n] = (prev >>> 8) ^ T[prev & 0xff]!
  }
}

export function crc32(buf: Buffer, start = 0, end = buf.length): number {
  let c = -1
  let i = start
  for (const last = end - 8; i <= last; i += 8) {
    const a = c ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24))
    c = T[1792 + (a & 0xff)]! ^ T[1536 + ((a >>> 8) & 0xff)]! ^ T[1280 + ((a >>> 16) & 0xff)]! ^ T[1024 + (a >>> 24)]! ^
      T[768 + buf[i + 4]!]! ^ T[512 + buf[i + 5]!]! ^ T[256 + buf[i + 6]!]! ^ T[buf[i + 7]!]!
  }
  for (; i < end; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ -1) >>> 0
}
