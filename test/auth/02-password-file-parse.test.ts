import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  deletePasswordFileEntry,
  loadPasswordFile,
  parsePasswordFile,
  parsePasswordFileDocument,
  serializePasswordFileDocument,
  setPasswordFileEntry,
} from '../../src/auth/password-file.js'
import { AuthError } from '../../src/auth/errors.js'

const H7 = '$7$101$wzfc3E0JZD6FKX3q$v0OhhMClnnvvtnP6Vbo3ugBHyOu2X/4lo0MvHT354wnQSEg83oXqZniOCDiXh5AJ0tciyXzOVCN4bSr+xAbMgw=='
const H6 = '$6$1CaSeM5UvGLahjn6$sSxooxq0OEaTusLNXqJKRm8lfeg1ExR+9QJtINb9dqRfh/9WnBfLrfOHZvuHjNxZhEnL5sAQh8OV91mIvwTAuw=='

test('a password file with comments, blank lines, CRLF and blanks around fields loads as Mosquitto reads it', () => {
  const users = parsePasswordFile(`# users\n\nalice:${H7}\r\n  bob :  ${H6}  \n`, 'pw')
  assert.deepEqual([...users.keys()], ['alice', 'bob'])
  assert.equal(users.get('alice')!.algorithm, 'sha512-pbkdf2')
  assert.equal(users.get('bob')!.algorithm, 'sha512')
})

function expectFileError(text: string, line: number, reason: RegExp): void {
  assert.throws(() => parsePasswordFile(text, '/etc/midge/pw'), (err: unknown) => {
    assert.ok(err instanceof AuthError)
    assert.equal(err.code, 'AUTH_ERR_PASSWORD_FILE')
    assert.equal(err.file, '/etc/midge/pw')
    assert.equal(err.line, line)
    assert.ok(err.message.startsWith(`/etc/midge/pw:${line}: `), err.message)
    assert.match(err.message, reason)
    return true
  })
}

test('every malformed line is an error naming file:line and the reason', () => {
  expectFileError(`alice:${H7}\njust-a-name\n`, 2, /expected 'username:hash'/)
  expectFileError(`:${H7}\n`, 1, /empty username/)
  expectFileError(`# x\ncarol:plaintext\n`, 2, /plaintext password.*midge passwd -U \/etc\/midge\/pw/)
  expectFileError('carol:\n', 1, /plaintext password \(or none\)/)
  expectFileError(`dave:${H7.slice(0, -4)}\n`, 1, /user 'dave': hash is 63 bytes, expected 64/)
  expectFileError(`alice:${H7}\n\nalice:${H6}\n`, 3, /listed twice \(first at line 1\)/)
  expectFileError(`alice:${H7}:extra\n`, 1, /more than one ':'/)
})

test('loading a missing file is AUTH_ERR_FILE_ACCESS naming the file', async () => {
  await assert.rejects(loadPasswordFile('/nonexistent/midge/pw'), (err: unknown) => {
    assert.ok(err instanceof AuthError)
    assert.equal(err.code, 'AUTH_ERR_FILE_ACCESS')
    assert.match(err.message, /^\/nonexistent\/midge\/pw: cannot read password file/)
    return true
  })
})

test('loadPasswordFile reads a file from disk', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'midge-auth-'))
  try {
    await writeFile(join(dir, 'pw'), `alice:${H7}\n`)
    assert.deepEqual([...(await loadPasswordFile(join(dir, 'pw'))).keys()], ['alice'])
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('the line model writes an untouched file back byte for byte', () => {
  for (const text of ['', '\n', `# c\n\nalice:${H7}\n`, `alice:${H7}`, `x\n  # y\nbob:${H6}\n\n`]) {
    assert.equal(serializePasswordFileDocument(parsePasswordFileDocument(text)), text)
  }
})

test('setting a user replaces its line in place, drops repeats, keeps the rest; a new user is appended', () => {
  const doc = parsePasswordFileDocument(`# admins\nalice:${H7}\n# devices\nbob:${H6}\nalice:old\n`)
  setPasswordFileEntry(doc, 'alice', H6)
  assert.equal(serializePasswordFileDocument(doc), `# admins\nalice:${H6}\n# devices\nbob:${H6}\n`)
  setPasswordFileEntry(doc, 'carol', H7)
  assert.equal(serializePasswordFileDocument(doc), `# admins\nalice:${H6}\n# devices\nbob:${H6}\ncarol:${H7}\n`)
  const noNewline = parsePasswordFileDocument(`alice:${H7}`)
  setPasswordFileEntry(noNewline, 'bob', H6)
  assert.equal(serializePasswordFileDocument(noNewline), `alice:${H7}\nbob:${H6}\n`)
})

test('deleting a user removes all its lines and reports whether there were any', () => {
  const doc = parsePasswordFileDocument(`alice:${H7}\n# keep\nbob:${H6}\n`)
  assert.equal(deletePasswordFileEntry(doc, 'alice'), true)
  assert.equal(deletePasswordFileEntry(doc, 'alice'), false)
  assert.equal(serializePasswordFileDocument(doc), `# keep\nbob:${H6}\n`)
})
