#!/usr/bin/env node
import('../dist/src/cli/main.js').then((m) => m.main(process.argv.slice(2))).catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli/main.js')) {
    process.stderr.write('midge: not built yet; run `npm run build` first\n')
  } else {
    process.stderr.write(`midge: ${err?.stack ? err.stack : err}\n`)
  }
  process.exit(1)
})
