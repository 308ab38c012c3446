/**
 * `-D command identifier value [value]`: MQTT v5 properties given on the command line, with mosquitto's
 * command and property names, value ranges and error sentences.
 */
import type { Properties } from '../protocol/index.js'

export type PropCommand = 'connect' | 'publish' | 'subscribe' | 'unsubscribe' | 'disconnect' | 'will'
  | 'puback' | 'pubrec' | 'pubrel' | 'pubcomp' | 'auth'

type Kind = 'byte' | 'u16' | 'u32' | 'varint' | 'string' | 'binary' | 'pair'

interface PropSpec {
  key: keyof Properties
  kind: Kind
  commands: readonly PropCommand[]
}

/** mosquitto's property names (mosquitto_string_to_property_info) and the packets it allows each in. */
const Props: Record<string, PropSpec> = {
  'payload-format-indicator': { key: 'payloadFormatIndicator', kind: 'byte', commands: ['publish', 'will'] },
  'message-expiry-interval': { key: 'messageExpiryInterval', kind: 'u32', commands: ['publish', 'will'] },
  'content-type': { key: 'contentType', kind: 'string', commands: ['publish', 'will'] },
  'response-topic': { key: 'responseTopic', kind: 'string', commands: ['publish', 'will'] },
  'correlation-data': { key: 'correlationData', kind: 'binary', commands: ['publish', 'will'] },
  'subscription-identifier': { key: 'subscriptionIdentifiers', kind: 'varint', commands: ['subscribe'] },
  'session-expiry-interval': { key: 'sessionExpiryInterval', kind: 'u32', commands: ['connect', 'disconnect'] },
  'assigned-client-identifier': { key: 'assignedClientIdentifier', kind: 'string', commands: [] },
  'server-keep-alive': { key: 'serverKeepAlive', kind: 'u16', commands: [] },
  'authentication-method': { key: 'authenticationMethod', kind: 'string', commands: ['connect', 'auth'] },
  'authentication-data': { key: 'authenticationData', kind: 'binary', commands: ['connect', 'auth'] },
  'request-problem-information': { key: 'requestProblemInformation', kind: 'byte', commands: ['connect'] },
  'will-delay-interval': { key: 'willDelayInterval', kind: 'u32', commands: ['will'] },
  'request-response-information': { key: 'requestResponseInformation', kind: 'byte', commands: ['connect'] },
  'response-information': { key: 'responseInformation', kind: 'string', commands: [] },
  'server-reference': { key: 'serverReference', kind: 'string', commands: ['disconnect'] },
  'reason-string': { key: 'reasonString', kind: 'string', commands: ['puback', 'pubrec', 'pubrel', 'pubcomp', 'disconnect', 'auth'] },
  'receive-maximum': { key: 'receiveMaximum', kind: 'u16', commands: ['connect'] },
  'topic-alias-maximum': { key: 'topicAliasMaximum', kind: 'u16', commands: ['connect'] },
  'topic-alias': { key: 'topicAlias', kind: 'u16', commands: ['publish'] },
  'maximum-qos': { key: 'maximumQoS', kind: 'byte', commands: [] },
  'retain-available': { key: 'retainAvailable', kind: 'byte', commands: [] },
  'user-property': { key: 'userProperties', kind: 'pair', commands: ['connect', 'publish', 'subscribe', 'unsubscribe', 'disconnect', 'will', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'auth'] },
  'maximum-packet-size': { key: 'maximumPacketSize', kind: 'u32', commands: ['connect'] },
  'wildcard-subscription-available': { key: 'wildcardSubscriptionAvailable', kind: 'byte', commands: [] },
  'subscription-identifier-available': { key: 'subscriptionIdentifiersAvailable', kind: 'byte', commands: [] },
  'shared-subscription-available': { key: 'sharedSubscriptionAvailable', kind: 'byte', commands: [] },
}

const Commands: readonly PropCommand[] = ['connect', 'publish', 'subscribe', 'unsubscribe', 'disconnect', 'will', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'auth']

export type CommandProperties = Partial<Record<PropCommand, Properties>>

const Max: Record<Kind, number> = { byte: 0xff, u16: 0xffff, u32: 0xffffffff, varint: 268_435_455, string: 0, binary: 0, pair: 0 }

/**
 * Parses the arguments after -D starting at argv[i]; stores the property in `into`. Returns the number of
 * arguments used, or an error sentence (mosquitto's wording).
 */
export function parseProperty (argv: readonly string[], i: number, into: CommandProperties): number | string {
  const notEnough = 'Error: --property argument given but not enough arguments specified.'
  const cmd = argv[i]
  const name = argv[i + 1]
  const value = argv[i + 2]
  if (cmd === undefined || name === undefined || value === undefined) return notEnough
  if (!(Commands as readonly string[]).includes(cmd)) return 'Error: Invalid command given in --property argument.'
  const spec = Props[name]
  if (spec === undefined) return 'Error: Invalid property name given in --property argument.'
  const command = cmd as PropCommand
  if (!spec.commands.includes(command)) return `Error: ${name} property not supported for ${cmd} in --property argument.`
  const props = (into[command] ??= {})
  const p = props as Record<string, unknown>
  if (spec.kind === 'pair') {
    const v2 = argv[i + 3]
    if (v2 === undefined) return notEnough
    ;(props.userProperties ??= []).push([value, v2])
    return 4
  }
  if (spec.kind === 'string') {
    p[spec.key] = value
  } else if (spec.kind === 'binary') {
    p[spec.key] = Buffer.from(value)
  } else {
    const n = /^[0-9]+$/.test(value) ? Number(value) : NaN
    if (!Number.isSafeInteger(n) || n > Max[spec.kind]) return `Error: Property value (${value}) out of range for property ${name}.`
    if (spec.kind === 'varint') {
      if (n === 0) return `Error: Property value (${value}) out of range for property ${name}.`
      p[spec.key] = [n]
    } else {
      p[spec.key] = n
    }
  }
  return 3
}
