/**
 * `GET /v1/edgelink/events`: the host's events as Server-Sent Events, for `edgelink content wait`,
 * `content add` and the Local UI. Each event is `event: <name>` and `data: <one line of JSON>`;
 * a comment line every {@link HEARTBEAT} keeps proxies and client body timeouts from closing an
 * idle stream. The stream ends when the client goes away (every listener is removed then) or
 * when it falls {@link MAX_BUFFERED} bytes behind.
 */
import { EventEmitter } from 'node:events'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Host } from '../lib/index.ts'
import { contentRow } from './content.ts'

/** Events the stream carries. `content:import` is the agent's own: progress of a `POST /content`. */
export const STREAM_EVENTS = [
  'content:progress', 'content:complete', 'content:added', 'content:removed', 'content:import',
  'host:health', 'host:linked', 'host:unlinked', 'link:status', 'token:generated', 'token:stopped',
  'roster', 'settings', 'cluster'
] as const
export type StreamEvent = typeof STREAM_EVENTS[number]

/** Progress of an import the API is running (`POST /v1/edgelink/content`), by absolute path. */
export interface ImportProgressEvent { path: string, name: string, bytes: number, totalBytes: number }

/** Events the agent adds to the host's own. */
export interface AgentEvents { 'content:import': [ImportProgressEvent] }

/** A comment this often: undici (fetch) gives up on a body silent for 300 s, proxies sooner. */
export const HEARTBEAT = 15_000
/**
 * Progress events are coalesced: per content (or import), the latest one at most this often.
 * A download emits one per chunk (a hundred a second on a fast link); a bar needs a few.
 */
export const PROGRESS_INTERVAL = 250
/** A client this far behind is not reading: end its stream rather than buffer without bound. */
export const MAX_BUFFERED = 1024 * 1024
/** What EventSource clients wait before reconnecting, in ms (sent as `retry:`). */
const RETRY = 2_000

/** The host's and the agent's events, side by side, for one place that subscribes to both. */
export function agentEvents (): EventEmitter<AgentEvents> {
  return new EventEmitter<AgentEvents>()
}

/**
 * Serves one event stream on a hijacked reply. Listeners are attached before the headers go out,
 * so a client that has the response headers misses no event after them (read state after that).
 */
export function serveEvents (host: Host, agent: EventEmitter<AgentEvents>, req: FastifyRequest, reply: FastifyReply): void {
  void reply.hijack()
  const res = reply.raw
  const pending = new Map<string, string>()
  let flushTimer: NodeJS.Timeout | undefined
  let closed = false

  const write = (frame: string): void => {
    if (closed) return
    res.write(frame)
    if (res.writableLength > MAX_BUFFERED) {
      req.log.debug('event stream client too slow; closing its stream')
      close()
      res.destroy()
    }
  }
  const flush = (): void => {
    if (flushTimer != null) clearTimeout(flushTimer)
    flushTimer = undefined
    for (const frame of pending.values()) write(frame)
    pending.clear()
  }
  /** Progress: the latest per key, sent within PROGRESS_INTERVAL. */
  const coalesce = (key: string, frame: string): void => {
    pending.set(key, frame)
    flushTimer ??= setTimeout(flush, PROGRESS_INTERVAL)
  }
  /** Anything else: at once, after the progress queued before it, so order is kept. */
  const now = (frame: string): void => {
    flush()
    write(frame)
  }

  const handlers: Array<[EventEmitter<any>, string, (arg: unknown) => void]> = []
  const on = (emitter: EventEmitter<any>, event: StreamEvent, fn: (arg: any) => void): void => {
    handlers.push([emitter, event, fn])
    emitter.on(event, fn)
  }
  // Contents as the rows of GET /content: without their chunk lists.
  for (const event of ['content:complete', 'content:added'] as const) {
    on(host, event, (info) => { now(sse(event, contentRow(info))) })
  }
  // The rest as the library emits them; `token:stopped` has no argument, a deleted cluster is null.
  for (const event of ['content:removed', 'host:health', 'host:linked', 'host:unlinked', 'link:status', 'token:generated', 'token:stopped', 'roster', 'settings', 'cluster'] as const) {
    on(host, event, (arg) => { now(sse(event, arg ?? null)) })
  }
  on(host, 'content:progress', (p: { id: string }) => { coalesce(`p:${p.id}`, sse('content:progress', p)) })
  on(agent, 'content:import', (p: ImportProgressEvent) => { coalesce(`i:${p.path}`, sse('content:import', p)) })
  const heartbeat = setInterval(() => { write(': keep-alive\n\n') }, HEARTBEAT)

  function close (): void {
    if (closed) return
    closed = true
    clearInterval(heartbeat)
    if (flushTimer != null) clearTimeout(flushTimer)
    for (const [emitter, event, fn] of handlers) emitter.off(event, fn)
    handlers.length = 0
  }
  // The response closes when the client hangs up (or the agent closes every connection on stop).
  res.once('close', close)

  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    // nginx and friends would otherwise hold events back in a buffer.
    'x-accel-buffering': 'no'
  })
  // Sends the headers at once, and tells EventSource how long to wait before reconnecting.
  res.write(`retry: ${RETRY}\n: connected\n\n`)
}

function sse (event: string, data: unknown): string {
  // JSON.stringify escapes newlines inside strings, so the data is always one line.
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}
