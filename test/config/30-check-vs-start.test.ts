/**
 * `midge check` and a real start agree (issue #13): each set-up below is run through `midge check -c` and
 * through `midge -c` started as root with `user mosquitto`. Both must give the same verdict (exit status
 * 1 for both, or 0 for check and a start that opens its listener), and every problem line check prints
 * (`file:line: sentence`) must be in the refused start's output. A refused start must leave nothing behind
 * (no store, lock, log or pid file). The good set-ups include the issue's root-owned leftovers (a 0600 store,
 * a root:root 0640 log file), which a start as root hands to the broker's user and says so.
 *
 * Runs as root: it plays the service's start (a missing root is a failure, not a skip).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import mqtt from 'mqtt'
import { formatPasswordHash, hashPassword } from '../../src/auth/password-hash.js'
import { brokerUserForTests, isRoot } from '../helpers/broker-user.js'
import { TestPki } from '../helpers/certs.js'
import { MIDGE, MidgeProcess } from '../helpers/midge-process.js'

const NOBODY = 65534
/** A valid, empty Midge store: the header a start writes (persistence/log-store.ts). */
const EmptyStore = Buffer.concat([Buffer.from('MIDGEDB\0', 'latin1'), Buffer.from([0, 0, 0, 1])])

interface Ctx {
  /** This case's folder: root-owned 0755 (the broker's user may pass, not write). */
  dir: string
  /** A folder owned by the broker's user (persistence_location, log files). */
  own: string
  pki: TestPki
  leaf: { cert: string; key: string }
  passwd: string
  /** Lines every case starts with. */
  head: string[]
  /** Run when the case ends (servers it opened). */
  cleanup: Array<() => Promise<void> | void>
}

interface Case {
  name: string
  /** The config's lines after the common head; may create files. */
  setup(c: Ctx): Promise<string[]> | string[]
  /** For a refused set-up: what check's output must contain (the case is what it says it is). */
  refused?: string | ((c: Ctx) => string)
  /** For a good set-up: checks on the started broker's output and files. */
  started?(c: Ctx, log: string): void
}

const user = brokerUserForTests()

function rootOnly(file: string, text: string | Buffer): string {
  fs.writeFileSync(file, text)
  fs.chownSync(file, 0, 0)
  fs.chmodSync(file, 0o600)
  return file
}

