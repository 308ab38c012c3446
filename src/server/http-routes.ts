/**
 * The routes of `protocol http` listeners: what a path serves. The table is the extension point: another page
 * is another entry, behind the same listener limits and login rule (http-listener.ts).
 */
import { ExpositionContentType, renderExposition } from '../observability/prometheus.js'
import { reply, type HttpHandler } from './http-listener.js'
import { collectMetrics, type EventLoopLag } from './metrics.js'
import type { MidgeRuntime } from './runtime.js'

export function monitoringRoutes(rt: MidgeRuntime, lag: EventLoopLag): Map<string, HttpHandler> {
  return new Map<string, HttpHandler>([
    ['/metrics', (_req, res) => { reply(res, 200, renderExposition(collectMetrics(rt, lag)), false, ExpositionContentType) }],
    ['/healthz', (_req, res) => {
      // Healthy: started, not closing, and every listener block open (an ACME one still waiting is not).
      const listeners = rt.listeners()
      const waiting = listeners.filter((l) => l.state !== 'open' || l.addresses.length === 0).map((l) => l.name)
      const ok = !rt.closed && waiting.length === 0
      const detail = { status: ok ? 'ok' : 'unavailable', uptimeSeconds: Math.floor((Date.now() - rt.broker.startedAt) / 1000), listeners: listeners.map((l) => ({ name: l.name, kind: l.kind, state: l.state })) }
      if (_req.headers.accept?.includes('application/json') === true) reply(res, ok ? 200 : 503, `${JSON.stringify(detail)}\n`, false, 'application/json')
      else reply(res, ok ? 200 : 503, ok ? 'ok\n' : `unavailable: listener${waiting.length === 1 ? '' : 's'} ${waiting.join(', ')} not open\n`)
    }],
  ])
}
