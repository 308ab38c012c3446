/**
 * Mosquitto's `acl_file` and the Authorizer that enforces it.
 *
 * File format (mosquitto.conf(5), acl_file):
 *   topic [read|write|readwrite|deny] FILTER    no access word = readwrite; FILTER may contain + and #
 *   user NAME                                   the topic lines after it belong to NAME
 *   pattern [read|write|readwrite|deny] FILTER  for every client; %c = client id, %u = username
 *   # comment                                   (a `#` in the first column)
 * Topic lines before the first `user` line apply to anonymous clients only.
 *
 * Decision order, as Mosquitto 2.0's acl check: first the client's own list (its `user` block, or the
 * anonymous block), `deny` lines first, then the others in file order; then the patterns, `deny` first.
 * The first line whose filter matches decides: `deny` refuses, a line granting the asked access allows,
 * a matching line granting only the other access is passed over. Nothing matching means refused.
 * So `deny` overrides grants of its own list; a user's grant wins over a pattern's deny, as in Mosquitto.
 *
 * Where Midge is stricter than Mosquitto 2.0 (each closes a way around the ACL):
 *  - %c / %u are substituted inside a level (as Mosquitto 2.0), but a pattern line is skipped for a
 *    client whose id or name is empty or contains '/', so "bob/x" cannot borrow bob's subtree;
 *  - with any pattern line present, a client whose id or username contains '+' or '#' gets nothing
 *    (Mosquitto does the same).
 *
 * SUBSCRIBE (Mosquitto 2.0 lets every SUBSCRIBE through and filters on delivery only): a filter is granted
 * when some read-granting line could match a topic the filter matches (wildcard against wildcard,
 * see topic-match.ts) before a `deny` line that covers the whole filter. That is a superset check: the
 * per-message canRead() on delivery stays the gate, so "#" granted beside `deny a/#` still never
 * delivers a/x.
 *
 * Speed: canRead/canPublish run per message. Per client (cached in a WeakMap on the ClientIdentity
 * object, dropped on reload) the rules are compiled once into two arrays of pre-split filters with the
 * patterns already substituted; a check is a linear scan with the allocation-free topicMatches, no RegExp.
 */
import { readFile } from 'node:fs/promises'
import { AuthError, AuthErrorCode } from './errors.js'
import { isValidFilterLevels, topicMatches } from '../protocol/topic.js'
import { filterCovers, filtersIntersect, splitLevels } from './topic-match.js'
import type { Authorizer, ClientIdentity } from './types.js'

export const AclAccess = { Deny: 0, Read: 1, Write: 2, ReadWrite: 3 } as const
export type AclAccess = (typeof AclAccess)[keyof typeof AclAccess]

const ACCESS_WORDS: Record<string, AclAccess> = {
  read: AclAccess.Read,
  write: AclAccess.Write,
  readwrite: AclAccess.ReadWrite,
  deny: AclAccess.Deny,
}

export interface AclRule {
  access: AclAccess
  filter: string
  /** 1-based line in the file, for messages. */
  line: number
}

export interface AclRules {
  file: string
  /** Topic lines before the first `user` line: anonymous clients. Deny lines first. */
  anonymous: AclRule[]
  /** `user` blocks (a name given twice collects both blocks). Deny lines first. */
  users: Map<string, AclRule[]>
  /** `pattern` lines. Deny lines first. */
  patterns: AclRule[]
  /** Non-fatal remarks (e.g. a pattern without %c or %u), with file:line. */
  warnings: string[]
}

function aclError(message: string, file: string, line: number): AuthError {
  return new AuthError(AuthErrorCode.AclFile, message, { file, line })
}

/** Deny lines go before the others, each group keeping file order (Mosquitto's add__acl). */
function addRule(list: AclRule[], rule: AclRule): void {
  if (rule.access !== AclAccess.Deny) {
    list.push(rule)
    return
  }
  let i = 0
  while (i < list.length && list[i]!.access === AclAccess.Deny) i++
  list.splice(i, 0, rule)
}

