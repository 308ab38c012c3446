/**
 * Value types of the bridge options whose values are more than a word: `topic`, `address`,
 * `restart_timeout`, `bridge_protocol_version`, `start_type`. Same contract as value-types.ts: parse or
 * throw BadValue, and `expects` completes "option 'x' expects …".
 */
import { isIP } from 'node:net'
import type { BridgeAddress, BridgeDirection, BridgeTopicSpec } from '../bridge/options.js'
import { topicSpecProblem } from '../bridge/topic-map.js'
import type { ProtocolVersion, QoS } from '../protocol/index.js'
import { BadValue, type ValueType } from './value-types.js'
import { hostPort } from '../transport/peer-address.js'

/** Mosquitto's placeholder for "no prefix" (and, as the pattern, "the prefixes are the whole topics"). */
const Empty = '""'

function words (raw: string): string[] {
  return raw.split(/\s+/).filter((w) => w !== '')
}

/** `topic PATTERN [[[out | in | both] QOS] LOCAL_PREFIX REMOTE_PREFIX]`; a `#…` word after the pattern starts a comment. */
export const bridgeTopic: ValueType<BridgeTopicSpec> = {
  label: 'PATTERN [[[out | in | both] QOS] LOCAL_PREFIX REMOTE_PREFIX]',
  expects: 'a topic pattern, optionally followed by out, in or both, a QoS from 0 to 2, a local prefix and a remote prefix',
  parse (raw) {
    const w = words(raw)
    const [pattern, dir, qos] = w
    if (pattern === undefined) throw new BadValue()
    let direction: BridgeDirection = 'out'
    if (dir !== undefined && !dir.startsWith('#')) {
      const d = dir.toLowerCase()
      if (d !== 'out' && d !== 'in' && d !== 'both') throw new BadValue(`bridge topic direction '${dir}' is not one of out, in, both`)
      direction = d
    }
    let q: QoS = 0
    let rest: string[] = []
    if (dir !== undefined && !dir.startsWith('#') && qos !== undefined && !qos.startsWith('#')) {
      if (!/^[012]$/.test(qos)) throw new BadValue(`bridge topic QoS '${qos}' is not 0, 1 or 2`)
      q = Number(qos) as QoS
      rest = w.slice(3)
      const comment = rest.findIndex((x) => x.startsWith('#'))
      if (comment !== -1) rest = rest.slice(0, comment)
      if (rest.length > 2) throw new BadValue(`bridge topic line has ${rest.length - 2} word${rest.length > 3 ? 's' : ''} too many after the remote prefix: '${rest.slice(2).join(' ')}'`)
    }
    const prefix = (p: string | undefined): string | undefined => (p === undefined || p === Empty ? undefined : p)
    const spec: BridgeTopicSpec = {
      pattern: pattern === Empty ? undefined : pattern,
      direction,
      qos: q,
      localPrefix: prefix(rest[0]),
      remotePrefix: prefix(rest[1]),
    }
    const problem = topicSpecProblem(spec)
    if (problem !== undefined) throw new BadValue(`invalid bridge topic '${raw}': ${problem}`)
    return spec
  },
  show: (v) => [v.pattern ?? Empty, v.direction, String(v.qos), v.localPrefix ?? Empty, v.remotePrefix ?? Empty].join(' '),
}

/**
 * One `host[:port]`. As in Mosquitto, with more than one ':' the last one separates the port, so an IPv6
 * address needs its port (`::1:1883`); `[::1]:1883` is accepted too.
 */
export function parseBridgeAddress (w: string): BridgeAddress {
  let host = w
  let port: string | undefined
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(w)
  if (bracket !== null) {
    host = bracket[1] ?? ''
    port = bracket[2]
    if (isIP(host) !== 6) throw new BadValue(`bridge address '${w}': '${host}' in brackets is not an IPv6 address`)
  } else {
    const colon = w.lastIndexOf(':')
    if (colon !== -1) {
      host = w.slice(0, colon)
      port = w.slice(colon + 1)
    }
  }
  if (host === '') throw new BadValue(`bridge address '${w}' has no host`)
  if (bracket === null && host.includes(':') && isIP(host) !== 6) {
    throw new BadValue(`bridge address '${w}': an IPv6 address needs its port: ${isIP(w) === 6 ? `[${w}]:1883` : '[::1]:1883'}`)
  }
  if (port === undefined) return { host, port: MqttPort }
  const n = Number(port)
  if (!/^\d+$/.test(port) || n < 1 || n > 65535) {
    throw new BadValue(`bridge address '${w}': port '${port}' is not a number from 1 to 65535${host.includes(':') && bracket === null ? ' (an IPv6 address needs its port: ::1:1883 or [::1]:1883)' : ''}`)
  }
  return { host, port: n }
}

