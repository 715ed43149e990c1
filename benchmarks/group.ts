/**
 * Group benchmark: propagation of one settings change and one status change to every host,
 * failure detection of a killed host, and idle RSS per host, at N hosts, one process per host
 * (benchmarks/group-host.ts) while the group fits AUTO_PROCESSES_PER_CORE processes per core, else
 * several hosts per process (--hosts-per-process; each still has its own libp2p node, loopback IP,
 * TCP connections and LevelDB; the hosts killed keep a process each), with the default (lan) timings.
 * Hosts sharing a process share its event loop: their propagation figures include that queueing,
 * and their RSS is the process's (`idle.rss` is per process then, `hosts_per_process` says).
 * Host processes run as the agent does: bundled by `npm run build` like dist/agent/edgelink.mjs
 * (dist/benchmarks/group-host.bundle.mjs, scripts/bundle.mjs) with the agent's Node flags
 * (AGENT_NODE_FLAGS); `--unbundled` and `--node-flags` measure other set-ups.
 *
 *   npm run bench:group -- --sizes 10,50 --rounds 20 [--kills 3] [--no-serf]
 *                           [--variants='--max-semi-space-size=1|…'] [--variant-size 10] [--shared-source-ip]
 *
 * Each host dials from its own loopback IP (see group-host.ts: with one shared source IP,
 * gossipsub's IP-colocation penalty graylists peers and groups of ~16 hosts or more never settle).
 * All hosts share this machine's cores: `idle.cpu_pct_all_hosts`, `rounds_load` and, for a group
 * that did not form, `diagnostics.cores_busy_*` say when the machine, not the protocol, set the pace;
 * `rounds_load.event_loop_delay_ms` how long a busy process kept its hosts waiting.
 *
 * Baselines measured in the same run: a raw gossipsub publish between two plain libp2p processes
 * (one hop, edgelink's gossipsub options), HashiCorp Serf's failure detection at the same N, and
 * the RSS of a bare Node process, of a plain libp2p + gossipsub process and of an unlinked host.
 *
 * Prints one JSON object on stdout (also written to benchmarks/results/group-latest.json) and a
 * short table on stderr. Exits 0 when targets are missed (`pass` says so), 1 when the benchmark
 * itself fails. Every child (hosts, baselines, serf agents) is killed at the end, also on failure.
 * `run(options)` does the same for benchmarks/run.ts and returns the result object (the raw
 * propagation samples included, for the plots).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ParseArgsOptionsConfig } from 'node:util'
import { DEFAULTS } from '../lib/index.ts'
import { IpcChild } from './ipc.ts'
import { AGENT_NODE_FLAGS, agentEnv, agentEnvRecord, environment, loopbackIp, machineBusyMs, mb, ms, packageRoot, parseBenchArgs, percentile, procMemory, sleep, summarize, table, TempDirs, writeResult } from './lib.ts'

/** The issue's targets. */
export const TARGETS = { propagation_p50_ms: 30, propagation_max_ms: 100, failure_all_ms: 2000, rss_per_host_mb: 80 }

export interface GroupOptions {
  /** Group sizes (≥ 3), one group each. */
  sizes: number[]
  /** Settings rounds and status rounds per size. */
  rounds: number
  /** Followers SIGKILLed one after another per size (time to Unreachable). */
  kills: number
  /** Run Serf at the same sizes (skipped, with the reason, when it is not installed). */
  serf: boolean
  /** Seconds the formed group sits idle before RSS is read. */
  idleS: number
  /** Node flags of every host and baseline process (default the agent's, AGENT_NODE_FLAGS). */
  nodeFlags: string[]
  /** Host processes run the bundled host script, built like the agent (scripts/bundle.mjs); false: the unbundled one. */
  bundled: boolean
  /** Node flag sets to rerun one size with (each a list of flags). */
  variants: string[][]
  /** Group size the flag variants run at; default the smallest size that formed. */
  variantSize?: number
  linkConcurrency: number
  /** Seconds allowed to spawn, link and converge one group. */
  formationTimeoutS: number
  /** Let every host dial from 127.0.0.1 (the one-machine artifact group-host.ts explains) instead of its own IP. */
  sharedSourceIp: boolean
  /**
   * Hosts per process (the hosts the failure part kills always get their own). 0: one per process
   * while the group has at most AUTO_PROCESSES_PER_CORE processes per core, else as few per
   * process as keeps it there.
   */
  hostsPerProcess: number
}
export const GROUP_DEFAULTS: GroupOptions = {
  sizes: [10, 50],
  rounds: 20,
  kills: 3,
  serf: true,
  idleS: 10,
  nodeFlags: [...AGENT_NODE_FLAGS],
  bundled: true,
  variants: [],
  linkConcurrency: 10,
  formationTimeoutS: 120,
  sharedSourceIp: false,
  hostsPerProcess: 0
}
/** With `hostsPerProcess` 0, processes per core a group may use before hosts share processes. */
export const AUTO_PROCESSES_PER_CORE = 5

// Set by run() from its options; read by the functions below (one run at a time per process).
let SIZES = GROUP_DEFAULTS.sizes
let ROUNDS = GROUP_DEFAULTS.rounds
let KILLS = GROUP_DEFAULTS.kills
let IDLE_MS = GROUP_DEFAULTS.idleS * 1000
let VARIANTS = GROUP_DEFAULTS.variants
let NODE_FLAGS = GROUP_DEFAULTS.nodeFlags
let BUNDLED = GROUP_DEFAULTS.bundled
let LINK_CONCURRENCY = GROUP_DEFAULTS.linkConcurrency
let FORMATION_MS = GROUP_DEFAULTS.formationTimeoutS * 1000
let SHARED_SOURCE = GROUP_DEFAULTS.sharedSourceIp
let HOSTS_PER_PROCESS = GROUP_DEFAULTS.hostsPerProcess
/** Child options for a process listening on `ip`: it also dials from `ip`, like a separate machine. */
const at = (ip: string, rest: Record<string, unknown>): Record<string, unknown> => ({ ...rest, ...(SHARED_SOURCE ? {} : { sourceIp: ip }) })
/** Host options for a host listening on `ip`: it also dials from `ip` (HostOptions.dialFrom). */
const hostAt = (ip: string, rest: Record<string, unknown>): Record<string, unknown> => ({ listen: [`${ip}:0`], ...rest, ...(SHARED_SOURCE ? {} : { dialFrom: ip }) })
/** The default (lan) timings, stated explicitly so the figures say what they were measured with. */
const TIMINGS = { statusInterval: DEFAULTS.statusInterval, failureTimeout: DEFAULTS.failureTimeout, disconnectGrace: DEFAULTS.disconnectGrace }
const ROUND_TIMEOUT = 5_000
const DETECT_TIMEOUT = 15_000
const SERF_TIMEOUT = 60_000

/** Epoch ms with sub-ms resolution (the children stamp with the same clock). */
const now = (): number => performance.timeOrigin + performance.now()
const HOST_SCRIPT = fileURLToPath(new URL(`./group-host${extname(fileURLToPath(import.meta.url))}`, import.meta.url))
/** group-host.ts bundled by `npm run build` the way the agent is (scripts/bundle.mjs). */
const HOST_BUNDLE = join(packageRoot(), 'dist', 'benchmarks', 'group-host.bundle.mjs')
const dirs = new TempDirs()
/** Every process this run started, so `finally` and signals can end them all (by pid). */
const procs = new Set<ChildProcess>()

// ---------------------------------------------------------------- children

/** A forked group host (or a raw libp2p node, or a bare Node process). */
class Child extends IpcChild {
  /** Edgelink hosts this process runs. */
  hosts = 1

