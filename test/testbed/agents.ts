/**
 * Agents as real processes inside the network-namespace test bed (./netns.ts): each host's agent
 * runs under `ip netns exec`, meshes on the host's 198.18.x.y address and serves its API on
 * 127.0.0.1:5080 — the loopback of its own namespace, which nothing outside it can reach. So that
 * a test can poll many agents cheaply, a small relay runs in each namespace too: it listens on a
 * Unix socket in the test's temp dir (the file system is shared, the network is not) and passes
 * each connection to the API on the namespace's loopback. No traffic leaves the namespaces or
 * loopback. CLI calls (`agent.cli(...)`) run inside the namespace as an operator's would.
 *
 * Also here: polling helpers, the group view every agent reports, convergence checks, and the
 * leadership claims each agent logs per term (the check "never two leaders in one term").
 * Not a test file itself (no `.test.` in the name).
 */
import { type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { request } from 'node:http'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { GroupSettings, HostRow } from '../../lib/index.ts'
import { AgentProc, CLI, cleanEnv, type Run } from '../agent.procs.ts'
import { rng, tempDir } from '../helpers.ts'
import { createTestbed, requireNetns, type NetnsHost, type Testbed, type TestbedOptions } from './netns.ts'

/** Every agent meshes on this port of its namespace's address. */
export const MESH_PORT = 7400
/** Every agent serves its API on this port of its namespace's loopback (each namespace has its own). */
export const API_PORT = 5080

/** argv: socket path, port. Prints "ready" once it listens; each connection is piped to 127.0.0.1:port. */
const RELAY_JS = `
const net = require('node:net')
const fs = require('node:fs')
const [sock, port] = process.argv.slice(1)
try { fs.unlinkSync(sock) } catch {}
const srv = net.createServer(c => {
  const u = net.connect(Number(port), '127.0.0.1')
  const end = () => { c.destroy(); u.destroy() }
  c.on('error', end); u.on('error', end); c.on('close', end); u.on('close', end)
  c.pipe(u); u.pipe(c)
})
srv.listen(sock, () => { fs.chmodSync(sock, 0o600); console.log('ready') })
`

/** One JSON log line of an agent, with which agent and which of its runs (0 = first start) wrote it. */
export interface LogLine {
  agent: string
  run: number
  level: number
  time: number
  msg: string
  [field: string]: unknown
}

export interface ApiAnswer { status: number, body: any }

export class AgentDown extends Error {
  override readonly name = 'AgentDown'
}

/** A request over a Unix socket; rejects with {@link AgentDown} when nothing answers (agent down, relay refused). */
async function unixRequest (socketPath: string, method: string, path: string, headers: Record<string, string>, body: string | undefined, timeoutMs: number): Promise<ApiAnswer> {
  return await new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: { ...headers, ...(body != null ? { 'content-length': String(Buffer.byteLength(body)) } : {}) }, timeout: timeoutMs }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (s: string) => { text += s })
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : JSON.parse(text) })
        } catch (err: any) {
          reject(new Error(`${method} ${path}: not JSON (${res.statusCode}): ${text.slice(0, 200)}`))
        }
      })
      res.on('error', err => { reject(new AgentDown(`${method} ${path}: ${err.message}`)) })
    })
    req.on('timeout', () => { req.destroy(new Error(`timed out after ${timeoutMs} ms`)) })
    req.on('error', err => { reject(new AgentDown(`${method} ${path}: ${err.message}`)) })
    req.end(body)
  })
}

export interface NsAgentSpec {
  host: NetnsHost
  name: string
  dataDir: string
  /** Where the API relay's socket goes (a directory of the test's own). */
  sockDir: string
  /** More `edgelink agent` flags. */
  extra?: string[]
  /** `--preset`. @default 'test' */
  preset?: 'lan' | 'test'
}

/**
 * One agent process in a namespace. `start()` (inherited) waits for api.json; `kill()` is SIGKILL;
 * `stop()` (inherited) is SIGTERM then SIGKILL. Logs of every run are kept in `logs`.
 */
export class NsAgent extends AgentProc {
  readonly host: NetnsHost
  /** The host's index in the test bed. */
  readonly index: number
  readonly sock: string
  readonly extra: string[]
  readonly preset: 'lan' | 'test'
  readonly logs: LogLine[] = []
  /** Starts so far (the current run's number is `runs - 1`). */
  runs = 0
  private relay?: { child: ChildProcess, ready: Promise<void> }

  constructor (spec: NsAgentSpec) {
    super({ name: spec.name, ip: spec.host.ip, port: MESH_PORT, dataDir: spec.dataDir })
    this.host = spec.host
    this.index = spec.host.index
    this.sock = join(spec.sockDir, `${spec.host.name}.sock`)
    this.extra = spec.extra ?? []
    this.preset = spec.preset ?? 'test'
  }

