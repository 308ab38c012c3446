import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLogSinks, TopicLogSink } from '../../src/observability/log-sinks.js'
import { formatTimestamp, Logger, unsupportedTimestampConversions, type LogSink, type LogType } from '../../src/observability/logger.js'

test('log_dest file appends lines and reopen() follows logrotate (rename, then reopen at the same path)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'midge-log-'))
  try {
    const path = join(dir, 'midge.log')
    const set = createLogSinks([{ kind: 'file', path }])
    const log = new Logger({ sinks: set.sinks, timestamp: false })
    log.notice('first')
    renameSync(path, `${path}.1`)
    log.notice('second (still to the renamed file)')
    set.reopen()
    log.notice('third')
    set.close()
    assert.equal(readFileSync(`${path}.1`, 'utf8'), 'first\nsecond (still to the renamed file)\n')
    assert.equal(readFileSync(path, 'utf8'), 'third\n')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a log file that cannot be opened throws at creation (the start fails)', () => {
  assert.throws(() => createLogSinks([{ kind: 'file', path: '/nonexistent-dir/midge.log' }]), /ENOENT/)
})

test("log_dest topic publishes under $SYS/broker/log/<severity> as Mosquitto, never debug, and never recursively", () => {
  const sink = new TopicLogSink()
  const published: string[] = []
  const log = new Logger({ types: ['error', 'warning', 'notice', 'information', 'debug', 'subscribe'], sinks: [sink], timestamp: false })
  sink.attach((topic, payload) => {
    published.push(`${topic} ${payload}`)
    log.notice('published a log line') // a publish that logs must not loop
  })
  log.error('e')
  log.warning('w')
  log.notice('n')
  log.info('i')
  log.debug('d')
  log.log('subscribe', 's')
  assert.deepEqual(published, [
    '$SYS/broker/log/E e', '$SYS/broker/log/W w', '$SYS/broker/log/N n', '$SYS/broker/log/I i', '$SYS/broker/log/M/subscribe s',
  ])
})

test('Logger.configure changes types, sinks and timestamps in place (SIGHUP)', () => {
  const lines: Array<[LogType, string]> = []
  const sink: LogSink = { write: (line, type) => { lines.push([type, line]) } }
  const log = new Logger({ sinks: [sink], timestamp: false })
  log.debug('hidden')
  log.configure({ types: ['debug'], timestampFormat: '%Y', timestamp: true })
  log.debug('shown')
  log.error('now hidden')
  assert.equal(lines.length, 1)
  assert.match(lines[0]?.[1] ?? '', /^\d{4}: shown$/)
})

test('log_timestamp_format conversions', () => {
  const d = new Date(2024, 0, 5, 14, 3, 9)
  assert.equal(formatTimestamp(d, '%Y-%m-%dT%H:%M:%S'), '2024-01-05T14:03:09')
  assert.equal(formatTimestamp(d, '%F %T %b %e %a %y %j %I%p %%'), '2024-01-05 14:03:09 Jan  5 Fri 24 005 02PM %')
  assert.deepEqual(unsupportedTimestampConversions('%Y %Q %k'), ['%Q', '%k'])
})
