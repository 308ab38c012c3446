/**
 * mosquitto.conf bridge blocks → BridgeOptions. load.ts hands every entry to entry() first; it takes
 * `connection` and the bridge options (bridge-options.ts) and leaves everything else to the main table.
 *
 *   connection NAME        starts a block; bridge options up to the next `connection` or `listener` belong
 *   address …              to it. Other options in between keep their usual scope (a listener option still
 *   topic …                applies to the listener above), as in Mosquitto.
 *
 * Problems are collected like the rest of the config (every one reported in one run) and checked once a
 * block is complete: an address and a topic are required, a password needs a username, TLS options need a
 * CA, two bridges cannot share a name or a local client id.
 */
import type { BridgeOptions } from '../bridge/options.js'
import { BridgeOptionAliases, BridgeOptionTable, findBridgeOption, isBridgeOption } from './bridge-options.js'
import type { BridgeDraft } from './bridge-options.js'
import { ConfigError, ConfigErrorCode, formatLocation, type ConfigWarning, type SourceLocation } from './errors.js'
import type { ConfigEntry } from './parse.js'
import { BadValue, type ValueContext } from './value-types.js'

interface Block {
  name: string
  loc: SourceLocation
  draft: BridgeDraft
  /** First location of each option, for repeat warnings and for errors about the option. */
  origins: Map<string, SourceLocation>
}

/** Where each option of a bridge was set, for `midge check` (kept beside BridgeOptions, not in it). */
const origins = new WeakMap<BridgeOptions, { block: SourceLocation; options: Map<string, SourceLocation> }>()

/** The line that set `option` in this bridge's block, or the block's `connection` line. */
export function bridgeOrigin (b: BridgeOptions, option: string): SourceLocation | undefined {
  const o = origins.get(b)
  return o === undefined ? undefined : o.options.get(option) ?? o.block
}

export class BridgeBlocks {
  readonly errors: ConfigError[] = []
  readonly warnings: ConfigWarning[] = []
  private readonly blocks: Block[] = []
  private current: Block | undefined = undefined

  /** Takes the entry if it is bridge business; returns false to let the main table have it. */
  entry (e: ConfigEntry, ctx: ValueContext): boolean {
    if (e.key === 'connection') {
      this.startBlock(e)
      return true
    }
    const aliased = this.current !== undefined && BridgeOptionAliases[e.key] !== undefined
    if (!isBridgeOption(e.key) && !aliased) return false
    const spec = findBridgeOption(e.key)!
    const block = this.current
    if (block === undefined) {
      this.error(ConfigErrorCode.Conflict, e, `option '${e.key}' belongs to a bridge, but no 'connection' line comes before it${this.blocks.length > 0 ? ' (a \'listener\' line ends a bridge block)' : ''}`,
        `put it in a bridge block: a 'connection NAME' line, then the bridge's options`)
      return true
    }
    if (e.value === '') {
      this.error(ConfigErrorCode.MissingValue, e, `option '${e.key}' needs a value: ${spec.type.expects}`)
      return true
    }
    let value: unknown
    try {
      value = spec.type.parse(e.value, ctx)
    } catch (err) {
      if (!(err instanceof BadValue)) throw err
      this.error(ConfigErrorCode.BadValue, e, err.detail ?? `option '${e.key}' expects ${spec.type.expects}, got '${e.value}'`)
      return true
    }
    const first = block.origins.get(spec.name)
    if (first === undefined) block.origins.set(spec.name, { file: e.file, line: e.line })
    else if (spec.repeatable !== true) {
      if (spec.name === 'address' || spec.name === 'addresses') {
        this.error(ConfigErrorCode.Conflict, e, `bridge ${block.name} has a second address line (first at ${formatLocation(first)})`, 'list every address on one line: address HOST[:PORT] HOST2[:PORT]')
        return true
      }
      this.warn(e, `'${e.key}' is set again in bridge ${block.name} (first at ${formatLocation(first)}); this later value is used`)
    }
    if (spec.name === 'address') block.origins.set('addresses', block.origins.get('address')!)
    if (spec.name === 'addresses') block.origins.set('address', block.origins.get('addresses')!)
    spec.set(block.draft, value)
    return true
  }

  /** A `listener` line ends the current block. */
  endBlock (): void {
    this.current = undefined
  }

  /** Validates every block; returns the bridges in file order. */
  finish (): BridgeOptions[] {
    this.current = undefined
    const out: BridgeOptions[] = []
    const ids = new Map<string, Block>()
    for (const b of this.blocks) {
      const o = this.resolve(b)
      if (o === undefined) continue
      const other = ids.get(o.localClientId)
      if (other !== undefined) {
        this.error(ConfigErrorCode.Conflict, b.loc, `bridges ${other.name} (${formatLocation(other.loc)}) and ${o.name} both use the local client id '${o.localClientId}': each would take the other's session over`, 'give one of them another local_clientid (or remote_clientid)')
        continue
      }
      ids.set(o.localClientId, b)
      origins.set(o, { block: b.loc, options: b.origins })
      out.push(o)
    }
    return out
  }

