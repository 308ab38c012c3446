import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { packFreshCopy, run } from './pack.js'

test('a fresh checkout builds itself through npm (prepack and prepare, run by npm pack, and prepare by npm install): bin/midge.js runs, and the tarball ships dist/ and packaging/', () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-prepare-'))
  try {
    // The checkout as a clone has it: no dist/. npm pack runs the lifecycle scripts a git install runs
    // (prepack, prepare); the tarball can only hold dist/src if they built it.
    const { clone, tarball, files } = packFreshCopy(dir, (fresh) => {
      assert.match(run(process.execPath, ['bin/midge.js', '--version'], fresh).out, /not built yet/)
    })
    for (const f of ['bin/midge.js', 'dist/src/cli/main.js', 'packaging/midge.service', 'packaging/midge.logrotate', 'docs/service.md']) {
      assert.ok(files.includes(f), `the package lacks ${f}`)
    }
    for (const dir of ['dist/test/', 'dist/bench/', 'test/', 'bench/', 'src/']) {
      assert.ok(!files.some((f) => f.startsWith(dir)), `the package ships ${dir}: ${files.filter((f) => f.startsWith(dir)).slice(0, 3).join(', ')}`)
    }

    const after = run(process.execPath, ['bin/midge.js', '--version'], clone)
    assert.equal(after.status, 0, after.out)
    assert.match(after.out, /^midge \d+\.\d+\.\d+/)

    // The packed bin runs from its unpacked folder, from anywhere.
    const unpacked = join(dir, 'unpacked')
    mkdirSync(unpacked)
    assert.equal(run('tar', ['-xzf', tarball, '-C', unpacked], dir).status, 0)
    assert.ok(existsSync(join(unpacked, 'package', 'dist', 'src', 'cli', 'main.js')))
    const fromTarball = run(process.execPath, [join(unpacked, 'package', 'bin', 'midge.js'), '--version'], tmpdir())
    assert.equal(fromTarball.out, after.out)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
