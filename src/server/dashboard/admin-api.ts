/**
 * The dashboard's admin actions: disconnect a client, clear a retained message, manage the password file's
 * users, edit the ACL file. Each needs a user whom the ACL lets publish to `$CONTROL/#`, asked again at
 * every action, and is logged with who did it from where.
 *
 * Files are edited as `midge passwd` edits them (auth/password-file.ts's line model, so comments and other
 * users stay byte for byte; `$7$` hashes from auth/password-hash.ts; auth/atomic-write.ts), one edit per
 * file at a time, then reloaded through the same path as a change seen on disk (Security.reloadFile), so
 * the broker applies them without a restart.
 */
import { readFile } from 'node:fs/promises'
import { parseAcl } from '../../auth/acl.js'
import { writeFileAtomic } from '../../auth/atomic-write.js'
import { AuthError } from '../../auth/errors.js'
import { deletePasswordFileEntry, parsePasswordFileDocument, serializePasswordFileDocument, setPasswordFileEntry, usernameProblem } from '../../auth/password-file.js'
import { formatPasswordHash, hashPassword } from '../../auth/password-hash.js'
import { ReasonCode } from '../../protocol/constants.js'
import { isValidTopicName } from '../../protocol/topic.js'
import { readJsonBody } from './http-body.js'
import { ApiError, sendJson } from './respond.js'
import type { ApiRequest } from './site.js'

/** Handles an admin route; false when `method path` is none of them. */
export async function adminRoute(r: ApiRequest, method: string, path: string): Promise<boolean> {
  const disconnect = /^\/api\/clients\/([^/]+)\/disconnect$/.exec(path)
  const user = /^\/api\/users\/([^/]+)$/.exec(path)
  let action: (() => Promise<void>) | undefined
  if (method === 'POST' && disconnect !== null) action = () => disconnectClient(r, decode(disconnect[1] as string))
  else if (method === 'DELETE' && path === '/api/retained') action = () => clearRetained(r)
  else if (method === 'GET' && path === '/api/users') action = () => listUsers(r)
  else if (method === 'PUT' && user !== null) action = () => setUser(r, decode(user[1] as string))
  else if (method === 'DELETE' && user !== null) action = () => deleteUser(r, decode(user[1] as string))
  else if (method === 'GET' && path === '/api/acl') action = () => readAcl(r)
  else if (method === 'PUT' && path === '/api/acl') action = () => writeAcl(r)
  if (action === undefined) return false
  if (!r.site.isAdmin(r.session.username, r.address)) {
    throw new ApiError(403, `user ${r.session.username} is not an admin: the ACL must let it publish to $CONTROL/#`)
  }
  await action()
  return true
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    throw new ApiError(400, 'malformed %-escape in the path')
  }
}

function audit(r: ApiRequest, what: string): void {
  r.site.logger.notice(`Dashboard: user ${r.session.username} from ${r.address} ${what}.`)
}

async function disconnectClient(r: ApiRequest, clientId: string): Promise<void> {
  const conn = r.site.rt.broker.sessions.get(clientId)?.connection ?? null
  if (conn === null) throw new ApiError(404, `client ${clientId} is not connected`)
  // An MQTT 5 client learns why; a 3.x client's connection just closes. Its will is published, as after
  // any disconnect the client did not ask for.
  conn.sendDisconnect(ReasonCode.AdministrativeAction)
  conn.close(`disconnected by dashboard user ${r.session.username} from ${r.address}`)
  audit(r, `disconnected client ${clientId}`)
  sendJson(r.res, 200, { ok: true })
}

async function clearRetained(r: ApiRequest): Promise<void> {
  const topic = r.url.searchParams.get('topic')
  if (topic === null || !isValidTopicName(topic)) throw new ApiError(400, 'give ?topic= a topic name (no wildcards)')
  const broker = r.site.rt.broker
  if (broker.retained.get(topic) === undefined) throw new ApiError(404, `no retained message on ${topic}`)
  // As a client's empty retained PUBLISH would: the message goes, from the store too, and subscribers see it.
  broker.publish(topic, Buffer.alloc(0), 0, true, undefined)
  await broker.commitStore()
  audit(r, `cleared the retained message of ${topic}`)
  sendJson(r.res, 200, { ok: true })
}

