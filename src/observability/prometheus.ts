/**
 * Prometheus text exposition format 0.0.4, written by hand: a handful of families rendered at scrape time
 * needs no client library. Each family gets its HELP and TYPE lines; label values and HELP text are escaped
 * as the format requires (backslash, newline, and in label values the double quote).
 */
export type MetricType = 'counter' | 'gauge'

export interface Sample {
  labels?: Readonly<Record<string, string>>
  value: number
}

export interface MetricFamily {
  /** Counters end in `_total` (Prometheus naming convention). */
  name: string
  help: string
  type: MetricType
  samples: readonly Sample[]
}

export const ExpositionContentType = 'text/plain; version=0.0.4; charset=utf-8'

export function renderExposition(families: readonly MetricFamily[]): string {
  let out = ''
  for (const f of families) {
    out += `# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${f.name} ${f.type}\n`
    for (const s of f.samples) out += `${f.name}${renderLabels(s.labels)} ${formatValue(s.value)}\n`
  }
  return out
}

function renderLabels(labels: Readonly<Record<string, string>> | undefined): string {
  if (labels === undefined) return ''
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`)
  return parts.length === 0 ? '' : `{${parts.join(',')}}`
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  return String(v)
}
