/**
 * Aedes (npm `aedes`, a devDependency of the bench) behind a plain net.Server with Nagle off:
 * see aedes-server.ts. MIDGE_BENCH_AEDES may name another install (a path to its aedes.js).
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { ROOT, type BrokerDef, type StartContext } from './broker.js'
import { spawnTracked } from './process.js'

/** The aedes entry point to import, or null if none is installed. */
export function aedesEntry(): string | null {
  const env = process.env.MIDGE_BENCH_AEDES
  if (env !== undefined && env !== '') return env
  try {
    return createRequire(join(ROOT, 'package.json')).resolve('aedes')
  } catch {
    return null
  }
}

export const aedes: BrokerDef = {
  name: 'aedes',
  missing() {
    return aedesEntry() === null ? "npm package 'aedes' not installed: npm install --save-dev aedes (or set MIDGE_BENCH_AEDES=/path/to/aedes/aedes.js)" : null
  },
  start(ctx: StartContext) {
    const server = join(ROOT, 'dist/bench/brokers/aedes-server.js')
    return spawnTracked(process.execPath, [server, String(ctx.port), aedesEntry()!], {
      core: ctx.core,
      nofile: ctx.nofile,
      logPath: join(ctx.dir, 'aedes.log'),
      stdinPipe: true,
    })
  },
  version() {
    try {
      const entry = aedesEntry()!
      const pkg = JSON.parse(readFileSync(join(entry, '..', 'package.json'), 'utf8')) as { version: string }
      return `aedes ${pkg.version} on Node ${process.version}`
    } catch {
      return 'aedes (version unknown)'
    }
  },
}