  static async spawn (mode: 'host' | 'raw' | 'bare', label: string, opts: Record<string, unknown>, execArgv: string[], timeout: number): Promise<Child> {
    // Bare Node and plain libp2p are floors: only edgelink hosts run bundled.
    const script = mode === 'host' && BUNDLED ? HOST_BUNDLE : HOST_SCRIPT
    const proc = fork(script, [mode], {
      execPath: process.execPath,
      execArgv,
      env: agentEnv({ GROUP_HOST_OPTS: JSON.stringify(opts) }),
      stdio: ['ignore', 'ignore', 'pipe', 'ipc']
    })
    return await new Child(proc, label, procs).ready(timeout, mode !== 'bare')
  }

  override async call (cmd: string, params: Record<string, unknown> = {}, timeout = 15_000): Promise<any> {
    return await super.call(cmd, params, timeout)
  }
}

/**
 * One edgelink host of a group: `h` of its process (several hosts share one with
 * --hosts-per-process). Calls and events are routed by `h`; CPU is the process's, shared evenly.
 */
class HostRef {
  readonly child: Child
  readonly h: number
  readonly label: string
  id = ''
  addrs: string[] = []

  constructor (child: Child, h: number, label: string) {
    this.child = child
    this.h = h
    this.label = label
  }

  get pid (): number { return this.child.pid }
  get alive (): boolean { return this.child.alive }
  get proc (): ChildProcess { return this.child.proc }
  /** This host's share of its process's CPU time, in ms. */
  cpuMs (): number { return cpuMs(this.child.pid) / this.child.hosts }

  async info (): Promise<this> {
    const i = await this.call('info')
    this.id = i.id
    this.addrs = i.addrs
    return this
  }

  async call (cmd: string, params: Record<string, unknown> = {}, timeout?: number): Promise<any> {
    return await this.child.call(cmd, { ...params, h: this.h }, timeout)
  }

  on (fn: (e: Record<string, any>) => void): void {
    this.child.on(e => { if ((e.h ?? 0) === this.h) fn(e) })
  }
}

/**
 * Which hosts share a process: `HOSTS_PER_PROCESS` at a time, except the ones the failure part
 * kills (the last `kills`), which get a process each, so that SIGKILL takes only them.
 */
function layout (size: number, kills: number): number[][] {
  const victims = Math.max(0, Math.min(kills, size - 2))
  const per = hostsPerProcess(size, kills)
  const out: number[][] = []
  for (let i = 0; i < size - victims; i += per) out.push(Array.from({ length: Math.min(per, size - victims - i) }, (_, k) => i + k))
  for (let i = size - victims; i < size; i++) out.push([i])
  return out
}

/** Hosts per shared process at `size` (see GroupOptions.hostsPerProcess). */
export function hostsPerProcess (size: number, kills: number, per = HOSTS_PER_PROCESS, cpus = availableParallelism()): number {
  if (per > 0) return per
  const budget = AUTO_PROCESSES_PER_CORE * cpus
  if (size <= budget) return 1
  const victims = Math.max(0, Math.min(kills, size - 2))
  return Math.ceil((size - victims) / Math.max(1, budget - victims))
}

/** The distinct processes of `hosts`. */
function processesOf (hosts: HostRef[]): Child[] {
  return [...new Set(hosts.map(x => x.child))]
}

function killAll (): void {
  for (const p of procs) { try { p.kill('SIGKILL') } catch {} }
}

async function stopAll (children: Child[]): Promise<void> {
  await Promise.allSettled(children.map(async c => { await c.stop() }))
}

