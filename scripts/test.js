#!/usr/bin/env node
// `npm test`: build, make sure the external test peers exist, run every test file with node --test.
// A missing peer is installed with apt-get when running as root on Debian; otherwise it is a failure that
// names the Debian package (CI installs them in .ci/run), never a skip.
import { execFileSync, spawnSync } from 'node:child_process'
import { readdirSync, statSync, existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'

const peers = [
  ['mosquitto_pub', 'mosquitto-clients'],
  ['mosquitto_sub', 'mosquitto-clients'],
  ['mosquitto', 'mosquitto'],
  ['mosquitto_passwd', 'mosquitto'],
  ['openssl', 'openssl'],
  ['pebble', 'pebble'],
  ['pebble-challtestsrv', 'pebble'],
  // systemd's readiness protocol: the broker sends with systemd-notify, the test listens with python3.
  ['systemd-notify', 'systemd'],
  ['systemd-analyze', 'systemd'],
  ['python3', 'python3'],
  ['logrotate', 'logrotate'],
  // midge init: a system user is created (and removed), and init runs as an ordinary user.
  ['useradd', 'passwd'],
  ['userdel', 'passwd'],
  ['setpriv', 'util-linux'],
  // The cluster (Redis) and the dashboard's browser tests (Debian's chromium driven by playwright-core).
  ['redis-server', 'redis-server'],
  ['chromium', 'chromium'],
]
function missingPeers() {
  const missing = []
  for (const [cmd, pkg] of peers) {
    const found = spawnSync('sh', ['-c', `command -v ${cmd} || test -x /usr/sbin/${cmd}`], { stdio: 'ignore' }).status === 0
    if (!found) missing.push([cmd, pkg])
  }
  return missing
}
let missing = missingPeers()
if (missing.length > 0 && process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0) {
  // As root on Debian, install what is missing rather than send the user off to do it.
  const pkgs = [...new Set(missing.map(([, pkg]) => pkg))]
  console.error(`npm test: installing the test peers ${pkgs.join(' ')} with apt-get…`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
  spawnSync('apt-get', ['install', '-y', '-qq', ...pkgs], { stdio: 'inherit', env })
  missing = missingPeers()
}
if (missing.length > 0) {
  const pkgs = [...new Set(missing.map(([, pkg]) => pkg))].join(' ')
  console.error(`npm test: missing test peers: ${missing.map(([cmd, pkg]) => `${cmd} (Debian package ${pkg})`).join(', ')}.\nInstall them with: sudo apt-get install -y ${pkgs}`)
  process.exit(1)
}

console.error('npm test: building (tsc)…')
// A fresh dist/: a test file deleted or moved in src must not keep running from an old build.
rmSync('dist', { recursive: true, force: true })
try {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', '.'], { stdio: 'inherit' })
} catch {
  console.error('npm test: the TypeScript build failed (see above).')
  process.exit(1)
}

function find(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) find(p, out)
    else if (name.endsWith('.test.js')) out.push(p)
  }
  return out
}
const only = process.argv.slice(2)
// The bench's own load-generator tests run too, so `npm run bench` can't silently rot.
const files = only.length > 0 ? only : find('dist/test', find('dist/bench/test', []))
if (files.length === 0 || !existsSync('dist/test')) {
  console.error('npm test: no test files found under dist/test')
  process.exit(1)
}
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], { stdio: 'inherit' })
process.exit(r.status ?? 1)
