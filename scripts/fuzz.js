#!/usr/bin/env node
// `npm run fuzz [SECONDS]`: the attack suite's network fuzzer for longer than CI runs it (default 300 s).
// MIDGE_FUZZ_SEED=<seed> replays a failing run.
import { execFileSync, spawnSync } from 'node:child_process'

const seconds = process.argv[2] ?? process.env.MIDGE_FUZZ_SECONDS ?? '300'
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', '.'], { stdio: 'inherit' })
const files = ['dist/test/protocol/05-codec-fuzz.test.js', 'dist/test/attack/50-fuzz-streams.test.js']
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], { stdio: 'inherit', env: { ...process.env, MIDGE_FUZZ_SECONDS: seconds } })
process.exit(r.status ?? 1)
