/**
 * The agent's HTTP API. The link routes follow the Local UI link contract
 * (`/v1/edge-mgmt/edgehosts/current/...`, the shapes Palette Edge's Local UI uses); the rest is edgelink's own
 * (`/v1/edgelink/...`).
 * Every route is a thin call into the library: no protocol logic here.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { Server } from 'node:http'
import { basename, isAbsolute, resolve } from 'node:path'
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerFactory, type FastifyBaseLogger } from 'fastify'
import { EdgelinkError, ERROR_TABLE, isEdgelinkError, VERSION, type Host, type HostRow } from '../lib/index.ts'
import type { GroupSettings } from '../lib/index.ts'
import { CONTENT_KINDS, type ContentKind } from '../lib/index.ts'
import { contentRow } from './content.ts'
import { agentEvents, serveEvents } from './events.ts'
import { isPublicRoute, uiRoutes } from './ui.ts'

/** Request bodies are a token or a cluster plan (a few KiB at most); anything near this is not ours. */
export const BODY_LIMIT = 64 * 1024
/** Settings may carry CA certificates and SSH keys: PEM bundles of some KiB each. */
export const SETTINGS_BODY_LIMIT = 1024 * 1024

/** Codes the agent adds to the library's table, for failures that happen before the library is called. */
export const AGENT_ERRORS = {
  UNAUTHORIZED: { http: 401, summary: 'missing or wrong bearer token (see api.json in the data dir)' },
  NOT_FOUND: { http: 404, summary: 'no such route' },
  PAYLOAD_TOO_LARGE: { http: 413, summary: `request body is too large (at most ${BODY_LIMIT} bytes, ${SETTINGS_BODY_LIMIT} for settings)` },
  UNSUPPORTED_MEDIA_TYPE: { http: 415, summary: 'request bodies must be application/json' },
  INTERNAL: { http: 500, summary: 'internal error' }
} as const

export type AgentErrorCode = keyof typeof AGENT_ERRORS

export interface ApiErrorBody { code: string, message: string }

export interface ApiOptions {
  /** The bearer secret every request must carry. */
  secret: string
  /** A pino logger (or anything fastify accepts as one). */
  logger: FastifyBaseLogger
  /**
   * A server to serve on instead of one fastify creates. The daemon binds it before the host
   * starts, because the host publishes the API port to the group.
   */
  server?: Server
}

/** Thrown by routes for failures that are the caller's fault and have an agent code. */
class ApiError extends Error {
  readonly code: AgentErrorCode | 'INVALID_ARGUMENT'
  constructor (code: AgentErrorCode | 'INVALID_ARGUMENT', message?: string) {
    super(message ?? (code === 'INVALID_ARGUMENT' ? ERROR_TABLE.INVALID_ARGUMENT.summary : AGENT_ERRORS[code].summary))
    this.code = code
  }
}

/**
 * The one place an error becomes an HTTP answer: library codes take their status from
 * ERROR_TABLE, agent codes from AGENT_ERRORS, fastify's own (bad JSON, body too large) are
 * renamed to those codes, and anything else is a 500 whose details stay in the log.
 */
export function httpError (err: unknown): { status: number, body: ApiErrorBody } {
  if (isEdgelinkError(err)) return { status: ERROR_TABLE[err.code].http, body: { code: err.code, message: err.message } }
  if (err instanceof ApiError) {
    const status = err.code === 'INVALID_ARGUMENT' ? ERROR_TABLE.INVALID_ARGUMENT.http : AGENT_ERRORS[err.code].http
    return { status, body: { code: err.code, message: err.message } }
  }
  const fe = err as Partial<FastifyError> | undefined
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500
  if (status === 413) return httpError(new ApiError('PAYLOAD_TOO_LARGE'))
  if (status === 415) return httpError(new ApiError('UNSUPPORTED_MEDIA_TYPE'))
  if (status >= 400 && status < 500) {
    return { status: 400, body: { code: 'INVALID_ARGUMENT', message: String(fe?.message ?? 'bad request') } }
  }
  return { status: 500, body: { code: 'INTERNAL', message: AGENT_ERRORS.INTERNAL.summary } }
}

/** SHA-256 first so both sides have equal length: timingSafeEqual then leaks neither content nor length. */
function sameSecret (given: string, digest: Buffer): boolean {
  return timingSafeEqual(createHash('sha256').update(given).digest(), digest)
}

