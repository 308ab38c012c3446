/** The brokers the bench knows, by the name `--brokers` takes. */
import { aedes } from './aedes.js'
import type { BrokerDef } from './broker.js'
import { midge, midgeDashboard, midgeFsync, midgePersist } from './midge.js'
import { mosquitto } from './mosquitto.js'

export const brokers: Record<string, BrokerDef> = { midge, mosquitto, aedes, 'midge-persist': midgePersist, 'midge-fsync': midgeFsync, 'midge-dashboard': midgeDashboard }
