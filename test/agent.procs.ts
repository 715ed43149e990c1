/**
 * Real agent processes for the agent tests: each on its own loopback IP, with its own data dir,
 * driven through the CLI as separate processes. Not a test file itself (no `.test.` in the name).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect } from 'chai'
import type { HostRow } from '../lib/index.ts'
import { loopbackIp, tempDir, waitFor } from './helpers.ts'

/** The agent bundle bin/edgelink runs (dist/agent/edgelink.mjs, made by `npm run build`), next to this file's compiled form in dist/test. */
export const CLI = fileURLToPath(new URL('../agent/edgelink.mjs', import.meta.url))
/** The repository root (dist/test → ../..), for bin/edgelink. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** The test runner's environment without anything that would change the agent's settings. */
export function cleanEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('EDGELINK_') && k !== 'XDG_STATE_HOME') env[k] = v
  }
  return { ...env, ...extra }
}

export interface Run { code: number | null, stdout: string, stderr: string }

/** Exit 1 with exactly one stderr line `edgelink: <message> (<CODE>)`. */
export function expectRefusal (r: { code: number | null, stderr: string }, code: string): void {
  const lines = r.stderr.trim().split('\n')
  expect(r.code, r.stderr).to.equal(1)
  expect(lines, r.stderr).to.have.length(1)
  expect(lines[0]).to.match(new RegExp(`^edgelink: .+ \\(${code}\\)$`))
}

/** Runs a program to completion; never rejects on a non-zero exit (tests assert the code). */
export async function run (file: string, args: string[], env = cleanEnv(), timeout = 60_000): Promise<Run> {
  return await new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout, killSignal: 'SIGKILL' })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString() })
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
    child.on('error', reject)
    child.on('close', code => { resolve({ code, stdout, stderr }) })
  })
}

/** `edgelink <args>` through the agent bundle with the test's node (24). */
export async function cli (...args: string[]): Promise<Run> {
  return await run(process.execPath, [CLI, ...args])
}

/** A port free on `ip` right now, for agents that must come back on the same mesh port. */
export async function freePort (ip: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, ip, () => {
      const port = (s.address() as { port: number }).port
      s.close(() => { resolve(port) })
    })
  })
}

export interface AgentSpec {
  name: string
  ip?: string
  port?: number
  dataDir?: string
  /** Pass the settings as EDGELINK_* variables instead of flags. */
  viaEnv?: boolean
  /** More `agent` flags, after the usual ones. */
  flags?: string[]
}

export class AgentProc {
  readonly name: string
  readonly ip: string
  readonly port: number
  readonly dataDir: string
  readonly viaEnv: boolean
  readonly flags: string[]
  child?: ChildProcess
  /** Everything the current process wrote to stderr (logs, banner), for failure messages. */
  stderr = ''
  private exited?: Promise<number | null>

  constructor (spec: Required<Omit<AgentSpec, 'viaEnv' | 'flags'>> & { viaEnv?: boolean, flags?: string[] }) {
    this.name = spec.name
    this.ip = spec.ip
    this.port = spec.port
    this.dataDir = spec.dataDir
    this.viaEnv = spec.viaEnv ?? false
    this.flags = spec.flags ?? []
  }

  get args (): string[] {
    if (this.viaEnv) return ['agent', ...this.flags]
    return ['agent', '--data-dir', this.dataDir, '--listen', `${this.ip}:${this.port}`, '--advertise', this.ip, '--api', '127.0.0.1:0', '--name', this.name, ...this.flags]
  }

  get env (): NodeJS.ProcessEnv {
    if (!this.viaEnv) return cleanEnv()
    return cleanEnv({
      EDGELINK_DATA_DIR: this.dataDir,
      EDGELINK_LISTEN: `${this.ip}:${this.port}`,
      EDGELINK_ADVERTISE: this.ip,
      EDGELINK_API: '127.0.0.1:0',
      EDGELINK_NAME: this.name,
      EDGELINK_LOG_LEVEL: 'warn'
    })
  }

  /** How long `start` waits for the agent's api.json, in ms. */
  protected readonly startTimeout: number = 15_000

  /**
   * Starts the agent process with `args` (the CLI's arguments); its pid must be the agent's. A
   * subclass may run it elsewhere, e.g. inside a network namespace (test/testbed/agents.ts).
   */
  protected spawnAgent (args: string[], env: NodeJS.ProcessEnv): ChildProcess {
    return spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  }

