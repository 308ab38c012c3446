/**
 * `cluster_redis` values → connection settings for ioredis, parsed here (not by ioredis) so a bad value is a
 * config error naming file:line at `midge check` time, and so the Sentinel form — which no URL parser reads,
 * its host part being a list — is one of the accepted spellings:
 *
 *   redis://[[user]:password@]host[:port][/db]
 *   rediss://…                                          (TLS, the host name checked against the certificate)
 *   redis+sentinel://[[user]:password@]h1[:26379],h2[:26379]/master-name[/db]
 *
 * No ioredis import (types only): the config loader uses this file whether or not a cluster is configured.
 */
import type { RedisOptions } from 'ioredis'

export interface RedisTarget {
  /** What the logs show: the URL without its password. */
  display: string
  host: string
  port: number
  tls: boolean
  username: string | undefined
  password: string | undefined
  db: number
  /** Sentinel: the sentinels to ask and the master's name; host/port are then unused. */
  sentinels: Array<{ host: string; port: number }> | undefined
  masterName: string | undefined
}

export function parseRedisUrl (raw: string): RedisTarget {
  const m = /^(redis|rediss|redis\+sentinel):\/\/(?:([^@/]*)@)?([^/]+)(?:\/(.*))?$/.exec(raw.trim())
  if (m === null) throw new Error(`'${raw}' is not a redis://, rediss:// or redis+sentinel:// URL`)
  const scheme = m[1] as string
  let username: string | undefined
  let password: string | undefined
  if (m[2] !== undefined) {
    const colon = m[2].indexOf(':')
    const user = colon === -1 ? '' : decodeURIComponent(m[2].slice(0, colon))
    password = decodeURIComponent(colon === -1 ? m[2] : m[2].slice(colon + 1))
    username = user === '' ? undefined : user
    if (password === '') password = undefined
  }
  const sentinel = scheme === 'redis+sentinel'
  const hosts = (m[3] as string).split(',').map((h) => hostPort(h, sentinel ? 26379 : 6379, raw))
  const path = (m[4] ?? '').split('/').filter((p) => p !== '')
  let masterName: string | undefined
  if (sentinel) {
    masterName = path.shift()
    if (masterName === undefined) throw new Error(`'${raw}': a redis+sentinel:// URL names the master after the hosts (…/mymaster)`)
  } else if (hosts.length !== 1) {
    throw new Error(`'${raw}': several hosts are only meaningful with redis+sentinel://`)
  }
  const dbText = path.shift() ?? '0'
  if (!/^\d{1,2}$/.test(dbText) || path.length > 0) throw new Error(`'${raw}': the path must be a database number (0-15)`)
  const first = hosts[0] as { host: string; port: number }
  const auth = password === undefined ? '' : `${username ?? ''}:***@`
  return {
    display: `${scheme}://${auth}${m[3]}${m[4] === undefined ? '' : `/${m[4]}`}`,
    host: first.host,
    port: first.port,
    tls: scheme === 'rediss',
    username,
    password,
    db: Number(dbText),
    sentinels: sentinel ? hosts : undefined,
    masterName,
  }
}

function hostPort (text: string, defaultPort: number, raw: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(text)
  if (m === null) throw new Error(`'${raw}': '${text}' is not host[:port]`)
  const port = m[2] === undefined ? defaultPort : Number(m[2])
  if (port < 1 || port > 65535) throw new Error(`'${raw}': port ${port} is out of range`)
  const host = (m[1] as string).replace(/^\[(.*)\]$/, '$1')
  return { host, port }
}

/** ioredis settings for a target: reconnecting for ever, at most a second apart (a restarted Redis is found again quickly). */
export function redisOptions (t: RedisTarget): RedisOptions {
  const common: RedisOptions = {
    username: t.username,
    password: t.password,
    db: t.db,
    retryStrategy: (times: number) => Math.min(times * 100, 1000),
    ...(t.tls ? { tls: { servername: t.host } } : {}),
  }
  if (t.sentinels !== undefined) return { ...common, sentinels: t.sentinels, name: t.masterName, sentinelPassword: t.password }
  return { ...common, host: t.host, port: t.port }
}