export function parseAcl(text: string, file = '<acl_file>'): AclRules {
  const rules: AclRules = { file, anonymous: [], users: new Map(), patterns: [], warnings: [] }
  let current: AclRule[] = rules.anonymous
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1
    const line = lines[i]!.trimEnd()
    const body = line.trimStart()
    if (body === '' || body.startsWith('#')) continue
    const m = /^(\S+)(?:[ \t]+(.*))?$/.exec(body)!
    const keyword = m[1]!
    const rest = (m[2] ?? '').trim()
    if (keyword === 'user') {
      if (rest === '') throw aclError("'user' needs a username", file, lineNo)
      let list = rules.users.get(rest)
      if (list === undefined) {
        list = []
        rules.users.set(rest, list)
      }
      current = list
      continue
    }
    if (keyword !== 'topic' && keyword !== 'pattern') {
      throw aclError(`unknown keyword '${keyword}' (expected topic, pattern or user)`, file, lineNo)
    }
    if (rest === '') throw aclError(`'${keyword}' needs a topic filter`, file, lineNo)
    // `topic FILTER` or `topic ACCESS FILTER`; the filter is the rest of the line, so it may hold spaces.
    const sp = /^(\S+)[ \t]+(.*)$/.exec(rest)
    let access: AclAccess = AclAccess.ReadWrite
    let filter = rest
    if (sp !== null) {
      const word = sp[1]!
      const a = ACCESS_WORDS[word]
      if (a === undefined) {
        throw aclError(`unknown access '${word}' (expected read, write, readwrite or deny; a filter with spaces needs one)`, file, lineNo)
      }
      access = a
      filter = sp[2]!.trim()
    }
    if (!isValidFilterLevels(filter)) {
      throw aclError(`invalid topic filter '${filter}' (+ and # must fill a whole level, # only at the end)`, file, lineNo)
    }
    const rule: AclRule = { access, filter, line: lineNo }
    if (keyword === 'topic') {
      addRule(current, rule)
    } else {
      if (!filter.includes('%c') && !filter.includes('%u')) {
        rules.warnings.push(`${file}:${lineNo}: pattern '${filter}' contains neither %c nor %u; it applies to every client as written`)
      }
      addRule(rules.patterns, rule)
    }
  }
  return rules
}

export async function loadAcl(file: string): Promise<AclRules> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new AuthError(AuthErrorCode.FileAccess, `cannot read ACL file: ${(err as Error).message}`, { file }, { cause: err })
  }
  return parseAcl(text, file)
}

/** One rule ready for matching. */
class CompiledRule {
  readonly deny: boolean
  /** Substituted; what topicMatches reads per message. */
  readonly filter: string
  /** The same, split, for the filter-against-filter relations of SUBSCRIBE. */
  readonly levels: string[]
  constructor(deny: boolean, filter: string) {
    this.deny = deny
    this.filter = filter
    this.levels = splitLevels(filter)
  }
}

/** A client's rules, compiled once per connection and ACL generation. */
class ClientAcl {
  constructor(
    readonly generation: number,
    readonly clientId: string,
    readonly username: string | undefined,
    /** Deny rules and rules granting read, in decision order. */
    readonly read: CompiledRule[],
    /** Deny rules and rules granting write, in decision order. */
    readonly write: CompiledRule[],
  ) {}
}

const NO_RULES: readonly AclRule[] = []

function substitute(filter: string, clientId: string, username: string | undefined): string | undefined {
  const usesU = filter.includes('%u')
  const usesC = filter.includes('%c')
  if (usesU && (username === undefined || username === '' || username.includes('/'))) return undefined
  if (usesC && (clientId === '' || clientId.includes('/'))) return undefined
  let out = filter
  if (usesC) out = out.replaceAll('%c', clientId)
  if (usesU) out = out.replaceAll('%u', username!)
  return out
}