async function within<T> (msec: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what} took over ${msec} ms`)) }, msec) })])
  } finally {
    clearTimeout(timer)
  }
}

async function until (fn: () => boolean | Promise<boolean>, msec: number, every = 20): Promise<boolean> {
  const end = Date.now() + msec
  while (!(await fn())) {
    if (Date.now() > end) return false
    await sleep(every)
  }
  return true
}

// ---------------------------------------------------------------- /proc readings

/** utime + stime of a process, in ms. */
function cpuMs (pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) * 10 // USER_HZ is 100 on Linux
  } catch { return NaN }
}

interface MemoryFigures {
  n: number
  rss_mean_mb: number
  rss_max_mb: number
  rss_min_mb: number
  /** RSS split: anon (the process's own), file (the node binary's pages, shared by all hosts on one machine), PSS (shared pages divided). */
  anon_mean_mb: number
  file_mean_mb: number
  pss_mean_mb: number
  heap_used_mean_mb: number
  heap_total_mean_mb: number
  external_mean_mb: number
  /** V8 heap spaces, mean size / used in MB: new_space is the young generation. */
  heap_spaces_mb: Record<string, { size: number, used: number }>
  /** Each process's RSS in MB, by its label (which host, or hosts, it runs): where the max is. */
  rss_by_process_mb: Record<string, number>
}

async function memoryOf (children: Child[]): Promise<MemoryFigures> {
  const proc = children.map(c => procMemory(c.pid))
  const inner = await Promise.all(children.map(async c => await c.call('memory')))
  const mean = (xs: number[]): number => mb(xs.reduce((a, b) => a + b, 0) / xs.length)
  return {
    n: children.length,
    rss_mean_mb: mean(proc.map(p => p.rss)),
    rss_max_mb: mb(Math.max(...proc.map(p => p.rss))),
    rss_min_mb: mb(Math.min(...proc.map(p => p.rss))),
    rss_by_process_mb: Object.fromEntries(children.map((c, i) => [c.label, mb(proc[i].rss)])),
    anon_mean_mb: mean(proc.map(p => p.anon)),
    file_mean_mb: mean(proc.map(p => p.file)),
    pss_mean_mb: mean(proc.map(p => p.pss)),
    heap_used_mean_mb: mean(inner.map(m => m.heapUsed)),
    heap_total_mean_mb: mean(inner.map(m => m.heapTotal)),
    external_mean_mb: mean(inner.map(m => m.external)),
    heap_spaces_mb: Object.fromEntries(['new_space', 'old_space', 'code_space', 'large_object_space', 'trusted_space'].filter(k => inner[0]?.spaces?.[k] != null).map(k => [k, {
      size: mean(inner.map(m => m.spaces[k]?.size ?? 0)),
      used: mean(inner.map(m => m.spaces[k]?.used ?? 0))
    }]))
  }
}

/**
 * The flags of a process that runs `hosts` hosts: a young-generation size (`--max-semi-space-size`)
 * is the agent's per host, so multiplied by `hosts`. Seven hosts sharing the 1 MiB of one agent
 * would collect seven times as often as any agent does, and the latency figures would measure that.
 */
export function flagsForHosts (flags: string[], hosts: number): string[] {
  return flags.map(f => {
    const m = /^--max-semi-space-size=(\d+)$/.exec(f)
    return m == null || hosts <= 1 ? f : `--max-semi-space-size=${Number(m[1]) * hosts}`
  })
}

// ---------------------------------------------------------------- statistics

interface Stats { n: number, min: number, p50: number, p90: number, p99: number, max: number, mean: number }

function stats (samples: number[]): Stats {
  if (samples.length === 0) return { n: 0, min: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN }
  const s = summarize(samples)
  return { n: s.n, min: s.min, p50: s.p50, p90: s.p90, p99: ms(percentile(samples, 99)), max: s.max, mean: s.mean }
}

// ---------------------------------------------------------------- baselines

/** One hop of a raw gossipsub publish between two plain libp2p processes, plus memory floors. */
async function baselines (execArgv: string[], latencyRounds: number): Promise<{ gossipsub?: Stats & { samples: number[] }, memory: Record<string, MemoryFigures> }> {
  const children: Child[] = []
  try {
    const [bare, a, b, solo] = await Promise.all([
      Child.spawn('bare', 'bare', {}, execArgv, 30_000),
      (async () => { const ip = loopbackIp(); return await Child.spawn('raw', 'raw-a', at(ip, { ip }), execArgv, 30_000) })(),
      (async () => { const ip = loopbackIp(); return await Child.spawn('raw', 'raw-b', at(ip, { ip }), execArgv, 30_000) })(),
      (async () => { const ip = loopbackIp(); return await Child.spawn('host', 'solo', { hosts: [hostAt(ip, { dataDir: await dirs.make(), name: 'solo' })] }, execArgv, 30_000) })()
    ])
    children.push(bare, a, b, solo)
    const topic = '/edgelink-bench/group/1'
    await Promise.all([a.call('subscribe', { topic }), b.call('subscribe', { topic })])
    await b.call('dial', { addr: a.addrs[0] })
    if (!await until(async () => (await a.call('subscribers', { topic })) >= 1 && (await b.call('subscribers', { topic })) >= 1, 10_000, 50)) throw new Error('raw gossipsub pair never saw each other subscribed')
    let gossip: (Stats & { samples: number[] }) | undefined
    if (latencyRounds > 0) {
      const got = new Map<number, number>()
      b.on(e => { if (e.ev === 'raw') got.set(e.sent, e.t) })
      const samples: number[] = []
      for (let i = 0; i < latencyRounds + 10; i++) {
        const { t0 } = await a.call('publish', { topic })
        await until(() => got.has(t0), ROUND_TIMEOUT, 1)
        if (i >= 10 && got.has(t0)) samples.push(got.get(t0)! - t0) // the first 10 warm up
        await sleep(20 + Math.random() * 30)
      }
      gossip = { ...stats(samples), samples: samples.map(ms) }
    }
    await sleep(IDLE_MS)
    return {
      gossipsub: gossip,
      memory: { bare_node: await memoryOf([bare]), libp2p_gossipsub: await memoryOf([a, b]), edgelink_unlinked: await memoryOf([solo]) }
    }
  } finally {
    await stopAll(children)
  }
}

// ---------------------------------------------------------------- an edgelink group

interface Formation { spawn_ms: number, link_ms: number, healthy_everywhere_ms: number, total_ms: number, link_retries: number, link_errors: string[] }

interface GroupRun {
  size: number
  node_flags: string[]
  /** Hosts sharing one process (1: a process per host); the hosts killed always have their own. */
  hosts_per_process: number
  processes: number
  formation: Formation
  idle: {
    /** Per process: with several hosts per process, not a per-host figure. */
    rss: MemoryFigures
    cpu_pct_per_host_mean: number
    /** Sum over hosts, in % of one core: above 100 × cores the machine, not the protocol, sets the pace. */
    cpu_pct_all_hosts: number
    connections_mean: number
    /** Status messages each host accepted per second (about N − 1 at one heartbeat per second). */
    status_accepted_per_s: number
    /** Signature checks per host per second: gossipsub verifies every copy of a message before it dedupes. */
    verifies_per_s: number
    verifies_per_accepted: number
    /** Cores busy machine-wide during the idle window, and the part not used by these hosts (other work on the machine). */
    machine_cores_busy: number
    other_cores_busy: number
  }
  /** The same for the settings + status rounds: propagation figures are only as good as this is low. */
  rounds_load: {
    machine_cores_busy: number
    hosts_cores_busy: number
    other_cores_busy: number
    /** How late the host processes' event loops ran during the rounds (10 ms samples): the worst process's p99, and the longest delay seen. */
    event_loop_delay_ms?: { p99_worst: number, max: number, gc_pause_max: number }
  }
  /** `samples`: every arrival (ms after the change), for distributions and plots. */
  settings: Stats & { lost: number, leader_update_call: Stats, samples: number[] }
  status: Stats & { lost: number, samples: number[] }
  failure?: { kills: Array<{ all_ms: number, p50_ms: number, observers: number, detected: number }>, all_ms_max: number, p50_ms: number }
}

/** What a group that did not form looked like when the bound ran out. */
class FormationFailed extends Error {
  readonly report: Record<string, unknown>
  constructor (report: Record<string, unknown>) {
    super(String(report.error))
    this.report = report
  }
}

async function formationDiagnostics (children: HostRef[], size: number, start: number): Promise<Record<string, unknown>> {
  const alive = children.filter(c => c.alive)
  const wall = Date.now() - start
  // CPU all hosts used since they were spawned, then over a 5 s window now: cores busy.
  const cpuTotal = alive.reduce((a, c) => a + c.cpuMs(), 0)
  const counters = async (): Promise<any[]> => await Promise.all(alive.map(async c => await c.call('counters', {}, 5_000).catch(() => undefined)))
  const k0 = await counters()
  const cpu0 = alive.map(c => c.cpuMs())
  const t0 = Date.now()
  await sleep(5_000)
  const cores = alive.reduce((a, c, i) => a + c.cpuMs() - cpu0[i], 0) / (Date.now() - t0)
  const k1 = await counters()
  const w = (Date.now() - t0) / 1000
  const both = alive.map((_, i) => [k0[i], k1[i]]).filter(([a, b]) => a != null && b != null)
  const perHost = (k: string): number => Math.round(both.reduce((a, [x, y]) => a + y[k] - x[k], 0) / Math.max(1, both.length) / w * 10) / 10
  const rows = await Promise.all(alive.map(async c => await c.call('rows', {}, 5_000).catch(() => undefined)))
  const healthy = rows.filter(r => r != null).map((r: any[]) => r.filter(x => x.health === 'Healthy').length)
  const mem = processesOf(alive).map(c => procMemory(c.pid).rss)
  return {
    hosts_alive: alive.length,
    cores_busy_since_spawn: Math.round(cpuTotal / wall * 100) / 100,
    cores_busy_last_5s: Math.round(cores * 100) / 100,
    cores_available: environment().cpus,
    hosts_answering: healthy.length,
    healthy_rows_seen_per_host: healthy.length > 0 ? { min: Math.min(...healthy), p50: percentile(healthy, 50), max: Math.max(...healthy), of: size } : undefined,
    hosts_seeing_all_healthy: healthy.filter(h => h === size).length,
    status_accepted_per_host_per_s: perHost('statusAccepted'),
    verifies_per_host_per_s: perHost('verifies'),
    connections_mean: Math.round(both.reduce((a, [, y]) => a + y.connections, 0) / Math.max(1, both.length) * 10) / 10,
    rss_mean_mb: mb(mem.reduce((a, b) => a + b, 0) / Math.max(1, mem.length)),
    rss_max_mb: mb(Math.max(...mem))
  }
}

async function groupRun (size: number, execArgv: string[], kills: number): Promise<GroupRun> {
  const children: HostRef[] = []
  const start = Date.now()
  const remaining = (): number => Math.max(1, FORMATION_MS - (Date.now() - start))
  // Every event a group run needs, recorded as it arrives (events may beat the RPC answer).
  const settingsAt = new Map<number, Map<number, number>>() // seq → host index → t
  const statusAt = new Map<number, Map<number, number>>()
  const unreachableAt = new Map<string, Map<number, number>>() // host id → observer index → first t
  const listen = (c: HostRef, i: number): void => {
    c.on(e => {
      if (e.ev === 'settings') { if (!settingsAt.has(e.seq)) settingsAt.set(e.seq, new Map()); if (!settingsAt.get(e.seq)!.has(i)) settingsAt.get(e.seq)!.set(i, e.t) }
      if (e.ev === 'status') { if (!statusAt.has(e.seq)) statusAt.set(e.seq, new Map()); if (!statusAt.get(e.seq)!.has(i)) statusAt.get(e.seq)!.set(i, e.t) }
      if (e.ev === 'health' && e.health === 'Unreachable') {
        if (!unreachableAt.has(e.id)) unreachableAt.set(e.id, new Map())
        const m = unreachableAt.get(e.id)!
        m.set(i, Math.min(m.get(i) ?? Infinity, e.t))
      }
    })
  }
  let spawnMs = NaN
  let linkMs = NaN
  let retries = 0
  let linked = 0
  const linkErrors: string[] = []
  const orphaned: string[] = []
  let formationOver = false // stops link workers still retrying when the bound ran out
  try {
    // ---- form: spawn every host, the leader issues fresh tokens, followers link, all Healthy.
    try {
      await within(FORMATION_MS, `spawning ${size} hosts`, Promise.all(layout(size, kills).map(async (indices) => {
        const hosts = await Promise.all(indices.map(async i => {
          const host = hostAt(loopbackIp(), { dataDir: await dirs.make(), name: `h${i}`, ...TIMINGS })
          // All followers dial from one machine: lift the leader's per-IP join limit and guest cap.
          if (i === 0) Object.assign(host, { joinRateLimit: 10_000, maxGuests: size + 8, maxLiveTokens: Math.max(64, size + 8) })
          return host
        }))
        const label = indices.length === 1 ? `h${indices[0]}` : `h${indices[0]}-h${indices.at(-1)!}`
        const proc = await Child.spawn('host', label, { hosts }, flagsForHosts(execArgv, hosts.length), remaining())
        proc.hosts = indices.length
        await Promise.all(indices.map(async (i, k) => {
          const c = await new HostRef(proc, k, `h${i}`).info()
          listen(c, i)
          children[i] = c
        }))
      })))
      spawnMs = Date.now() - start
      process.stderr.write(`  N=${size}: ${size} hosts in ${processesOf(children).length} processes ready in ${spawnMs} ms\n`)
      const leader = children[0]

      const linkStart = Date.now()
      const queue = children.slice(1)
      await within(remaining(), `linking ${size - 1} followers`, Promise.all(Array.from({ length: Math.min(LINK_CONCURRENCY, queue.length) }, async () => {
        for (let f = queue.shift(); f != null && !formationOver; f = queue.shift()) {
          for (let attempt = 0; !formationOver; attempt++) {
            const token = await leader.call('token', {}, remaining())
            const s = await f.call('link', { token }, 30_000).catch((err: Error) => ({ status: 'Failed', errorMessage: err.message }))
            if (s.status === 'Completed') { linked++; break }
            if (s.errorCode === 'ALREADY_MEMBER' || String(s.errorMessage).includes('ALREADY_MEMBER')) {
              // A retry after a join that timed out on the follower's side while the leader admitted
              // it: in if the follower holds the roster, else orphaned (the leader lists it, it does
              // not know, and every re-link answers ALREADY_MEMBER): the group cannot complete.
              if ((await f.call('rows', {}, remaining())).length > 1) { linked++; break }
              orphaned.push(f.label)
              throw new Error(`${f.label} is orphaned: its join timed out on its side (${linkErrors.filter(e => e.startsWith(f.label + ' ')).at(-1) ?? '?'}) but the leader admitted it, and re-linking answers ALREADY_MEMBER`)
            }
            linkErrors.push(`${f.label} @${Date.now() - linkStart} ms: ${String(s.errorCode ?? '')} ${String(s.errorMessage ?? '')}`.slice(0, 300))
            process.stderr.write(`    link retry: ${linkErrors.at(-1)!}\n`)
            // Retry with a fresh token until the formation bound (within() above) ends it.
            if (!f.alive || !leader.alive) throw new Error(`${f.label} could not link: ${linkErrors.at(-1)!}`)
            retries++
            await sleep(200)
          }
        }
      })))
      linkMs = Date.now() - linkStart

      const allHealthy = async (): Promise<boolean> => {
        const rows = await Promise.all(children.map(async c => await c.call('rows').catch(() => [])))
        return rows.every(r => r.length === size && r.every((x: any) => x.health === 'Healthy'))
      }
      if (!await until(allHealthy, remaining(), 500)) throw new Error(`not every host showed all ${size} Healthy within ${FORMATION_MS} ms`)
    } catch (err) {
      formationOver = true
      process.stderr.write(`  N=${size}: formation failed after ${Date.now() - start} ms: ${(err as Error).message}\n`)
      const diagnostics = await formationDiagnostics(children.filter(c => c != null), size, start)
      throw new FormationFailed({ size, node_flags: execArgv, error: (err as Error).message, elapsed_ms: Date.now() - start, spawn_ms: spawnMs, link_ms: linkMs, linked, orphaned, link_retries: retries, link_errors: linkErrors.slice(0, 12), diagnostics })
    }
    const all = children
    const leader = all[0]
    const healthyStart = start + spawnMs + linkMs
    const formation: Formation = { spawn_ms: spawnMs, link_ms: linkMs, healthy_everywhere_ms: Date.now() - healthyStart, total_ms: Date.now() - start, link_retries: retries, link_errors: linkErrors.slice(0, 12) }
    process.stderr.write(`  N=${size}${execArgv.length > 0 ? ' ' + execArgv.join(' ') : ''}: formed in ${formation.total_ms} ms (spawn ${spawnMs}, link ${linkMs}, healthy ${formation.healthy_everywhere_ms})\n`)

    // ---- idle: CPU of the heartbeats, then memory.
    const counters0 = await Promise.all(all.map(async c => await c.call('counters')))
    const cpu0 = all.map(c => c.cpuMs())
    const idle0 = Date.now()
    const machine0 = machineBusyMs()
    await sleep(IDLE_MS)
    const idleWall = Date.now() - idle0
    const machineIdle = (machineBusyMs() - machine0) / idleWall
    const cpuPct = all.map((c, i) => (c.cpuMs() - cpu0[i]) / idleWall * 100)
    const counters1 = await Promise.all(all.map(async c => await c.call('counters')))
    const rss = await memoryOf(processesOf(all))
    const conns = counters1.map(c => c.connections as number)
    const perHostPerS = (k: string): number => counters1.reduce((a, c, i) => a + c[k] - counters0[i][k], 0) / size / (idleWall / 1000)
    const idle = {
      rss,
      cpu_pct_per_host_mean: Math.round(cpuPct.reduce((a, b) => a + b, 0) / size * 10) / 10,
      cpu_pct_all_hosts: Math.round(cpuPct.reduce((a, b) => a + b, 0)),
      connections_mean: Math.round(conns.reduce((a: number, b: number) => a + b, 0) / size * 10) / 10,
      status_accepted_per_s: Math.round(perHostPerS('statusAccepted') * 10) / 10,
      verifies_per_s: Math.round(perHostPerS('verifies') * 10) / 10,
      verifies_per_accepted: Math.round(perHostPerS('verifies') / perHostPerS('statusAccepted') * 10) / 10,
      machine_cores_busy: Math.round(machineIdle * 100) / 100,
      other_cores_busy: Math.round((machineIdle - cpuPct.reduce((a, b) => a + b, 0) / 100) * 100) / 100
    }

    // ---- settings: the leader changes one value at t0; every other host's 'settings' event.
    await Promise.all(processesOf(all).map(async c => await c.call('eventLoop', { reset: true })))
    const roundsT0 = Date.now()
    const roundsMachine0 = machineBusyMs()
    const roundsHosts0 = all.reduce((a, c) => a + c.cpuMs(), 0)
    const settingsSamples: number[] = []
    /** updateSettings on the leader: sign, store, publish (receivers' time starts at the same t0). */
    const leaderCall: number[] = []
    let settingsLost = 0
    for (let seq = 1; seq <= ROUNDS; seq++) {
      const { t0, t1 } = await leader.call('updateSettings', { seq })
      leaderCall.push(t1 - t0)
      const arrived = (): number => [...(settingsAt.get(seq)?.keys() ?? [])].filter(i => i !== 0).length
      await until(() => arrived() === size - 1, ROUND_TIMEOUT, 2)
      for (const [i, t] of settingsAt.get(seq) ?? []) if (i !== 0) settingsSamples.push(t - t0)
      settingsLost += size - 1 - arrived()
      await sleep(150 + Math.random() * 250) // spread t0 over the heartbeat phase
    }

    // ---- status: one follower (a different one each round) changes its status at t0.
    const statusSamples: number[] = []
    let statusLost = 0
    for (let seq = 1; seq <= ROUNDS; seq++) {
      const target = 1 + ((seq - 1) % (size - 1))
      const { t0 } = await all[target].call('statusChange', { seq })
      const arrived = (): number => [...(statusAt.get(seq)?.keys() ?? [])].filter(i => i !== target).length
      await until(() => arrived() === size - 1, ROUND_TIMEOUT, 2)
      for (const [i, t] of statusAt.get(seq) ?? []) if (i !== target) statusSamples.push(t - t0)
      statusLost += size - 1 - arrived()
      await sleep(150 + Math.random() * 250)
    }

    const roundsWall = Date.now() - roundsT0
    const roundsHosts = (all.reduce((a, c) => a + c.cpuMs(), 0) - roundsHosts0) / roundsWall
    const roundsMachine = (machineBusyMs() - roundsMachine0) / roundsWall
    const cores = (x: number): number => Math.round(x * 100) / 100
    const delays = await Promise.all(processesOf(all).map(async c => await c.call('eventLoop', {}) as { p99_ms: number, max_ms: number, gc_max_ms: number }))
    const roundsLoad = {
      machine_cores_busy: cores(roundsMachine),
      hosts_cores_busy: cores(roundsHosts),
      other_cores_busy: cores(roundsMachine - roundsHosts),
      event_loop_delay_ms: {
        p99_worst: Math.round(Math.max(...delays.map(d => d.p99_ms))),
        max: Math.round(Math.max(...delays.map(d => d.max_ms))),
        gc_pause_max: Math.round(Math.max(...delays.map(d => d.gc_max_ms)))
      }
    }
    process.stderr.write(`  N=${size}: during the rounds ${roundsLoad.machine_cores_busy} cores busy; event loops late by up to ${roundsLoad.event_loop_delay_ms.max} ms (worst p99 ${roundsLoad.event_loop_delay_ms.p99_worst} ms, longest GC pause ${roundsLoad.event_loop_delay_ms.gc_pause_max} ms)\n`)

    // ---- failure detection: SIGKILL followers one after another (the last ones).
    let failure: GroupRun['failure']
    if (kills > 0) {
      const results: NonNullable<GroupRun['failure']>['kills'] = []
      const samples: number[] = []
      const dead = new Set<number>()
      for (let k = 0; k < kills && k < size - 2; k++) {
        const victim = size - 1 - k
        const vid = all[victim].id
        const observers = all.map((_, i) => i).filter(i => i !== victim && !dead.has(i))
        unreachableAt.delete(vid)
        const t0 = now()
        all[victim].proc.kill('SIGKILL')
        dead.add(victim)
        const seen = (): number[] => observers.map(i => unreachableAt.get(vid)?.get(i)).filter((t): t is number => t != null && t >= t0).map(t => t - t0)
        await until(() => seen().length === observers.length, DETECT_TIMEOUT, 10)
        const d = seen()
        samples.push(...d)
        results.push({ all_ms: d.length === observers.length ? ms(Math.max(...d)) : Infinity, p50_ms: ms(percentile(d, 50)), observers: observers.length, detected: d.length })
        await sleep(1_000 + Math.random() * 1_000) // next kill at another heartbeat phase
      }
      const allD = results.map(r => r.all_ms)
      failure = { kills: results, all_ms_max: Math.max(...allD), p50_ms: ms(percentile(samples, 50)) }
    }

    return { size, node_flags: execArgv, hosts_per_process: hostsPerProcess(size, kills), processes: processesOf(all).length, formation, idle, rounds_load: roundsLoad, settings: { ...stats(settingsSamples), lost: settingsLost, leader_update_call: stats(leaderCall), samples: settingsSamples.map(ms) }, status: { ...stats(statusSamples), lost: statusLost, samples: statusSamples.map(ms) }, failure }
  } finally {
    await stopAll(processesOf(children.filter(c => c != null)))
  }
}

// ---------------------------------------------------------------- serf

interface SerfRun { size: number, converge_ms: number, failed_all_ms: number, failed_p50_ms: number, observers: number, detected: number, rss_mean_mb: number }

async function serfRun (size: number): Promise<SerfRun> {
  const agents: Array<{ proc: ChildProcess, name: string, joins: Set<string>, failedAt: Map<string, number> }> = []
  try {
    const ips = Array.from({ length: size }, () => loopbackIp())
    const start = Date.now()
    for (let i = 0; i < size; i++) {
      const name = `s${i}`
      const argv = ['agent', `-node=${name}`, `-bind=${ips[i]}:7946`, `-rpc-addr=${ips[i]}:7373`, '-log-level=info']
      // retry-join: a join sent before the seed listens (or lost under load) is tried again.
      if (i > 0) argv.push(`-retry-join=${ips[0]}:7946`, '-retry-interval=1s')
      const proc = spawn('serf', argv, { stdio: ['ignore', 'pipe', 'pipe'] })
      procs.add(proc)
      proc.once('exit', () => procs.delete(proc))
      const agent = { proc, name, joins: new Set<string>(), failedAt: new Map<string, number>() }
      let buf = ''
      proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
        const t = now()
        buf += d
        const lines = buf.split('\n')
        buf = lines.pop()!
        for (const line of lines) {
          const j = /serf: EventMemberJoin: (\S+)/.exec(line)
          if (j != null) agent.joins.add(j[1])
          const f = /serf: EventMemberFailed: (\S+)/.exec(line)
          if (f != null && !agent.failedAt.has(f[1])) agent.failedAt.set(f[1], t)
        }
      })
      proc.stderr!.resume()
      agents.push(agent)
      if (i === 0) await sleep(300) // the seed listens before the others join it
    }
    if (!await until(() => agents.every(a => a.joins.size === size), SERF_TIMEOUT, 50)) {
      const seen = agents.map(a => a.joins.size)
      throw new Error(`serf: ${size} agents did not all see each other in ${SERF_TIMEOUT} ms (members seen per agent: min ${Math.min(...seen)}, max ${Math.max(...seen)}; ${agents.filter(a => a.proc.exitCode != null).length} exited)`)
    }
    const converge = Date.now() - start
    await sleep(2_000)
    const rss = agents.map(a => procMemory(a.proc.pid!).rss)
    const victim = agents[size - 1]
    const observers = agents.slice(0, -1)
    const t0 = now()
    victim.proc.kill('SIGKILL')
    const seen = (): number[] => observers.map(a => a.failedAt.get(victim.name)).filter((t): t is number => t != null).map(t => t - t0)
    await until(() => seen().length === observers.length, SERF_TIMEOUT, 20)
    const d = seen()
    return {
      size,
      converge_ms: converge,
      failed_all_ms: d.length === observers.length ? ms(Math.max(...d)) : Infinity,
      failed_p50_ms: ms(percentile(d, 50)),
      observers: observers.length,
      detected: d.length,
      rss_mean_mb: mb(rss.reduce((a, b) => a + b, 0) / rss.length)
    }
  } finally {
    for (const a of agents) a.proc.kill('SIGKILL')
    await Promise.all(agents.map(async a => { if (a.proc.exitCode == null && a.proc.signalCode == null) await new Promise(resolve => a.proc.once('exit', resolve)) }))
  }
}

async function serfAvailable (): Promise<string | undefined> {
  return await new Promise(resolve => {
    const p = spawn('serf', ['version'], { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    p.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
    p.once('error', () => { resolve(undefined) })
    p.once('exit', code => { resolve(code === 0 ? out.split('\n')[0].trim() : undefined) })
  })
}

// ---------------------------------------------------------------- main

/**
 * What one signature check costs, done as libp2p's Ed25519 verify does it (a KeyObject per call),
 * in this process while nothing else runs: the unit of the heartbeat's CPU bill.
 */
function verifyCostUs (): number {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const jwk = publicKey.export({ format: 'jwk' })
  const msg = randomBytes(300)
  const sig = sign(null, msg, privateKey)
  const n = 3000
  const t0 = performance.now()
  for (let i = 0; i < n; i++) verify(null, msg, createPublicKey({ format: 'jwk', key: { crv: 'Ed25519', x: jwk.x!, kty: 'OKP' } }), sig)
  return Math.round((performance.now() - t0) / n * 1000 * 10) / 10
}

type SizeResult = (GroupRun & { formed: true }) | ({ formed: false, size: number } & Record<string, unknown>)

/** One size's entry in the result: the run with its ratios, or what a group that did not form looked like. */
export type GroupSizeEntry =
  | (GroupRun & { formed: true, idle_cpu_ms_per_host_per_s_for_verifies: number, ratios: Record<string, number> })
  | ({ formed: false, size: number, serf_failed_all_ms?: number } & Record<string, unknown>)

export type GroupResult = Awaited<ReturnType<typeof measure>>['result']

/**
 * The whole group benchmark with `options`. Prints progress and its table on stderr, returns the
 * result object; every child is killed and the temp dirs are removed when it settles.
 */
export async function run (options: Partial<GroupOptions> = {}): Promise<GroupResult> {
  const o = { ...GROUP_DEFAULTS, ...options }
  SIZES = o.sizes.filter(n => n >= 3)
  ROUNDS = o.rounds
  KILLS = o.kills
  IDLE_MS = o.idleS * 1000
  VARIANTS = o.variants.filter(v => v.length > 0)
  NODE_FLAGS = o.nodeFlags
  BUNDLED = o.bundled
  if (BUNDLED && !existsSync(HOST_BUNDLE)) throw new Error(`${HOST_BUNDLE} is missing: run \`npm run build\` (or pass --unbundled)`)
  LINK_CONCURRENCY = o.linkConcurrency
  FORMATION_MS = o.formationTimeoutS * 1000
  SHARED_SOURCE = o.sharedSourceIp
  HOSTS_PER_PROCESS = Math.max(0, Math.floor(o.hostsPerProcess))
  process.once('exit', killAll)
  try {
    const { result, text } = await measure(o)
    process.stderr.write(text + '\n')
    return result
  } finally {
    killAll()
    process.off('exit', killAll)
    await dirs.cleanup()
  }
}