const LINK = '/v1/edge-mgmt/edgehosts/current/link'

export function buildApi (host: Host, options: ApiOptions): FastifyInstance {
  const { server } = options
  const app = Fastify({
    loggerInstance: options.logger.child({ component: 'api' }),
    // Request lines would log at info on every CLI call; errors are logged by the handler below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // Validate, never repair: fastify's defaults would turn 42 into "42", "a" into ["a"] and drop
    // unknown keys, so a wrong body would change settings instead of being refused.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false } },
    ...(server != null ? { serverFactory: ((handler) => { server.on('request', handler); return server }) satisfies FastifyServerFactory<Server> } : {})
  })
  const secretDigest = createHash('sha256').update(options.secret).digest()
  const events = agentEvents()
  /** A failed link answers with the LinkStatus too, so a Local UI client sees the Failed state. */
  const linkFailures = new WeakMap<FastifyRequest, object>()

  // JSON only: fastify also parses text/plain by default, which would reach routes as a string.
  app.removeContentTypeParser('text/plain')

  app.addHook('onRequest', async (req) => {
    if (isPublicRoute(req.routeOptions.config)) return // the Local UI's static files: no secret in them
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')
    if (m == null || !sameSecret(m[1], secretDigest)) throw new ApiError('UNAUTHORIZED')
  })

  app.setErrorHandler((err, req, reply) => {
    const { status, body } = httpError(err)
    // Code and message only: a library error's cause may carry peer details nobody asked for.
    const fields = { code: body.code, url: req.routeOptions.url }
    if (status >= 500 && !isEdgelinkError(err)) req.log.error({ err }, 'request failed')
    else if (status >= 500) req.log.warn({ ...fields, message: body.message }, 'request failed')
    else req.log.debug(fields, 'request refused')
    void reply.code(status).send({ ...linkFailures.get(req), ...body })
  })

  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ code: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` })
  })

  app.post(`${LINK}/generate-token`, async () => await host.generateLinkToken())

  app.post(`${LINK}`, async (req) => {
    const token = (req.body as { token?: unknown } | null | undefined)?.token
    if (typeof token !== 'string' || token === '') throw new ApiError('INVALID_ARGUMENT', 'body must be {"token": "<link token>"}')
    try {
      return await host.link(token.trim())
    } catch (err) {
      linkFailures.set(req, host.linkStatus())
      throw err
    }
  })

  app.get(`${LINK}/status`, async () => host.linkStatus())

  app.post('/v1/edge-mgmt/edgehosts/current/unlink', async (req) => {
    const peerId = (req.query as { peerId?: unknown }).peerId
    if (typeof peerId !== 'string' || peerId === '') throw new ApiError('INVALID_ARGUMENT', 'query parameter peerId is required')
    await host.unlink(peerId)
    return host.linkStatus()
  })

  app.post('/v1/edgelink/token/stop', async () => {
    await host.stopTokenGeneration()
    return { generation: false }
  })

  app.get('/v1/edgelink/hosts', async () => host.hosts())

  app.get('/v1/edgelink/status', async () => status(host))

  app.get('/v1/edgelink/settings', async () => host.settings())

  app.put<{ Body: GroupSettings }>('/v1/edgelink/settings', { schema: { body: SETTINGS_BODY }, bodyLimit: SETTINGS_BODY_LIMIT },
    async (req, reply) => await host.updateSettings(req.body, { signal: untilGone(reply) }))

  app.patch<{ Body: { set: string[] } }>('/v1/edgelink/settings', { schema: { body: ASSIGNMENTS_BODY }, bodyLimit: SETTINGS_BODY_LIMIT },
    async (req, reply) => await host.updateSettings(req.body.set, { signal: untilGone(reply) }))

  app.get('/v1/edgelink/cluster', async () => {
    const cluster = host.cluster()
    if (cluster == null) throw new EdgelinkError('NO_CLUSTER')
    return cluster
  })

  app.post<{ Body: ClusterSpec }>('/v1/edgelink/cluster', { schema: { body: CLUSTER_BODY } }, async (req, reply) => {
    const cluster = await host.createCluster(req.body, { signal: untilGone(reply) })
    void reply.code(201)
    return cluster
  })

  app.patch<{ Body: ClusterChange }>('/v1/edgelink/cluster', { schema: { body: SCALE_BODY } },
    async (req, reply) => await host.scaleCluster(req.body, { signal: untilGone(reply) }))

  app.delete('/v1/edgelink/cluster', async (_req, reply) => {
    const name = host.cluster()?.name ?? null
    await host.deleteCluster({ signal: untilGone(reply) })
    return { deleted: name }
  })

  app.post<{ Body: { hostId: string } }>('/v1/edgelink/leader/transfer', { schema: { body: TRANSFER_BODY } }, async (req, reply) => {
    await host.transferLeadership(req.body.hostId, { signal: untilGone(reply) })
    return host.hosts()
  })

  app.get('/v1/edgelink/events', (req, reply) => { serveEvents(host, events, req, reply) })

  // The Local UI: GET / and /ui/* (its data calls go through the routes above, with the bearer).
  uiRoutes(app)

  // Content. PATH and DEST are paths on the agent's machine: the CLI runs there too and resolves
  // relative paths against its own working directory before sending them.
  app.get('/v1/edgelink/content', async () => host.listContent().map(contentRow))

  app.get<{ Params: { id: string } }>('/v1/edgelink/content/:id', { schema: { params: CONTENT_PARAMS } },
    async (req) => host.contentInfo(req.params.id))

  app.post<{ Body: { path: string, kind?: ContentKind, name?: string } }>('/v1/edgelink/content', { schema: { body: ADD_CONTENT_BODY } }, async (req, reply) => {
    const path = absolutePath(req.body.path, 'path')
    const { kind, name } = req.body
    const shown = name ?? basename(path)
    const info = await host.addContent(path, {
      ...(kind != null ? { kind } : {}),
      ...(name != null ? { name } : {}),
      signal: untilGone(reply),
      onProgress: (p) => { events.emit('content:import', { path, name: shown, bytes: p.bytes, totalBytes: p.totalBytes }) }
    })
    void reply.code(201)
    return info
  })

  app.post<{ Params: { id: string }, Body: { dest: string, overwrite?: boolean } }>('/v1/edgelink/content/:id/export', { schema: { params: CONTENT_PARAMS, body: EXPORT_BODY } }, async (req, reply) => {
    const dest = absolutePath(req.body.dest, 'dest')
    const { id } = host.contentInfo(req.params.id)
    const path = await host.exportContent(id, dest, { overwrite: req.body.overwrite === true, signal: untilGone(reply) })
    return { id, path }
  })

  app.delete<{ Params: { id: string } }>('/v1/edgelink/content/:id', { schema: { params: CONTENT_PARAMS } }, async (req, reply) => {
    const { id, manifest } = host.contentInfo(req.params.id)
    await host.removeContent(id, { signal: untilGone(reply) })
    return { removed: id, name: manifest.name }
  })

  return app
}

/**
 * The agent opens paths on its own machine, so a relative path would be relative to wherever the
 * agent was started: refuse it (the CLI resolves against its working directory before sending).
 */
function absolutePath (p: string, field: string): string {
  if (p.includes('\0')) throw new ApiError('INVALID_ARGUMENT', `${field} contains a NUL character`)
  if (!isAbsolute(p)) throw new ApiError('INVALID_ARGUMENT', `${field} must be an absolute path on the agent's host, got "${p.slice(0, 200)}" (the CLI resolves relative paths for you)`)
  return resolve(p)
}

