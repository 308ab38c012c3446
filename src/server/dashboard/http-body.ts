/**
 * Reads a dashboard request's JSON body: Content-Type application/json required (a cross-site form cannot
 * send it without a CORS preflight we never answer), at most MaxBodyBytes (413 beyond, announced or not),
 * within the listener's request deadline (http-listener.ts closes a socket that drips).
 */
import type http from 'node:http'

export const MaxBodyBytes = 64 * 1024

export type BodyResult = { ok: true; value: unknown } | { ok: false; status: number; message: string }

export function readJsonBody(req: http.IncomingMessage, max = MaxBodyBytes): Promise<BodyResult> {
  const type = (req.headers['content-type'] ?? '').split(';', 1)[0]?.trim().toLowerCase()
  if (type !== 'application/json') return Promise.resolve({ ok: false, status: 415, message: 'the body must be application/json' })
  const announced = Number(req.headers['content-length'] ?? 0)
  if (announced > max) return Promise.resolve({ ok: false, status: 413, message: `the body exceeds ${max} bytes` })
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    let done = false
    const finish = (r: BodyResult): void => {
      if (done) return
      done = true
      req.off('data', onData)
      resolve(r)
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > max) {
        finish({ ok: false, status: 413, message: `the body exceeds ${max} bytes` })
        return
      }
      chunks.push(chunk)
    }
    req.on('data', onData)
    req.on('end', () => {
      try {
        finish({ ok: true, value: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown })
      } catch {
        finish({ ok: false, status: 400, message: 'the body is not valid JSON' })
      }
    })
    req.on('error', () => finish({ ok: false, status: 400, message: 'the request was cut off' }))
    req.on('close', () => finish({ ok: false, status: 400, message: 'the request was cut off' }))
  })
}