/** Kills every child of a run interrupted by Ctrl-C and removes its temp dirs. */
export async function abort (): Promise<void> {
  killAll()
  await dirs.cleanup()
}

async function measure (o: GroupOptions) {
  const t0 = Date.now()
  // Other work on the machine competes with the hosts for the same cores: record how busy it was.
  const load0 = loadavg()
  process.stderr.write(`group benchmark: sizes ${SIZES.join(',')}, ${ROUNDS} rounds, ${KILLS} kills, hosts per process ${SIZES.map(n => hostsPerProcess(n, KILLS)).join(',')}, timings ${JSON.stringify(TIMINGS)}\n`)
  const verifyUs = verifyCostUs()
  const base = await baselines(NODE_FLAGS, 100)
  const baseVariants: Record<string, Record<string, MemoryFigures>> = {}
  for (const v of VARIANTS) baseVariants[v.join(' ')] = (await baselines(v, 0)).memory
  const gossipP50 = base.gossipsub!.p50
  process.stderr.write(`  baseline: raw gossipsub one hop p50 ${gossipP50} ms; one Ed25519 verify ${verifyUs} µs\n`)

  const attempt = async (n: number, flags: string[], kills: number): Promise<SizeResult> => {
    try {
      return { formed: true, ...await groupRun(n, flags, kills) }
    } catch (err) {
      if (err instanceof FormationFailed) return { formed: false, ...err.report, size: n }
      // Broke after forming (a call refused, a host gone): recorded for this size, the other sizes stand.
      const message = String((err as Error)?.message ?? err)
      process.stderr.write(`  N=${n}: failed after forming: ${message}\n`)
      return { formed: false, size: n, node_flags: flags, stage: 'measure', error: `failed after forming: ${message}` }
    }
  }
  const results: SizeResult[] = []
  for (const n of SIZES) results.push(await attempt(n, NODE_FLAGS, KILLS))
  const runs = results.filter((r): r is GroupRun & { formed: true } => r.formed)
  // Flag variants rerun one size that formed (by default the smallest: on a small machine the
  // larger groups are CPU-bound, and a group that cannot form says nothing about flags).
  const variantSize = o.variantSize != null ? o.variantSize : (runs.length > 0 ? Math.min(...runs.map(r => r.size)) : undefined)
  const variantResults: SizeResult[] = []
  if (variantSize != null) for (const v of VARIANTS) variantResults.push(await attempt(variantSize, v, 0))

  let serf: { version?: string, runs?: SerfRun[], skipped?: string } = {}
  if (!o.serf) serf = { skipped: 'Serf not requested (--no-serf)' }
  else {
    const version = await serfAvailable()
    if (version == null) serf = { skipped: 'serf is not installed (apt-get install -y serf)' }
    else {
      serf = { version, runs: [] }
      for (const n of SIZES) {
        try {
          serf.runs!.push(await serfRun(n))
        } catch (err) {
          process.stderr.write(`  ${(err as Error).message}\n`)
          serf.runs!.push({ size: n, error: (err as Error).message } as unknown as SerfRun)
        }
      }
    }
  }

  const ratio = (x: number, b: number): number => Math.round(x / b * 10) / 10
  const bySize: Record<string, GroupSizeEntry> = {}
  for (const r of results) {
    const s = serf.runs?.find(x => x.size === r.size)
    if (!r.formed) { bySize[r.size] = { ...r, serf_failed_all_ms: s?.failed_all_ms }; continue }
    bySize[r.size] = {
      ...r,
      idle_cpu_ms_per_host_per_s_for_verifies: Math.round(r.idle.verifies_per_s * verifyUs / 1000 * 10) / 10,
      ratios: {
        settings_p50_over_gossipsub_p50: ratio(r.settings.p50, gossipP50),
        status_p50_over_gossipsub_p50: ratio(r.status.p50, gossipP50),
        ...(s != null && r.failure != null ? { failure_all_over_serf_all: Math.round(r.failure.all_ms_max / s.failed_all_ms * 100) / 100 } : {}),
        rss_mean_over_libp2p_gossipsub: Math.round(r.idle.rss.rss_mean_mb / base.memory.libp2p_gossipsub.rss_mean_mb * 100) / 100,
        rss_mean_over_bare_node: Math.round(r.idle.rss.rss_mean_mb / base.memory.bare_node.rss_mean_mb * 100) / 100
      }
    }
  }
  const pass: Record<string, boolean> = {}
  for (const r of results) {
    const ok = (f: (g: GroupRun) => boolean): boolean => r.formed && f(r)
    pass[`formed_N${r.size}`] = r.formed
    pass[`settings_p50_N${r.size}`] = ok(g => g.settings.p50 <= TARGETS.propagation_p50_ms && g.settings.lost === 0)
    pass[`settings_max_N${r.size}`] = ok(g => g.settings.max <= TARGETS.propagation_max_ms && g.settings.lost === 0)
    pass[`status_p50_N${r.size}`] = ok(g => g.status.p50 <= TARGETS.propagation_p50_ms && g.status.lost === 0)
    pass[`status_max_N${r.size}`] = ok(g => g.status.max <= TARGETS.propagation_max_ms && g.status.lost === 0)
    if (KILLS > 0) pass[`failure_all_N${r.size}`] = ok(g => g.failure != null && g.failure.all_ms_max <= TARGETS.failure_all_ms)
    // RSS per host is only read where a host has a process of its own.
    if (r.formed && r.hosts_per_process > 1) continue
    pass[`rss_mean_N${r.size}`] = ok(g => g.idle.rss.rss_mean_mb <= TARGETS.rss_per_host_mb)
    pass[`rss_max_N${r.size}`] = ok(g => g.idle.rss.rss_max_mb <= TARGETS.rss_per_host_mb)
  }
  // A flag set "helps" when it brings RSS under target while propagation stays within targets or
  // within 20 % (+2 ms) of the same size without it.
  const ref = runs.find(r => r.size === variantSize)
  const variants = variantResults.map(v => {
    if (!v.formed) return v
    return {
      node_flags: v.node_flags.join(' '),
      size: v.size,
      formation_ms: v.formation.total_ms,
      rss: v.idle.rss,
      idle_cpu_pct_per_host_mean: v.idle.cpu_pct_per_host_mean,
      settings: v.settings,
      status: v.status,
      rss_under_target: v.idle.rss.rss_mean_mb <= TARGETS.rss_per_host_mb && v.idle.rss.rss_max_mb <= TARGETS.rss_per_host_mb,
      propagation_not_hurt: ref != null && ([[v.settings, ref.settings], [v.status, ref.status]] as Array<[Stats & { lost: number }, Stats & { lost: number }]>).every(([a, b]) =>
        a.lost === 0 && a.p50 <= Math.max(TARGETS.propagation_p50_ms, b.p50 * 1.2 + 2) && a.max <= Math.max(TARGETS.propagation_max_ms, b.max * 1.2 + 2)),
      baseline_memory: baseVariants[v.node_flags.join(' ')]
    }
  })

  const result = {
    benchmark: 'group',
    ...environment(),
    config: {
      sizes: SIZES,
      rounds: ROUNDS,
      kills: KILLS,
      idle_ms: IDLE_MS,
      timings: TIMINGS,
      preset: 'lan',
      loadavg_at_start: load0.map(x => Math.round(x * 100) / 100),
      formation_bound_ms: FORMATION_MS,
      link_concurrency: LINK_CONCURRENCY,
      processes: Object.fromEntries(SIZES.map(n => [`N${n}`, hostsPerProcess(n, KILLS) === 1 ? 'one Node process per host' : `${hostsPerProcess(n, KILLS)} hosts per Node process (${layout(n, KILLS).length} processes; the ${Math.min(KILLS, n - 2)} hosts killed have their own)`])),
      addresses: 'one loopback IP per host',
      source_ip: SHARED_SOURCE ? 'shared: every host dials from 127.0.0.1' : 'each host dials from its own loopback IP (HostOptions.dialFrom), as separate machines do',
      clock: 'epoch ms (Date.now() clock read via performance.timeOrigin + performance.now()), shared by all processes',
      status_change: "a follower's published name changes and it calls its status service's publishSoon() (what every status change calls); arrival = the receiver's status service accepts the first status with the new name",
      node_flags: NODE_FLAGS,
      malloc_env: agentEnvRecord(),
      young_generation: 'a process running k hosts gets k times the flags\' --max-semi-space-size (flagsForHosts)',
      host_process: BUNDLED ? 'bundled like the agent (dist/benchmarks/group-host.bundle.mjs, scripts/bundle.mjs)' : 'unbundled (dist/benchmarks/group-host.js)',
      variants: VARIANTS.map(v => v.join(' '))
    },
    baseline: {
      gossipsub_one_hop: base.gossipsub,
      ed25519_verify_us: verifyUs,
      memory: base.memory
    },
    sizes: bySize,
    variants,
    serf,
    targets: TARGETS,
    pass,
    wall_ms: Date.now() - t0
  }
  const col = (r: SizeResult, f: (g: GroupRun) => string | number): string | number => r.formed ? f(r) : 'not formed'
  const rows: Array<Array<string | number>> = [['group (ms / MB)', ...results.map(r => `N=${r.size}`), 'target']]
  rows.push(['formation total', ...results.map(r => r.formed ? r.formation.total_ms : r.stage === 'measure' ? 'formed, then failed' : `failed @${String(r.elapsed_ms)}`), FORMATION_MS])
  rows.push(['settings p50 / p99 / max', ...results.map(r => col(r, g => `${g.settings.p50} / ${g.settings.p99} / ${g.settings.max}${g.settings.lost > 0 ? ` (${g.settings.lost} lost)` : ''}`)), `${TARGETS.propagation_p50_ms} / - / ${TARGETS.propagation_max_ms}`])
  rows.push(['status p50 / p99 / max', ...results.map(r => col(r, g => `${g.status.p50} / ${g.status.p99} / ${g.status.max}${g.status.lost > 0 ? ` (${g.status.lost} lost)` : ''}`)), `${TARGETS.propagation_p50_ms} / - / ${TARGETS.propagation_max_ms}`])
  rows.push(['baseline gossipsub hop p50', ...results.map(() => gossipP50), ''])
  rows.push(['failure: all hosts (worst kill)', ...results.map(r => col(r, g => g.failure?.all_ms_max ?? '')), TARGETS.failure_all_ms])
  rows.push(['serf: failed everywhere', ...results.map(r => serf.runs?.find(s => s.size === r.size)?.failed_all_ms ?? 'skipped'), ''])
  rows.push(['RSS mean / max', ...results.map(r => col(r, g => `${g.idle.rss.rss_mean_mb} / ${g.idle.rss.rss_max_mb}`)), TARGETS.rss_per_host_mb])
  rows.push(['RSS bare node / libp2p+gossipsub', ...results.map(() => `${base.memory.bare_node.rss_mean_mb} / ${base.memory.libp2p_gossipsub.rss_mean_mb}`), ''])
  rows.push(['host processes', ...results.map(() => `${BUNDLED ? 'bundled' : 'unbundled'}, ${NODE_FLAGS.length > 0 ? NODE_FLAGS.join(' ') : "Node's default flags"}`), ''])
  rows.push(['idle CPU % per host / all', ...results.map(r => col(r, g => `${g.idle.cpu_pct_per_host_mean} / ${g.idle.cpu_pct_all_hosts}`)), ''])
  rows.push(['verifies per status msg', ...results.map(r => col(r, g => g.idle.verifies_per_accepted)), ''])
  for (const v of variantResults) {
    if (!v.formed) { rows.push([`N=${v.size} ${String((v as any).node_flags?.join(' '))}`, 'not formed', ...results.slice(1).map(() => ''), '']); continue }
    rows.push([`N=${v.size} ${v.node_flags.join(' ')}: RSS mean / max`, `${v.idle.rss.rss_mean_mb} / ${v.idle.rss.rss_max_mb}`, ...results.slice(1).map(() => ''), TARGETS.rss_per_host_mb])
    rows.push(['  settings p50 / max, status p50 / max', `${v.settings.p50} / ${v.settings.max}, ${v.status.p50} / ${v.status.max}`, ...results.slice(1).map(() => ''), ''])
  }
  return { result, text: table(rows) + `\npass: ${JSON.stringify(pass)} (${Math.round(result.wall_ms / 1000)} s)` }
}