/** Aborts the library call when the client hangs up before the answer (Ctrl-C on the CLI). */
function untilGone (reply: FastifyReply): AbortSignal {
  const ac = new AbortController()
  reply.raw.once('close', () => { if (!reply.raw.writableFinished) ac.abort(new EdgelinkError('ABORTED', 'the client went away')) })
  return ac.signal
}

// Body schemas. Fastify validates before the route runs, so a bad body is a 400 INVALID_ARGUMENT
// that changes nothing. Bounds follow the library's own (lib/group/state.ts): 64 KiB strings,
// 1024 entries per list or map; the library checks again, these only fail earlier and cheaper.
const TEXT = { type: 'string', maxLength: 64 * 1024 } as const
const LIST = { type: 'array', items: TEXT, maxItems: 1024 } as const
const MAP = { type: 'object', additionalProperties: TEXT, propertyNames: { maxLength: 256 }, maxProperties: 1024 } as const
/** A host id: a peer id (52 characters for Ed25519). */
const ID = { type: 'string', minLength: 1, maxLength: 128 } as const
const IDS = { type: 'array', items: ID, maxItems: 1024 } as const

const SETTINGS_PROPERTIES = {
  ntpServers: LIST,
  httpProxy: TEXT,
  httpsProxy: TEXT,
  noProxy: LIST,
  caCertificates: LIST,
  sshKeys: LIST,
  registryMirror: TEXT,
  values: MAP
} satisfies Record<keyof GroupSettings, object>

