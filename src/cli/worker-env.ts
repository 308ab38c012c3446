/**
 * How a worker of `midge --workers N` knows it is one (apart from workers.ts, so a plain start never loads
 * node:cluster): the supervisor sets its index in the environment; the index names it in the cluster.
 */
export const WorkerEnv = 'MIDGE_WORKER'

/** The worker index of this process; undefined in a process started directly. */
export function workerIndex(): number | undefined {
  const v = process.env[WorkerEnv]
  return v === undefined || !/^\d+$/.test(v) ? undefined : Number(v)
}