function hasWildcardChar(s: string | undefined): boolean {
  return s !== undefined && (s.includes('+') || s.includes('#'))
}

function compileClientRules(rules: AclRules, clientId: string, username: string | undefined): { read: CompiledRule[]; write: CompiledRule[] } {
  const read: CompiledRule[] = []
  const write: CompiledRule[] = []
  const add = (access: AclAccess, filter: string): void => {
    const r = new CompiledRule(access === AclAccess.Deny, filter)
    if (access === AclAccess.Deny || (access & AclAccess.Read) !== 0) read.push(r)
    if (access === AclAccess.Deny || (access & AclAccess.Write) !== 0) write.push(r)
  }
  const own = username === undefined ? rules.anonymous : rules.users.get(username) ?? NO_RULES
  for (const r of own) add(r.access, r.filter)
  if (rules.patterns.length > 0) {
    // A '+' or '#' in an id or name would turn a pattern into a wildcard grant: refuse everything.
    if (hasWildcardChar(username) || hasWildcardChar(clientId)) return { read: [], write: [] }
    for (const r of rules.patterns) {
      const filter = substitute(r.filter, clientId, username)
      if (filter !== undefined) add(r.access, filter)
    }
  }
  return { read, write }
}

function decide(list: readonly CompiledRule[], topic: string): boolean {
  for (let i = 0; i < list.length; i++) {
    const r = list[i]!
    if (topicMatches(r.filter, topic)) return !r.deny
  }
  return false
}

export interface AclAuthorizerOptions {
  /** The file reload() reads again. */
  file?: string
}

export class AclAuthorizer implements Authorizer {
  readonly file: string | undefined
  private rules: AclRules
  private generation = 0
  private clients = new WeakMap<ClientIdentity, ClientAcl>()

  constructor(rules: AclRules, opts: AclAuthorizerOptions = {}) {
    this.rules = rules
    this.file = opts.file
  }

  static async fromFile(file: string): Promise<AclAuthorizer> {
    return new AclAuthorizer(await loadAcl(file), { file })
  }

  get currentRules(): AclRules { return this.rules }

  /**
   * Reads the file again. On error the current rules stay and the AuthError is thrown for the caller to log.
   * Returns the new rules (their `warnings` are for the log).
   */
  async reload(): Promise<AclRules> {
    if (this.file === undefined) throw new AuthError(AuthErrorCode.FileAccess, 'this authorizer was not loaded from a file')
    const rules = await loadAcl(this.file)
    this.setRules(rules)
    return rules
  }

  setRules(rules: AclRules): void {
    this.rules = rules
    this.generation++
    this.clients = new WeakMap()
  }

  private forClient(client: ClientIdentity): ClientAcl {
    const cached = this.clients.get(client)
    if (cached !== undefined && cached.generation === this.generation && cached.clientId === client.clientId && cached.username === client.username) {
      return cached
    }
    const { read, write } = compileClientRules(this.rules, client.clientId, client.username)
    const acl = new ClientAcl(this.generation, client.clientId, client.username, read, write)
    this.clients.set(client, acl)
    return acl
  }

  canPublish(client: ClientIdentity, topic: string): boolean {
    return decide(this.forClient(client).write, topic)
  }

  canRead(client: ClientIdentity, topic: string): boolean {
    return decide(this.forClient(client).read, topic)
  }

  canSubscribe(client: ClientIdentity, filter: string): boolean {
    if (!isValidFilterLevels(filter)) return false
    const levels = splitLevels(filter)
    const list = this.forClient(client).read
    for (let i = 0; i < list.length; i++) {
      const r = list[i]!
      if (r.deny) {
        if (filterCovers(r.levels, levels)) return false
      } else if (filtersIntersect(r.levels, levels)) {
        return true
      }
    }
    return false
  }
}