  override get args (): string[] {
    return ['agent', '--data-dir', this.dataDir, '--listen', `${this.ip}:${MESH_PORT}`, '--advertise', this.ip,
      '--api', `127.0.0.1:${API_PORT}`, '--name', this.name, '--preset', this.preset, '--log-level', 'info', ...this.extra]
  }

  protected override spawnAgent (args: string[], env: NodeJS.ProcessEnv): ChildProcess {
    const child = this.host.spawn([process.execPath, CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    const run = this.runs++
    let partial = ''
    child.stderr?.on('data', (b: Buffer) => {
      const lines = (partial + b.toString()).split('\n')
      partial = lines.pop() ?? ''
      for (const l of lines) {
        if (!l.startsWith('{')) continue
        try { this.logs.push({ ...JSON.parse(l), agent: this.name, run }) } catch {}
      }
    })
    return child
  }

  /** True while the agent process runs. */
  get alive (): boolean {
    return this.child != null && this.child.exitCode == null && this.child.signalCode == null
  }

  override async start (): Promise<void> {
    await this.startRelay()
    await super.start()
  }

  private async startRelay (): Promise<void> {
    if (this.relay != null && this.relay.child.exitCode == null && this.relay.child.signalCode == null) {
      await this.relay.ready
      return
    }
    const child = this.host.spawn([process.execPath, '-e', RELAY_JS, this.sock, String(API_PORT)])
    const ready = new Promise<void>((resolve, reject) => {
      let out = ''
      let err = ''
      child.stdout?.on('data', (b: Buffer) => { out += b.toString(); if (out.includes('ready')) resolve() })
      child.stderr?.on('data', (b: Buffer) => { err += b.toString() })
      child.on('exit', code => { reject(new Error(`API relay in ${this.host.name} exited ${code}: ${err}`)) })
    })
    this.relay = { child, ready }
    await ready
  }

  /** SIGKILL (or `sig`), resolved once the process is gone. */
  async kill (sig: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child
    if (child == null || child.exitCode != null || child.signalCode != null) return
    const exited = once(child, 'exit')
    child.kill(sig)
    await exited
  }

  /** A request to the agent's API through the relay, with the bearer from api.json. */
  override async api (method: string, path: string, init: { body?: string, headers?: Record<string, string>, auth?: boolean | string } = {}): Promise<ApiAnswer> {
    const { token } = await this.apiFile()
    const bearer = init.auth === false ? undefined : typeof init.auth === 'string' ? init.auth : token
    return await unixRequest(this.sock, method, path, { ...(bearer != null ? { authorization: `Bearer ${bearer}` } : {}), ...init.headers }, init.body, 10_000)
  }

  /** `api` with a JSON body; throws unless the status is 2xx. */
  async call (method: string, path: string, body?: unknown): Promise<any> {
    const r = await this.api(method, path, body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
    if (r.status < 200 || r.status > 299) throw Object.assign(new Error(`${this.name}: ${method} ${path} → ${r.status} ${JSON.stringify(r.body)}`), { status: r.status, body: r.body })
    return r.body
  }

  /** `edgelink <args> --data-dir <dir>` run inside the namespace, as an operator on that host would. */
  override async cli (...args: string[]): Promise<Run> {
    const r = await this.host.exec([process.execPath, CLI, ...args, '--data-dir', this.dataDir], { env: cleanEnv(), timeoutMs: 90_000 })
    return { code: r.code, stdout: r.stdout, stderr: r.stderr }
  }

  override async hosts (): Promise<HostRow[]> { return await this.call('GET', '/v1/edgelink/hosts') }
  async status (): Promise<any> { return await this.call('GET', '/v1/edgelink/status') }
  async settings (): Promise<GroupSettings> { return await this.call('GET', '/v1/edgelink/settings') }
  async setSettings (...set: string[]): Promise<GroupSettings> { return await this.call('PATCH', '/v1/edgelink/settings', { set }) }
  async token (): Promise<string> { return (await this.call('POST', '/v1/edge-mgmt/edgehosts/current/link/generate-token')).token }
  async link (token: string): Promise<ApiAnswer> {
    return await this.api('POST', '/v1/edge-mgmt/edgehosts/current/link', { body: JSON.stringify({ token }), headers: { 'content-type': 'application/json' } })
  }

  override async id (): Promise<string> { return (await this.status()).id }

  async stopRelay (): Promise<void> {
    const c = this.relay?.child
    if (c == null || c.exitCode != null || c.signalCode != null) return
    const exited = once(c, 'exit')
    c.kill('SIGKILL')
    await exited
  }
}

// ---------------------------------------------------------------------------------------------
// A test bed with one agent per host

export interface FaultBedOptions extends TestbedOptions {
  /** Extra `edgelink agent` flags for host i. */
  extra?: (i: number) => string[]
}

/** Namespaces, one agent per host, their data dirs: everything one `teardown()` removes, even after a failure. */
export class FaultBed {
  readonly bed: Testbed
  readonly agents: NsAgent[]
  readonly dir: string
  /** Host ids by agent index, filled by `startAll`/`startAgent`. */
  readonly ids: string[] = []

  private constructor (bed: Testbed, agents: NsAgent[], dir: string) {
    this.bed = bed
    this.agents = agents
    this.dir = dir
  }

  /** Makes the namespaces and the agents' dirs; starts nothing. On failure removes what it made. */
  static async create (opts: FaultBedOptions): Promise<FaultBed> {
    const dir = await tempDir('edgelink-faults-')
    let bed: Testbed | undefined
    try {
      bed = await createTestbed(opts)
      const agents = bed.hosts.map((h, i) => new NsAgent({ host: h, name: `h${i}`, dataDir: join(dir, `h${i}`), sockDir: dir, extra: opts.extra?.(i) }))
      return new FaultBed(bed, agents, dir)
    } catch (err) {
      await bed?.destroy().catch(() => {})
      await rm(dir, { recursive: true, force: true })
      throw err
    }
  }

  async startAgent (i: number): Promise<void> {
    await this.agents[i].start()
    this.ids[i] = await this.agents[i].id()
  }

  async startAll (): Promise<void> {
    await Promise.all(this.agents.map(async (_, i) => { await this.startAgent(i) }))
  }

  /**
   * Agent `leader` starts a group; every other agent of `members` links with a token of its own.
   * Resolves once each of them shows the whole group Healthy with `leader` leading.
   */
  async formGroup (leader = 0, members = this.agents.map((_, i) => i), ms = 30_000): Promise<void> {
    const l = this.agents[leader]
    for (const i of members) {
      if (i === leader) continue
      const r = await this.agents[i].link(await l.token())
      if (r.status !== 200 || r.body?.status !== 'Completed') throw new Error(`h${i} could not link: ${r.status} ${JSON.stringify(r.body)}`)
    }
    await waitConverged(members.map(i => this.agents[i]), { members: members.map(i => this.ids[i]), leader: this.ids[leader] }, ms)
  }

  /** The last `n` log lines of every agent at info level or above, for a failed test's output. */
  logTail (n = 30): string {
    const skip = new Set(['agent API listening', 'link token issued', 'incoming request', 'request completed'])
    return this.agents.map(a => `--- ${a.name} (${this.ids[a.index] ?? '?'})\n` + a.logs.filter(l => l.level >= 30 && !skip.has(l.msg)).slice(-n)
      .map(l => { const { level: _l, time, msg, agent: _a, pid: _p, hostname: _h, ...rest } = l; return `${new Date(time).toISOString().slice(11, 23)} r${l.run} ${msg} ${JSON.stringify(rest)}` }).join('\n')).join('\n')
  }

  /** Kills every agent and relay, removes the namespaces and the data. Safe to call twice. */
  async teardown (): Promise<void> {
    await Promise.allSettled(this.agents.map(async a => { await a.kill(); await a.stopRelay() }))
    await this.bed.destroy().catch(() => {})
    await rm(this.dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------
// Polling and the group as each agent sees it

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/**
 * Calls `fn` every `interval` ms until it returns something other than undefined/false; throws after
 * `ms` with `what` and, if given, `describe()` (the last state seen) in the message.
 */
export async function poll<T> (fn: () => Promise<T | undefined | false>, ms: number, what: string, describe?: () => string, interval = 200): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${describe != null ? `; last seen: ${describe()}` : ''}`)
    await sleep(interval)
  }
}

/** What one agent reports: its table condensed, and its settings. `up: false` when its API did not answer. */
export interface View {
  agent: string
  up: boolean
  at: number
  /** Member ids, sorted. */
  members: string[]
  /** Ids of rows with role `leader`. */
  leaders: string[]
  /** id → health. */
  health: Record<string, HostRow['health']>
  settings?: GroupSettings
  error?: string
}

export async function viewOf (a: NsAgent, withSettings = true): Promise<View> {
  const at = Date.now()
  if (!a.alive) return { agent: a.name, up: false, at, members: [], leaders: [], health: {}, error: 'not running' }
  try {
    const [rows, settings] = await Promise.all([a.hosts(), withSettings ? a.settings() : Promise.resolve(undefined)])
    return {
      agent: a.name,
      up: true,
      at,
      members: rows.map(r => r.id).sort(),
      leaders: rows.filter(r => r.role === 'leader').map(r => r.id),
      health: Object.fromEntries(rows.map(r => [r.id, r.health])),
      ...(settings != null ? { settings } : {})
    }
  } catch (err: any) {
    return { agent: a.name, up: false, at, members: [], leaders: [], health: {}, error: String(err?.message ?? err) }
  }
}

/** Short, readable form of views for failure messages (ids by their last 5 characters). */
export function describeViews (views: View[]): string {
  const s = (id: string): string => id.slice(-5)
  return views.map(v => !v.up
    ? `${v.agent}: down (${v.error ?? ''})`
    : `${v.agent}: leader=${v.leaders.map(s).join('+') || '-'} members=${v.members.length} ` +
      `unhealthy=[${Object.entries(v.health).filter(([, h]) => h !== 'Healthy').map(([id, h]) => `${s(id)}:${h}`).join(',')}] ` +
      `values=${JSON.stringify(v.settings?.values ?? {})}`).join(' | ')
}

export interface Expected {
  members: string[]
  /** The leader everyone must show; any single common leader when unset. */
  leader?: string
  /** Settings everyone must hold; any common settings when unset. */
  settings?: Partial<GroupSettings>
  /** Members that are down: every agent must show them `Unreachable` (all others `Healthy`). */
  down?: string[]
}

/**
 * Waits until every agent answers and all agree: the same members (`members`), every one
 * Healthy (but `down`, Unreachable), exactly one leader and the same everywhere, the same
 * settings. Returns the views.
 */
export async function waitConverged (agents: NsAgent[], want: Expected, ms: number): Promise<View[]> {
  let last: View[] = []
  const members = [...want.members].sort()
  return await poll(async () => {
    last = await Promise.all(agents.map(async a => await viewOf(a)))
    const ok = last.every(v =>
      v.up &&
      JSON.stringify(v.members) === JSON.stringify(members) &&
      Object.entries(v.health).every(([id, h]) => h === (want.down?.includes(id) === true ? 'Unreachable' : 'Healthy')) &&
      v.leaders.length === 1 && v.leaders[0] === (want.leader ?? last[0].leaders[0]) &&
      JSON.stringify(v.settings) === JSON.stringify(last[0].settings) &&
      (want.settings == null || Object.entries(want.settings).every(([k, val]) => JSON.stringify((v.settings as any)?.[k]) === JSON.stringify(val))))
    return ok ? last : undefined
  }, ms, 'every agent to agree on members, leader and settings, all Healthy', () => describeViews(last), 300)
}

// ---------------------------------------------------------------------------------------------
// Leadership per term, from what each agent logs when it takes the lead

/** Messages with which the library announces that this host now leads (with the term where it has one). */
const LEAD_MESSAGES: Record<string, (l: LogLine) => number | undefined> = {
  'group created with this host as leader': () => 1,
  'this host leads the group now': l => typeof l.term === 'number' ? l.term : undefined,
  'elected leader': l => typeof l.term === 'number' ? l.term : undefined
}

/** term → agents that claimed to lead it (an agent once however often it said so). */
export function leaderClaims (agents: NsAgent[]): Map<number, Set<string>> {
  const claims = new Map<number, Set<string>>()
  for (const a of agents) {
    for (const l of a.logs) {
      const term = LEAD_MESSAGES[l.msg]?.(l)
      if (term == null) continue
      if (!claims.has(term)) claims.set(term, new Set())
      claims.get(term)!.add(a.name)
    }
  }
  return claims
}

/** Terms that more than one agent claimed to lead, as `term: a, b` strings (empty when none). */
export function splitTerms (agents: NsAgent[]): string[] {
  return [...leaderClaims(agents)].filter(([, who]) => who.size > 1).map(([t, who]) => `${t}: ${[...who].join(', ')}`)
}

/** Periodic views of every agent, kept with their time, until `stop()`. */
export class Recorder {
  readonly views: View[] = []
  private running = true
  private readonly done: Promise<void>

  constructor (agents: NsAgent[], interval = 500) {
    this.done = (async () => {
      while (this.running) {
        this.views.push(...await Promise.all(agents.map(async a => await viewOf(a, false))))
        await sleep(interval)
      }
    })()
  }

  async stop (): Promise<View[]> {
    this.running = false
    await this.done
    return this.views
  }
}

export { rng, sleep }

/**
 * The hooks every fault suite needs, registered in the calling `describe`: network namespaces
 * required (loudly), and the bed of the test torn down after it, its agents' last log lines
 * printed first when the test failed. `create` makes a test's bed.
 */
export function faultBedHooks (o: { logLines?: number, teardownMs?: number } = {}): { create: (opts: FaultBedOptions) => Promise<FaultBed> } {
  let fb: FaultBed | undefined
  before(async function () { await requireNetns(this) })
  afterEach(async function () {
    this.timeout(o.teardownMs ?? 30_000)
    if (this.currentTest?.state === 'failed' && fb != null) console.log(fb.logTail(o.logLines))
    await fb?.teardown()
    fb = undefined
  })
  return { create: async (opts) => { fb = await FaultBed.create(opts); return fb } }
}
