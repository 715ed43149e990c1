/**
 * The agent daemon: one host from the library plus the HTTP API, and `<data-dir>/api.json`
 * telling local CLI calls where the API is and which secret it wants.
 */
import { randomBytes } from 'node:crypto'
import type { Server } from 'node:http'
import { createRequire } from 'node:module'
import { isIPv6 } from 'node:net'
import { open, readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { pino, type Logger } from 'pino'
import pretty from 'pino-pretty'
import { createHost, EdgelinkError, isEdgelinkError, PRESETS, type Host } from '../lib/index.ts'
import { buildApi } from './api.ts'
import { createMetrics, metricsRoute } from './metrics.ts'
import { API_FILE, parseHostPort, type AgentConfig, type ApiFile } from './config.ts'

/**
 * node:http through require, not `import`: an ES import of node:http builds its whole namespace,
 * which reads http's lazy WebSocket, CloseEvent and MessageEvent exports and so loads Node's
 * bundled undici (fetch, WebSocket), ~12 MB resident that the agent never uses.
 */
const { createServer } = createRequire(import.meta.url)('node:http') as typeof import('node:http')

export interface Agent {
  host: Host
  app: FastifyInstance
  /** Base URL of the API, e.g. `http://127.0.0.1:5080`. */
  url: string
  apiFile: string
  /** Stops HTTP, then the host, then removes api.json. Idempotent. */
  stop(): Promise<void>
}

/** pino to stderr: pretty for a person at a terminal, JSON lines for journald and log shippers. */
export function createLogger (level: string, tty = process.stderr.isTTY === true): Logger {
  const options = {
    level,
    // Belt and braces: nothing should pass these to the logger, but a secret must never reach a log.
    redact: { paths: ['token', 'otp', 'secret', '*.token', '*.otp', '*.secret', 'req.headers.authorization'], censor: '[redacted]' }
  }
  return tty
    ? pino(options, pretty({ destination: 2, sync: true, colorize: true, ignore: 'pid,hostname' }))
    : pino(options, pino.destination({ dest: 2, sync: true }))
}

export async function startAgent (config: AgentConfig, logger: Logger): Promise<Agent> {
  const api = parseHostPort(config.api)
  const secret = config.apiSecretFile != null ? await readSecretFile(config.apiSecretFile) : randomBytes(32).toString('hex')
  const metricsSecret = config.metricsSecretFile != null ? await readSecretFile(config.metricsSecretFile, 'metrics secret file') : undefined
  if (metricsSecret === secret) throw Object.assign(new Error('the metrics secret must differ from the API secret (it grants less)'), { code: 'INVALID_ARGUMENT' })
  if (!/^(127\.|::1$|localhost$)/.test(api.host)) {
    logger.warn({ api: config.api }, 'the API is not on loopback: it speaks plain HTTP, anyone who can reach it sees the bearer secret on the wire')
  }
  // Bind the API first: its port is published to the group (localUIPort), and with port 0 it is
  // only known once bound.
  const server = createServer()
  const port = await listen(server, api.host, api.port)
  const urlHost = api.host === '0.0.0.0' ? '127.0.0.1' : api.host === '::' ? '[::1]' : isIPv6(api.host) ? `[${api.host}]` : api.host
  const url = `http://${urlHost}:${port}`

  let host: Host | undefined
  let app: FastifyInstance | undefined
  try {
    host = await createHost({
      ...PRESETS[config.preset],
      dataDir: config.dataDir,
      listen: [config.listen],
      advertise: config.advertise,
      ...(config.name != null ? { name: config.name } : {}),
      apiPort: port,
      uploadRate: config.uploadRate,
      logger,
      start: false
    })
    app = buildApi(host, { secret, metricsSecret, logger, server })
    metricsRoute(app, createMetrics(host))
    await app.ready()
    await host.start().catch(err => { throw explainStart(err, config.dataDir) })
    const apiFile = join(config.dataDir, API_FILE)
    await writePrivateJson(apiFile, { url, token: secret, pid: process.pid } satisfies ApiFile)
    logger.info({ url, id: host.id }, 'agent API listening')
    return { host, app, url, apiFile, stop: once(async () => { await shutdown(server, app!, host!, apiFile) }) }
  } catch (err) {
    await closeServer(server)
    await app?.close().catch(() => {})
    await host?.stop().catch(() => {})
    throw err
  }
}

/**
 * A bearer secret kept by the operator (and a scraper): one line of 16 to 1024 printable ASCII
 * characters, in a file only its owner may read, like an SSH key.
 */
export async function readSecretFile (file: string, what = 'API secret file'): Promise<string> {
  const refuse = (why: string): Error => Object.assign(new Error(`${what} ${file}: ${why}`), { code: 'INVALID_ARGUMENT' })
  let text: string
  try {
    const st = await stat(file)
    if ((st.mode & 0o077) !== 0) throw refuse('readable by group or others; make it 0600 (or 0400)')
    if (st.size > 4096) throw refuse('expected one line of 16 to 1024 printable characters, no spaces')
    text = await readFile(file, 'utf8')
  } catch (err: any) {
    if (err?.code === 'INVALID_ARGUMENT') throw err
    throw refuse(err?.code === 'ENOENT' ? 'no such file' : String(err?.message ?? err))
  }
  const secret = text.replace(/\r?\n$/, '')
  if (!/^[\x21-\x7e]{16,1024}$/.test(secret)) throw refuse('expected one line of 16 to 1024 printable characters, no spaces')
  return secret
}

async function shutdown (server: Server, app: FastifyInstance, host: Host, apiFile: string): Promise<void> {
  await closeServer(server)
  await app.close().catch(() => {})
  await host.stop()
  await rm(apiFile, { force: true })
}

function listen (server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const e = new Error(`cannot serve the API on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'address already in use (another agent?)' : err.message}`)
      reject(Object.assign(e, { code: err.code ?? 'LISTEN_FAILED' }))
    })
    server.listen(port, host, () => {
      const addr = server.address()
      resolve(typeof addr === 'object' && addr != null ? addr.port : port)
    })
  })
}

async function closeServer (server: Server): Promise<void> {
  if (!server.listening) return
  const closed = new Promise<void>(resolve => { server.close(() => { resolve() }) })
  // Keep-alive connections from CLI calls would otherwise hold close() open.
  server.closeAllConnections()
  await closed
}

/** The store's "in use" message names LevelDB; operators think in agents and data dirs. */
function explainStart (err: unknown, dataDir: string): unknown {
  if (isEdgelinkError(err, 'STORE_ERROR') && /in use/.test(err.message)) {
    return new EdgelinkError('STORE_ERROR', `data dir ${dataDir} is in use by another process (is an agent already running with it?)`, { cause: err })
  }
  return err
}

/**
 * Writes JSON readable only by the owner: a fresh temp file created 0600 (never a moment with
 * wider permissions), then an atomic rename, so readers see the old file or the whole new one.
 */
export async function writePrivateJson (file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`
  await rm(tmp, { force: true })
  const fh = await open(tmp, 'wx', 0o600)
  try {
    await fh.writeFile(JSON.stringify(value, null, 2) + '\n')
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, file)
}

function once (fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined
  return async () => { p ??= fn(); await p }
}
