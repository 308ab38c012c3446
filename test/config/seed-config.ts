/**
 * The final /etc/mosquitto/conf.d/config.conf of the seed tutorial ("Secure Mosquitto"), verbatim, and a
 * helper that writes it with its paths (and, for a test start, its ports) pointed at test files.
 */
import { writeFileSync } from 'node:fs'

export const SeedConfig = `# See mosquitto.conf(5) for more information.

max_queued_messages 200
message_size_limit 0
allow_zero_length_clientid true
allow_duplicate_messages false

autosave_interval 900
persistence true
persistence_file mosquitto.db

listener 1883 localhost

listener 8883
certfile /etc/letsencrypt/live/yourdomainname/cert.pem
cafile /etc/letsencrypt/live/yourdomainname/chain.pem
keyfile /etc/letsencrypt/live/yourdomainname/privkey.pem

allow_anonymous false
password_file /etc/mosquitto/passwd
`

export interface SeedPaths {
  /** Directory replacing /etc/letsencrypt/live/yourdomainname. */
  live: string
  /** File replacing /etc/mosquitto/passwd. */
  passwd: string
  /** Replace the ports (1883 → plain, 8883 → tls); 0 lets the OS choose. */
  ports?: { plain: number; tls: number }
}

export function writeSeedConfig(file: string, p: SeedPaths): string {
  let text = SeedConfig
    .replaceAll('/etc/letsencrypt/live/yourdomainname', p.live)
    .replaceAll('/etc/mosquitto/passwd', p.passwd)
  if (p.ports !== undefined) {
    text = text.replace('listener 1883 localhost', `listener ${p.ports.plain} localhost`).replace('listener 8883', `listener ${p.ports.tls}`)
  }
  writeFileSync(file, text)
  return text
}
