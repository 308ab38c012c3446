/**
 * Gives back the young generation a burst grew (issue #18, idle memory).
 *
 * V8 doubles the semi-spaces while a burst's objects survive (a storm of connections, a backlog drained): the
 * new space goes from 1 MiB to 32 MiB committed and stays there. It shrinks it again only at a garbage collection
 * that finds the allocation rate low (under ~1 KB/ms over its last 5 s), and an idle broker allocates so little
 * that no collection comes. Measured: 10,000 idle subscribed connections held 4.1-4.4 KB of RSS each, 2.8 KB of it
 * this headroom, for as long as the broker stayed idle; with one minor collection after the burst, 2.0-2.4 KB.
 *
 * So every few seconds, while the new space is above what it starts at, a minor collection (a scavenge of what
 * little is young: well under a millisecond when idle) gives V8 the chance. V8 decides, by its own allocation-rate
 * measure: under load it keeps the space, and this is one scavenge among the hundreds a second it runs anyway.
 *
 * The collection is reached as Node documents for v8.setFlagsFromString: `--expose-gc` set at run time exposes
 * `gc` to contexts created afterwards (not to the broker's own). A process-wide policy, so only the `midge`
 * command starts it, never createBroker() inside somebody's application.
 */
import v8 from 'node:v8'
import vm from 'node:vm'

/** How often the new space is looked at. */
const CHECK_MS = 2_000
/** Above this the new space is taken as grown by a burst (it starts at 1 MiB; V8's shrink goes back to 1-2 MiB). */
const GROWN_BYTES = 2 * 1024 * 1024

type Gc = (options: { type: 'minor' | 'major' }) => void

/** Node's `gc`, or undefined when this Node refuses the flag (the trim is then off: nothing else depends on it). */
function exposedGc(): Gc | undefined {
  try {
    v8.setFlagsFromString('--expose-gc')
    const gc: unknown = vm.runInNewContext('gc')
    return typeof gc === 'function' ? (gc as Gc) : undefined
  } catch {
    return undefined
  }
}

function newSpaceBytes(): number {
  for (const s of v8.getHeapSpaceStatistics()) if (s.space_name === 'new_space') return s.space_size
  return 0
}

/** Starts the periodic check; the timer does not keep the process alive. Returns its stop function. */
export function startYoungGenerationTrim(): () => void {
  const gc = exposedGc()
  if (gc === undefined) return () => {}
  const timer = setInterval(() => {
    if (newSpaceBytes() > GROWN_BYTES) gc({ type: 'minor' })
  }, CHECK_MS)
  timer.unref()
  return () => clearInterval(timer)
}
