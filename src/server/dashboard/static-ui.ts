/**
 * The dashboard's static files: the package's `ui/` folder, read once when the listener is built (a running
 * broker never reads paths from a request), flat files whose names are plain, each with its content type and
 * an ETag. Every reply forbids framing and any script or style not from this origin (no inline script).
 */
import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import type http from 'node:http'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The package's ui/ folder: this file is dist/src/server/dashboard/static-ui.js. */
export const UiDir = fileURLToPath(new URL('../../../../ui/', import.meta.url))

const ContentTypes: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  json: 'application/json',
  txt: 'text/plain; charset=utf-8',
  woff2: 'font/woff2',
}

/** Headers on every dashboard reply (pages and API). */
export function setPageHeaders(res: http.ServerResponse): void {
  res.setHeader('Content-Security-Policy', "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
  res.setHeader('X-Frame-Options', 'DENY')
  res.setHeader('Referrer-Policy', 'same-origin')
}

interface UiFile {
  body: Buffer
  type: string
  etag: string
}

export class StaticUi {
  private constructor(private readonly files: ReadonlyMap<string, UiFile>) {}

  /** Reads every servable file of `dir`; a missing folder gives an empty set (the dashboard's pages 404). */
  static async load(dir = UiDir): Promise<StaticUi> {
    const files = new Map<string, UiFile>()
    let names: string[] = []
    try {
      names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name)
    } catch {
      return new StaticUi(files)
    }
    for (const name of names) {
      const ext = /^[A-Za-z0-9][A-Za-z0-9._-]*\.([a-z0-9]+)$/.exec(name)?.[1]
      const type = ext === undefined ? undefined : ContentTypes[ext]
      if (type === undefined) continue
      const body = await readFile(join(dir, name))
      files.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` })
    }
    return new StaticUi(files)
  }

  get names(): string[] { return [...this.files.keys()] }

  /** Serves `name` (GET or HEAD); false when there is no such file. */
  serve(name: string, req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const f = this.files.get(name)
    if (f === undefined) return false
    setPageHeaders(res)
    // Revalidated each time (the ETag makes that a 304): an upgraded broker's files show at once.
    res.setHeader('Cache-Control', 'no-cache')
    res.setHeader('ETag', f.etag)
    if (req.headers['if-none-match'] === f.etag) {
      res.statusCode = 304
      res.end()
      return true
    }
    res.statusCode = 200
    res.setHeader('Content-Type', f.type)
    res.setHeader('Content-Length', f.body.length)
    res.end(req.method === 'HEAD' ? undefined : f.body)
    return true
  }
}