/** The command line's options (parseArgs, node:util); every one is in USAGE. */
export const CLI_OPTIONS = {
  sizes: { type: 'string', default: GROUP_DEFAULTS.sizes.join(',') },
  rounds: { type: 'string', default: String(GROUP_DEFAULTS.rounds) },
  kills: { type: 'string', default: String(GROUP_DEFAULTS.kills) },
  'no-serf': { type: 'boolean', default: false },
  /** Seconds the formed group sits idle before RSS is read. */
  idle: { type: 'string', default: String(GROUP_DEFAULTS.idleS) },
  /** Node flags of every process; default the agent's. */
  'node-flags': { type: 'string', default: GROUP_DEFAULTS.nodeFlags.join(' ') },
  /** Host processes run the unbundled host script. */
  unbundled: { type: 'boolean', default: false },
  /** Node flag sets to rerun one group size with (--variant-size), separated by `|`; '' for none. */
  variants: { type: 'string', default: GROUP_DEFAULTS.variants.map(v => v.join(' ')).join('|') },
  /** Group size the flag variants run at; default the smallest size that formed. */
  'variant-size': { type: 'string', default: '' },
  'link-concurrency': { type: 'string', default: String(GROUP_DEFAULTS.linkConcurrency) },
  /** Seconds allowed to spawn, link and converge one group. */
  'formation-timeout': { type: 'string', default: String(GROUP_DEFAULTS.formationTimeoutS) },
  /** Let every host dial from 127.0.0.1 (the one-machine artifact group-host.ts explains) instead of its own IP. */
  'shared-source-ip': { type: 'boolean', default: false },
  /** Hosts per process; 0 = one each while the group fits AUTO_PROCESSES_PER_CORE processes per core. */
  'hosts-per-process': { type: 'string', default: String(GROUP_DEFAULTS.hostsPerProcess) }
} satisfies ParseArgsOptionsConfig

