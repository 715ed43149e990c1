/**
 * The agent's HTTP API. The link routes follow the Local UI link contract
 * (`/v1/edge-mgmt/edgehosts/current/...`, the shapes Palette Edge's Local UI uses); the rest is edgelink's own
 * (`/v1/edgelink/...`).
 * Every route is a thin call into the library: no protocol logic here.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { chmod, mkdir, mkdtemp, readdir, rm, statfs } from 'node:fs/promises'
import type { IncomingMessage, Server } from 'node:http'
import { basename, isAbsolute, join, resolve } from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { EventEmitter } from 'node:events'
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerFactory, type FastifyBaseLogger } from 'fastify'
import { EdgelinkError, ERROR_TABLE, isEdgelinkError, VERSION, type Host, type HostRow } from '../lib/index.ts'
import type { GroupSettings } from '../lib/index.ts'
import { CONTENT_KINDS, type ContentKind } from '../lib/index.ts'
import { contentRow } from './content.ts'
import { agentEvents, serveEvents, type AgentEvents } from './events.ts'
import { isPublicRoute, uiRoutes } from './ui.ts'

/** Request bodies are a token or a cluster plan (a few KiB at most); anything near this is not ours. */
export const BODY_LIMIT = 64 * 1024
/** Settings may carry CA certificates and SSH keys: PEM bundles of some KiB each. */
export const SETTINGS_BODY_LIMIT = 1024 * 1024

/**
 * `POST /v1/edgelink/content/upload` streams its body to a file and never holds it in memory, so
 * its bound is the largest content worth sending through a browser, not what fits in RAM.
 */
export const UPLOAD_LIMIT = 64 * 1024 ** 3
/** An upload that sends nothing for this long is given up (and its file deleted). */
export const UPLOAD_IDLE_TIMEOUT = 120_000
/**
 * After a refusal the rest of an upload is read and thrown away, so the client reads the answer
 * instead of a reset connection; past this many bytes the connection is closed instead.
 */
export const UPLOAD_DRAIN_LIMIT = 64 * 1024 * 1024
/**
 * Where uploads are received, under the data dir (0700). Each upload deletes its own file; what an
 * agent killed mid-upload leaves is deleted by the first upload of its next run.
 */