/** PUT replaces: every key, nothing else. */
const SETTINGS_BODY = {
  type: 'object',
  properties: SETTINGS_PROPERTIES,
  required: Object.keys(SETTINGS_PROPERTIES),
  additionalProperties: false
}

/** PATCH: `KEY=VALUE` assignments, as `edgelink settings set` takes them; the library parses them. */
const ASSIGNMENTS_BODY = {
  type: 'object',
  properties: { set: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 64 * 1024 + 256 }, minItems: 1, maxItems: 1024 } },
  required: ['set'],
  additionalProperties: false
}

type ClusterSpec = Parameters<Host['createCluster']>[0]
type ClusterChange = Parameters<Host['scaleCluster']>[0]

const CLUSTER_BODY = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 253 },
    controlPlane: { ...IDS, minItems: 1 },
    workers: IDS,
    vip: { type: 'string', maxLength: 64 },
    profile: TEXT,
    variables: MAP,
    labels: MAP,
    taints: LIST
  } satisfies Record<keyof ClusterSpec, object>,
  required: ['name', 'controlPlane'],
  additionalProperties: false
}

const SCALE_BODY = {
  type: 'object',
  properties: { addWorkers: IDS, addControlPlane: IDS, remove: IDS } satisfies Record<keyof ClusterChange, object>,
  minProperties: 1,
  additionalProperties: false
}

/** A content id (64 hex digits) or a prefix of one; the library resolves prefixes. */
const CONTENT_PARAMS = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1, maxLength: 128 } },
  required: ['id']
}

/** PATH_MAX on Linux. */
const PATH = { type: 'string', minLength: 1, maxLength: 4096 } as const

const ADD_CONTENT_BODY = {
  type: 'object',
  properties: {
    path: PATH,
    kind: { type: 'string', enum: [...CONTENT_KINDS] },
    // The manifest's bound (MAX_NAME_LENGTH in lib/content/manifest.ts).
    name: { type: 'string', minLength: 1, maxLength: 256 }
  },
  required: ['path'],
  additionalProperties: false
}

const EXPORT_BODY = {
  type: 'object',
  properties: { dest: PATH, overwrite: { type: 'boolean' } },
  required: ['dest'],
  additionalProperties: false
}

const TRANSFER_BODY = {
  type: 'object',
  properties: { hostId: ID },
  required: ['hostId'],
  additionalProperties: false
}

export interface AgentStatus {
  id: string
  groupId: string | null
  /** As in the hosts table: with a cluster, every control-plane host is a leader. null while in no group. */
  role: 'leader' | 'follower' | null
  /** This host's role in the cluster; `unknown` while it is in none. */
  nodeRole: HostRow['nodeRole']
  /** Name of the group's cluster, null while there is none. */
  cluster: string | null
  /** As the group sees this host; null while it is in no group (the library reports health per member). */
  health: HostRow['health'] | null
  linked: boolean
  tokenGeneration: boolean
  addrs: string[]
  version: string
}

function status (host: Host): AgentStatus {
  const groupId = host.groupId ?? null
  const self = host.hosts().find(r => r.self)
  return {
    id: host.id,
    groupId,
    role: self?.role ?? (groupId == null ? null : host.isLeader() ? 'leader' : 'follower'),
    nodeRole: self?.nodeRole ?? 'unknown',
    cluster: host.cluster()?.name ?? null,
    health: self?.health ?? null,
    linked: host.isLinked(),
    tokenGeneration: host.tokenGeneration,
    addrs: host.started ? host.multiaddrs.map(String) : [],
    version: VERSION
  }
}
