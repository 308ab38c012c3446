/**
 * The reconnect storm's clients (issue #18), as a process of its own:
 *
 *   node dist/bench/load/storm.js seed      -p PORT --clients N --queued Q [-c CONCURRENCY]
 *   node dist/bench/load/storm.js reconnect -p PORT --clients N --queued Q [-c CONCURRENCY]
 *
 * seed: N clients connect with clean session 0, subscribe to storm/<i> at QoS 1 and disconnect; then
 * one publisher sends Q QoS 1 messages to each storm/<i> (all acknowledged): they wait in the broker,
 * which is then restarted by the caller. reconnect: the same N clients connect again, all at once (at
 * most CONCURRENCY handshakes outstanding, as the conns scenario: mosquitto listens with a backlog of
 * 100), each must get Session Present 1 and its Q messages (acknowledged as they come). The time is
 * from the first connect to the last client with its whole queue.
 *
 * One JSON line on stdout. Like the rest of bench/load it shares no code with src/ (packets.ts).
 */
import net from 'node:net'
import { parseArgs } from 'node:util'
import { Framer, type FrameSink } from './framer.js'
import { DISCONNECT, publishTemplate, putPuback, Type } from './packets.js'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string', short: 'p', default: '1883' },
    clients: { type: 'string', default: '15000' },
    queued: { type: 'string', default: '3' },
    concurrency: { type: 'string', short: 'c', default: '100' },
    timeout: { type: 'string', short: 't', default: '300' },
  },
})
const MODE = positionals[0]
const PORT = Number(values.port)
const N = Number(values.clients)
const Q = Number(values.queued)
const CONCURRENCY = Number(values.concurrency)
const PREFIX = 'storm'
/** Source ports per loopback address before the next 127.0.0.x (the ephemeral range is ~28k). */
const PER_SOURCE = 20_000

/** CONNECT 3.1.1 with the given clean session flag (section 3.1); keep alive 0. */
function connectPacket(clientId: string, clean: boolean): Buffer {
  const id = Buffer.from(clientId)
  const len = 10 + 2 + id.length
  const b = Buffer.alloc(2 + len)
  b[0] = 0x10
  b[1] = len // client ids here are short: one length byte
  b.writeUInt16BE(4, 2)
  b.write('MQTT', 4)
  b[8] = 4
  b[9] = clean ? 0x02 : 0
  b.writeUInt16BE(0, 10)
  b.writeUInt16BE(id.length, 12)
  id.copy(b, 14)
  return b
}

function subscribePacket(filter: string): Buffer {
  const f = Buffer.from(filter)
  const len = 2 + 2 + f.length + 1
  const b = Buffer.alloc(2 + len)
  b[0] = 0x82
  b[1] = len
  b.writeUInt16BE(1, 2)
  b.writeUInt16BE(f.length, 4)
  f.copy(b, 6)
  b[6 + f.length] = 1
  return b
}

class StormClient implements FrameSink {
  socket: net.Socket | null = null
  sessionPresent = false
  received = 0
  done = false
  private readonly framer = new Framer()

  constructor(readonly idx: number, readonly onEvent: (c: StormClient, what: 'connack' | 'suback' | 'publish' | 'error', detail?: string) => void) {}

  get id(): string {
    return `${PREFIX}-${this.idx}`
  }

  open(clean: boolean): void {
    const s = net.connect({ host: '127.0.0.1', port: PORT, localAddress: N > PER_SOURCE ? `127.0.0.${1 + Math.floor(this.idx / PER_SOURCE)}` : undefined, noDelay: true })
    s.on('connect', () => s.write(connectPacket(this.id, clean)))
    s.on('data', (d: Buffer) => {
      try {
        this.framer.feed(d, 0, d.length, this)
      } catch (err) {
        this.onEvent(this, 'error', (err as Error).message)
      }
    })
    s.on('error', (err) => this.onEvent(this, 'error', err.message))
    s.on('close', () => { if (!this.done) this.onEvent(this, 'error', 'closed by the broker') })
    this.socket = s
  }

  onFrame(first: number, buf: Buffer, start: number, end: number): void {
    const type = first >> 4
    if (type === Type.Connack) {
      if (buf[start + 1] !== 0) {
        this.onEvent(this, 'error', `CONNACK return code ${buf[start + 1]}`)
        return
      }
      this.sessionPresent = (buf[start]! & 1) === 1
      this.onEvent(this, 'connack')
    } else if (type === Type.Suback) {
      this.onEvent(this, 'suback')
    } else if (type === Type.Publish) {
      const qos = (first >> 1) & 3
      const topicLen = buf.readUInt16BE(start)
      if (qos > 0) {
        const ack = Buffer.allocUnsafe(4)
        putPuback(ack, 0, buf[start + 2 + topicLen]!, buf[start + 3 + topicLen]!)
        this.socket!.write(ack)
      }
      this.received++
      this.onEvent(this, 'publish')
    } else if (type !== Type.Pingresp) {
      this.onEvent(this, 'error', `unexpected packet type ${type}`)
    }
    void end
  }

