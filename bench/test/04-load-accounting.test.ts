/**
 * The generator's loss and duplicate counts must be exact. A deliberately faulty "broker" here
 * forwards fan-in PUBLISH packets to the subscriber but drops and repeats chosen ones; the
 * expected counts follow from the same rule applied to every (publisher, sequence).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { Controller } from '../load/controller.js'
import { defaults } from '../load/options.js'

const drop = (seq: number): boolean => seq % 10 === 3
const repeat = (seq: number): boolean => seq % 7 === 5

/** Parses the client's packets by hand (independent of bench/load) and misroutes PUBLISHes. */
function faultyBroker(): Promise<net.Server> {
  let subscriber: net.Socket | null = null
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0)
    sock.on('error', () => {})
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      for (;;) {
        if (buf.length < 2) return
        let len = 0
        let mul = 1
        let i = 1
        for (; i < buf.length; i++) {
          len += (buf[i]! & 0x7f) * mul
          mul *= 128
          if (buf[i]! < 0x80) break
        }
        if (i >= buf.length || buf.length < i + 1 + len) return
        const pkt = buf.subarray(0, i + 1 + len)
        const body = pkt.subarray(i + 1)
        buf = buf.subarray(i + 1 + len)
        switch (pkt[0]! >> 4) {
          case 1: // CONNECT
            sock.write(Buffer.from([0x20, 0x02, 0x00, 0x00]))
            break
          case 8: // SUBSCRIBE: grant QoS 0
            subscriber = sock
            sock.write(Buffer.from([0x90, 0x03, body[0]!, body[1]!, 0x00]))
            break
          case 3: {
            const payload = 2 + body.readUInt16BE(0)
            const seq = body.readUInt32LE(payload + 12)
            if (drop(seq)) break
            subscriber!.write(pkt)
            if (repeat(seq)) subscriber!.write(pkt)
            break
          }
          case 12: // PINGREQ
            sock.write(Buffer.from([0xd0, 0x00]))
            break
          case 14:
            sock.end()
            break
        }
      }
    })
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

test('fan-in loss and duplicates are counted exactly, and such a run is not ok', async () => {
  const server = await faultyBroker()
  const port = (server.address() as net.AddressInfo).port
  const opts = { ...defaults('fanin'), port, pubs: 4, msgs: 1001, drainMs: 300, timeout: 20 }
  const result = await new Controller(opts).run()
  server.close()

  let loss = 0
  let dups = 0
  for (let p = 0; p < opts.pubs; p++) {
    const quota = Math.floor(opts.msgs / opts.pubs) + (p < opts.msgs % opts.pubs ? 1 : 0)
    for (let seq = 0; seq < quota; seq++) {
      if (drop(seq)) loss++
      else if (repeat(seq)) dups++
    }
  }
  assert.equal(result.sent, 1001)
  assert.equal(result.loss, loss)
  assert.equal(result.dups, dups)
  assert.equal(result.received, 1001 - loss)
  assert.equal(result.status, 'loss')
})
