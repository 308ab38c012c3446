/** JSON replies of the dashboard's API: a value, or `{ error: sentence }` (and more fields where useful). */
import type http from 'node:http'

export function sendJson(res: http.ServerResponse, status: number, value: unknown, close = false): void {
  const body = JSON.stringify(value)
  res.statusCode = status
  res.setHeader('Content-Type', 'application/json; charset=utf-8')
  res.setHeader('Content-Length', Buffer.byteLength(body))
  if (close) res.setHeader('Connection', 'close')
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

export function sendError(res: http.ServerResponse, status: number, error: string, extra: Record<string, unknown> = {}): void {
  sendJson(res, status, { error, ...extra }, status === 413)
}

/** A request refused by the API: the status and the sentence for the operator. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly extra: Record<string, unknown> = {}) {
    super(message)
  }
}