  end(): void {
    this.done = true
    const s = this.socket
    if (s?.writable === true) s.end(DISCONNECT)
    else s?.destroy()
  }
}

/** Opens N clients with at most CONCURRENCY handshakes outstanding; `ready` says when one is through. */
function openAll(clean: boolean, handle: (c: StormClient, what: string, detail?: string) => 'next' | 'wait' | 'fail'): Promise<StormClient[]> {
  return new Promise((resolve, reject) => {
    const clients: StormClient[] = []
    let opened = 0
    let through = 0
    const more = (): void => {
      while (opened < N && opened - through < CONCURRENCY) {
        const c = new StormClient(opened++, (client, what, detail) => {
          const r = handle(client, what, detail)
          if (r === 'fail') reject(new Error(`client ${client.idx}: ${detail ?? what}`))
          else if (r === 'next') {
            through++
            if (through === N) resolve(clients)
            else more()
          }
        })
        clients.push(c)
        c.open(clean)
      }
    }
    more()
  })
}

async function seed(): Promise<object> {
  const t0 = performance.now()
  const clients = await openAll(false, (c, what) => {
    if (what === 'error') return c.done ? 'wait' : 'fail'
    if (what === 'connack') { c.socket!.write(subscribePacket(`${PREFIX}/${c.idx}`)); return 'wait' }
    if (what === 'suback') { c.end(); return 'next' }
    return 'wait'
  })
  void clients
  const subscribedS = (performance.now() - t0) / 1000
  // One publisher, 64 QoS 1 messages in flight, Q per client topic.
  const total = N * Q
  await new Promise<void>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: PORT, noDelay: true })
    let sent = 0
    let acked = 0
    let inflight = 0
    const send = (): void => {
      const batch: Buffer[] = []
      while (sent < total && inflight < 64) {
        const i = sent % N
        const t = publishTemplate(`${PREFIX}/${i}`, 1, 16)
        t.bytes.writeUInt16BE(1 + (sent % 65535), t.packetIdOffset)
        t.bytes.writeUInt32LE(sent, t.payloadOffset + 12)
        batch.push(t.bytes)
        sent++
        inflight++
      }
      if (batch.length > 0) s.write(Buffer.concat(batch))
    }
    const framer = new Framer()
    s.on('connect', () => s.write(connectPacket(`${PREFIX}-publisher`, true)))
    s.on('data', (d: Buffer) => framer.feed(d, 0, d.length, {
      onFrame(first: number) {
        const type = first >> 4
        if (type === Type.Connack) send()
        else if (type === Type.Puback) {
          acked++
          inflight--
          if (acked === total) { s.end(DISCONNECT); resolve() } else send()
        }
      },
    }))
    s.on('error', reject)
  })
  return { mode: 'seed', clients: N, queued: Q, subscribed_s: Math.round(subscribedS * 1000) / 1000, seeded_s: Math.round((performance.now() - t0) / 10) / 100, status: 'ok' }
}

async function reconnect(): Promise<object> {
  const t0 = performance.now()
  let connacked = 0
  let tConnacked = 0
  let missingSession = 0
  const clients = await openAll(false, (c, what) => {
    if (what === 'error') return c.done ? 'wait' : 'fail'
    if (what === 'connack') {
      connacked++
      if (connacked === N) tConnacked = performance.now()
      if (!c.sessionPresent) missingSession++
    }
    if ((what === 'connack' || what === 'publish') && c.sessionPresent && c.received === Q && !c.done) {
      c.done = true
      return 'next'
    }
    if (what === 'connack' && !c.sessionPresent) return 'fail'
    return 'wait'
  }).catch((err: Error) => err)
  const t = performance.now()
  if (clients instanceof Error) return { mode: 'reconnect', clients: N, queued: Q, status: 'error', error: clients.message, missing_session: missingSession }
  for (const c of clients) c.end()
  return {
    mode: 'reconnect',
    clients: N,
    queued: Q,
    concurrency: CONCURRENCY,
    // All CONNACKs in, and all back with their whole queue.
    connacked_s: Math.round((tConnacked - t0) / 10) / 100,
    all_back_s: Math.round((t - t0) / 10) / 100,
    rate: Math.round(N / ((t - t0) / 1000)),
    received: clients.reduce((n, c) => n + c.received, 0),
    status: 'ok',
  }
}

async function main(): Promise<void> {
  if (MODE !== 'seed' && MODE !== 'reconnect') throw new Error('usage: storm.js seed|reconnect -p PORT --clients N --queued Q [-c CONCURRENCY]')
  const limit = setTimeout(() => {
    process.stdout.write(`${JSON.stringify({ mode: MODE, status: 'timeout' })}\n`, () => process.exit(2))
  }, Number(values.timeout) * 1000)
  const result = MODE === 'seed' ? await seed() : await reconnect()
  clearTimeout(limit)
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit((result as { status: string }).status === 'ok' ? 0 : 1))
}

main().catch((err: unknown) => {
  process.stderr.write(`storm: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