const cases: Case[] = [
  {
    name: 'password file readable only by root',
    setup: (c) => { fs.chmodSync(c.passwd, 0o600); return ['allow_anonymous false', `password_file ${c.passwd}`] },
    refused: (c) => `password_file ${c.passwd}: permission denied for user '${user.name}' (the file is mode 0600 root)`,
  },
  {
    name: 'TLS key readable only by root',
    setup: (c) => { fs.chmodSync(c.leaf.key, 0o600); return ['listener 0 127.0.0.1', `certfile ${c.leaf.cert}`, `keyfile ${c.leaf.key}`] },
    refused: (c) => `keyfile ${c.leaf.key}: permission denied for user '${user.name}' (the file is mode 0600 root)`,
  },
  {
    name: 'certificate under a 0700 folder (certbot\'s live/ as installed)',
    setup: (c) => {
      const live = path.join(c.dir, 'live')
      fs.mkdirSync(live, { mode: 0o700 })
      fs.copyFileSync(c.leaf.cert, path.join(live, 'cert.pem'))
      fs.copyFileSync(c.leaf.key, path.join(live, 'privkey.pem'))
      return ['listener 0 127.0.0.1', `certfile ${path.join(live, 'cert.pem')}`, `keyfile ${path.join(live, 'privkey.pem')}`]
    },
    refused: (c) => `certfile ${path.join(c.dir, 'live', 'cert.pem')}: permission denied for user '${user.name}' (the directory ${path.join(c.dir, 'live')} is mode 0700 root)`,
  },
  {
    name: 'cafile missing',
    setup: (c) => ['listener 0 127.0.0.1', `certfile ${c.leaf.cert}`, `keyfile ${c.leaf.key}`, `cafile ${path.join(c.dir, 'no-ca.pem')}`],
    refused: (c) => `cafile ${path.join(c.dir, 'no-ca.pem')}: not found`,
  },
  {
    name: 'ACL file readable only by root',
    setup: (c) => [`acl_file ${rootOnly(path.join(c.dir, 'acl'), 'topic readwrite #\n')}`],
    refused: (c) => `acl_file ${path.join(c.dir, 'acl')}: permission denied for user '${user.name}'`,
  },
  {
    name: 'password file with a broken line',
    setup: (c) => { fs.appendFileSync(c.passwd, 'bob\n'); return ['allow_anonymous false', `password_file ${c.passwd}`] },
    refused: (c) => `password_file ${c.passwd} is not valid: `,
  },
  {
    name: 'an included config file readable only by root (a reload reads it as the broker\'s user)',
    setup: (c) => {
      const d = path.join(c.dir, 'conf.d')
      fs.mkdirSync(d, { mode: 0o755 })
      rootOnly(path.join(d, 'extra.conf'), 'max_keepalive 120\n')
      return [`include_dir ${d}`]
    },
    refused: (c) => `config file ${path.join(c.dir, 'conf.d', 'extra.conf')}: permission denied for user '${user.name}'`,
  },
  {
    name: 'listener on an address this machine does not have',
    setup: () => ['listener 0 192.0.2.10'],
    refused: 'listener 0 192.0.2.10: cannot listen on 192.0.2.10:0: no such local address',
  },
  {
    name: 'listener port already in use',
    setup: async (c) => {
      const busy = net.createServer()
      await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r))
      c.cleanup.push(() => new Promise<void>((r) => busy.close(() => r())))
      return [`listener ${(busy.address() as net.AddressInfo).port} 127.0.0.1`]
    },
    refused: 'the address is already in use',
  },
  {
    name: 'bind_interface that does not exist',
    setup: () => ['listener 0', 'bind_interface nosuch0'],
    refused: 'bind_interface nosuch0: no such network interface',
  },
  {
    name: 'user that does not exist',
    setup: (c) => { c.head[0] = 'user nosuchuser'; return [] },
    refused: "user 'nosuchuser' does not exist on this machine",
  },
  {
    name: 'pid_file whose folder cannot be made (a file is in the way)',
    setup: (c) => { fs.writeFileSync(path.join(c.dir, 'run'), ''); return [`pid_file ${path.join(c.dir, 'run', 'midge', 'midge.pid')}`] },
    refused: (c) => `pid_file ${path.join(c.dir, 'run', 'midge', 'midge.pid')}: cannot create the directory ${path.join(c.dir, 'run', 'midge')}: ${path.join(c.dir, 'run')} is not a directory`,
  },
  {
    name: 'persistence_location the broker\'s user cannot write (root-owned 0755)',
    setup: (c) => ['persistence true', `persistence_location ${c.dir}`],
    refused: (c) => `persistence_location ${c.dir}: permission denied for user '${user.name}' (the directory ${c.dir} is mode 0755 root:root, not writable by it)`,
  },
  {
    name: 'store file owned by another user (not root: not handed over)',
    setup: (c) => {
      const f = path.join(c.own, 'mosquitto.db')
      fs.writeFileSync(f, EmptyStore, { mode: 0o600 })
      fs.chownSync(f, NOBODY, NOBODY)
      return ['persistence true', `persistence_location ${c.own}`]
    },
    refused: (c) => `persistence file ${path.join(c.own, 'mosquitto.db')}: permission denied for user '${user.name}'`,
  },
  {
    name: 'a store file that is neither Midge\'s nor Mosquitto\'s',
    setup: (c) => { fs.writeFileSync(path.join(c.own, 'mosquitto.db'), 'hello, this is not a store\n'); fs.chownSync(path.join(c.own, 'mosquitto.db'), user.uid, user.gid); return ['persistence true', `persistence_location ${c.own}`] },
    refused: (c) => `persistence file ${path.join(c.own, 'mosquitto.db')} is neither a Midge store nor a Mosquitto one`,
  },
  {
    name: 'a store of a newer format version',
    setup: (c) => {
      const f = path.join(c.own, 'mosquitto.db')
      fs.writeFileSync(f, Buffer.concat([Buffer.from('MIDGEDB\0', 'latin1'), Buffer.from([0, 0, 0, 9])]))
      fs.chownSync(f, user.uid, user.gid)
      return ['persistence true', `persistence_location ${c.own}`]
    },
    refused: 'store format version 9 is not readable by this Midge (it reads version 1)',
  },
  {
    name: 'a second broker holds the store lock',
    setup: async (c) => {
      const holderConf = path.join(c.dir, 'holder.conf')
      fs.writeFileSync(holderConf, `user root\nlistener 0 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location ${c.own}\n`)
      const holder = new MidgeProcess(['-c', holderConf])
      c.cleanup.push(async () => { await holder.stop() })
      await holder.opened(1)
      return ['persistence true', `persistence_location ${c.own}`]
    },
    refused: (c) => `the store ${path.join(c.own, 'mosquitto.db')} is in use by another broker (pid `,
  },
  {
    name: 'log file owned by another user (not root: not handed over)',
    setup: (c) => {
      const f = path.join(c.own, 'midge.log')
      fs.writeFileSync(f, '', { mode: 0o600 })
      fs.chownSync(f, NOBODY, NOBODY)
      return [`log_dest file ${f}`]
    },
    refused: (c) => `log_dest file ${path.join(c.own, 'midge.log')}: permission denied for user '${user.name}'`,
  },
  {
    // The user may write its log folder: a link planted there would aim root's first writes at any file.
    name: 'log file that is a symbolic link (to a root-only file) in the broker user\'s folder',
    setup: (c) => {
      const f = path.join(c.own, 'midge.log')
      fs.symlinkSync(rootOnly(path.join(c.dir, 'shadow'), 'secret\n'), f)
      return [`log_dest file ${f}`]
    },
    refused: (c) => `log_dest file ${path.join(c.own, 'midge.log')} is a symbolic link`,
  },
  {
    // The same for the store, which root reads, truncates and appends to before the switch.
    name: 'store file that is a symbolic link in the broker user\'s folder',
    setup: (c) => {
      fs.symlinkSync(rootOnly(path.join(c.dir, 'shadow-store'), 'secret\n'), path.join(c.own, 'mosquitto.db'))
      return ['persistence true', `persistence_location ${c.own}`]
    },
    refused: (c) => `persistence file ${path.join(c.own, 'mosquitto.db')} is a symbolic link`,
  },
  {
    name: 'ACME state folder the broker\'s user cannot write',
    setup: (c) => {
      const state = path.join(c.dir, 'acme')
      fs.mkdirSync(state, { mode: 0o700 })
      return ['listener 0 127.0.0.1', 'acme_domain mqtt.example.org', 'acme_email admin@example.org', 'acme_directory https://127.0.0.1:1/dir', `acme_state_dir ${state}`, 'acme_challenge_port 8402']
    },
    refused: (c) => `acme_state_dir ${path.join(c.dir, 'acme')}: permission denied for user '${user.name}'`,
  },
  {
    name: 'bridge cafile missing',
    setup: (c) => ['connection up', 'address 127.0.0.1:1', 'topic # out 0', `bridge_cafile ${path.join(c.dir, 'no-ca.pem')}`],
    refused: (c) => `bridge up: bridge_cafile ${path.join(c.dir, 'no-ca.pem')}: not found`,
  },
  // Good set-ups: both succeed.
  {
    name: 'GOOD: a root-owned 0600 store left by an earlier start is handed to the broker\'s user',
    setup: (c) => { rootOnly(path.join(c.own, 'mosquitto.db'), EmptyStore); return ['persistence true', `persistence_location ${c.own}`] },
    started: (c, log) => {
      const f = path.join(c.own, 'mosquitto.db')
      assert.ok(log.includes(`Persistence file ${f} was owned by root; handed to user '${user.name}'.`), log)
      assert.equal(fs.statSync(f).uid, user.uid)
    },
  },
  {
    name: 'GOOD: a root:root 0640 log file is handed to the broker\'s user',
    setup: (c) => {
      const f = path.join(c.own, 'mosquitto.log')
      fs.writeFileSync(f, 'from an earlier start\n', { mode: 0o640 })
      fs.chownSync(f, 0, 0)
      return [`log_dest file ${f}`]
    },
    started: (c) => {
      const f = path.join(c.own, 'mosquitto.log')
      assert.equal(fs.statSync(f).uid, user.uid)
      assert.ok(fs.readFileSync(f, 'utf8').includes(`Log file ${f} was owned by root; handed to user '${user.name}'.`))
    },
  },
  {
    name: 'GOOD: the key and the password file, with the fix (group-readable by the broker\'s group)',
    setup: (c) => {
      for (const f of [c.leaf.key, c.passwd]) { fs.chownSync(f, 0, user.gid); fs.chmodSync(f, 0o640) }
      return ['allow_anonymous false', `password_file ${c.passwd}`, 'listener 0 127.0.0.1', `certfile ${c.leaf.cert}`, `keyfile ${c.leaf.key}`]
    },
  },
  {
    name: 'GOOD: store, log and pid file created by the start belong to the broker\'s user',
    setup: (c) => ['persistence true', `persistence_location ${path.join(c.own, 'store')}`, `log_dest file ${path.join(c.own, 'midge.log')}`, `pid_file ${path.join(c.dir, 'run', 'midge', 'midge.pid')}`],
    started: (c) => {
      for (const f of [path.join(c.own, 'store'), path.join(c.own, 'store', 'mosquitto.db'), path.join(c.own, 'store', 'mosquitto.db.lock'), path.join(c.own, 'midge.log'), path.join(c.dir, 'run', 'midge'), path.join(c.dir, 'run', 'midge', 'midge.pid')]) {
        assert.equal(fs.statSync(f).uid, user.uid, `${f} is not the broker user's`)
      }
    },
  },
]

