/**
 * The load generator as a process: `node dist/bench/load/main.js SCENARIO [flags]` (flags as
 * mqload's; see options.ts). Prints exactly one JSON line on stdout with the result; progress and
 * errors go to stderr. Exit status: 0 ok, 1 error, 2 timeout, 3 loss or duplicates, 4 usage.
 * bench/run.ts starts it pinned to its own core; it can also be run by hand against any broker.
 */
import { Controller } from './controller.js'
import { parseLoadArgs, UsageError } from './options.js'

const exitCodes = { ok: 0, error: 1, timeout: 2, loss: 3, dups: 3 } as const

async function main(): Promise<number> {
  let opts: ReturnType<typeof parseLoadArgs>
  try {
    opts = parseLoadArgs(process.argv.slice(2))
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`load: ${err.message}\nusage: main.js fanin|fanout|latency|conns [-p PORT] [-q 0|1] [-n MSGS] [-r RATE] [-d S] [--pid PID] ...\n`)
      return 4
    }
    throw err
  }
  const result = await new Controller(opts).run()
  process.stdout.write(JSON.stringify(result) + '\n')
  return exitCodes[result.status]
}

main().then(
  (code) => {
    // Sockets closing politely must not hold the process: the result is out.
    process.stdout.write('', () => process.exit(code))
  },
  (err: unknown) => {
    process.stderr.write(`load: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  },
)
