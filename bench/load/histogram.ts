/**
 * Log-linear latency histogram (HdrHistogram style, as mqload's): values below 2^(SUB_BITS+1) ns
 * are exact, larger ones keep SUB_BITS significant bits, so a percentile is within 0.4%.
 * Recording is a few arithmetic operations and one array increment: cheap enough for every
 * delivery of a million-message run.
 */

const SUB_BITS = 8
const SUB_N = 1 << SUB_BITS
const MAX_EXP = 53 // values are integers held in doubles
const BUCKETS = (MAX_EXP - SUB_BITS + 2) * SUB_N

export class Histogram {
  readonly counts = new Float64Array(BUCKETS)
  n = 0
  sum = 0
  min = 0
  max = 0

  record(v: number): void {
    if (v < 0) v = 0
    if (this.n === 0 || v < this.min) this.min = v
    if (v > this.max) this.max = v
    this.n++
    this.sum += v
    this.counts[bucketOf(v)]!++
  }

  /** Nearest-rank percentile (0 < pct <= 100), in the unit recorded. */
  percentile(pct: number): number {
    if (this.n === 0) return 0
    const rank = Math.max(1, Math.ceil((pct / 100) * this.n - 1e-9))
    let acc = 0
    for (let i = 0; i < BUCKETS; i++) {
      acc += this.counts[i]!
      if (acc >= rank) return Math.min(this.max, Math.max(this.min, midpoint(i)))
    }
    return this.max
  }

  mean(): number {
    return this.n === 0 ? 0 : this.sum / this.n
  }
}

function bucketOf(v: number): number {
  v = Math.floor(v)
  if (v < SUB_N) return v
  const e = v < 0x100000000 ? 31 - Math.clz32(v) : Math.min(MAX_EXP, Math.floor(Math.log2(v)))
  const m = Math.floor(v / 2 ** (e - SUB_BITS)) & (SUB_N - 1)
  return (e - SUB_BITS + 1) * SUB_N + m
}

function midpoint(idx: number): number {
  if (idx < 2 * SUB_N) return idx
  const e = Math.floor(idx / SUB_N) + SUB_BITS - 1
  const m = idx % SUB_N
  const w = 2 ** (e - SUB_BITS)
  return (SUB_N + m) * w + w / 2
}