/** An address without a port: MQTT's registered port, as Mosquitto. */
const MqttPort = 1883

export const bridgeAddresses: ValueType<BridgeAddress[]> = {
  label: 'HOST[:PORT] [HOST[:PORT]]…',
  expects: 'one or more host[:port], separated by spaces',
  parse (raw) {
    const hash = raw.search(/(?:^|\s)#/)
    const list = (hash === -1 ? raw : raw.slice(0, hash)).split(/[\s,]+/).filter((w) => w !== '')
    if (list.length === 0) throw new BadValue()
    return list.map(parseBridgeAddress)
  },
  show: (v) => v.map((a) => hostPort(a.host, a.port)).join(' '),
}

/** `restart_timeout CONSTANT` or `restart_timeout BASE CAP`, whole seconds of at least 1. */
export const restartTimeout: ValueType<{ base: number; cap: number }> = {
  label: 'SECONDS | BASE CAP',
  expects: 'one number of seconds (a constant delay) or two (backoff base and cap), each a whole number of at least 1',
  parse (raw) {
    const hash = raw.search(/(?:^|\s)#/)
    const w = words(hash === -1 ? raw : raw.slice(0, hash))
    if (w.length < 1 || w.length > 2 || !w.every((x) => /^\d+$/.test(x))) throw new BadValue()
    const base = Number(w[0])
    const cap = w.length === 2 ? Number(w[1]) : 0
    if (base < 1 || (w.length === 2 && cap < base)) {
      throw new BadValue(base < 1 ? 'restart_timeout must be at least 1 second' : `restart_timeout cap ${cap} is below its base ${base}`)
    }
    return { base, cap }
  },
  show: (v) => (v.cap === 0 ? String(v.base) : `${v.base} ${v.cap}`),
}

const ProtocolVersions = { mqttv31: 3, mqttv311: 4, mqttv50: 5 } as const

export const bridgeProtocolVersion: ValueType<ProtocolVersion> = {
  label: 'mqttv50 | mqttv311 | mqttv31',
  expects: 'one of mqttv50, mqttv311, mqttv31',
  parse (raw) {
    const v = words(raw)[0] ?? ''
    const n = (ProtocolVersions as Record<string, ProtocolVersion>)[v]
    if (n === undefined) throw new BadValue()
    return n
  },
  show: (v) => Object.entries(ProtocolVersions).find(([, n]) => n === v)?.[0] ?? String(v),
}

export const startType: ValueType<'automatic' | 'once'> = {
  label: 'automatic | once',
  expects: 'automatic or once',
  parse (raw) {
    const v = words(raw)[0] ?? ''
    if (v === 'automatic' || v === 'once') return v
    if (v === 'lazy') throw new BadValue(`start_type lazy is not supported by Midge: use automatic (the default), or once`)
    throw new BadValue()
  },
  show: (v) => v,
}

/** A notification topic: a topic name (no wildcards). */
export const topicName: ValueType<string> = {
  label: 'topic',
  expects: 'a topic name without + or #',
  parse (raw) {
    const v = raw.trim()
    if (v === '' || /[+#\s]/.test(v)) throw new BadValue()
    return v
  },
  show: (v) => v,
}

/** One word: client ids, user names, ALPN protocol names. */
export const word: ValueType<string> = {
  label: 'string',
  expects: 'a single word without spaces',
  parse (raw) {
    const v = raw.trim()
    if (v === '' || /\s/.test(v)) throw new BadValue()
    return v
  },
  show: (v) => v,
}