function passwordFile(r: ApiRequest): string {
  const file = r.site.listener.passwordFile
  if (file === undefined) throw new ApiError(409, `listener ${r.site.info.name} has no password_file to edit`)
  return file
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new ApiError(500, `cannot read ${file}: ${(err as Error).message}`)
  }
}

async function writeAndReload(r: ApiRequest, file: string, text: string): Promise<void> {
  try {
    await writeFileAtomic(file, text)
  } catch (err) {
    throw new ApiError(500, `cannot write ${file}: ${(err as Error).message} (the broker's user needs write access to its directory)`)
  }
  if (!(await r.site.rt.security.reloadFile(file))) throw new ApiError(500, `${file} was written but could not be reloaded: see the log`)
}

async function listUsers(r: ApiRequest): Promise<void> {
  const doc = parsePasswordFileDocument(await readText(passwordFile(r)))
  const names = doc.lines.flatMap((l) => (l.kind === 'entry' ? [l.username] : []))
  sendJson(r.res, 200, [...new Set(names)])
}

async function setUser(r: ApiRequest, name: string): Promise<void> {
  const file = passwordFile(r)
  const problem = usernameProblem(name)
  if (problem !== undefined) throw new ApiError(400, problem)
  const body = await readJsonBody(r.req)
  if (!body.ok) throw new ApiError(body.status, body.message)
  const password = (body.value as { password?: unknown } | null)?.password
  if (typeof password !== 'string' || password === '') throw new ApiError(400, 'send {"password": "..."} with a password that is not empty')
  const secret = formatPasswordHash(await hashPassword(password))
  const created = await r.site.hub.editFile(file, async () => {
    const doc = parsePasswordFileDocument(await readText(file))
    const exists = doc.lines.some((l) => l.kind === 'entry' && l.username === name)
    setPasswordFileEntry(doc, name, secret)
    await writeAndReload(r, file, serializePasswordFileDocument(doc))
    return !exists
  })
  // A new password shuts out whoever knew the old one: that user's other dashboard sessions end.
  if (!created) r.site.sessions.endUser(name, r.session)
  audit(r, `${created ? 'added user' : 'set the password of user'} ${name} in ${file}`)
  sendJson(r.res, created ? 201 : 200, { ok: true, created })
}

async function deleteUser(r: ApiRequest, name: string): Promise<void> {
  const file = passwordFile(r)
  await r.site.hub.editFile(file, async () => {
    const doc = parsePasswordFileDocument(await readText(file))
    if (!deletePasswordFileEntry(doc, name)) throw new ApiError(404, `no user ${name} in ${file}`)
    await writeAndReload(r, file, serializePasswordFileDocument(doc))
  })
  // Its dashboard sessions end with it (MQTT connections already open stay, as after `midge passwd -D`).
  r.site.sessions.endUser(name)
  audit(r, `removed user ${name} from ${file}`)
  sendJson(r.res, 200, { ok: true })
}

function aclFile(r: ApiRequest): string {
  const file = r.site.listener.aclFile
  if (file === undefined) throw new ApiError(409, `listener ${r.site.info.name} has no acl_file to edit`)
  return file
}

async function readAcl(r: ApiRequest): Promise<void> {
  const file = aclFile(r)
  sendJson(r.res, 200, { text: await readText(file), file })
}

async function writeAcl(r: ApiRequest): Promise<void> {
  const file = aclFile(r)
  const body = await readJsonBody(r.req)
  if (!body.ok) throw new ApiError(body.status, body.message)
  const text = (body.value as { text?: unknown } | null)?.text
  if (typeof text !== 'string') throw new ApiError(400, 'send {"text": "..."} with the whole ACL file')
  let warnings: string[]
  try {
    // The parser the broker loads the file with: what passes here loads.
    warnings = parseAcl(text, file).warnings
  } catch (err) {
    if (!(err instanceof AuthError)) throw err
    const message = err.line > 0 ? err.message.slice(`${err.file}:${err.line}: `.length) : err.message
    throw new ApiError(400, `line ${err.line}: ${message}`, { errors: [{ line: err.line, message }] })
  }
  await r.site.hub.editFile(file, () => writeAndReload(r, file, text))
  audit(r, `rewrote the ACL file ${file}`)
  sendJson(r.res, 200, { ok: true, warnings })
}

