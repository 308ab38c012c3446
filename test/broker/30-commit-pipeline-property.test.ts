/**
 * The commit pipeline's waiters under random interleavings (issue #18): participants that get work, commits
 * that finish in any order, participants that also commit by themselves (as the cluster does before a
 * hand-over's answer and an XACK), commitStore() calls, and the gap between back-to-back commits. Whatever
 * happened, once every commit has finished and no new work comes, every commit() promise has resolved, and the
 * pipeline never started a participant's commit while its previous one was still under way.
 *
 * A commitStore() left unresolved this way stalled a cluster node's stream reader for 10 s and lost messages
 * (docs/performance.md, fifth round); test/broker/29 has that one case written out.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { CommitPipeline, type CommitHost } from '../../src/broker/commit-pipeline.js'
import type { BrokerOptions } from '../../src/broker/options.js'
import type { CommitParticipant } from '../../src/persistence/store.js'

class Participant implements CommitParticipant {
  work = 0
  /** Unfinished commits, oldest first: the pipeline's and the participant's own. */
  readonly gates: Array<() => void> = []
  /** The pipeline's commit under way (its contract: never a second before that one settles). */
  pipelinePending = false
  violation: string | undefined
  constructor (readonly synchronous: boolean) {}

  get dirty (): boolean { return this.work > 0 }

  commit (): void | Promise<void> {
    if (this.pipelinePending) this.violation = 'the pipeline started a commit while its last one was under way'
    this.work = 0
    if (this.synchronous) return
    this.pipelinePending = true
    return new Promise<void>((resolve) => this.gates.push(() => { this.pipelinePending = false; resolve() }))
  }

  /** The participant commits its work itself, outside the pipeline. */
  commitItself (): void {
    this.work = 0
    if (!this.synchronous) this.gates.push(() => undefined)
  }

  finishOldest (): void {
    this.gates.shift()?.()
  }
}

type Op =
  | { kind: 'work', p: number }
  | { kind: 'commitStore' }
  | { kind: 'itself', p: number }
  | { kind: 'finish', p: number }
  | { kind: 'turn' }
  | { kind: 'sleep', ms: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('work' as const), p: fc.nat(2) }),
  fc.record({ kind: fc.constant('commitStore' as const) }),
  fc.record({ kind: fc.constant('itself' as const), p: fc.nat(2) }),
  fc.record({ kind: fc.constant('finish' as const), p: fc.nat(2) }),
  fc.record({ kind: fc.constant('turn' as const) }),
  fc.record({ kind: fc.constant('sleep' as const), ms: fc.integer({ min: 0, max: 4 }) })
)

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

test('every commit() resolves once the commits have finished, whatever the order of work, finishes, own commits and the gap', async () => {
  await fc.assert(fc.asyncProperty(
    fc.constantFrom(0, 1, 3),
    fc.array(fc.boolean(), { minLength: 1, maxLength: 3 }),
    fc.array(opArb, { minLength: 1, maxLength: 40 }),
    async (gapMs, synchronous, ops) => {
      const failures: Error[] = []
      const host: CommitHost = {
        options: { store: undefined, commitGapMs: gapMs, logger: { error: () => undefined } } as unknown as BrokerOptions,
        storeFailed: (err) => { failures.push(err) },
        betweenCommits: () => undefined,
      }
      const pipeline = new CommitPipeline(host)
      const parts = synchronous.map((s) => new Participant(s))
      for (const p of parts) pipeline.addParticipant(p)
      const waiters: Array<{ done: boolean }> = []
      for (const op of ops) {
        const p = 'p' in op ? parts[op.p % parts.length]! : undefined
        switch (op.kind) {
          case 'work': p!.work++; break
          case 'commitStore': {
            const w = { done: false }
            waiters.push(w)
            void pipeline.commit().then(() => { w.done = true })
            break
          }
          case 'itself': if (p!.dirty) p!.commitItself(); break
          case 'finish': p!.finishOldest(); break
          case 'turn': await turn(); break
          case 'sleep': await sleep(op.ms); break
        }
      }
      // No new work from here: finish whatever is under way (a finish may start the next commit) until quiet.
      for (let round = 0; round < 50; round++) {
        for (const p of parts) while (p.gates.length > 0) p.finishOldest()
        await sleep(gapMs + 1)
        await turn()
        if (parts.every((p) => p.gates.length === 0) && waiters.every((w) => w.done)) break
      }
      assert.deepEqual(failures, [])
      for (const p of parts) assert.equal(p.violation, undefined)
      const open = waiters.filter((w) => !w.done).length
      assert.equal(open, 0, `${open} of ${waiters.length} commit() calls never resolved (gap ${gapMs} ms)`)
    }
  ), { numRuns: 1000 })
})