export const USAGE = `usage: npm run bench:group -- [options]
       node dist/benchmarks/group.js [options]     (after npm run build)

Group benchmark: propagation of one settings change and one status change to every host, failure
detection of a killed host, and idle RSS per host, at each group size, with the default (lan)
timings. One process per host (benchmarks/group-host.ts) while the group fits
${AUTO_PROCESSES_PER_CORE} processes per core, else several hosts per process. Baselines measured in the same run: a raw
gossipsub publish between two plain libp2p processes, HashiCorp Serf's failure detection at the
same N, and the RSS of a bare Node process, of a plain libp2p + gossipsub process and of an
unlinked host.

options:
  --sizes LIST              group sizes (≥ 3), comma-separated, one group each
                            (default ${GROUP_DEFAULTS.sizes.join(',')})
  --rounds N                settings rounds and status rounds per size (default ${GROUP_DEFAULTS.rounds})
  --kills N                 followers SIGKILLed one after another per size, timed until every host
                            shows them Unreachable (default ${GROUP_DEFAULTS.kills})
  --no-serf                 skip the Serf baseline (default off: Serf runs, or is skipped with the
                            reason when it is not installed)
  --idle S                  seconds the formed group sits idle before RSS is read (default ${GROUP_DEFAULTS.idleS})
  --node-flags='FLAGS'      Node flags of every host and baseline process; '' for Node's defaults
                            (default the agent's: '${GROUP_DEFAULTS.nodeFlags.join(' ')}')
  --unbundled               hosts run dist/benchmarks/group-host.js instead of the bundle that
                            \`npm run build\` makes of it the way it bundles the agent (default off)
  --variants='FLAGS|...'    Node flag sets, separated by |, to rerun one group size with; '' for none
                            (write it with =: a value that starts with - is refused otherwise)
                            (default '${GROUP_DEFAULTS.variants.map(v => v.join(' ')).join('|')}')
  --variant-size N          group size the flag variants run at (default: the smallest size that formed)
  --link-concurrency N      followers linking at once while a group forms (default ${GROUP_DEFAULTS.linkConcurrency})
  --formation-timeout S     seconds allowed to spawn, link and converge one group (default ${GROUP_DEFAULTS.formationTimeoutS})
  --shared-source-ip        let every host dial from 127.0.0.1 instead of its own loopback IP (default
                            off; with one source IP gossipsub's IP-colocation penalty keeps groups of
                            ~16 hosts or more from settling, see group-host.ts)
  --hosts-per-process N     hosts per process, the killed hosts always one each; 0 = one per process
                            while the group fits ${AUTO_PROCESSES_PER_CORE} processes per core, else as few per process as
                            keeps it there (default ${GROUP_DEFAULTS.hostsPerProcess})
  -h, --help                print this help and exit

Output: one JSON object on stdout (also written to benchmarks/results/group-latest.json);
progress and a short table on stderr.

Targets, per size: settings and status propagation p50 ≤ ${TARGETS.propagation_p50_ms} ms and max ≤ ${TARGETS.propagation_max_ms} ms, none
lost; a killed host Unreachable on every host ≤ ${TARGETS.failure_all_ms} ms; RSS per idle host, mean and max,
≤ ${TARGETS.rss_per_host_mb} MB (read only where every host has a process of its own).

Exits 0 also when a target is missed (\`pass\` in the JSON says so), 1 when the benchmark itself
fails, 2 on a bad command line. Every child (hosts, baselines, serf agents) is killed at the end.
`

