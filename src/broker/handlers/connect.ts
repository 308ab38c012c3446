/**
 * CONNECT: protocol checks, client identifier rules, authentication (possibly async), session
 * takeover / clean start / resumption, CONNACK with the v5 properties that tell the client our limits,
 * then resending what the resumed session had in flight.
 */
import { randomBytes } from 'node:crypto'
import type { ConnackPacket, ConnectPacket, Properties } from '../../protocol/packets.js'
import { ConnackReturnCode, PacketType, ReasonCode } from '../../protocol/constants.js'
import { isValidTopicName, withinByteLimit } from '../../protocol/topic.js'
import type { AuthResult, ClientIdentity } from '../../auth/types.js'
import { ConnState } from '../conn-state.js'
import type { ClientLink } from '../client-link.js'
import { NeverExpires } from '../session.js'
import { protocolViolation } from '../errors.js'
import { askHook, describe, refusalCode, v3ConnackCode } from '../hooks.js'

export function handleConnect(conn: ClientLink, p: ConnectPacket): void {
  const broker = conn.broker
  const opts = broker.options
  // The client's Maximum Packet Size is known from here on, so that refusals too fit the client [MQTT-3.1.2-24].
  conn.begin(p)
  const v5 = p.protocolVersion === 5
  let clientId = p.clientId
  let assigned = false
  if (clientId === '') {
    // [MQTT-3.1.3-6/7/8]: 3.1.1 allows a zero-length id only with Clean Session; v5 assigns one; 3.1 never.
    const allowed = opts.allowZeroLengthClientId && (v5 || (p.protocolVersion === 4 && p.cleanStart))
    if (!allowed) {
      refuse(conn, v5 ? ReasonCode.ClientIdentifierNotValid : ConnackReturnCode.IdentifierRejected, 'zero-length client id not allowed')
      return
    }
    clientId = opts.autoIdPrefix + randomBytes(12).toString('hex')
    assigned = v5
  }
  conn.identify(clientId)
  if (v5 && p.properties?.authenticationMethod !== undefined) {
    // No enhanced authentication method is implemented [MQTT-4.12.0-1].
    refuse(conn, ReasonCode.BadAuthenticationMethod, `authentication method '${p.properties.authenticationMethod}' is not supported`)
    return
  }
  let keepAlive = p.keepAlive
  let serverKeepAlive: number | undefined
  if (opts.maxKeepalive > 0 && opts.maxKeepalive < 65535 && (keepAlive > opts.maxKeepalive || keepAlive === 0)) {
    if (!v5) {
      refuse(conn, ConnackReturnCode.IdentifierRejected, `keep alive ${keepAlive} is above max_keepalive ${opts.maxKeepalive}`)
      return
    }
    keepAlive = opts.maxKeepalive
    serverKeepAlive = keepAlive
  }
  if (p.will !== undefined && p.will.topic === '') {
    // [MQTT-4.7.3-1] a protocol violation, not a refusal: 3.x closes without CONNACK [MQTT-4.8.0-1], v5 gets 0x82.
    throw protocolViolation('empty will topic')
  }
  if (p.will !== undefined && !isValidTopicName(p.will.topic)) {
    refuse(conn, v5 ? ReasonCode.TopicNameInvalid : ConnackReturnCode.NotAuthorized, `invalid will topic '${p.will.topic}'`)
    return
  }
  const mount = conn.listener.mountPoint
  if (p.will !== undefined && mount !== '' && !withinByteLimit(mount + p.will.topic)) {
    // The will could never be encoded, and it would be published from the close handler: refuse it now.
    const why = `will topic too long: with mount point '${mount}' it exceeds 65535 bytes`
    if (v5) refuse(conn, ReasonCode.TopicNameInvalid, why)
    else conn.close(`connection refused: ${why}`)
    return
  }
  // [MQTT-3.2.2-12] [MQTT-3.2.2-14] a will we could not publish as asked is refused (3.x has no code for it: close).
  if (p.will !== undefined && (p.will.qos > opts.maxQos || (p.will.retain && !opts.retainAvailable))) {
    const qosTooHigh = p.will.qos > opts.maxQos
    const why = qosTooHigh ? `will QoS ${p.will.qos} is above max_qos ${opts.maxQos}` : 'will retain is set but retained messages are not available'
    if (v5) refuse(conn, qosTooHigh ? ReasonCode.QoSNotSupported : ReasonCode.RetainNotSupported, why)
    else conn.close(`connection refused: ${why}`)
    return
  }
  conn.beginAuthentication()
  const authenticator = broker.authenticator(conn.listener)
  const result = authenticator.authenticate({
    clientId,
    username: p.username,
    password: p.password,
    remoteAddress: conn.meta.remoteIp,
    listener: conn.listener.name,
    allowAnonymous: conn.listener.allowAnonymous,
    certificateUsername: conn.meta.certificateUsername,
  })
  if (result instanceof Promise) {
    const failed = (err: unknown): void => {
      opts.logger.error(`Authentication of client ${clientId} from ${conn.meta.remoteAddress} failed with an internal error: ${describe(err)}`)
      if (conn.state === ConnState.Authenticating) refuse(conn, v5 ? ReasonCode.UnspecifiedError : ConnackReturnCode.ServerUnavailable, 'authentication error')
      else conn.close('internal error while connecting')
    }
    // A throw in finishConnect after an async answer would otherwise be an unhandled rejection (fatal in Node 20).
    result.then((r) => {
      try {
        finishConnect(conn, p, clientId, assigned, keepAlive, serverKeepAlive, r)
      } catch (err) {
        failed(err)
      }
    }, failed)
  } else {
    finishConnect(conn, p, clientId, assigned, keepAlive, serverKeepAlive, result)
  }
}

