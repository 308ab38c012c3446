#!/usr/bin/env node
// Writes docs/configuration.md from the option table (src/config/schema.ts). Run after `npx tsc -p .`.
// test/config/09-config-doc.test.ts fails when the committed doc differs from what this writes.
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const { renderConfigMarkdown } = await import(join(root, 'dist/src/config/doc.js'))
const out = join(root, 'docs/configuration.md')
writeFileSync(out, renderConfigMarkdown())
process.stdout.write(`wrote ${out}\n`)