if (import.meta.main) {
  const { values: args } = parseBenchArgs(USAGE, { options: CLI_OPTIONS })
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { void abort().finally(() => process.exit(130)) })
  }
  try {
    const result = await run({
      sizes: args.sizes.split(',').map(Number),
      rounds: Number(args.rounds),
      kills: Number(args.kills),
      serf: !args['no-serf'],
      idleS: Number(args.idle),
      nodeFlags: args['node-flags'].split(/\s+/).filter(f => f !== ''),
      bundled: !args.unbundled,
      variants: args.variants.split('|').map(v => v.trim()).filter(v => v !== '').map(v => v.split(/\s+/)),
      variantSize: args['variant-size'] !== '' ? Number(args['variant-size']) : undefined,
      linkConcurrency: Number(args['link-concurrency']),
      formationTimeoutS: Number(args['formation-timeout']),
      sharedSourceIp: args['shared-source-ip'],
      hostsPerProcess: Number(args['hosts-per-process'])
    })
    const file = await writeResult('group', result)
    process.stdout.write(JSON.stringify(result) + '\n')
    process.stderr.write(`written ${file}\n`)
  } catch (err) {
    process.stderr.write(`benchmark failed: ${(err as Error)?.stack ?? String(err)}\n`)
    process.exitCode = 1
  }
}
