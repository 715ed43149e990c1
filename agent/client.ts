/**
 * The CLI's side of the API: find the running agent through `<data-dir>/api.json` and call it
 * with the bearer secret. Every failure becomes a {@link CliError} the CLI prints as one line.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Host, HostRow, LinkStatus, LinkToken } from '../lib/index.ts'
import type { ClusterDefinition, GroupSettings } from '../lib/index.ts'
import type { ContentInfo, ContentKind } from '../lib/index.ts'
import type { AgentStatus } from './api.ts'
import type { ContentRow } from './content.ts'
import { API_FILE, type ApiFile } from './config.ts'

/** A refusal or failure; printed as `edgelink: <message> (<code>)`, exit 1. */
export class CliError extends Error {
  readonly code?: string
  /** The agent's JSON answer, when there was one (a failed link carries its LinkStatus). */
  readonly body?: unknown
  constructor (message: string, code?: string, body?: unknown) {
    super(message)
    this.code = code
    this.body = body
  }
}

/** Linking waits for the leader (one request timeout per address tried); everything else is local. */
const LINK_TIMEOUT = 60_000
const TIMEOUT = 15_000

export class AgentClient {
  private readonly api: ApiFile
  private readonly dataDir: string

  private constructor (api: ApiFile, dataDir: string) {
    this.api = api
    this.dataDir = dataDir
  }

  /** Reads api.json; a missing or unreadable file means no agent runs for this data dir. */
  static async open (dataDir: string): Promise<AgentClient> {
    try {
      const api = JSON.parse(await readFile(join(dataDir, API_FILE), 'utf8')) as ApiFile
      if (typeof api?.url !== 'string' || typeof api.token !== 'string') throw new Error('malformed api.json')
      return new AgentClient(api, dataDir)
    } catch {
      throw noAgent(dataDir)
    }
  }

  async generateToken (): Promise<LinkToken> {
    return await this.call('POST', '/v1/edge-mgmt/edgehosts/current/link/generate-token')
  }

  async stopTokenGeneration (): Promise<{ generation: false }> {
    return await this.call('POST', '/v1/edgelink/token/stop')
  }

  async link (token: string): Promise<LinkStatus> {
    return await this.call('POST', '/v1/edge-mgmt/edgehosts/current/link', { token }, LINK_TIMEOUT)
  }

  async unlink (hostId: string): Promise<LinkStatus> {
    return await this.call('POST', `/v1/edge-mgmt/edgehosts/current/unlink?peerId=${encodeURIComponent(hostId)}`, undefined, LINK_TIMEOUT)
  }

  /** `signal` ends a `hosts --watch` poll early; the abort error is rethrown as it is. */
  async hosts (signal?: AbortSignal): Promise<HostRow[]> {
    return await this.call('GET', '/v1/edgelink/hosts', undefined, TIMEOUT, signal)
  }

  async status (): Promise<AgentStatus> {
    return await this.call('GET', '/v1/edgelink/status')
  }

  async settings (): Promise<GroupSettings> {
    return await this.call('GET', '/v1/edgelink/settings')
  }

  /** `KEY=VALUE` assignments; the agent's library parses and checks them. */
  async setSettings (assignments: string[]): Promise<GroupSettings> {
    return await this.call('PATCH', '/v1/edgelink/settings', { set: assignments })
  }

  async cluster (): Promise<ClusterDefinition> {
    return await this.call('GET', '/v1/edgelink/cluster')
  }

  async createCluster (spec: Parameters<Host['createCluster']>[0]): Promise<ClusterDefinition> {
    return await this.call('POST', '/v1/edgelink/cluster', spec)
  }

  async scaleCluster (change: Parameters<Host['scaleCluster']>[0]): Promise<ClusterDefinition> {
    return await this.call('PATCH', '/v1/edgelink/cluster', change)
  }

  async deleteCluster (): Promise<{ deleted: string | null }> {
    return await this.call('DELETE', '/v1/edgelink/cluster')
  }

  /** Waits for the group (a new term signed by the target), like linking. */
  async transferLeadership (hostId: string): Promise<HostRow[]> {
    return await this.call('POST', '/v1/edgelink/leader/transfer', { hostId }, LINK_TIMEOUT)
  }

  /** `signal` ends a poll of `content wait` early; the abort error is rethrown as it is. */
  async contentList (signal?: AbortSignal): Promise<ContentRow[]> {
    return await this.call('GET', '/v1/edgelink/content', undefined, TIMEOUT, signal)
  }

  async contentInfo (id: string, signal?: AbortSignal): Promise<ContentInfo> {
    return await this.call('GET', `/v1/edgelink/content/${encodeURIComponent(id)}`, undefined, TIMEOUT, signal)
  }

  /** `path` absolute on this machine (the agent's). Imports take as long as the disk: no timeout. */
  async addContent (body: { path: string, kind?: ContentKind, name?: string }): Promise<ContentInfo> {
    return await this.call('POST', '/v1/edgelink/content', body, 0)
  }

  async exportContent (id: string, body: { dest: string, overwrite?: boolean }): Promise<{ id: string, path: string }> {
    return await this.call('POST', `/v1/edgelink/content/${encodeURIComponent(id)}/export`, body, 0)
  }

