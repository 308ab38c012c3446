// No runtime import cycle in src/: a module that imports a value from a module importing it back runs with
// that value undefined until both have loaded (ESM live bindings), so the order of imports decides behaviour.
// The compiled dist/src is walked, not the TypeScript: with verbatimModuleSyntax, `import type` and
// `type`-only specifiers are erased there, so what remains is exactly what Node loads.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

const distSrc = resolve(import.meta.dirname, '../../src')

function jsFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) jsFiles(p, out)
    else if (name.endsWith('.js')) out.push(p)
  }
  return out
}

/**
 * The relative modules a compiled file loads when it is loaded: static `import … from`, `export … from` and
 * bare `import '…'`. A dynamic import() is left out: it loads later, on demand, and cannot form a load cycle.
 */
export function staticImports(source: string): string[] {
  const out: string[] = []
  const re = /^\s*(?:import|export)\s+(?:[^'";]*?\s+from\s+)?['"](\.{1,2}\/[^'"]+)['"]/gm
  for (let m = re.exec(source); m !== null; m = re.exec(source)) out.push(m[1]!)
  return out
}

/** Every cycle in the graph, each once, as the list of its modules (Tarjan's strongly connected components). */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0
  const idx = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const out: string[][] = []
  const visit = (v: string): void => {
    idx.set(v, index)
    low.set(v, index)
    index++
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!))
      }
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        scc.push(w)
      } while (w !== v)
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort())
    }
  }
  for (const v of graph.keys()) if (!idx.has(v)) visit(v)
  return out
}

test('the import scanner sees value imports and re-exports, and no erased type import', () => {
  const src = [
    "import { a } from './a.js';",
    "import './side-effect.js';",
    "export { b } from '../b.js';",
    "export * from './c.js';",
    "import * as d from './d.js';",
    "import { e,\n  f } from './e.js';",
    "import { readFileSync } from 'node:fs';",
    "const lazy = await import('./lazy.js');",
  ].join('\n')
  assert.deepEqual(staticImports(src), ['./a.js', './side-effect.js', '../b.js', './c.js', './d.js', './e.js'])
})

test('the cycle finder reports a two-module cycle and nothing for a chain', () => {
  assert.deepEqual(cycles(new Map([['a', ['b']], ['b', ['a']], ['c', ['a']]])), [['a', 'b']])
  assert.deepEqual(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', []]])), [])
})

test('src/ has no runtime import cycle (compiled dist/src, type-only imports erased)', () => {
  const files = jsFiles(distSrc)
  assert.ok(files.length > 50, `only ${files.length} compiled files under ${distSrc}: build first`)
  const graph = new Map<string, string[]>()
  for (const f of files) {
    const from = relative(distSrc, f)
    graph.set(from, staticImports(readFileSync(f, 'utf8')).map((spec) => relative(distSrc, resolve(dirname(f), spec))))
  }
  const found = cycles(graph)
  assert.deepEqual(found, [], `runtime import cycles (break them with a module of their own or \`import type\`):\n${found.map((c) => `  ${c.join(' <-> ')}`).join('\n')}`)
})
