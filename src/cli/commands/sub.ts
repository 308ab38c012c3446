/**
 * `midge sub`: mosquitto_sub 2.0 with the same flags, output bytes and exit codes. Subscribes on every
 * (re)connection as mosquitto_sub does, and keeps reconnecting after a lost connection until a stop
 * condition (-C count, -W timeout, -E, --retained-only, a signal).
 */
import { MqttClient } from '../../client/client.js'
import { ClientError, ClientErrorCode } from '../../client/errors.js'
import { topicMatches } from '../../protocol/index.js'
import type { PublishPacket, SubackPacket } from '../../protocol/index.js'
import { parseClientArgs } from '../client-args.js'
import type { ClientConfig } from '../client-args.js'
import { buildClientOptions, clientIdFor, connectFailure, ExitCode, SetupError, traceClient } from '../client-connect.js'
import { refusedArgsOutput, subUsage } from '../client-usage.js'
import { formatMessage, now } from '../sub-format.js'

export async function run (argv: string[]): Promise<number> {
  const parsed = parseClientArgs('sub', argv)
  if (!parsed.ok) {
    if (parsed.help) {
      process.stdout.write(subUsage())
      return 0
    }
    const out = refusedArgsOutput('sub', parsed.error, parsed.showUsage)
    process.stdout.write(out.stdout)
    process.stderr.write(out.stderr)
    return ExitCode.Error
  }
  return new Subscriber(parsed.config).run()
}

class Subscriber {
  private client: MqttClient | null = null
  private processing = true
  private count = 0
  private finished = false
  private readonly removals: Array<Promise<unknown>> = []
  private timer: NodeJS.Timeout | null = null
  private done: (code: number) => void = () => {}
  private readonly onSignal = (): void => { this.finish(ExitCode.Ok, []) }

  constructor (private readonly cfg: ClientConfig) {}

  private err (lines: string[]): void {
    if (!this.cfg.quiet) for (const l of lines) process.stderr.write(l + '\n')
  }

  run (): Promise<number> {
    const cfg = this.cfg
    const notes: string[] = []
    let client: MqttClient
    try {
      const opts = buildClientOptions(cfg, clientIdFor(cfg), notes)
      // As mosquitto_sub: never be sent more than -C messages at once, so none arrive past the count.
      if (cfg.protocolVersion === 5 && cfg.msgCount > 0 && cfg.msgCount < 20) {
        opts.properties = { ...opts.properties, receiveMaximum: cfg.msgCount }
      }
      opts.reconnectPeriod = 1000
      opts.resubscribe = false
      client = new MqttClient(opts)
    } catch (e) {
      if (e instanceof SetupError || e instanceof ClientError) { this.err([e.message]); return Promise.resolve(ExitCode.Error) }
      throw e
    }
    this.client = client
    if (cfg.debug) {
      for (const n of notes) process.stdout.write(n + '\n')
      traceClient(client, (line) => { process.stdout.write(line + '\n') })
    }
    return new Promise<number>((resolve) => {
      this.done = resolve
      process.on('SIGINT', this.onSignal)
      process.on('SIGTERM', this.onSignal)
      // `midge sub | head -1`: a closed pipe ends the program quietly, as SIGPIPE ends mosquitto_sub.
      process.stdout.on('error', this.onSignal)
      if (cfg.timeout > 0) {
        this.timer = setTimeout(() => { this.finish(ExitCode.Timeout, ['Timed out']) }, cfg.timeout * 1000)
      }
      client.on('message', (m: PublishPacket) => { this.onMessage(m) })
      client.on('connect', () => { this.onConnect() })
      client.on('error', (e: ClientError) => {
        // A refusal on a reconnect ends the program as on the first connection; other losses are retried.
        if (e.code === ClientErrorCode.ConnectionRefused) {
          const f = connectFailure(e, cfg)
          this.finish(f.code, f.lines)
        }
      })
      client.connect().catch((e: ClientError) => {
        const f = connectFailure(e, cfg)
        this.finish(f.code, f.lines, false)
      })
    })
  }

  private onConnect (): void {
    const client = this.client!
    const cfg = this.cfg
    if (cfg.topics.length > 0) {
      const v5 = cfg.protocolVersion === 5
      const requests = cfg.topics.map((topicFilter) => ({
        topicFilter,
        qos: cfg.qos,
        // v5 subscription options only, as libmosquitto (so -d shows "Options: 0x00" on 3.x as it does);
        // -R asks a v5 server not to send retained messages at all, 3.x ones are skipped on arrival.
        retainAsPublished: cfg.retainAsPublished && v5,
        retainHandling: (cfg.noRetain && v5 ? 2 : 0) as 0 | 2,
      }))
      client.subscribe(requests, { properties: cfg.props.subscribe }).then((ack) => { this.onSuback(ack) }, () => {})
    }
    for (const t of cfg.unsubTopics) {
      client.unsubscribe(t, cfg.props.unsubscribe).catch(() => {})
    }
    if (cfg.topics.length === 0 && cfg.exitAfterSub) this.finish(ExitCode.Ok, [])
  }

  private onSuback (ack: SubackPacket): void {
    const cfg = this.cfg
    if (cfg.debug && !cfg.quiet) process.stdout.write(`Subscribed (mid: ${ack.packetId}): ${ack.reasonCodes.join(', ')}\n`)
    if (ack.reasonCodes.every((c) => c >= 0x80)) {
      this.finish(ExitCode.Error, ['All subscription requests were denied.'])
      return
    }
    if (cfg.exitAfterSub) this.finish(ExitCode.Ok, [])
  }

  private onMessage (m: PublishPacket): void {
    const cfg = this.cfg
    if (!this.processing) return
    if (cfg.retainedOnly && !m.retain) {
      this.processing = false
      this.finish(ExitCode.Ok, [])
      return
    }
    if (m.retain && cfg.noRetain) return
    for (const f of cfg.filterOuts) if (topicMatches(f, m.topic)) return
    if (cfg.removeRetained && m.retain) {
      this.removals.push(this.client!.publish(m.topic, Buffer.alloc(0), { qos: 1, retain: true }).catch(() => {}))
    }
    if (cfg.randomFilter >= 1000 || Math.random() * 1000 < cfg.randomFilter) {
      const { out, error } = formatMessage(m, cfg, now())
      if (out.length > 0) process.stdout.write(out)
      if (error !== null) this.err([error])
    }
    if (cfg.msgCount > 0 && ++this.count === cfg.msgCount) {
      this.processing = false
      this.finish(ExitCode.Ok, [])
    }
  }

  /** Stops once: waits for --remove-retained publishes, disconnects, prints `lines`, resolves `code`. */
  private finish (code: number, lines: string[], disconnect = true): void {
    if (this.finished) return
    this.finished = true
    this.processing = false
    if (this.timer !== null) clearTimeout(this.timer)
    process.removeListener('SIGINT', this.onSignal)
    process.removeListener('SIGTERM', this.onSignal)
    process.stdout.removeListener('error', this.onSignal)
    const client = this.client!
    const close = async (): Promise<void> => {
      await Promise.allSettled(this.removals)
      if (disconnect) await client.disconnect(0, this.cfg.props.disconnect)
      else client.end()
    }
    // setImmediate: let this tick's acknowledgements (PUBACK/PUBCOMP) be written before the DISCONNECT.
    setImmediate(() => {
      close().catch(() => {}).finally(() => {
        this.err(lines)
        this.done(code)
      })
    })
  }
}
