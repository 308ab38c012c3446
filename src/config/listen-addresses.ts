/**
 * The socket addresses one `listener` opens, as Mosquitto does: no address means every interface on IPv4
 * and IPv6 (two sockets); a host name means each of its addresses (`localhost` → 127.0.0.1 and ::1 where
 * both exist); bind_interface means that interface's addresses; socket_domain keeps one family.
 */
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import type { ListenerConfig } from './types.js'

export async function listenAddresses(l: Pick<ListenerConfig, 'bindAddress' | 'bindInterface' | 'socketDomain'>): Promise<string[]> {
  const want = (family: 4 | 6): boolean => l.socketDomain === undefined || l.socketDomain === (family === 4 ? 'ipv4' : 'ipv6')
  if (l.bindInterface !== undefined) {
    const addrs = networkInterfaces()[l.bindInterface]
    if (addrs === undefined) throw new Error(`bind_interface ${l.bindInterface}: no such network interface`)
    const out: string[] = []
    for (const a of addrs) {
      const family = a.family === 'IPv4' ? 4 : 6
      if (!want(family)) continue
      out.push(family === 6 && a.address.startsWith('fe80:') ? `${a.address}%${l.bindInterface}` : a.address)
    }
    if (out.length === 0) throw new Error(`bind_interface ${l.bindInterface}: the interface has no ${l.socketDomain ?? 'IP'} address`)
    return out
  }
  if (l.bindAddress === undefined) return [...(want(4) ? ['0.0.0.0'] : []), ...(want(6) ? ['::'] : [])]
  const literal = isIP(l.bindAddress)
  if (literal !== 0) return [l.bindAddress]
  const found = await lookup(l.bindAddress, { all: true })
  const out = [...new Set(found.filter((a) => want(a.family === 6 ? 6 : 4)).map((a) => a.address))]
  if (out.length === 0) throw new Error(`listener address ${l.bindAddress} has no ${l.socketDomain ?? 'IP'} address`)
  return out
}
