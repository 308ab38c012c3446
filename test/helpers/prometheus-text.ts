/**
 * A strict parser of the Prometheus text exposition format 0.0.4, written from the format's description
 * (not from src/observability/prometheus.ts): it throws on anything a Prometheus server would reject or a
 * linter would flag — a sample before its TYPE, a family's samples split, HELP/TYPE repeated, bad names,
 * bad escapes, duplicate label sets, a missing final newline.
 */
export interface ParsedSample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface ParsedFamily {
  name: string
  help: string | undefined
  type: string
  samples: ParsedSample[]
}

const MetricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LabelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const Types = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])

export function parsePrometheusText(text: string): Map<string, ParsedFamily> {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('the exposition does not end with a newline')
  const families = new Map<string, ParsedFamily>()
  let current: ParsedFamily | undefined
  const closed = new Set<string>()
  const lines = text.split('\n').slice(0, -1)
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`
    if (line.trim() === '') return
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line)
      if (m === null) return // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string]
      if (!MetricName.test(name)) throw new Error(`${where}: bad metric name`)
      let f = families.get(name)
      if (f === undefined) {
        if (current !== undefined) closed.add(current.name)
        f = { name, help: undefined, type: 'untyped', samples: [] }
        families.set(name, f)
        current = f
      } else if (f !== current || f.samples.length > 0) {
        throw new Error(`${where}: ${kind} for ${name} after its samples or another family`)
      }
      if (kind === 'HELP') {
        if (f.help !== undefined) throw new Error(`${where}: second HELP`)
        f.help = unescapeHelp(rest, false, where)
      } else {
        if (!Types.has(rest)) throw new Error(`${where}: unknown type`)
        if ((f as ParsedFamily & { typed?: boolean }).typed === true) throw new Error(`${where}: second TYPE`)
        ;(f as ParsedFamily & { typed?: boolean }).typed = true
        f.type = rest
      }
      return
    }
    const sample = parseSample(line, where)
    const f = current
    if (f === undefined || f.name !== sample.name || closed.has(sample.name)) {
      throw new Error(`${where}: sample of ${sample.name} outside its family (no TYPE line before it, or its family's samples are split)`)
    }
    const key = JSON.stringify(Object.entries(sample.labels).sort())
    if (f.samples.some((s) => JSON.stringify(Object.entries(s.labels).sort()) === key)) throw new Error(`${where}: duplicate label set`)
    f.samples.push(sample)
  })
  for (const f of families.values()) delete (f as ParsedFamily & { typed?: boolean }).typed
  return families
}

function parseSample(line: string, where: string): ParsedSample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)( -?\d+)?$/.exec(line)
  if (m === null) throw new Error(`${where}: not a sample line`)
  const [, name, labelText, valueText] = m as unknown as [string, string, string | undefined, string]
  const labels: Record<string, string> = {}
  if (labelText !== undefined) {
    let rest = labelText.slice(1, -1)
    while (rest.length > 0) {
      const lm = /^([^=]+)="/.exec(rest)
      if (lm === null || !LabelName.test(lm[1] as string)) throw new Error(`${where}: bad label`)
      const lname = lm[1] as string
      rest = rest.slice(lm[0].length)
      let value = ''
      let j = 0
      for (;; j++) {
        if (j >= rest.length) throw new Error(`${where}: unterminated label value`)
        const c = rest[j] as string
        if (c === '"') break
        if (c === '\\') {
          const n = rest[++j]
          if (n === '\\') value += '\\'
          else if (n === '"') value += '"'
          else if (n === 'n') value += '\n'
          else throw new Error(`${where}: bad escape in a label value`)
        } else {
          value += c
        }
      }
      if (lname in labels) throw new Error(`${where}: label ${lname} twice`)
      labels[lname] = value
      rest = rest.slice(j + 1)
      if (rest.startsWith(',')) rest = rest.slice(1)
      else if (rest.length > 0) throw new Error(`${where}: expected , between labels`)
    }
  }
  let value: number
  if (valueText === 'NaN') value = NaN
  else if (valueText === '+Inf') value = Infinity
  else if (valueText === '-Inf') value = -Infinity
  else if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(valueText)) value = Number(valueText)
  else throw new Error(`${where}: bad value`)
  return { name, labels, value }
}

function unescapeHelp(text: string, quotes: boolean, where: string): string {
  return text.replace(/\\(.)/g, (_m, c: string) => {
    if (c === '\\') return '\\'
    if (c === 'n') return '\n'
    if (quotes && c === '"') return '"'
    throw new Error(`${where}: bad escape`)
  })
}

/** The value of the one sample of `name` whose labels include `labels`. */
export function sampleValue(families: Map<string, ParsedFamily>, name: string, labels: Record<string, string> = {}): number {
  const f = families.get(name)
  if (f === undefined) throw new Error(`no metric ${name}`)
  const s = f.samples.filter((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v))
  if (s.length !== 1) throw new Error(`${s.length} samples of ${name} match ${JSON.stringify(labels)}`)
  return (s[0] as ParsedSample).value
}
