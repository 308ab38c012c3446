import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join, resolve } from 'node:path'

const ROOT = resolve(import.meta.dirname, '../../..')

function run(cmd: string, args: string[], cwd: string): { status: number | null; out: string; stdout: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 120_000, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } })
  if (r.error !== undefined) throw new Error(`cannot run ${cmd}: ${r.error.message}`)
  return { status: r.status, out: `${r.stdout}${r.stderr}`, stdout: r.stdout }
}

test('a fresh checkout builds itself through npm (the prepare script, run by npm install and npm pack): bin/midge.js runs, and the tarball ships dist/ and packaging/', () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-prepare-'))
  try {
    const clone = join(dir, 'midge')
    // The checkout as a clone has it: no dist/, no node_modules (linked to this one's: no network in tests).
    cpSync(ROOT, clone, { recursive: true, filter: (src) => !['node_modules', 'dist', '.git'].includes(basename(src)) || src === ROOT })
    symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'))
    const before = run(process.execPath, ['bin/midge.js', '--version'], clone)
    assert.match(before.out, /not built yet/)

    // npm pack runs the same lifecycle script as a local npm install (prepare); the tarball can only hold
    // dist/src if it ran.
    const packed = run('npm', ['pack', '--json', '--pack-destination', dir], clone)
    assert.equal(packed.status, 0, packed.out)
    // Lifecycle scripts print to stdout too: the JSON is the last thing there.
    const json = packed.stdout.slice(packed.stdout.lastIndexOf('\n[') + 1)
    const info = (JSON.parse(json) as Array<{ filename: string; files: Array<{ path: string }> }>)[0]
    assert.ok(info !== undefined, packed.out)
    const files = info.files.map((f) => f.path)
    for (const f of ['bin/midge.js', 'dist/src/cli/main.js', 'packaging/midge.service', 'packaging/midge.logrotate', 'docs/service.md']) {
      assert.ok(files.includes(f), `the package lacks ${f}`)
    }
    assert.ok(!files.some((f) => f.startsWith('dist/test/')), 'the package ships the tests')

    const after = run(process.execPath, ['bin/midge.js', '--version'], clone)
    assert.equal(after.status, 0, after.out)
    assert.match(after.out, /^midge \d+\.\d+\.\d+/)

    // The packed bin runs from its unpacked folder, from anywhere.
    const unpacked = join(dir, 'unpacked')
    mkdirSync(unpacked)
    assert.equal(run('tar', ['-xzf', join(dir, info.filename), '-C', unpacked], dir).status, 0)
    assert.ok(existsSync(join(unpacked, 'package', 'dist', 'src', 'cli', 'main.js')))
    const fromTarball = run(process.execPath, [join(unpacked, 'package', 'bin', 'midge.js'), '--version'], tmpdir())
    assert.equal(fromTarball.out, after.out)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