export const UPLOADS_DIR = 'uploads'

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
  /** A second secret good for `GET /metrics` only (least privilege for a scraper). */
  metricsSecret?: string
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
  // Node gives a whole request 300 s by default (requestTimeout), which a multi-gigabyte upload
  // outlasts. Servers fastify creates get 0; a server handed in gets the same here. Headers must
  // still arrive within headersTimeout, and a stalled upload ends after UPLOAD_IDLE_TIMEOUT.
  if (server != null) server.requestTimeout = 0
  const secretDigest = createHash('sha256').update(options.secret).digest()
  const metricsDigest = options.metricsSecret != null ? createHash('sha256').update(options.metricsSecret).digest() : undefined
  const events = agentEvents()
  /** A failed link answers with the LinkStatus too, so a Local UI client sees the Failed state. */
  const linkFailures = new WeakMap<FastifyRequest, object>()

  // JSON only: fastify also parses text/plain by default, which would reach routes as a string.
  app.removeContentTypeParser('text/plain')

  app.addHook('onRequest', async (req) => {
    if (isPublicRoute(req.routeOptions.config)) return // the Local UI's static files: no secret in them
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')
    if (m != null && sameSecret(m[1], secretDigest)) return
    // The metrics secret reads the metrics and nothing else.
    if (m != null && metricsDigest != null && req.method === 'GET' && req.routeOptions.url === '/metrics' && sameSecret(m[1], metricsDigest)) return
    throw new ApiError('UNAUTHORIZED')
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

  // The Local UI's upload: the file itself as the body, from the browser's machine.
  void app.register(uploadRoute(host, events))

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

interface UploadQuery { name: string, kind?: ContentKind }

/**
 * `POST /v1/edgelink/content/upload?name=N&kind=K`, body `application/octet-stream`: the file
 * itself. The body streams to `<data-dir>/uploads/<unique dir>/<name>` (directories 0700, file
 * 0600 while it is written), the library imports that file as `POST /content` imports a path,
 * and the directory is deleted whatever happens. The route lives in its own plugin scope: only
 * it accepts octet-stream bodies, and they reach it as the raw stream, unread.
 */
function uploadRoute (host: Host, events: EventEmitter<AgentEvents>) {
  let sweep: Promise<void> | undefined
  const uploadsDir = (): string => join(host.options.dataDir, UPLOADS_DIR)
  /**
   * What an agent killed mid-upload left behind goes at the first upload of the next run: the
   * host is started by then, so its store holds the data dir's lock and no other agent uses it.
   */
  const swept = async (): Promise<string> => {
    const dir = uploadsDir()
    sweep ??= (async () => {
      await mkdir(dir, { recursive: true, mode: 0o700 })
      await chmod(dir, 0o700)
      await Promise.all((await readdir(dir)).map(async e => { await rm(join(dir, e), { recursive: true, force: true }) }))
    })()
    try {
      await sweep
    } catch (err) {
      sweep = undefined
      throw err
    }
    return dir
  }

  return async (scope: FastifyInstance): Promise<void> => {
    // Hand the body through untouched: the route reads it as a stream, and only once it has
    // decided to accept it.
    scope.addContentTypeParser('application/octet-stream', { bodyLimit: UPLOAD_LIMIT }, (_req, payload, done) => { done(null, payload) })

    scope.post<{ Querystring: UploadQuery }>('/v1/edgelink/content/upload', {
      schema: { querystring: UPLOAD_QUERY },
      bodyLimit: UPLOAD_LIMIT,
      // Before any body parser runs: a JSON body here would be parsed (or refused) as JSON.
      onRequest: async (req) => {
        const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
        if (type !== 'application/octet-stream') {
          throw new ApiError('UNSUPPORTED_MEDIA_TYPE', 'send the file itself as the body, with content-type: application/octet-stream')
        }
      },
      // A refused upload's unread rest is thrown away so the client can read the answer; a big
      // rest is not worth reading: the connection is closed after UPLOAD_DRAIN_LIMIT bytes.
      onResponse: async (req) => { drainAtMost(req.raw, UPLOAD_DRAIN_LIMIT) }
    }, async (req, reply) => {
      const { name } = req.query
      const kind = req.query.kind
      if (kind === 'oci-layout') {
        throw new ApiError('INVALID_ARGUMENT', 'an OCI image layout is a directory and cannot be uploaded as one file: put it on the host and add it by path (POST /v1/edgelink/content with {"path": …}, or edgelink content add)')
      }
      if (!host.started) throw new EdgelinkError('NOT_STARTED')
      // The library's own authority check, now, before a byte is read: a follower's upload is
      // refused at once, not after gigabytes. addContent checks again once the file is here.
      const refusal = host.mayUpload()
      if (refusal != null) throw refusal
      const declared = contentLength(req.headers['content-length'])
      if (declared != null && declared > UPLOAD_LIMIT) throw new ApiError('PAYLOAD_TOO_LARGE', `the upload is ${declared} bytes; uploads may be at most ${UPLOAD_LIMIT} bytes (64 GiB)`)
      const body = req.body as IncomingMessage | undefined
      if (body == null || typeof body.on !== 'function') throw new ApiError('INVALID_ARGUMENT', 'the request has no body: send the file as the body')

      const root = await swept()
      if (declared != null) {
        const fs = await statfs(root)
        const free = fs.bavail * fs.bsize
        if (declared > free) throw new EdgelinkError('DISK_FULL', `the upload is ${declared} bytes and the disk holding the data dir has ${free} bytes free; free some space or remove content`)
      }
      const dir = await mkdtemp(join(root, 'u-'))
      const file = join(dir, fileNameFor(name))
      const key = `upload:${name}`
      const signal = untilGone(reply)
      try {
        // Received bytes, as `content:import` progress under a key of its own (the import that
        // follows reports under the same key).
        let received = 0
        let shown = 0
        const total = declared ?? 0
        const progress = (): void => { shown = received; events.emit('content:import', { path: key, name, bytes: received, totalBytes: total }) }
        progress()
        let idle: NodeJS.Timeout | undefined
        const meter = new Transform({
          transform (chunk: Buffer, _enc, cb) {
            received += chunk.length
            if (received > UPLOAD_LIMIT) { cb(new ApiError('PAYLOAD_TOO_LARGE', `uploads may be at most ${UPLOAD_LIMIT} bytes (64 GiB)`)); return }
            if (received - shown >= 1024 * 1024) progress()
            idle?.refresh()
            cb(null, chunk)
          }
        })
        idle = setTimeout(() => { meter.destroy(new EdgelinkError('TIMEOUT', `the upload sent nothing for ${UPLOAD_IDLE_TIMEOUT / 1000} s`)) }, UPLOAD_IDLE_TIMEOUT)
        // The request is iterated, not piped: a failed write (a full disk) must leave it open so
        // the answer can still go out; a client that goes away fails the iteration.
        const source = body.iterator({ destroyOnReturn: false })
        try {
          await pipeline(source, meter, createWriteStream(file, { flags: 'wx', mode: 0o600 }), { signal })
        } catch (err) {
          throw uploadError(err, signal)
        } finally {
          clearTimeout(idle)
        }
        if (!body.complete) throw new EdgelinkError('ABORTED', 'the client went away')
        progress()
        // The manifest keeps the file's mode, which every host's export applies: an uploaded file
        // is an ordinary 0644 one (the 0700 directory around it still keeps it private).
        await chmod(file, 0o644)
        const info = await host.addContent(file, {
          name,
          ...(kind != null ? { kind } : {}),
          signal,
          onProgress: (p) => { events.emit('content:import', { path: key, name, bytes: p.bytes, totalBytes: p.totalBytes }) }
        })
        void reply.code(201)
        return info
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    })
  }
}

/** The Content-Length header as a number, or undefined when absent (chunked). */
function contentLength (h: string | undefined): number | undefined {
  if (h == null) return undefined
  const n = Number(h)
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

/** The reason an upload's body could not be stored, as an error the client understands. */
function uploadError (err: unknown, signal: AbortSignal): unknown {
  if (err instanceof ApiError || isEdgelinkError(err)) return err
  if (signal.aborted) return signal.reason
  const code = (err as NodeJS.ErrnoException)?.code
  if (code === 'ENOSPC' || code === 'EDQUOT') return new EdgelinkError('DISK_FULL', 'the disk holding the data dir filled up while receiving the upload; free some space or remove content', { cause: err })
  if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ABORT_ERR') return new EdgelinkError('ABORTED', 'the client went away', { cause: err })
  return new EdgelinkError('STORE_ERROR', `could not store the upload: ${(err as Error)?.message ?? String(err)}`, { cause: err })
}

/**
 * The name of the received file, which the manifest keeps as the file's path (what `content
 * export` writes into a directory): the upload's name, made a safe single path component.
 */
function fileNameFor (name: string): string {
  let s = name.replace(/[\/\x00-\x1f\x7f]/g, '_').trim()
  if (s === '' || s === '.' || s === '..') s = 'upload'
  // At most 255 bytes on Linux file systems; cut at a character boundary.
  while (Buffer.byteLength(s) > 255) s = [...s].slice(0, -1).join('')
  return s
}

/** Reads and drops what is left of `req`'s body, closing the connection after `limit` bytes. */
function drainAtMost (req: IncomingMessage, limit: number): void {
  if (req.complete || req.destroyed) return
  let dropped = 0
  req.on('data', (b: Buffer) => {
    dropped += b.length
    if (dropped > limit) req.socket?.destroy()
  })
  req.resume()
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

/** Every kind but `oci-layout` (a directory), which the route refuses in a sentence. */
const UPLOAD_QUERY = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 256 },
    kind: { type: 'string', enum: [...CONTENT_KINDS] }
  },
  required: ['name'],
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
  /** The roster's leader, term and version as this host holds them; null while in no group. */
  leader: string | null
  term: number | null
  rosterVersion: number | null
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
    leader: host.rosterData()?.leader ?? null,
    term: host.rosterData()?.term ?? null,
    rosterVersion: host.rosterData()?.version ?? null,
    addrs: host.started ? host.multiaddrs.map(String) : [],
    version: VERSION
  }
}