function finishConnect(conn: ClientLink, p: ConnectPacket, clientId: string, assigned: boolean, keepAlive: number, serverKeepAlive: number | undefined, auth: AuthResult): void {
  if (conn.state !== ConnState.Authenticating) return // closed while authenticating
  const broker = conn.broker
  const opts = broker.options
  const v5 = conn.version === 5
  if (!auth.ok) {
    const code = auth.reasonCode !== undefined
      ? v5 ? auth.reasonCode : v3ConnackCode(auth.reasonCode)
      : v5
      ? auth.reason === 'bad-credentials' ? ReasonCode.BadUserNameOrPassword : auth.reason === 'banned' ? ReasonCode.Banned : auth.reason === 'busy' ? ReasonCode.ServerBusy : ReasonCode.NotAuthorized
      : auth.reason === 'bad-credentials' ? ConnackReturnCode.BadUserNameOrPassword : auth.reason === 'busy' ? ConnackReturnCode.ServerUnavailable : ConnackReturnCode.NotAuthorized
    const user = p.username === undefined ? 'no username' : `u'${p.username}'`
    opts.logger.notice(`Client ${clientId} from ${conn.meta.remoteAddress} (${user}) refused: ${auth.detail ?? auth.reason.replace('-', ' ')}.`)
    refuse(conn, code, auth.detail ?? auth.reason)
    return
  }
  if (opts.useUsernameAsClientId && auth.username !== undefined) {
    // use_username_as_clientid: one session per user, whatever id the device sends.
    clientId = auth.username
    conn.identify(clientId)
  }
  const identity: ClientIdentity = { clientId, username: auth.username, remoteAddress: conn.meta.remoteIp, listener: conn.listener.name }
  const mount = conn.listener.mountPoint
  if (p.will !== undefined && !broker.authorizer(conn.listener).canPublish(identity, mount + p.will.topic)) {
    opts.logger.notice(`Client ${clientId} from ${conn.meta.remoteAddress} refused: not authorised to publish its will on '${p.will.topic}'.`)
    refuse(conn, v5 ? ReasonCode.NotAuthorized : ConnackReturnCode.NotAuthorized, 'will topic not authorised')
    return
  }
  const hook = opts.hooks.authorizePublish
  if (p.will === undefined || hook === undefined) {
    acceptConnect(conn, p, clientId, assigned, keepAlive, serverKeepAlive, auth, identity)
    return
  }
  // The will is a publish the client asks for now and the broker makes later (from a close handler, where
  // nothing can wait): the application's authorizePublish decides on it here, as the ACL does above.
  const will = p.will
  const topic = mount + will.topic
  askHook(() => hook(identity, { topic, payload: will.payload, qos: will.qos, retain: will.retain }), opts.hookTimeoutMs, (answer, error) => {
    if (conn.state !== ConnState.Authenticating) return // closed meanwhile
    try {
      if (answer === true && error === undefined) {
        acceptConnect(conn, p, clientId, assigned, keepAlive, serverKeepAlive, auth, identity)
        return
      }
      if (error !== undefined) opts.logger.error(`The authorizePublish hook ${error} for the will of client ${clientId} on '${topic.slice(0, 200)}': refused.`)
      else opts.logger.notice(`Client ${clientId} from ${conn.meta.remoteAddress} refused: its will on '${topic.slice(0, 200)}' was refused by the authorizePublish hook.`)
      const code = error === undefined ? refusalCode(answer, ReasonCode.NotAuthorized) : ReasonCode.NotAuthorized
      refuse(conn, v5 ? code : v3ConnackCode(code), 'will refused by the authorizePublish hook')
    } catch (err) {
      // On a later turn when the hook answered late: nothing above may throw out of here.
      opts.logger.error(`Internal error accepting client ${clientId}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
      conn.close('internal error')
    }
  })
}

/** The rest of a CONNECT let in (and its will allowed): CONNACK, the session, and reading on. */
function acceptConnect(conn: ClientLink, p: ConnectPacket, clientId: string, assigned: boolean, keepAlive: number, serverKeepAlive: number | undefined, auth: AuthResult & { ok: true }, identity: ClientIdentity, claimed = false): void {
  const broker = conn.broker
  const opts = broker.options
  // In a cluster the session may live on another node: it is handed over here before CONNACK.
  const claim = claimed ? undefined : broker.cluster?.claim(clientId, p.cleanStart)
  if (claim !== undefined) {
    claim.then(() => {
      if (conn.state !== ConnState.Authenticating) return // closed meanwhile
      try {
        acceptConnect(conn, p, clientId, assigned, keepAlive, serverKeepAlive, auth, identity, true)
      } catch (err) {
        opts.logger.error(`Internal error accepting client ${clientId}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
        conn.close('internal error')
      }
    }, (err: unknown) => {
      opts.logger.error(`Cluster: session of client ${clientId} could not be claimed: ${describe(err)}`)
      if (conn.state === ConnState.Authenticating) refuse(conn, conn.version === 5 ? ReasonCode.ServerUnavailable : ConnackReturnCode.ServerUnavailable, 'session claim failed')
    })
    return
  }
  const v5 = conn.version === 5
  const mount = conn.listener.mountPoint
  // Kept per connection: a reload must not hold this client to a limit it was never told.
  const receiveMaximum = broker.receiveMaximum
  const connack: ConnackPacket = { type: PacketType.Connack, sessionPresent: false, reasonCode: 0 }
  if (v5) {
    const cp: Properties = { topicAliasMaximum: opts.topicAliasMaximum }
    if (receiveMaximum < 65535) cp.receiveMaximum = receiveMaximum
    if (opts.maxQos < 2) cp.maximumQoS = opts.maxQos
    if (!opts.retainAvailable) cp.retainAvailable = 0
    if (opts.maxPacketSize > 0) cp.maximumPacketSize = opts.maxPacketSize
    if (assigned) cp.assignedClientIdentifier = clientId
    if (serverKeepAlive !== undefined) cp.serverKeepAlive = serverKeepAlive
    connack.properties = cp
  }
  // Sized before the session is touched: a client that can't receive its CONNACK changes nothing [MQTT-3.1.2-24].
  const fitted = conn.fitToClient(connack)
  if (fitted === undefined) {
    const user = auth.username === undefined ? 'no username' : `u'${auth.username}'`
    opts.logger.notice(`Client ${clientId} from ${conn.meta.remoteAddress} (${user}) refused: its Maximum Packet Size ${conn.clientMaxPacketSize} is too small for the CONNACK.`)
    conn.close('connection refused: CONNACK larger than the client\'s Maximum Packet Size')
    return
  }
  let expiry: number
  if (v5) expiry = p.properties?.sessionExpiryInterval ?? 0
  else expiry = p.cleanStart ? 0 : opts.persistentClientExpiration > 0 ? opts.persistentClientExpiration : NeverExpires
  const props = p.properties
  const inflightCap = opts.maxInflightMessages > 0 ? opts.maxInflightMessages : 65535
  const will = p.will === undefined || mount === '' ? p.will : { ...p.will, topic: mount + p.will.topic }
  const { session, present } = conn.accept({
    identity,
    cleanStart: p.cleanStart,
    expiryInterval: expiry,
    keepAlive,
    sendWindow: Math.min(inflightCap, props?.receiveMaximum ?? 65535),
    receiveMaximum,
    clientTopicAliasMaximum: props?.topicAliasMaximum ?? 0,
    problemInformation: props?.requestProblemInformation !== 0,
    will,
  })
  if (will !== undefined) broker.persistWill(session, will)
  // MQTT 3.1 has no Session Present flag: that byte is reserved there.
  fitted.sessionPresent = present && conn.version >= 4
  conn.sendPacket(fitted)
  if (opts.connectionMessages && opts.logger.enabled('notice')) {
    const user = auth.username === undefined ? '' : `, u'${auth.username}'`
    opts.logger.notice(`New client connected from ${conn.meta.remoteAddress} as ${clientId} (${protocolTag(conn.version)}, c${p.cleanStart ? 1 : 0}, k${keepAlive}${user}).`)
  }
  broker.stats.connectionsAccepted++
  if (broker.events.listeners.connected !== undefined) broker.events.emit('connected', identity)
  conn.authenticated()
  broker.resumeSession(conn, session)
}

/** Refuses a CONNECT with CONNACK (v3 return code / v5 reason code) and closes [MQTT-3.2.2-5, MQTT-3.2.2-7]. */
function refuse(conn: ClientLink, code: number, why: string): void {
  conn.sendWithinLimit({ type: PacketType.Connack, sessionPresent: false, reasonCode: code })
  conn.close(`connection refused: ${why}`)
}

/** Mosquitto's p-number in its connection log line: p1 for MQTT 3.1, p2 for 3.1.1, p5 for 5.0. */
function protocolTag(level: number): string {
  return level === 3 ? 'p1' : level === 4 ? 'p2' : `p${level}`
}