  private startBlock (e: ConfigEntry): void {
    const name = e.value.trim()
    this.current = undefined
    if (name === '' || /\s/.test(name)) {
      this.error(name === '' ? ConfigErrorCode.MissingValue : ConfigErrorCode.BadValue, e, `option 'connection' needs a value: one word naming the bridge`)
      // Still open a block, so its options are not reported as strays as well.
    }
    const dup = this.blocks.find((b) => b.name === name && name !== '')
    if (dup !== undefined) {
      this.error(ConfigErrorCode.Conflict, e, `a bridge named '${name}' is already defined at ${formatLocation(dup.loc)}`, 'give each connection block its own name')
    }
    const block: Block = { name, loc: { file: e.file, line: e.line }, draft: { topics: [], tls: {} }, origins: new Map() }
    this.blocks.push(block)
    this.current = block
  }

  private resolve (b: Block): BridgeOptions | undefined {
    const d = b.draft
    const where = `bridge ${b.name}`
    const at = (opt: string): SourceLocation => b.origins.get(opt) ?? b.loc
    const before = this.errors.length
    if (d.addresses === undefined) {
      this.error(ConfigErrorCode.MissingValue, b.loc, `${where} has no address: it needs to know which broker to connect to`, `add 'address HOST[:PORT]' to the block`)
    }
    if (d.topics.length === 0) {
      this.error(ConfigErrorCode.MissingValue, b.loc, `${where} has no topic line: nothing would be bridged`, `add e.g. 'topic # out 1' (everything to the remote) or 'topic # both 1'`)
    }
    if (d.remotePassword !== undefined && d.remoteUsername === undefined) {
      this.error(ConfigErrorCode.Conflict, at('remote_password'), `${where} has remote_password but no remote_username: MQTT sends a password only with a username`, `add 'remote_username NAME' to the block`)
    }
    const t = d.tls
    const hasCa = t.cafile !== undefined || t.capath !== undefined
    if (!hasCa) {
      const tlsOnly = (['bridge_certfile', 'bridge_keyfile', 'bridge_insecure', 'bridge_tls_version', 'bridge_alpn'] as const).filter((k) => b.origins.has(k))
      if (tlsOnly.length > 0) {
        this.error(ConfigErrorCode.TlsIncomplete, at(tlsOnly[0]!), `${where} sets ${tlsOnly.join(', ')} but neither bridge_cafile nor bridge_capath: TLS to the remote is on only with a CA to verify it`, `add 'bridge_cafile /path/to/ca.pem' (or 'bridge_capath /etc/ssl/certs') to the block`)
      }
    }
    if ((t.certfile === undefined) !== (t.keyfile === undefined)) {
      const has = t.certfile !== undefined ? 'bridge_certfile' : 'bridge_keyfile'
      const lacks = t.certfile !== undefined ? 'bridge_keyfile' : 'bridge_certfile'
      this.error(ConfigErrorCode.TlsIncomplete, at(has), `${where} has ${has} but no ${lacks}: a client certificate needs both`, `add '${lacks} /path/to/file.pem' to the block`)
    }
    if (d.localPassword !== undefined) {
      this.warn(at('local_password'), `local_password has no effect in Midge: the bridge runs inside the broker and is not authenticated by it (local_username is used for acl_file)`)
    }
    if (d.tls.insecure === true) {
      this.warn(at('bridge_insecure'), `${where} has bridge_insecure true: the remote's certificate is not checked against its name, so another holder of a certificate from the same CA could pose as the remote`)
    }
    if (this.errors.length > before || b.name === '') return undefined
    // Defaults come from the option table alone, in its order (remote_clientid before the ids derived from it).
    for (const spec of BridgeOptionTable) spec.fallback?.(d, b.name)
    return {
      name: b.name,
      addresses: d.addresses!,
      roundRobin: d.roundRobin!,
      topics: d.topics,
      remoteClientId: d.remoteClientId!,
      localClientId: d.localClientId!,
      remoteUsername: d.remoteUsername,
      remotePassword: d.remotePassword,
      localUsername: d.localUsername,
      cleanSession: d.cleanSession!,
      localCleanSession: d.localCleanSession!,
      keepalive: d.keepalive!,
      restartTimeout: d.restartTimeout!,
      protocolVersion: d.protocolVersion!,
      tryPrivate: d.tryPrivate!,
      notifications: d.notifications!,
      notificationsLocalOnly: d.notificationsLocalOnly!,
      notificationTopic: d.notificationTopic!,
      tls: hasCa
        ? { cafile: t.cafile, capath: t.capath, certfile: t.certfile, keyfile: t.keyfile, insecure: t.insecure!, version: t.version, alpn: t.alpn }
        : undefined,
      bindAddress: d.bindAddress,
      startType: d.startType!,
      outgoingRetain: d.outgoingRetain!,
      maxPacketSize: d.maxPacketSize!,
      attemptUnsubscribe: d.attemptUnsubscribe!,
    }
  }

  private error (code: ConfigError['code'], loc: SourceLocation, detail: string, fix?: string): void {
    this.errors.push(new ConfigError(code, loc, detail, fix === undefined ? undefined : { fix }))
  }

  private warn (loc: SourceLocation, message: string): void {
    this.warnings.push({ file: loc.file, line: loc.line, message })
  }
}

/** Bridges from config text alone (tests, `midge check` of a snippet): entries in, options and problems out. */
export function parseBridgeEntries (entries: readonly ConfigEntry[], ctx: ValueContext): { bridges: BridgeOptions[]; errors: ConfigError[]; warnings: ConfigWarning[] } {
  const blocks = new BridgeBlocks()
  for (const e of entries) {
    if (e.key === 'listener') blocks.endBlock()
    else blocks.entry(e, ctx)
  }
  const bridges = blocks.finish()
  return { bridges, errors: blocks.errors, warnings: blocks.warnings }
}
