/**
 * The agent's HTTP API. The link routes follow the Local UI link contract
 * (`/v1/edge-mgmt/edgehosts/current/...`, the shapes Palette Edge's Local UI uses); the rest is edgelink's own
 * (`/v1/edgelink/...`).
 * Every route is a thin call into the library: no protocol logic here.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { Server } from 'node:http'
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyRequest, type FastifyServerFactory, type FastifyBaseLogger } from 'fastify'
import { ERROR_TABLE, isEdgelinkError, VERSION, type Host } from '../lib/index.ts'

/** Request bodies are a token at most (a few hundred bytes); anything near this is not ours. */
export const BODY_LIMIT = 64 * 1024

/** Codes the agent adds to the library's table, for failures that happen before the library is called. */
export const AGENT_ERRORS = {
  UNAUTHORIZED: { http: 401, summary: 'missing or wrong bearer token (see api.json in the data dir)' },
  NOT_FOUND: { http: 404, summary: 'no such route' },
  PAYLOAD_TOO_LARGE: { http: 413, summary: `request body is larger than ${BODY_LIMIT} bytes` },
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
    ...(server != null ? { serverFactory: ((handler) => { server.on('request', handler); return server }) satisfies FastifyServerFactory<Server> } : {})
  })
  const secretDigest = createHash('sha256').update(options.secret).digest()
  /** A failed link answers with the LinkStatus too, so a Local UI client sees the Failed state. */
  const linkFailures = new WeakMap<FastifyRequest, object>()

  // JSON only: fastify also parses text/plain by default, which would reach routes as a string.
  app.removeContentTypeParser('text/plain')

  app.addHook('onRequest', async (req) => {
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

  return app
}

export interface AgentStatus {
  id: string
  groupId: string | null
  /** null while this host is in no group. */
  role: 'leader' | 'follower' | null
  linked: boolean
  tokenGeneration: boolean
  addrs: string[]
  version: string
}

function status (host: Host): AgentStatus {
  const groupId = host.groupId ?? null
  return {
    id: host.id,
    groupId,
    role: groupId == null ? null : host.isLeader() ? 'leader' : 'follower',
    linked: host.isLinked(),
    tokenGeneration: host.tokenGeneration,
    addrs: host.started ? host.multiaddrs.map(String) : [],
    version: VERSION
  }
}