  /** Spawns the agent and resolves once it has written api.json (the API is up, the host started). */
  async start (): Promise<void> {
    const child = this.spawnAgent(this.args, this.env)
    this.child = child
    this.stderr = ''
    child.stderr?.on('data', (b: Buffer) => { this.stderr += b.toString() })
    child.stdout?.resume()
    this.exited = new Promise(resolve => { child.on('exit', code => { resolve(code) }) })
    let code: number | null | undefined
    void this.exited.then(c => { code = c })
    await waitFor(async () => {
      if (code !== undefined) throw new Error(`agent ${this.name} exited with ${code} before it was ready:\n${this.stderr}`)
      return (await this.apiFile().catch(() => undefined))?.pid === child.pid
    }, this.startTimeout, `api.json of agent ${this.name}`)
  }

  async apiFile (): Promise<{ url: string, token: string, pid: number }> {
    return JSON.parse(await readFile(join(this.dataDir, 'api.json'), 'utf8'))
  }

  /** A request to this agent's API; `auth: false` leaves the bearer out. */
  async api (method: string, path: string, init: { body?: string, headers?: Record<string, string>, auth?: boolean | string } = {}): Promise<{ status: number, body: any }> {
    const { url, token } = await this.apiFile()
    const bearer = init.auth === false ? undefined : typeof init.auth === 'string' ? init.auth : token
    const res = await fetch(new URL(path, url), {
      method,
      headers: { ...(bearer != null ? { authorization: `Bearer ${bearer}` } : {}), ...init.headers },
      ...(init.body != null ? { body: init.body } : {})
    })
    const text = await res.text()
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text) }
  }

  async cli (...args: string[]): Promise<Run> {
    return await cli(...args, '--data-dir', this.dataDir)
  }

  /** The Linked Edge Hosts rows this agent reports, through `edgelink hosts --json`. */
  async hosts (): Promise<HostRow[]> {
    const r = await this.cli('hosts', '--json')
    if (r.code !== 0) throw new Error(`hosts on ${this.name} exited ${r.code}: ${r.stderr}`)
    return JSON.parse(r.stdout)
  }

  async id (): Promise<string> {
    return (await this.api('GET', '/v1/edgelink/status')).body.id
  }

  /** SIGTERM, then SIGKILL after `grace` ms; resolves with the exit code (null if killed). */
  async stop (grace = 5_000): Promise<number | null> {
    const child = this.child
    if (child == null || this.exited == null) return null
    if (child.exitCode != null || child.signalCode != null) return child.exitCode
    child.kill('SIGTERM')
    const timer = setTimeout(() => { child.kill('SIGKILL') }, grace)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
    }
  }
}

/** Every agent and temp dir a test file made, so one `after` removes them all, even on failure. */
/** A Fleet whose agents are stopped after the calling `describe`'s tests (given 20 s to stop). */
export function fleetHooks (): Fleet {
  const fleet = new Fleet()
  after(async function () {
    this.timeout(20_000)
    await fleet.teardown()
  })
  return fleet
}

export class Fleet {
  readonly agents: AgentProc[] = []
  readonly dirs: string[] = []

  /** A started agent on a fresh loopback IP and a fixed free port (so it can restart on it). */
  async agent (spec: AgentSpec): Promise<AgentProc> {
    const ip = spec.ip ?? loopbackIp()
    const dataDir = spec.dataDir ?? await this.dir()
    const a = new AgentProc({ name: spec.name, ip, port: spec.port ?? await freePort(ip), dataDir, viaEnv: spec.viaEnv ?? false, flags: spec.flags })
    this.agents.push(a)
    await a.start()
    return a
  }

  async dir (): Promise<string> {
    const d = await tempDir('edgelink-agent-test-')
    this.dirs.push(d)
    return d
  }

  async teardown (): Promise<void> {
    await Promise.allSettled(this.agents.splice(0).map(async a => await a.stop(3_000)))
    await Promise.allSettled(this.dirs.splice(0).map(async d => { await rm(d, { recursive: true, force: true }) }))
  }
}

/**
 * Waits until every agent's `hosts --json` lists exactly `ids`, one leader (`leaderId`), the
 * rest followers, all Healthy.
 */
export async function waitForGroup (agents: AgentProc[], ids: string[], leaderId: string, ms = 10_000): Promise<void> {
  let last = ''
  try {
    await waitFor(async () => {
      const tables = await Promise.all(agents.map(async a => await a.hosts()))
      last = JSON.stringify(tables.map(t => t.map(r => ({ id: r.id.slice(-6), role: r.role, health: r.health }))))
      return tables.every(rows =>
        rows.length === ids.length &&
        ids.every(id => rows.some(r => r.id === id)) &&
        rows.every(r => r.health === 'Healthy' && r.role === (r.id === leaderId ? 'leader' : 'follower')))
    }, ms, 'a full healthy group on every host')
  } catch (err: any) {
    throw new Error(`${err.message}; last seen ${last}`)
  }
}