  async removeContent (id: string): Promise<{ removed: string, name: string }> {
    return await this.call('DELETE', `/v1/edgelink/content/${encodeURIComponent(id)}`, undefined, LINK_TIMEOUT)
  }

  /**
   * Subscribes to `GET /v1/edgelink/events`. Resolves once the agent has answered (every event
   * from then on reaches `onEvent`); `closed` settles when the stream ends: resolves on `signal`,
   * rejects when the agent goes away or the stream breaks.
   */
  async events (onEvent: (event: string, data: any) => void, signal: AbortSignal): Promise<{ closed: Promise<void> }> {
    let res: Response
    // A timeout for the answer, not for the stream, which may stay quiet for as long as it likes.
    const answer = new AbortController()
    const timer = setTimeout(() => { answer.abort() }, TIMEOUT)
    try {
      res = await fetch(new URL('/v1/edgelink/events', this.api.url), {
        headers: { authorization: `Bearer ${this.api.token}`, accept: 'text/event-stream' },
        signal: AbortSignal.any([signal, answer.signal])
      })
    } catch (err) {
      if (signal.aborted) throw err
      if (answer.signal.aborted) throw new CliError(`the agent did not answer within ${TIMEOUT / 1000}s`, 'TIMEOUT')
      throw noAgent(this.dataDir)
    } finally {
      clearTimeout(timer)
    }
    if (!res.ok || res.body == null) {
      const text = await res.text().catch(() => '')
      let json: any
      try { json = JSON.parse(text) } catch {}
      throw new CliError(String(json?.message ?? `HTTP ${res.status}`), typeof json?.code === 'string' ? json.code : `HTTP_${res.status}`)
    }
    const body = res.body
    const closed = (async () => {
      const parser = new SseParser(onEvent)
      const decoder = new TextDecoder()
      try {
        for await (const chunk of body as AsyncIterable<Uint8Array>) parser.push(decoder.decode(chunk, { stream: true }))
      } catch (err) {
        if (signal.aborted) return
        throw err
      }
      if (!signal.aborted) throw new CliError('the agent closed the event stream')
    })()
    closed.catch(() => {})
    return { closed }
  }

  private async call<T> (method: string, path: string, body?: unknown, timeout = TIMEOUT, signal?: AbortSignal): Promise<T> {
    let res: Response
    try {
      // timeout 0: none (imports and exports), the caller's signal or Ctrl-C end them.
      const signals = [...(timeout > 0 ? [AbortSignal.timeout(timeout)] : []), ...(signal != null ? [signal] : [])]
      res = await fetch(new URL(path, this.api.url), {
        method,
        headers: {
          authorization: `Bearer ${this.api.token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {})
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(signals.length > 0 ? { signal: AbortSignal.any(signals) } : {})
      })
    } catch (err: any) {
      if (signal?.aborted === true) throw err
      if (err?.name === 'TimeoutError') throw new CliError(`the agent did not answer within ${timeout / 1000}s`, 'TIMEOUT')
      // Connection refused or reset: api.json is left over from an agent that is gone.
      throw noAgent(this.dataDir)
    }
    const text = await res.text()
    let json: any
    try {
      json = JSON.parse(text)
    } catch {
      throw new CliError(`the agent answered HTTP ${res.status} with something that is not JSON`, `HTTP_${res.status}`)
    }
    if (!res.ok) {
      throw new CliError(String(json?.message ?? `HTTP ${res.status}`), typeof json?.code === 'string' ? json.code : `HTTP_${res.status}`, json)
    }
    return json as T
  }
}

/**
 * The parts of the event-stream format the agent sends: `event:` and `data:` lines, a blank line
 * ending each event, `:` comments. One buffer of at most one event.
 */
export class SseParser {
  private buf = ''
  private event = 'message'
  private data: string[] = []
  private readonly onEvent: (event: string, data: any) => void

  constructor (onEvent: (event: string, data: any) => void) {
    this.onEvent = onEvent
  }

  push (text: string): void {
    this.buf += text
    let nl: number
    while ((nl = this.buf.search(/\r?\n/)) !== -1) {
      const line = this.buf.slice(0, nl)
      this.buf = this.buf.slice(this.buf[nl] === '\r' ? nl + 2 : nl + 1)
      this.line(line)
    }
    // A line longer than any event the agent sends: not an event stream.
    if (this.buf.length > 16 * 1024 * 1024) throw new CliError('the agent sent an event line that is too long')
  }

  private line (line: string): void {
    if (line === '') {
      if (this.data.length > 0) {
        const text = this.data.join('\n')
        let value: unknown = text
        try { value = JSON.parse(text) } catch {}
        this.onEvent(this.event, value)
      }
      this.event = 'message'
      this.data = []
      return
    }
    if (line.startsWith(':')) return
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
    if (field === 'event') this.event = value
    else if (field === 'data') this.data.push(value)
  }
}

function noAgent (dataDir: string): CliError {
  return new CliError(`no agent is running for data dir ${dataDir} (start it with \`edgelink agent\`)`)
}
