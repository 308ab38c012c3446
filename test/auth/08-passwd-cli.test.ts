import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { PassThrough, Writable } from 'node:stream'
import { runPasswd } from '../../src/cli/commands/passwd.js'
import { parsePasswordFile } from '../../src/auth/password-file.js'
import { verifyPassword } from '../../src/auth/password-hash.js'

const H6 = '$6$1CaSeM5UvGLahjn6$sSxooxq0OEaTusLNXqJKRm8lfeg1ExR+9QJtINb9dqRfh/9WnBfLrfOHZvuHjNxZhEnL5sAQh8OV91mIvwTAuw=='

class Capture extends Writable {
  text = ''
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString()
    cb()
  }
}

async function passwd(argv: string[], stdinText?: string): Promise<{ code: number; out: string; err: string }> {
  const stdin = new PassThrough()
  if (stdinText !== undefined) stdin.end(stdinText)
  const out = new Capture()
  const err = new Capture()
  const code = await runPasswd(argv, { stdin, stdout: out, stderr: err })
  return { code, out: out.text, err: err.text }
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'midge-passwd-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function check(file: string, user: string, password: string): Promise<boolean> {
  const h = parsePasswordFile(await readFile(file, 'utf8'), file).get(user)
  return h !== undefined && verifyPassword(h, Buffer.from(password))
}

test('-c -b creates a 0600 file with a $7$ hash at the default iteration count', () => withDir(async (dir) => {
  const f = join(dir, 'pw')
  assert.deepEqual(await passwd(['-c', '-b', f, 'alice', 'secret']), { code: 0, out: '', err: '' })
  assert.equal((await stat(f)).mode & 0o777, 0o600)
  assert.match(await readFile(f, 'utf8'), /^alice:\$7\$10000\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==\n$/)
  assert.equal(await check(f, 'alice', 'secret'), true)
}))

test('updating and adding users keeps every other line as it was; -c starts over', () => withDir(async (dir) => {
  const f = join(dir, 'pw')
  await writeFile(f, `# site users\nbob:${H6}\n\nalice:old\n`)
  assert.equal((await passwd(['-b', f, 'alice', 'new'])).code, 0)
  assert.equal((await passwd(['-b', '-H', 'sha512', f, 'carol', 'c'])).code, 0)
  const lines = (await readFile(f, 'utf8')).split('\n')
  assert.deepEqual(lines.slice(0, 3), ['# site users', `bob:${H6}`, ''])
  assert.match(lines[3]!, /^alice:\$7\$/)
  assert.match(lines[4]!, /^carol:\$6\$/)
  assert.equal(lines.length, 6)
  assert.equal(await check(f, 'alice', 'new'), true)
  assert.equal(await check(f, 'carol', 'c'), true)
  assert.equal((await passwd(['-c', '-b', '-I', '2000', f, 'dave', 'd'])).code, 0)
  assert.match(await readFile(f, 'utf8'), /^dave:\$7\$2000\$\S+\n$/)
}))

test('-D deletes a user; an unknown user is a warning and exit 1, the file untouched', () => withDir(async (dir) => {
  const f = join(dir, 'pw')
  await writeFile(f, `bob:${H6}\n# c\nalice:${H6}\n`)
  assert.equal((await passwd(['-D', f, 'alice'])).code, 0)
  assert.equal(await readFile(f, 'utf8'), `bob:${H6}\n# c\n`)
  assert.deepEqual(await passwd(['-D', f, 'zed']), { code: 1, out: '', err: 'Warning: User zed not found in password file.\n' })
  assert.equal(await readFile(f, 'utf8'), `bob:${H6}\n# c\n`)
}))

test('-U hashes plaintext entries, keeps hashed ones, comments and blank lines', () => withDir(async (dir) => {
  const f = join(dir, 'pw')
  await writeFile(f, `# plain\nu1:plain1\n\nbob:${H6}\nu2: spaced :ignored\nnocolon\n`)
  const r = await passwd(['-U', '-I', '1000', f])
  assert.equal(r.code, 0)
  assert.match(r.err, /:6: not 'username:password'; left as it is/)
  const lines = (await readFile(f, 'utf8')).split('\n')
  assert.equal(lines[0], '# plain')
  assert.match(lines[1]!, /^u1:\$7\$1000\$/)
  assert.equal(lines[2], '')
  assert.equal(lines[3], `bob:${H6}`, 'already hashed: not hashed again')
  assert.match(lines[4]!, /^u2:\$7\$1000\$/)
  assert.equal(lines[5], 'nocolon')
  await assert.rejects(check(f, 'u1', 'plain1'), { code: 'AUTH_ERR_PASSWORD_FILE' }, 'nocolon keeps the file from loading, as the warning said')
  await writeFile(f, (await readFile(f, 'utf8')).replace('nocolon\n', ''))
  assert.equal(await check(f, 'u1', 'plain1'), true)
  assert.equal(await check(f, 'u2', 'spaced'), true, "the password Mosquitto read from 'u2: spaced :ignored'")
}))

