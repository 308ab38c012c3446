// A small application with Midge inside: devices log in with the application's own accounts, each may
// publish only under its own topic, and the application publishes the highest temperature it has seen.
// Run: npm install midge && node app.mjs   (PORT=0 picks a free port; the first line says which).
// test/packaging/03-embedded-example.test.ts runs it from the packed package against MQTT.js.
import { createBroker } from 'midge'

// The application's accounts (in a real one: a database, with hashed passwords).
const accounts = new Map([
  ['sensor-1', 'sensor-secret'],
  ['dashboard', 'dash-secret'],
])

const say = (...words) => process.stdout.write(`${words.join(' ')}\n`)

const broker = await createBroker({
  host: process.env.HOST ?? '127.0.0.1',
  port: Number(process.env.PORT ?? 1883),
  // Called for every CONNECT. May be async (a database lookup); the client waits for its CONNACK meanwhile.
  authenticate: async ({ clientId, username, password, address }) => {
    const ok = username !== undefined && accounts.get(username) === password?.toString()
    say('authenticate', clientId, username ?? '-', address, ok ? 'allowed' : 'refused')
    return ok
  },
  // Devices publish only under sensors/<their username>/; the dashboard publishes nothing.
  authorizePublish: (client, { topic }) => {
    const ok = client.username !== 'dashboard' && topic.startsWith(`sensors/${client.username}/`)
    say('authorizePublish', client.clientId, topic, ok ? 'allowed' : 'refused')
    return ok
  },
  log: (line) => say('log', line),
})

broker.on('connected', (client) => say('event connected', client.clientId))
broker.on('disconnected', (client, reason) => say('event disconnected', client.clientId, reason))
broker.on('subscribed', (client, subs) => say('event subscribed', client.clientId, subs.map((s) => `${s.topic}@${s.qos}`).join(',')))

// Application code publishing: the highest temperature so far, retained for dashboards that connect later.
let highest = -Infinity
broker.on('published', (message, client) => {
  if (client === undefined || !message.topic.endsWith('/temperature')) return
  const value = Number(message.payload.toString())
  say('event published', message.topic, value)
  if (value > highest) {
    highest = value
    broker.publish({ topic: 'dashboard/highest-temperature', payload: String(value), qos: 1, retain: true })
  }
})

const stop = async () => {
  await broker.close()
  say('stopped')
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
say('listening', broker.port)
