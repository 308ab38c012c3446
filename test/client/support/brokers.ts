/**
 * The brokers the client tools are tested against: one table, so a test body is written once and run
 * against each (`for (const kind of Brokers) describe(kind.name, ...)`). Where the brokers answer
 * differently on purpose, the entry says what each one documents.
 */
import type { BrokerOptions, BrokerProcess } from './broker-process.js'
import { MidgeBroker } from './midge-broker.js'
import { Mosquitto } from './mosquitto.js'

export type { BrokerOptions, BrokerProcess }

/** Why a CONNECT is refused, in the tests' terms. */
export type Refusal = 'anonymous' | 'wrong-password' | 'unknown-user'

export interface BrokerKind {
  name: 'mosquitto' | 'midge'
  start(o?: BrokerOptions): Promise<BrokerProcess>
  /** The CONNACK code for each refusal: v3.1/3.1.1 return code, then the v5 reason code. */
  refusals: Record<Refusal, { v3: number; v5: number }>
  /** Whether a TLS listener may serve an expired certificate (Midge refuses to start with one, docs/tls.md). */
  servesExpiredCertificates: boolean
  /**
   * How a TLS listener with require_certificate refuses a client certificate from an unknown CA: a TLS alert
   * (OpenSSL in mosquitto), or closing the connection without one (Node's TLS server, which Midge uses,
   * checks the certificate after the handshake and destroys the socket).
   */
  refusesClientCertificateBy: 'alert' | 'close'
}

export const Brokers: readonly BrokerKind[] = [
  {
    name: 'mosquitto',
    start: (o) => Mosquitto.start(o),
    // mosquitto 2.0.11 answers every failed login "not authorised" (5 / 0x87).
    refusals: {
      anonymous: { v3: 5, v5: 0x87 },
      'wrong-password': { v3: 5, v5: 0x87 },
      'unknown-user': { v3: 5, v5: 0x87 },
    },
    servesExpiredCertificates: true,
    refusesClientCertificateBy: 'alert',
  },
  {
    name: 'midge',
    start: (o) => MidgeBroker.start(o),
    // docs/security.md: wrong credentials get "bad user name or password" (4 / 0x86), no username 5 / 0x87.
    refusals: {
      anonymous: { v3: 5, v5: 0x87 },
      'wrong-password': { v3: 4, v5: 0x86 },
      'unknown-user': { v3: 4, v5: 0x86 },
    },
    servesExpiredCertificates: false,
    refusesClientCertificateBy: 'close',
  },
]

/**
 * Starts one broker per options object, at once. If any fails to start, the others are stopped before the
 * error is thrown: an after() hook never sees them, and a broker left running would keep the test alive.
 */
export async function startBrokers (kind: BrokerKind, options: BrokerOptions[]): Promise<BrokerProcess[]> {
  const settled = await Promise.allSettled(options.map((o) => kind.start(o)))
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed === undefined) return settled.map((r) => (r as PromiseFulfilledResult<BrokerProcess>).value)
  await Promise.all(settled.map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)))
  throw failed.reason
}