test('without -b the password comes from standard input: one line, or two that must match', () => withDir(async (dir) => {
  const f = join(dir, 'pw')
  assert.equal((await passwd(['-c', f, 'alice'], 'one line\n')).code, 0)
  assert.equal(await check(f, 'alice', 'one line'), true)
  assert.equal((await passwd([f, 'bob'], 'twice\r\ntwice\r\n')).code, 0)
  assert.equal(await check(f, 'bob', 'twice'), true)
  assert.equal((await passwd([f, 'carol'], 'no newline')).code, 0)
  assert.equal(await check(f, 'carol', 'no newline'), true)
  assert.deepEqual(await passwd([f, 'dave'], 'a\nb\n'), { code: 1, out: '', err: 'Error: Passwords do not match.\n' })
  assert.deepEqual(await passwd([f, 'dave'], ''), { code: 1, out: '', err: 'Error: No password given on standard input.\n' })
}))

test('usernames Mosquitto could never match, and bad arguments, are refused with exit 1', () => withDir(async (dir) => {
  const f = join(dir, 'pw')
  const refusals: Array<[string[], RegExp]> = [
    [['-c', '-b', f, 'a:b', 'x'], /must not contain the ':' character/],
    [['-c', '-b', f, '#admin', 'x'], /must not begin with '#'/],
    [['-c', '-b', f, ' bob', 'x'], /blanks/],
    [['-c', '-b', f, 'a\nb', 'x'], /control characters/],
    [['-c', '-b', f, '', 'x'], /must not be empty/],
    [['-c', '-D', f, 'u'], /-c and -D cannot be used together/],
    [['-U', '-b', f], /-U cannot be used with/],
    [['-b', f, 'u'], /expected passwordfile username password/],
    [['-H', 'md5', f, 'u'], /-H takes sha512-pbkdf2 or sha512, not 'md5'/],
    [['-I', '0', f, 'u'], /-I takes an iteration count/],
    [['-x', f, 'u'], /Unknown option '-x'/],
    [['-b', join(dir, 'missing'), 'u', 'p'], /Unable to open password file .*use -c to create it/],
  ]
  for (const [argv, reason] of refusals) {
    const r = await passwd(argv)
    assert.equal(r.code, 1, argv.join(' '))
    assert.match(r.err, reason)
  }
  assert.deepEqual(await readdir(dir), [], 'nothing was written')
  const help = await passwd(['--help'])
  assert.equal(help.code, 0)
  assert.match(help.out, /Usage: midge passwd/)
}))

test('writes are atomic: group-readable kept or asked for, world bits dropped, symlinks followed, no temp file left', () => withDir(async (dir) => {
  const f = join(dir, 'pw')
  assert.equal((await passwd(['-c', '-b', '--group-readable', f, 'a', 'x'])).code, 0)
  assert.equal((await stat(f)).mode & 0o777, 0o640)
  assert.equal((await passwd(['-b', f, 'b', 'y'])).code, 0)
  assert.equal((await stat(f)).mode & 0o777, 0o640, 'an update keeps group read')
  await chmod(f, 0o644)
  assert.equal((await passwd(['-b', f, 'c', 'z'])).code, 0)
  assert.equal((await stat(f)).mode & 0o777, 0o640, 'world read is dropped')

  await mkdir(join(dir, 'real'))
  await writeFile(join(dir, 'real', 'pw'), `bob:${H6}\n`)
  await symlink(join(dir, 'real', 'pw'), join(dir, 'link'))
  assert.equal((await passwd(['-b', join(dir, 'link'), 'd', 'w'])).code, 0)
  assert.equal((await readFile(join(dir, 'real', 'pw'), 'utf8')).split('\n').length, 3, 'the target was updated')
  assert.ok((await import('node:fs')).lstatSync(join(dir, 'link')).isSymbolicLink(), 'the link is still a link')

  // A target that cannot be replaced (a directory) fails without leaving a temp file behind.
  await mkdir(join(dir, 'isdir'))
  const r = await passwd(['-c', '-b', join(dir, 'isdir'), 'u', 'p'])
  assert.equal(r.code, 1)
  assert.deepEqual((await readdir(dir)).sort(), ['isdir', 'link', 'pw', 'real'])
  assert.deepEqual(await readdir(join(dir, 'real')), ['pw'])
}))

test('on a terminal the password is asked twice without echo', { timeout: 30_000 }, () => withDir(async (dir) => {
  if (spawnSync('script', ['--version']).error !== undefined) {
    assert.fail('`script` (Debian package bsdutils) is needed to run midge passwd on a pseudo-terminal')
  }
  const f = join(dir, 'pw')
  const midge = resolve('bin/midge.js')
  const child = spawn('script', ['-qec', `node ${midge} passwd -c ${f} alice`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  const waiters: Array<() => void> = []
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
    for (const w of waiters.splice(0)) w()
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  const waitFor = async (text: string): Promise<void> => {
    while (!out.includes(text)) {
      const more = new Promise<void>((resolve) => waiters.push(resolve))
      if (await Promise.race([more.then(() => false), exited.then(() => true)])) {
        throw new Error(`midge passwd exited before printing '${text}': ${JSON.stringify(out)}`)
      }
    }
  }
  await waitFor('Password: ')
  child.stdin.write('pa55word\r')
  await waitFor('Reenter password: ')
  child.stdin.write('pa55word\r')
  const code = await exited
  assert.equal(code, 0, out)
  assert.equal(out.includes('pa55word'), false, `nothing typed was echoed: ${JSON.stringify(out)}`)
  assert.equal(await check(f, 'alice', 'pa55word'), true)
}))
