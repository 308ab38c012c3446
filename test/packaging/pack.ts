/**
 * `npm pack` of a fresh copy of this checkout (no dist/, no .git; node_modules linked, so nothing is
 * downloaded): the tarball a user would get, built by the package's own lifecycle scripts.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cpSync, symlinkSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'

export const ROOT = resolve(import.meta.dirname, '../../..')

export function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): { status: number | null; out: string; stdout: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 180_000, env: { ...env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } })
  if (r.error !== undefined) throw new Error(`cannot run ${cmd}: ${r.error.message}`)
  return { status: r.status, out: `${r.stdout}${r.stderr}`, stdout: r.stdout }
}

export interface Packed {
  /** The copy that was packed. */
  clone: string
  tarball: string
  files: string[]
}

/** Copies the checkout to `dir`/midge and packs it into `dir`; `beforePack` looks at the copy first. */
export function packFreshCopy(dir: string, beforePack: (clone: string) => void = () => {}): Packed {
  const clone = join(dir, 'midge')
  cpSync(ROOT, clone, { recursive: true, filter: (src) => !['node_modules', 'dist', '.git'].includes(basename(src)) || src === ROOT })
  symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'))
  beforePack(clone)
  const packed = run('npm', ['pack', '--json', '--pack-destination', dir], clone)
  assert.equal(packed.status, 0, packed.out)
  // Lifecycle scripts print to stdout too: the JSON is the last thing there.
  const json = packed.stdout.slice(packed.stdout.lastIndexOf('\n[') + 1)
  const info = (JSON.parse(json) as Array<{ filename: string; files: Array<{ path: string }> }>)[0]
  assert.ok(info !== undefined, packed.out)
  return { clone, tarball: join(dir, info.filename), files: info.files.map((f) => f.path) }
}
