import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { compareIncludeNames, parseConfigFile, parseText } from '../../src/config/parse.js'
import { loadConfig } from '../../src/config/load.js'
import { ConfigErrorCode, ConfigInvalidError } from '../../src/config/errors.js'

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'midge-cfg-'))
}

test('comments, blank lines, CRLF and surrounding blanks are ignored; the value is the rest of the line', () => {
  const entries = parseText('# comment\r\n\n   # indented comment\n  max_qos 1  \r\nmount_point a b/\nlisten\n', 'f.conf')
  assert.deepEqual(entries, [
    { key: 'max_qos', value: '1', file: 'f.conf', line: 4 },
    { key: 'mount_point', value: 'a b/', file: 'f.conf', line: 5 },
    { key: 'listen', value: '', file: 'f.conf', line: 6 },
  ])
})

test("include_dir order is Mosquitto's: case-insensitive, upper case first on a tie (man page example)", () => {
  const names = ['b.conf', 'A.conf', '01.conf', 'a.conf', 'B.conf', '00.conf']
  assert.deepEqual([...names].sort(compareIncludeNames), ['00.conf', '01.conf', 'A.conf', 'a.conf', 'B.conf', 'b.conf'])
  // As Mosquitto's comparison: the first position that differs at all decides, even by case alone.
  assert.deepEqual(['aa.conf', 'Ab.conf'].sort(compareIncludeNames), ['Ab.conf', 'aa.conf'])
  assert.deepEqual(['b.conf', 'Ab.conf'].sort(compareIncludeNames), ['Ab.conf', 'b.conf'])
})

test('include_dir reads *.conf files of each directory in order, each include_dir completely before the next', () => {
  const dir = tmp()
  try {
    mkdirSync(join(dir, 'one.d'))
    mkdirSync(join(dir, 'two.d'))
    writeFileSync(join(dir, 'one.d', 'C.conf'), 'autosave_interval 3\n')
    writeFileSync(join(dir, 'one.d', 'B.conf'), 'autosave_interval 2\n')
    writeFileSync(join(dir, 'one.d', 'ignored.txt'), 'not an option\n')
    writeFileSync(join(dir, 'two.d', 'D.conf'), 'autosave_interval 5\n')
    writeFileSync(join(dir, 'two.d', 'A.conf'), 'autosave_interval 4\n')
    writeFileSync(join(dir, 'main.conf'), 'autosave_interval 1\ninclude_dir one.d\ninclude_dir ' + join(dir, 'two.d') + '\n')
    const parsed = parseConfigFile(join(dir, 'main.conf'))
    assert.deepEqual(parsed.errors, [])
    assert.deepEqual(parsed.files.map((f) => f.slice(dir.length + 1)), ['main.conf', 'one.d/B.conf', 'one.d/C.conf', 'two.d/A.conf', 'two.d/D.conf'])
    assert.deepEqual(parsed.entries.map((e) => e.value), ['1', '2', '3', '4', '5'])
    // The last value wins, so the order is observable in the loaded config (with a warning per repeat).
    const cfg = loadConfig(join(dir, 'main.conf'))
    assert.equal(cfg.global.autosaveInterval, 5)
    assert.match(cfg.warnings.at(-1)?.message ?? '', /'autosave_interval' is set again \(first at .*main\.conf:1\)/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('include_dir inside an included file, and a missing include_dir, are errors naming file:line', () => {
  const dir = tmp()
  try {
    mkdirSync(join(dir, 'conf.d'))
    writeFileSync(join(dir, 'conf.d', 'a.conf'), 'include_dir /etc\n')
    writeFileSync(join(dir, 'main.conf'), 'include_dir conf.d\ninclude_dir missing.d\n')
    assert.throws(() => loadConfig(join(dir, 'main.conf')), (err: unknown) => {
      assert.ok(err instanceof ConfigInvalidError)
      assert.deepEqual(err.errors.map((e) => [e.code, e.message]), [
        [ConfigErrorCode.File, `${join(dir, 'main.conf')}:2: include_dir ${join(dir, 'missing.d')}: no such file or directory`],
        [ConfigErrorCode.Include, `${join(dir, 'conf.d', 'a.conf')}:1: include_dir is only allowed in the main config file (${join(dir, 'main.conf')})`],
      ])
      return true
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a config file that cannot be read is a File error', () => {
  assert.throws(() => loadConfig('/nonexistent/midge.conf'), (err: unknown) => {
    assert.ok(err instanceof ConfigInvalidError)
    assert.equal(err.errors[0]?.code, ConfigErrorCode.File)
    assert.equal(err.errors[0]?.message, '/nonexistent/midge.conf: cannot read config file: no such file or directory')
    return true
  })
})