function listTree(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort()
}

async function prepare(name: string): Promise<Ctx> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'midge-cvs-'))
  fs.chmodSync(dir, 0o755)
  const own = path.join(dir, 'own')
  fs.mkdirSync(own, { mode: 0o755 })
  fs.chownSync(own, user.uid, user.gid)
  const pki = new TestPki(fs.mkdtempSync(path.join(dir, 'pki-')))
  fs.chmodSync(pki.dir, 0o755)
  const issued = pki.issue('server')
  fs.chmodSync(issued.cert, 0o644)
  fs.chmodSync(issued.key, 0o644)
  const passwd = path.join(dir, 'passwd')
  fs.writeFileSync(passwd, `alice:${formatPasswordHash(await hashPassword('secret', { iterations: 1000 }))}\n`, { mode: 0o644 })
  void name
  return { dir, own, pki, leaf: issued, passwd, head: [`user ${user.name}`, 'log_dest stderr', 'listener 0 127.0.0.1', 'allow_anonymous true'], cleanup: [] }
}

test('check and a start as root agree on every set-up (same verdict, same sentences)', async (t) => {
  assert.ok(isRoot, 'this test plays a start as root: run it as root (as CI does)')
  assert.ok(cases.filter((c) => c.started === undefined && c.refused !== undefined).length >= 15)
  for (const k of cases) {
    await t.test(k.name, async () => {
      const c = await prepare(k.name)
      let start: MidgeProcess | undefined
      try {
        const body = await k.setup(c)
        const conf = path.join(c.dir, 'midge.conf')
        fs.writeFileSync(conf, [...c.head, ...body, ''].join('\n'), { mode: 0o644 })
        const check = spawnSync(process.execPath, [MIDGE, 'check', '-c', conf], { encoding: 'utf8' })
        const checkOut = check.stdout + check.stderr
        const before = listTree(c.dir)
        start = new MidgeProcess(['-c', conf])
        if (k.refused !== undefined) {
          const expected = typeof k.refused === 'string' ? k.refused : k.refused(c)
          assert.equal(check.status, 1, checkOut)
          assert.ok(checkOut.includes(expected), `check does not say '${expected}':\n${checkOut}`)
          // Bounded: a start that opens its listeners instead of refusing fails the case, not the suite.
          const code = await Promise.race([start.exited, start.opened(1).then(() => 'opened' as const)])
          const startOut = start.lines.join('\n')
          assert.equal(code, 1, `check refused but the start did not:\n${startOut}`)
          // Every problem line of check's report, in the same words.
          const problems = checkOut.split('\n').filter((l) => l !== '' && !l.startsWith('  fix: ') && !l.includes(': warning: ') && !/problems?; the broker would not start$/.test(l))
          assert.ok(problems.length > 0, checkOut)
          for (const p of problems) assert.ok(startOut.includes(p), `the start does not say:\n${p}\nit said:\n${startOut}`)
          assert.ok(!start.lines.some((l) => l.includes('listen socket')), startOut)
          assert.deepEqual(listTree(c.dir), before, 'the refused start left files behind')
        } else {
          assert.equal(check.status, 0, checkOut)
          assert.match(checkOut, new RegExp(`OK; the broker would start with .* and run as user '${user.name}'`))
          await start.waitFor(new RegExp(`Changed user to '${user.name}'\\.`))
          // It serves (as its user). A CONNACK also means the start's last synchronous steps are done: the
          // SIGTERM handler is in place (before it, SIGTERM would kill the process outright).
          const [plain] = (await start.opened(1)).filter((o) => !o.tls)
          assert.ok(plain !== undefined)
          const client = await start.guard(mqtt.connectAsync(`mqtt://127.0.0.1:${plain.port}`, { username: 'alice', password: 'secret', reconnectPeriod: 0 }), 'connect')
          await client.endAsync()
          k.started?.(c, start.lines.join('\n'))
          assert.equal(await start.stop(), 0, start.lines.join('\n'))
        }
      } finally {
        await start?.stop()
        for (const f of c.cleanup) await f()
        fs.rmSync(c.dir, { recursive: true, force: true })
      }
    })
  }
})
