/**
 * Free loopback ports for tests that must name a port before a process listens on it (mosquitto cannot listen on
 * port 0 and say which port it got; mosquitto_pub takes a literal -p). The kernel picks one for port 0, the
 * socket is closed, and the port is handed out: free a moment ago. Tests of Midge alone listen on port 0 instead.
 */
import dgram from 'node:dgram'
import net from 'node:net'

function canListen (host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer()
    s.once('error', () => resolve(false))
    s.listen({ host, port, ipv6Only: host.includes(':') }, () => s.close(() => resolve(true)))
  })
}

function canBindUdp (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const u = dgram.createSocket('udp4')
    u.once('error', () => { u.close(); resolve(false) })
    u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)))
  })
}

function kernelPick (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen({ host: '127.0.0.1', port: 0 }, () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

/**
 * A TCP port free on 127.0.0.1; with `udp`, free for UDP too (pebble's DNS); with `ipv6`, free on ::1 as well (for
 * clients that resolve `localhost` either way).
 */
export async function freePort (o: { udp?: boolean; ipv6?: boolean } = {}): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await kernelPick()
    if (o.udp === true && !await canBindUdp(port)) continue
    if (o.ipv6 === true && !await canListen('::1', port)) continue
    return port
  }
  throw new Error(`no free port found${o.udp === true ? ' for TCP and UDP' : ''}${o.ipv6 === true ? ' on both 127.0.0.1 and ::1' : ''}`)
}
