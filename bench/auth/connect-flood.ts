/**
 * `node dist/bench/auth/connect-flood.js PORT COUNT USERNAME`: the attacker of auth-latency.bench, in its
 * own process so its work does not land on the event loop being measured. Prints `ready` once started,
 * waits for a line on stdin, then opens COUNT sockets at once, each sending one MQTT 3.1.1 CONNECT with
 * USERNAME and a different wrong password, and prints one JSON line: how the CONNACKs came back.
 */
import net from 'node:net'

const [portArg, countArg, username = 'alice'] = process.argv.slice(2)
const port = Number(portArg)
const count = Number(countArg)

function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8')
  const len = Buffer.alloc(2)
  len.writeUInt16BE(b.length)
  return Buffer.concat([len, b])
}

/** CONNECT, 3.1.1, clean session, keep alive 60, username + password (built by hand: no codec under test here). */
function connectPacket(clientId: string, user: string, password: string): Buffer {
  const body = Buffer.concat([str('MQTT'), Buffer.from([4, 0xc2, 0, 60]), str(clientId), str(user), str(password)])
  if (body.length > 127) throw new Error('CONNECT too long for a one-byte remaining length')
  return Buffer.concat([Buffer.from([0x10, body.length]), body])
}

function attempt(i: number): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createConnection({ host: '127.0.0.1', port })
    let got = Buffer.alloc(0)
    s.on('connect', () => s.write(connectPacket(`flood-${i}`, username, `wrong-${i}`)))
    s.on('data', (d) => {
      got = Buffer.concat([got, d])
      if (got.length >= 4) { s.destroy(); resolve(got[0] === 0x20 && got[1] === 2 ? got[3]! : -1) }
    })
    s.on('error', () => resolve(-2))
    s.on('close', () => resolve(-3))
  })
}

process.stdout.write('ready\n')
process.stdin.once('data', () => {
  const start = performance.now()
  void Promise.all(Array.from({ length: count }, (_, i) => attempt(i))).then((codes) => {
    const byCode: Record<string, number> = {}
    for (const c of codes) byCode[c] = (byCode[c] ?? 0) + 1
    process.stdout.write(`${JSON.stringify({ byCode, ms: Math.round(performance.now() - start) })}\n`)
    process.exit(0)
  })
})
