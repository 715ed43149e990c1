/**
 * The CLI's side of the API: find the running agent through `<data-dir>/api.json` and call it
 * with the bearer secret. Every failure becomes a {@link CliError} the CLI prints as one line.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Host, HostRow, LinkStatus, LinkToken } from '../lib/index.ts'
import type { ClusterDefinition, GroupSettings } from '../lib/index.ts'
import type { AgentStatus } from './api.ts'
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

  private async call<T> (method: string, path: string, body?: unknown, timeout = TIMEOUT, signal?: AbortSignal): Promise<T> {
    let res: Response
    try {
      const timer = AbortSignal.timeout(timeout)
      res = await fetch(new URL(path, this.api.url), {
        method,
        headers: {
          authorization: `Bearer ${this.api.token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {})
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: signal != null ? AbortSignal.any([timer, signal]) : timer
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

function noAgent (dataDir: string): CliError {
  return new CliError(`no agent is running for data dir ${dataDir} (start it with \`edgelink agent\`)`)
}
