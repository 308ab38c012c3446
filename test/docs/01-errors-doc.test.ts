/**
 * Keeps docs/errors.md honest (STYLE habit 9): its tables list exactly the error codes defined in src/.
 * The codes are read from the TypeScript sources rather than imported, so a code in a module nobody
 * imports yet (or one that does not compile today) is still seen, and no module needs a registry.
 *
 * Two sources, united:
 *  - declarations: `const XxxErrorCode = { ... } as const` / `XxxProblemCode` objects, `type XxxErrorCode =
 *    | '...'` unions, and `readonly code = '...'` fields;
 *  - any other string literal shaped like a code, PREFIX_ERR_NAME or PREFIX_WARN_NAME (upper case), outside
 *    comments. Config option names are lower case and Node's own codes (ERR_TLS_..., ECONNRESET) have no
 *    prefix before ERR, so neither is mistaken for one of ours.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'

// The compiled test runs from dist/test/docs/: the repository root is three levels up.
const root = resolve(import.meta.dirname, '../../..')
const DocFile = 'docs/errors.md'
const TableHeader = '| code | when | what to do |'
const CodeShape = /^([A-Z][A-Z0-9]*)_(?:ERR|WARN)_[A-Z0-9_]+$/

interface SourceFile { path: string; text: string }

function sources(dir: string, out: SourceFile[] = []): SourceFile[] {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, entry.name)
    if (entry.isDirectory()) sources(p, out)
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push({ path: relative(root, p), text: readFileSync(p, 'utf8') })
  }
  return out
}

/** Codes declared as such: the values of *ErrorCode/*ProblemCode objects and unions, and `readonly code = '...'`. */
function declaredCodes(text: string): string[] {
  const out: string[] = []
  for (const m of text.matchAll(/\bconst\s+\w*(?:Error|Problem|Warning)Codes?\s*=\s*\{([\s\S]*?)\}\s*as\s+const/g)) {
    const body = m[1]!.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '')
    for (const v of body.matchAll(/:\s*(['"`])([^'"`]+)\1/g)) out.push(v[2]!)
  }
  for (const m of text.matchAll(/\btype\s+\w*(?:Error|Problem|Warning)Codes?\s*=((?:\s*\|?\s*(['"])[^'"]*\2)+)/g)) {
    for (const v of m[1]!.matchAll(/(['"])([^'"]+)\1/g)) out.push(v[2]!)
  }
  for (const m of text.matchAll(/\breadonly\s+code\s*=\s*(['"`])([^'"`]+)\1/g)) out.push(m[2]!)
  return out
}

/** String literals shaped like a code, on lines that are not comments. */
function literalCodes(text: string): string[] {
  const out: string[] = []
  for (const line of text.split('\n')) {
    if (/^\s*(?:\/\/|\/\*|\*)/.test(line)) continue
    for (const m of line.matchAll(/(['"`])([A-Z][A-Z0-9]*_(?:ERR|WARN)_[A-Z0-9_]+)\1/g)) out.push(m[2]!)
  }
  return out
}

interface SourceCodes {
  /** code -> the files defining or using it, for the failure message. */
  all: Map<string, Set<string>>
  declared: Map<string, Set<string>>
  files: SourceFile[]
}

function collectSourceCodes(): SourceCodes {
  const files = sources(resolve(root, 'src'))
  const all = new Map<string, Set<string>>()
  const declared = new Map<string, Set<string>>()
  const add = (map: Map<string, Set<string>>, code: string, file: string): void => {
    let s = map.get(code)
    if (s === undefined) map.set(code, s = new Set())
    s.add(file)
  }
  for (const f of files) {
    for (const c of declaredCodes(f.text)) { add(declared, c, f.path); add(all, c, f.path) }
    for (const c of literalCodes(f.text)) add(all, c, f.path)
  }
  return { all, declared, files }
}

interface DocRow { code: string; line: number; cells: string[]; section: string; header: string }

/** Every table row of docs/errors.md whose first cell is a `CODE`, with its section and table header. */
function docRows(): DocRow[] {
  const lines = readFileSync(resolve(root, DocFile), 'utf8').split('\n')
  const rows: DocRow[] = []
  let section = ''
  let header = ''
  let inTable = false
  lines.forEach((raw, i) => {
    const line = raw.trimEnd()
    if (line.startsWith('## ')) section = line
    if (!line.startsWith('|')) { inTable = false; return }
    if (!inTable) { inTable = true; header = line; return }
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim())
    const m = /^`([^`]+)`$/.exec(cells[0] ?? '')
    if (m !== null) rows.push({ code: m[1]!, line: i + 1, cells, section, header })
  })
  return rows
}

const src = collectSourceCodes()
const rows = docRows()

test(`${DocFile} lists exactly the error codes defined in src/`, () => {
  const documented = new Set(rows.map((r) => r.code))
  const missing = [...src.all.keys()].filter((c) => !documented.has(c)).sort()
  const stale = [...documented].filter((c) => !src.all.has(c)).sort()
  const report: string[] = []
  if (missing.length > 0) {
    report.push(`missing from ${DocFile} (add a row to the table of its area):`)
    for (const c of missing) report.push(`  ${c}  (in ${[...src.all.get(c)!].join(', ')})`)
  }
  if (stale.length > 0) {
    report.push(`stale in ${DocFile} (no longer defined in src/: remove the row, or rename it to the new code):`)
    for (const c of stale) report.push(`  ${c}  (line ${rows.find((r) => r.code === c)!.line})`)
  }
  assert.ok(report.length === 0, '\n' + report.join('\n'))
})

test(`each row of ${DocFile} is listed once, in its area's section, under "${TableHeader}", with every cell filled`, () => {
  const problems: string[] = []
  const seen = new Map<string, number>()
  for (const r of rows) {
    const where = `${DocFile}:${r.line} ${r.code}`
    const first = seen.get(r.code)
    if (first !== undefined) problems.push(`${where}: listed again (first at line ${first})`)
    else seen.set(r.code, r.line)
    if (r.header !== TableHeader) problems.push(`${where}: the table's header is '${r.header}', not '${TableHeader}'`)
    if (r.cells.length !== 3 || r.cells.some((c) => c === '')) problems.push(`${where}: needs exactly three non-empty cells (code, when, what to do), has ${r.cells.length}`)
    const prefix = CodeShape.exec(r.code)?.[1]
    if (prefix === undefined) problems.push(`${where}: not shaped PREFIX_ERR_NAME or PREFIX_WARN_NAME`)
    else if (!r.section.includes(`(\`${prefix}_\`)`)) problems.push(`${where}: belongs in the section headed '## … (\`${prefix}_\`)', found under '${r.section}'`)
  }
  assert.deepEqual(problems, [])
})

test('every declared error code is shaped PREFIX_ERR_NAME or PREFIX_WARN_NAME, and each errors file declares some', () => {
  // The shape is what lets the literal scan find codes defined outside a declaration.
  const badShape = [...src.declared].filter(([c]) => !CodeShape.test(c)).map(([c, files]) => `${c} (in ${[...files].join(', ')})`)
  assert.deepEqual(badShape, [], 'error codes must look like AREA_ERR_WHAT or AREA_WARN_WHAT')
  // Guards the scanner itself: a declaration style it no longer understands must not pass silently.
  const declaring = new Set([...src.declared.values()].flatMap((s) => [...s]))
  const silent = src.files.filter((f) => /(?:^|[/-])errors\.ts$/.test(f.path) && /\bcode\b/.test(f.text) && !declaring.has(f.path)).map((f) => f.path)
  assert.deepEqual(silent, [], 'these errors files define codes the scanner cannot read: extend declaredCodes()')
})
