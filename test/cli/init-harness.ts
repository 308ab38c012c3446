/**
 * Shared by the `midge init` tests: a temporary root the broker's user (mosquitto) can traverse, the CLI run
 * as a child process with a given stdin, the `init` options that keep a set-up inside that root, and a
 * wait for a line in the log file the generated config names (the broker logs there, not to stderr).
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { MIDGE } from '../helpers/midge-process.js'

export interface CliResult { code: number | null; stdout: string; stderr: string }

/** `node bin/midge.js ARGS` with `input` on stdin (a pipe, not a TTY: the password is read from it). */
export function runMidge(args: string[], input = '', env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MIDGE, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
    child.stdin.end(input)
  })
}

/** A 0755 temporary directory: mkdtemp makes 0700, which the broker's user could not enter. */
export function tempRoot(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  fs.chmodSync(dir, 0o755)
  return dir
}

export interface InitLayout { etc: string; lib: string; log: string; config: string; passwd: string; logFile: string }

export function layout(root: string): InitLayout {
  const etc = path.join(root, 'etc')
  return { etc, lib: path.join(root, 'lib'), log: path.join(root, 'log'), config: path.join(etc, 'midge.conf'), passwd: path.join(etc, 'passwd'), logFile: path.join(root, 'log', 'midge.log') }
}

/** The options that put a whole set-up under `root`, run by the existing user mosquitto. */
export function initArgs(l: InitLayout): string[] {
  return ['init', '--dir', l.etc, '--data-dir', l.lib, '--log-dir', l.log, '--broker-user', 'mosquitto']
}

/**
 * Resolves with the first line of `file` matching `re`. The broker appends to the file; fs.watch reports
 * each append, and a 100 ms re-read covers file systems whose watch misses some.
 */
export function waitForLogLine(file: string, re: RegExp, timeoutMs = 20_000, isDead: () => boolean = () => false): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let watcher: fs.FSWatcher | undefined
    const finish = (err: Error | undefined, m?: RegExpMatchArray): void => {
      clearInterval(poll)
      clearTimeout(timer)
      watcher?.close()
      if (err !== undefined) reject(err)
      else resolve(m!)
    }
    const text = (): string => { try { return fs.readFileSync(file, 'utf8') } catch { return '' } }
    const look = (): void => {
      for (const line of text().split('\n')) {
        const m = line.match(re)
        if (m !== null) { finish(undefined, m); return }
      }
      if (isDead()) finish(new Error(`the broker exited while waiting for ${re}; log:\n${text()}`))
    }
    const poll = setInterval(look, 100)
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${re} in ${file}; log:\n${text()}`)), timeoutMs)
    try { watcher = fs.watch(path.dirname(file), look) } catch { /* the folder is made by init; polling covers it */ }
    look()
  })
}

/** Splits a printed command line into words as sh would (plain words and '…' quoting are all it prints). */
export function shellWords(line: string): string[] {
  const words: string[] = []
  const re = /'((?:[^']|'\\'')*)'|(\S+)/g
  for (let m = re.exec(line); m !== null; m = re.exec(line)) words.push(m[1] !== undefined ? m[1].replace(/'\\''/g, '\'') : m[2]!)
  return words
}
