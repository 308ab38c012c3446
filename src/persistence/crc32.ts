/** CRC-32 (IEEE), table driven; node:zlib's crc32 arrives only in Node 22. Guards each log record. */
const table = new Int32Array(256)
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  table[n] = c
}

export function crc32(buf: Buffer, start = 0, end = buf.length): number {
  let c = -1
  for (let i = start; i < end; i++) c = table[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ -1) >>> 0
}
