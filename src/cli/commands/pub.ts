/**
 * `midge pub`: mosquitto_pub 2.0 with the same flags, messages and exit codes. The payload (-m, -f, -s, -n)
 * is read before connecting, so a missing file fails fast; -l publishes each stdin line as it arrives.
 */
import fs from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { MqttClient } from '../../client/client.js'
import { ClientError, ClientErrorCode } from '../../client/errors.js'
import { parseClientArgs } from '../client-args.js'
import { buildClientOptions, clientIdFor, connectFailure, ExitCode, reasonString, SetupError, traceClient } from '../client-connect.js'
import { pubUsage, refusedArgsOutput } from '../client-usage.js'

export async function run (argv: string[]): Promise<number> {
  const parsed = parseClientArgs('pub', argv)
  if (!parsed.ok) {
    if (parsed.help) {
      process.stdout.write(pubUsage())
      return 0
    }
    const out = refusedArgsOutput('pub', parsed.error, parsed.showUsage)
    process.stdout.write(out.stdout)
    process.stderr.write(out.stderr)
    return ExitCode.Error
  }
  const cfg = parsed.config
  const err = (lines: string[]): void => {
    if (!cfg.quiet) for (const l of lines) process.stderr.write(l + '\n')
  }

  let payload: Buffer | null = null
  switch (cfg.pubMode) {
    case 'message': payload = Buffer.from(cfg.message ?? ''); break
    case 'null': payload = Buffer.alloc(0); break
    case 'file':
      try {
        payload = fs.readFileSync(cfg.file!)
      } catch {
        err([`Error: Unable to open file "${cfg.file}".`, `Error loading input file "${cfg.file}".`])
        return ExitCode.Error
      }
      break
    case 'stdin-file':
      payload = await readAll(process.stdin)
      if (payload.length === 0) {
        err(['Error: Zero length input.', 'Error loading input from stdin.'])
        return ExitCode.Error
      }
      break
    default: break
  }

  const notes: string[] = []
  let client: MqttClient
  try {
    client = new MqttClient(buildClientOptions(cfg, clientIdFor(cfg), notes))
  } catch (e) {
    if (e instanceof SetupError || e instanceof ClientError) { err([e.message]); return ExitCode.Error }
    throw e
  }
  if (cfg.debug) {
    for (const n of notes) process.stdout.write(n + '\n')
    traceClient(client, (line) => { process.stdout.write(line + '\n') })
  }
  try {
    await client.connect()
  } catch (e) {
    const f = connectFailure(e as ClientError, cfg)
    err(f.lines)
    return f.code
  }

  const publishOne = (body: Buffer): Promise<unknown> =>
    client.publish(cfg.topic!, body, { qos: cfg.qos, retain: cfg.retain, properties: cfg.props.publish }).catch((e: ClientError) => {
      if (e.code === ClientErrorCode.PublishRefused) {
        err([`Warning: Publish failed: ${reasonString(e.reasonCode ?? 0x80)}.`])
        return
      }
      throw e
    })

  try {
    if (payload !== null) {
      for (let i = 0; i < cfg.repeatCount; i++) {
        await publishOne(payload)
        if (i < cfg.repeatCount - 1 && cfg.repeatDelayMs > 0) await sleep(cfg.repeatDelayMs)
      }
    } else {
      await publishLines(process.stdin, publishOne)
    }
  } catch (e) {
    const ce = e as ClientError
    err([ce.code === ClientErrorCode.PacketTooLarge ? `Error: ${ce.message}` : 'Error: The connection was lost.'])
    client.end()
    return ce.code === ClientErrorCode.PacketTooLarge ? ExitCode.Error : ExitCode.ConnLost
  }
  await client.disconnect(0, cfg.props.disconnect)
  return ExitCode.Ok
}

function readAll (stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => resolve(Buffer.concat(chunks)))
    stream.on('error', reject)
  })
}

/**
 * -l: one message per line, split at '\n' only (a '\r' stays, as in mosquitto_pub), empty lines included,
 * a last line without '\n' too. Stdin pauses while many messages wait, so a large input cannot pile up.
 */
async function publishLines (stream: NodeJS.ReadableStream, publish: (b: Buffer) => Promise<unknown>): Promise<void> {
  const waiting = new Set<Promise<unknown>>()
  let failure: unknown = null
  const track = (p: Promise<unknown>): void => {
    waiting.add(p)
    p.then(() => { waiting.delete(p) }, (e: unknown) => { waiting.delete(p); failure ??= e })
  }
  let rest: Buffer = Buffer.alloc(0)
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let buf = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk
    let nl = buf.indexOf(0x0a)
    while (nl >= 0) {
      track(publish(buf.subarray(0, nl)))
      buf = buf.subarray(nl + 1)
      nl = buf.indexOf(0x0a)
    }
    rest = Buffer.from(buf)
    if (failure !== null) throw failure
    if (waiting.size > 1000) await Promise.race(waiting)
  }
  if (rest.length > 0) track(publish(rest))
  await Promise.allSettled([...waiting])
  if (failure !== null) throw failure
}
