/**
 * Content sync benchmark, with its baselines measured in the same run.
 *
 *   npm run bench:content -- [--mib 256] [--rounds 3] [--hosts 5] [--rate 100] [--only loopback|netns]
 *
 * 1. Loopback, one pair, no shaping, two processes (benchmarks/content-host.ts): a real host pair
 *    through the library (the leader `addContent`s `--mib` MiB, the follower fetches it into its
 *    store, verifying every chunk) next to the same sync with the follower's store keeping the
 *    verified chunks in no file (what the sync costs without its storage), a raw libp2p stream
 *    on the same connection of the same two hosts (Noise + Yamux, `--raw-write` KiB writes), the
 *    same raw stream with its receiver hashing every MiB with SHA-256 on its event loop, as the
 *    exchange does (what verification alone costs: nothing stored, no protocol), and raw TCP
 *    (node `net`) between the same two processes. `--rounds` rounds, the five alternating in a
 *    rotating order; medians.
 *    Target: sync ≥ 0.9 × raw libp2p.
 * 2. `--hosts` hosts in network namespaces (test/testbed/netns.ts), every host's cable shaped to
 *    `--rate` Mbit/s both ways, one host process per namespace. The leader adds `--mib` MiB; the
 *    time until every follower holds it complete is compared with the physical limit (size ÷
 *    link rate: every follower has to receive it all through its own cable) and with one-source
 *    distribution measured in the same run: every follower downloading it from the leader at once,
 *    over plain HTTP (node:http on the leader, `fetch` on the followers) and over plain TCP. Also
 *    one plain TCP download on an otherwise idle cable (what one cable carries), the swarm's
 *    traffic over plain TCP (every follower downloading an equal share from every other host at
 *    once: what TCP makes of those flows), and the bytes each host served. `--swarm-mib` sets
 *    this part's size apart from the loopback's. Target: ≤ 1.15 × the limit. Without namespaces
 *    (not root, no iproute2) the part is skipped, loudly, with the reason in the result, and the
 *    command exits 1.
 *
 * Prints one JSON object on stdout (also written to benchmarks/results/content-latest.json) and a
 * table on stderr. Exits 0 when a target is missed (`pass` says so), 1 when the benchmark itself
 * fails. Children and namespaces are removed at the end, also on failure and on Ctrl-C.
 * `run(options)` does the same for benchmarks/run.ts and returns the result object.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdir, readFile } from 'node:fs/promises'
import { availableParallelism, loadavg } from 'node:os'
import { join } from 'node:path'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ParseArgsOptionsConfig } from 'node:util'
import { createTestbed, netnsAvailable, type Testbed } from '../test/testbed/netns.ts'
import { IpcChild } from './ipc.ts'
import { AGENT_NODE_FLAGS, agentEnv, agentEnvRecord, environment, loopbackIp, machineBusyMs, median, parseBenchArgs, sleep, table, TempDirs, writeResult } from './lib.ts'

/** The congestion control a test host's TCP uses ('unknown' when it cannot be read). */
async function tcpCongestionControl (host: { exec: (cmd: string[]) => Promise<{ stdout: string, code: number | null }> }): Promise<string> {
  const r = await host.exec(['cat', '/proc/sys/net/ipv4/tcp_congestion_control']).catch(() => undefined)
  return r?.code === 0 ? r.stdout.trim() : 'unknown'
}

/** Interval of the per-cable traffic samples in part 2, in ms. */
const SAMPLE_MS = 250
export const TARGETS = { loopback_ratio_to_raw_libp2p: 0.9, netns_ratio_to_limit: 1.15 }

export interface ContentOptions {
  /** Content size of the loopback part, in MiB. */
  mib: number
  /** Content size of the namespace part, in MiB (default: `mib`). */
  swarmMib?: number
  /** Loopback rounds (each sync, raw libp2p and raw TCP once, in a rotating order). */
  rounds: number
  /** Hosts in the namespace part (one leader, the rest followers). */
  hosts: number
  /** Every cable's rate in the namespace part, in Mbit/s. */
  rate: number
  /** Write size of the raw libp2p baseline, in KiB. */
  rawWriteKiB: number
  /** Which parts to run. */
  parts: Array<'loopback' | 'netns'>
  /** Which loopback measurements to run. */
  kinds: LoopbackKind[]
  /** Write a CPU profile of both loopback hosts for each measurement into this directory ('' for none). */
  profile: string
  /** One-source baselines of the namespace part (each takes about hosts − 1 times the limit). */
  oneSource: Array<'http' | 'tcp'>
  /** One plain TCP download on an idle cable in the namespace part (about the limit). */
  singleTcp: boolean
  /** The swarm's traffic over plain TCP in the namespace part: every follower downloading a share from every other host at once. */
  meshTcp: boolean
  /**
   * Kernel settings (`net.…=value`) applied inside every host's namespace of the netns part before
   * its process starts, e.g. `net.ipv4.tcp_notsent_lowat=131072`; none by default (the machine's).
   */
  hostSysctl: string[]
}
/** The loopback part's measurements, in the order a round starts from. */
const LOOPBACK_KINDS = ['sync', 'nostore', 'raw', 'verify', 'tcp'] as const
type LoopbackKind = typeof LOOPBACK_KINDS[number]

export const CONTENT_DEFAULTS: ContentOptions = {
  mib: 256,
  rounds: 3,
  hosts: 5,
  rate: 100,
  rawWriteKiB: 1024,
  parts: ['loopback', 'netns'],
  kinds: [...LOOPBACK_KINDS],
  profile: '',
  oneSource: ['http', 'tcp'],
  singleTcp: true,
  meshTcp: true,
  hostSysctl: []
}

/** What `--host-sysctl` accepts: a network setting and a numeric value (several numbers separated by spaces). */
const HOST_SYSCTL = /^net\.[a-z0-9_.]+=\d+( \d+)*$/

/** Parses `--host-sysctl`: comma-separated `net.…=N`; throws on anything else. */
export function parseHostSysctl (list: string): string[] {
  const items = list.split(',').map(s => s.trim()).filter(s => s !== '')
  for (const kv of items) if (!HOST_SYSCTL.test(kv)) throw new Error(`--host-sysctl: ${JSON.stringify(kv)} is not a net.…=number setting`)
  return items
}

// Set by run() from its options; read by the functions below (one run at a time per process).
let OPTS: ContentOptions = CONTENT_DEFAULTS
let MIB = OPTS.mib
let BYTES = MIB * 1024 * 1024
let SWARM_MIB = MIB
let SWARM_BYTES = BYTES
let ROUNDS = OPTS.rounds
let HOSTS = OPTS.hosts
let RATE = OPTS.rate
let RAW_WRITE = OPTS.rawWriteKiB * 1024

/**
 * Node flags for the host processes: the agent's own (AGENT_NODE_FLAGS), or CONTENT_HOST_NODE_FLAGS
 * when set ('' for Node's defaults; `--cpu-prof --cpu-prof-dir=/tmp/prof` to see where their time goes).
 */
const EXEC_ARGV = process.env.CONTENT_HOST_NODE_FLAGS == null ? [...AGENT_NODE_FLAGS] : process.env.CONTENT_HOST_NODE_FLAGS.split(/\s+/).filter(f => f !== '')
const HOST_SCRIPT = fileURLToPath(new URL(`./content-host${extname(fileURLToPath(import.meta.url))}`, import.meta.url))
const dirs = new TempDirs()
const procs = new Set<ChildProcess>()
const log = (s: string): void => { process.stderr.write(`[content] ${s}\n`) }
const r2 = (x: number): number => Math.round(x * 100) / 100
const r3 = (x: number): number => Math.round(x * 1000) / 1000

// ---------------------------------------------------------------- children

/** A forked content host; also records when it reported each content complete. */
class Child extends IpcChild {
  private readonly completes = new Map<string, number>()

  constructor (proc: ChildProcess, label: string) {
    super(proc, label, procs)
    this.on(e => { if (e.ev === 'complete') this.completes.set(e.id, e.t) })
  }

  /** The time this host reported content `id` complete (its `content:complete` event). */
  async completed (id: string, timeout: number): Promise<number> {
    const end = Date.now() + timeout
    for (;;) {
      const t = this.completes.get(id)
      if (t != null) return t
      if (!this.alive) throw new Error(`${this.label} exited: ${this.stderr()}`)
      if (Date.now() > end) throw new Error(`${this.label}: content not complete after ${timeout} ms`)
      await sleep(5)
    }
  }
}

/** A host process's CPU time (µs) and garbage collections so far. */
interface HostCounters { user: number, system: number, gc: { major: number, minor: number, pause_ms: number } }

function env (host: Record<string, unknown>): NodeJS.ProcessEnv {
  return agentEnv({ CONTENT_HOST_OPTS: JSON.stringify({ host, rawWrite: RAW_WRITE }) })
}

/** A host on loopback, forked. */
async function loopbackHost (label: string, ip: string): Promise<Child> {
  const host = { dataDir: await dirs.make(), listen: [`${ip}:0`], name: label }
  const proc = fork(HOST_SCRIPT, [], { execPath: process.execPath, execArgv: EXEC_ARGV, env: env(host), stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  return await new Child(proc, label).ready(30_000)
}

/** Links every follower to the leader and waits until all see all Healthy. */
async function formGroup (leader: Child, followers: Child[]): Promise<void> {
  for (const f of followers) {
    const token = await leader.call('token')
    const s = await f.call('link', { token }, 60_000)
    if (s.status !== 'Linked' && s.errorCode != null) throw new Error(`${f.label} could not link: ${String(s.errorCode)} ${String(s.errorMessage)}`)
  }
  const all = [leader, ...followers]
  const end = Date.now() + 60_000
  while (!(await Promise.all(all.map(async c => await c.call('healthy', { n: all.length })))).every(Boolean)) {
    if (Date.now() > end) throw new Error('the group never became Healthy everywhere')
    await sleep(100)
  }
}

const cpuMs = (c: { user: number, system: number }): number => (c.user + c.system) / 1000

// ---------------------------------------------------------------- part 1: loopback

export interface LoopbackResult {
  rounds: number
  mib: number
  raw_write_kib: number
  order: string[][]
  sync_MBps: number[]
  sync_with_import_MBps: number[]
  raw_libp2p_MBps: number[]
  /** The raw libp2p stream with its receiver hashing every MiB with SHA-256 as it comes: verification alone, nothing stored, no protocol. */
  raw_libp2p_hashed_MBps: number[]
  /** The sync with the receiver keeping chunks in no file (verified and counted as held): the sync without its storage. */
  sync_nostore_MBps: number[]
  raw_tcp_MBps: number[]
  sync_p50_MBps: number
  raw_libp2p_p50_MBps: number
  raw_libp2p_hashed_p50_MBps: number
  sync_nostore_p50_MBps: number
  raw_tcp_p50_MBps: number
  ratio_sync_to_raw_libp2p: number
  /** What verification alone leaves of the raw stream on this machine. */
  ratio_hashed_to_raw_libp2p: number
  /** The sync against the hashing raw stream: what storage and the exchange cost beyond verification. */
  ratio_sync_to_hashed: number
  /** The sync without its storage against the raw stream: what the exchange and verification leave of it. */
  ratio_nostore_to_raw_libp2p: number
  /** The sync against itself without storage: what writing the chunk files durably costs. */
  ratio_sync_to_nostore: number
  ratio_sync_to_raw_tcp: number
  ratio_raw_libp2p_to_raw_tcp: number
  /** CPU time per GiB moved, median over rounds, in ms: sender / receiver. */
  cpu_ms_per_GiB: Record<string, { sender: number, receiver: number }>
  /** Full (mark-compact) garbage collections per GiB moved, medians: what most of the CPU beyond the protocol goes to. */
  major_gcs_per_GiB: Record<string, { sender: number, receiver: number }>
  /**
   * Cores the whole machine kept busy while each kind ran (every process and the kernel, from
   * /proc/stat), medians: near the core count, the transfer is bound by the machine's CPU.
   */
  machine_cores_busy: Record<string, number>
  /** CPU time the whole machine spent per GiB moved, in s, medians. */
  machine_cpu_s_per_GiB: Record<string, number>
  /**
   * The sync / raw ratio this machine allows: the sync's throughput were it to keep the machine as
   * busy as the raw stream does (raw's cores busy ÷ the sync's machine CPU per GiB), over the raw
   * stream's throughput. Below the target, no scheduling of the same work reaches it here.
   */
  ratio_ceiling_at_raw_load?: number
  cores: number
  exchange: { requested: number, received: number, failed: number, corrupt: number, channels: number }
  target: number
  pass: boolean
}

async function loopback (): Promise<LoopbackResult> {
  const children: Child[] = []
  try {
    const ipA = loopbackIp()
    const ipB = loopbackIp()
    const [a, b] = await Promise.all([loopbackHost('leader', ipA), loopbackHost('follower', ipB)])
    children.push(a, b)
    await formGroup(a, [b])
    await a.call('rawServe')
    const { port } = await a.call('tcpServe', { ip: ipA })
    const files = await dirs.make('edgelink-bench-files-')
    const runs: Record<string, number[]> = { sync_import: [], ...Object.fromEntries(LOOPBACK_KINDS.map(k => [k, []])) }
    const perSide = (): Record<string, { sender: number[], receiver: number[] }> => Object.fromEntries(LOOPBACK_KINDS.map(k => [k, { sender: [], receiver: [] }]))
    const cpuRuns = perSide()
    const gcRuns = perSide()
    const busyRuns: Record<string, number[]> = Object.fromEntries(LOOPBACK_KINDS.map(k => [k, []]))
    const machineCpuRuns: Record<string, number[]> = Object.fromEntries(LOOPBACK_KINDS.map(k => [k, []]))
    const order: string[][] = []
    const kinds = LOOPBACK_KINDS.filter(k => OPTS.kinds.includes(k))
    const GiB = BYTES / 2 ** 30
    for (let r = 0; r < ROUNDS; r++) {
      const path = join(files, `content-${r}.bin`)
      await a.call('makeFile', { path, mib: MIB, seed: r }, 600_000)
      // The sync without storage needs a content of its own: the follower holds the other one by then.
      const nostorePath = join(files, `content-${r}-nostore.bin`)
      if (kinds.includes('nostore')) await a.call('makeFile', { path: nostorePath, mib: MIB, seed: r + ROUNDS }, 600_000)
      const seq = kinds.map((_, i) => kinds[(i + r) % kinds.length])
      order.push(seq)
      for (const kind of seq) {
        const profile = async (c: Child, cmd: 'profStart' | 'profStop', side: string): Promise<void> => {
          if (OPTS.profile !== '') await c.call(cmd, { path: join(OPTS.profile, `${kind}-${r}-${side}.cpuprofile`) })
        }
        const counters = async (c: Child): Promise<HostCounters> => { const x = await c.call('counters'); return { ...x.cpu, gc: x.gc } }
        let sender0: HostCounters = { user: 0, system: 0, gc: { major: 0, minor: 0, pause_ms: 0 } }
        await profile(b, 'profStart', 'receiver')
        const receiver0 = await counters(b)
        if (kind !== 'sync') {
          await profile(a, 'profStart', 'sender')
          sender0 = await counters(a)
        }
        let busy0 = { machine: machineBusyMs(), t: performance.now() }
        if (kind === 'tcp') {
          const res = await b.call('tcpFetch', { ip: ipA, port, bytes: BYTES, from: ipB }, 600_000)
          runs.tcp.push(BYTES / 1e6 / ((res.t1 - res.t0) / 1000))
        } else if (kind === 'raw' || kind === 'verify') {
          const res = await b.call('rawFetch', { peer: a.id, bytes: BYTES, verify: kind === 'verify' }, 600_000)
          runs[kind].push(BYTES / 1e6 / ((res.t1 - res.t0) / 1000))
        } else {
          const nostore = kind === 'nostore'
          if (nostore) await b.call('discardChunkWrites', { on: true })
          // The follower learns of the content by gossip once `add` announced it; its complete
          // event is what a user waits for. The import (chunking, hashing and storing the file on
          // the leader) is not a transfer: it is timed apart, and the leader's CPU is counted
          // from the announcement on.
          const added = await a.call('add', { path: nostore ? nostorePath : path }, 600_000)
          sender0 = await counters(a)
          busy0 = { machine: machineBusyMs(), t: performance.now() }
          await profile(a, 'profStart', 'sender')
          const t = await b.completed(added.id, 600_000)
          if (nostore) await b.call('discardChunkWrites', { on: false })
          runs[kind].push(BYTES / 1e6 / ((t - added.t1) / 1000))
          if (kind === 'sync') runs.sync_import.push(BYTES / 1e6 / ((t - added.t0) / 1000))
        }
        const machineMs = machineBusyMs() - busy0.machine
        busyRuns[kind].push(machineMs / (performance.now() - busy0.t))
        machineCpuRuns[kind].push(machineMs / 1000 / GiB)
        const [sender1, receiver1] = await Promise.all([counters(a), counters(b)])
        await Promise.all([profile(a, 'profStop', 'sender'), profile(b, 'profStop', 'receiver')])
        cpuRuns[kind].sender.push((cpuMs(sender1) - cpuMs(sender0)) / GiB)
        cpuRuns[kind].receiver.push((cpuMs(receiver1) - cpuMs(receiver0)) / GiB)
        gcRuns[kind].sender.push((sender1.gc.major - sender0.gc.major) / GiB)
        gcRuns[kind].receiver.push((receiver1.gc.major - receiver0.gc.major) / GiB)
      }
      const mbps = (x: number | undefined): string => x == null ? 'not run' : `${Math.round(x)} MB/s`
      log(`loopback round ${r + 1}/${ROUNDS}: sync ${mbps(runs.sync[r])}, sync without storage ${mbps(runs.nostore[r])}, raw libp2p ${mbps(runs.raw[r])}, raw libp2p hashed ${mbps(runs.verify[r])}, raw TCP ${mbps(runs.tcp[r])}`)
    }
    const counters = (await b.call('counters')).exchange
    const p50 = (xs: number[]): number => Math.round(median(xs))
    const ratio = r2(median(runs.sync) / median(runs.raw))
    return {
      rounds: ROUNDS,
      mib: MIB,
      raw_write_kib: RAW_WRITE / 1024,
      order,
      sync_MBps: runs.sync.map(Math.round),
      sync_with_import_MBps: runs.sync_import.map(Math.round),
      raw_libp2p_MBps: runs.raw.map(Math.round),
      raw_libp2p_hashed_MBps: runs.verify.map(Math.round),
      sync_nostore_MBps: runs.nostore.map(Math.round),
      raw_tcp_MBps: runs.tcp.map(Math.round),
      sync_p50_MBps: p50(runs.sync),
      raw_libp2p_p50_MBps: p50(runs.raw),
      raw_libp2p_hashed_p50_MBps: p50(runs.verify),
      sync_nostore_p50_MBps: p50(runs.nostore),
      raw_tcp_p50_MBps: p50(runs.tcp),
      ratio_sync_to_raw_libp2p: ratio,
      ratio_hashed_to_raw_libp2p: r2(median(runs.verify) / median(runs.raw)),
      ratio_sync_to_hashed: r2(median(runs.sync) / median(runs.verify)),
      ratio_nostore_to_raw_libp2p: r2(median(runs.nostore) / median(runs.raw)),
      ratio_sync_to_nostore: r2(median(runs.sync) / median(runs.nostore)),
      ratio_sync_to_raw_tcp: r2(median(runs.sync) / median(runs.tcp)),
      ratio_raw_libp2p_to_raw_tcp: r2(median(runs.raw) / median(runs.tcp)),
      cpu_ms_per_GiB: Object.fromEntries(Object.entries(cpuRuns).map(([k, v]) => [k, { sender: Math.round(median(v.sender)), receiver: Math.round(median(v.receiver)) }])),
      major_gcs_per_GiB: Object.fromEntries(Object.entries(gcRuns).map(([k, v]) => [k, { sender: Math.round(median(v.sender)), receiver: Math.round(median(v.receiver)) }])),
      machine_cores_busy: Object.fromEntries(Object.entries(busyRuns).filter(([, v]) => v.length > 0).map(([k, v]) => [k, r2(median(v))])),
      machine_cpu_s_per_GiB: Object.fromEntries(Object.entries(machineCpuRuns).filter(([, v]) => v.length > 0).map(([k, v]) => [k, r2(median(v))])),
      ...(runs.sync.length > 0 && runs.raw.length > 0 ? { ratio_ceiling_at_raw_load: r2(median(busyRuns.raw) / median(machineCpuRuns.sync) * 2 ** 30 / 1e6 / median(runs.raw)) } : {}),
      cores: availableParallelism(),
      exchange: { requested: counters.requested, received: counters.received, failed: counters.failed, corrupt: counters.corrupt, channels: counters.channels },
      target: TARGETS.loopback_ratio_to_raw_libp2p,
      pass: ratio >= TARGETS.loopback_ratio_to_raw_libp2p
    }
  } finally {
    await Promise.allSettled(children.map(async c => { await c.stop() }))
  }
}

// ---------------------------------------------------------------- part 2: network namespaces

/** The exchange counters a swarm result gives per host (ContentExchange.counters). */
const EXCHANGE_COUNTERS = ['served', 'requested', 'received', 'failed', 'busy', 'sent'] as const

interface HostFigures {
  role: 'leader' | 'follower'
  ip: string
  /** Chunk bytes this host's exchange served, in MiB, and as a multiple of the content. */
  served_mib: number
  served_x: number
  /** Bytes its interface sent / received during the sync (everything: TCP/IP, Noise, Yamux, gossip), in MiB. */
  wire_tx_mib: number
  wire_rx_mib: number
  /**
   * The exchange's counters over the sync: chunks served, requested (GETs and ANYs a seed picked
   * for), received, failed, GETs it answered BUSY, ANYs it was answered SENT (the seed had given
   * every chunk listed to others).
   */
  exchange: Record<typeof EXCHANGE_COUNTERS[number], number>
  /** CPU time the host's process used during the sync, in s, and its full garbage collections. */
  cpu_s: number
  major_gcs: number
  /** Main-thread pause of the garbage collections Node reported during the sync, in ms. */
  gc_ms: number
  /** Noise messages of 1200 bytes and more it opened (one per Yamux data frame), and their mean size in KiB. */
  noise_messages_in: number
  noise_message_in_mean_kib: number
  complete_s?: number
}

export interface NetnsResult {
  hosts: number
  rate_mbit: number
  mib: number
  /**
   * The hosts' TCP congestion control (the machine's default, which new namespaces inherit): it
   * shares a cable between the flows into it. BBR, this machine's, leaves a cable ~3 % emptier
   * than Reno with four senders into one cable (measured: followers' mean 90–91 against 93–94 Mbit/s).
   */
  tcp_congestion_control: string
  /** size ÷ link rate: each follower must receive the whole content through its own cable. */
  limit_s: number
  /** From the leader's `addContent` resolving (announced) to the last follower complete. */
  swarm_s: number
  /** The same from the start of `addContent` (includes importing the file on the leader). */
  swarm_with_import_s: number
  import_s: number
  ratio_to_limit: number
  /**
   * Plain TCP carrying the swarm's traffic without its dependencies (every follower downloads an
   * equal share from every other host at once): what TCP makes of the swarm's flows on these
   * cables, and the swarm's time as a multiple of it.
   */
  mesh_tcp_s?: number
  ratio_mesh_tcp_to_limit?: number
  ratio_to_mesh_tcp?: number
  /** Plain TCP, one stream on an idle cable: what a cable carries as payload. */
  single_tcp_s?: number
  ratio_single_tcp_to_limit?: number
  /** Every follower downloads from the leader at once (plain TCP): one-source distribution. */
  one_source_tcp_s?: number
  ratio_one_source_to_limit?: number
  speedup_vs_one_source?: number
  /** Every follower downloads the file from the leader at once over plain HTTP (node:http, fetch). */
  one_source_http_s?: number
  /** When each follower's HTTP download ended, s after the first began. */
  one_source_http_each_s?: number[]
  ratio_one_source_http_to_limit?: number
  speedup_vs_one_source_http?: number
  per_host: HostFigures[]
  connections_closed: Array<{ host: string, peer: string, t: number }>
  /** Every SAMPLE_MS from the announcement: Mbit/s the leader sent and each follower received. */
  timeline_mbit: Array<{ t: number, leader_tx: number, followers_rx: number[] }>
  leader_served_x: number
  target: number
  pass: boolean
}

/**
 * A host's interface byte counters, from `/proc/<pid>/net/dev` of its process (which runs inside
 * the host's namespace): sampling forks nothing. Forking `ip` for every host four times a second
 * cost ~5 % of the 2 cores the hosts themselves were using.
 */
async function ifaceBytes (pid: number, ifname: string): Promise<{ tx: number, rx: number }> {
  for (const line of (await readFile(`/proc/${pid}/net/dev`, 'utf8')).split('\n')) {
    const [name, counters] = line.split(':')
    if (counters == null || name.trim() !== ifname) continue
    const f = counters.trim().split(/\s+/).map(Number)
    return { rx: f[0], tx: f[8] }
  }
  throw new Error(`no interface ${ifname} in /proc/${pid}/net/dev`)
}

/** The namespace part, when it could not run here. */
export interface NetnsSkipped { skipped: string }

async function netns (): Promise<NetnsResult | NetnsSkipped> {
  const ok = await netnsAvailable()
  if (!ok.ok) {
    const reason = `network namespaces are not available: ${ok.reason ?? 'unknown reason'}`
    process.stderr.write(`\n!!! SKIPPED content sync in network namespaces: ${reason}\n!!! (needs Linux, root and iproute2)\n\n`)
    return { skipped: reason }
  }
  const MIB = SWARM_MIB
  const BYTES = SWARM_BYTES
  let bed: Testbed | undefined
  const children: Child[] = []
  try {
    bed = await createTestbed({ hosts: HOSTS, rateMbit: RATE })
    for (const h of bed.hosts) {
      for (const kv of OPTS.hostSysctl) {
        const r = await h.exec(['sysctl', '-w', kv])
        if (r.code !== 0) throw new Error(`sysctl -w ${kv} in ${h.name}: ${r.stderr.trim()}`)
      }
    }
    log(`test bed ${bed.prefix}: ${HOSTS} hosts in ${bed.subnet}, ${RATE} Mbit/s per cable`)
    const spawned = await Promise.all(bed.hosts.map(async (h, i) => {
      const label = i === 0 ? 'leader' : `follower${i}`
      const host = { dataDir: await dirs.make(), listen: [`${h.ip}:0`], name: label }
      const proc = h.spawn([process.execPath, ...EXEC_ARGV, HOST_SCRIPT], { env: env(host), stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
      return await new Child(proc, label).ready(60_000)
    }))
    children.push(...spawned)
    const [leader, ...followers] = spawned
    await formGroup(leader, followers)
    /** Connections that closed during the swarm (each fails its requests; libp2p's connection monitor closes a connection whose ping takes too long). */
    const closed: Array<{ host: string, peer: string, t: number }> = []
    for (const c of spawned) c.on(e => { if (e.ev === 'connclose') closed.push({ host: c.label, peer: spawned.find(x => x.id === e.peer)?.label ?? e.peer, t: e.t }) })
    log('group formed')
    const files = await dirs.make('edgelink-bench-files-')
    const path = join(files, 'netns-content.bin')
    await leader.call('makeFile', { path, mib: MIB, seed: 1000 }, 600_000)

    // --- the swarm: one addContent, every follower fetches
    const counters = async (): Promise<Array<{ tx: number, rx: number }>> => await Promise.all(bed!.hosts.map(async (h, i) => await ifaceBytes(spawned[i].proc.pid as number, h.ifname)))
    const before = await counters()
    const hostCounters = async (): Promise<Array<{ cpuMs: number, majorGcs: number, gcMs: number, opened: number, openedBytes: number, exchange: Record<string, number> }>> => await Promise.all(spawned.map(async c => {
      const x = await c.call('counters')
      return { cpuMs: cpuMs(x.cpu), majorGcs: x.gc.major as number, gcMs: x.gc.pause_ms as number, opened: x.noise.opened as number, openedBytes: x.noise.openedBytes as number, exchange: x.exchange as Record<string, number> }
    }))
    const counters0 = await hostCounters()
    const limitS = BYTES * 8 / (RATE * 1e6)
    // Every cable's traffic, sampled: where the time goes (idle uplinks, a slow start, a long tail).
    const samples: Array<{ t: number, bytes: Array<{ tx: number, rx: number }> }> = []
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        samples.push({ t: performance.timeOrigin + performance.now(), bytes: await counters() })
        await sleep(SAMPLE_MS)
      }
    })()
    const added = await leader.call('add', { path }, 600_000)
    if (process.env.DEBUG_STREAMS != null) setTimeout(() => { void Promise.all(spawned.map(async c => await c.call('streams'))).then(x => { log(JSON.stringify(x)) }) }, 3000)
    let ends: number[]
    try {
      ends = await Promise.all(followers.map(async f => await f.completed(added.id, limitS * 10_000)))
    } finally {
      sampling = false
      await sampler
    }
    const last = Math.max(...ends)
    const after = await counters()
    const counters1 = await hostCounters()
    const perHost: HostFigures[] = spawned.map((c, i) => ({
      role: i === 0 ? 'leader' : 'follower',
      ip: bed!.hosts[i].ip,
      served_mib: r2((counters1[i].exchange.servedBytes - counters0[i].exchange.servedBytes) / 2 ** 20),
      served_x: r2((counters1[i].exchange.servedBytes - counters0[i].exchange.servedBytes) / BYTES),
      cpu_s: r2((counters1[i].cpuMs - counters0[i].cpuMs) / 1000),
      major_gcs: counters1[i].majorGcs - counters0[i].majorGcs,
      gc_ms: Math.round(counters1[i].gcMs - counters0[i].gcMs),
      noise_messages_in: counters1[i].opened - counters0[i].opened,
      noise_message_in_mean_kib: r2((counters1[i].openedBytes - counters0[i].openedBytes) / Math.max(1, counters1[i].opened - counters0[i].opened) / 1024),
      wire_tx_mib: r2((after[i].tx - before[i].tx) / 2 ** 20),
      wire_rx_mib: r2((after[i].rx - before[i].rx) / 2 ** 20),
      exchange: Object.fromEntries(EXCHANGE_COUNTERS.map(k => [k, (counters1[i].exchange[k] ?? 0) - (counters0[i].exchange[k] ?? 0)])) as Record<typeof EXCHANGE_COUNTERS[number], number>,
      ...(i > 0 ? { complete_s: r2((ends[i - 1] - added.t1) / 1000) } : {})
    }))
    const swarmS = (last - added.t1) / 1000
    const connectionsClosed = closed.filter(x => x.t >= added.t1 && x.t <= last).map(x => ({ ...x, t: r2((x.t - added.t1) / 1000) }))
    if (connectionsClosed.length > 0) log(`connections closed during the swarm: ${JSON.stringify(connectionsClosed)}`)
    // Mbit/s per host per interval from the announcement on: leader tx, followers rx.
    const timeline = samples.slice(1).filter(x => x.t >= added.t1 - SAMPLE_MS).map((x, k, all) => {
      const prev = k === 0 ? samples[samples.indexOf(x) - 1] : all[k - 1]
      const dt = (x.t - prev.t) / 1000
      const mbit = (a: number, b: number): number => Math.round((a - b) * 8 / dt / 1e6)
      return { t: r2((x.t - added.t1) / 1000), leader_tx: mbit(x.bytes[0].tx, prev.bytes[0].tx), followers_rx: x.bytes.slice(1).map((b, j) => mbit(b.rx, prev.bytes[j + 1].rx)) }
    })
    log(`swarm: all ${followers.length} followers complete ${r2(swarmS)} s after the announcement (limit ${r2(limitS)} s)`)

    // --- what one cable carries: one TCP download, nothing else on the cables
    const { port } = await leader.call('tcpServe', { ip: bed.hosts[0].ip })
    let singleS: number | undefined
    if (OPTS.singleTcp) {
      const single = await followers[0].call('tcpFetch', { ip: bed.hosts[0].ip, port, bytes: BYTES }, limitS * 10_000)
      singleS = (single.t1 - single.t0) / 1000
      log(`one TCP download on an idle cable: ${r2(singleS)} s`)
    }

    // --- the swarm's traffic without its dependencies: every follower downloads an equal share from
    // every other host at once over plain TCP, so every cable carries what it carries in a perfect
    // swarm (each follower's cable several flows in, the leader's several out) and nothing waits for
    // a chunk to arrive somewhere first: what TCP itself makes of that traffic on these cables.
    let meshS: number | undefined
    if (OPTS.meshTcp) {
      const ports = [port, ...(await Promise.all(followers.map(async (f, i) => (await f.call('tcpServe', { ip: bed!.hosts[i + 1].ip })).port as number)))]
      const share = Math.ceil(BYTES / (HOSTS - 1))
      const res = await Promise.all(followers.flatMap((f, i) => bed!.hosts.map((h, j) => ({ h, j })).filter(({ j }) => j !== i + 1)
        .map(async ({ h, j }) => await f.call('tcpFetch', { ip: h.ip, port: ports[j], bytes: share }, limitS * 10_000))))
      meshS = (Math.max(...res.map(x => x.t1)) - Math.min(...res.map(x => x.t0))) / 1000
      log(`the swarm's traffic over plain TCP (every follower downloading 1/${HOSTS - 1} from every other host at once): ${r2(meshS)} s`)
    }

    // --- one source over HTTP: the leader serves the file with node:http, every follower fetches it at once
    let httpS: number | undefined
    let httpEach: number[] | undefined
    if (OPTS.oneSource.includes('http')) {
      const { url } = await leader.call('httpServe', { ip: bed.hosts[0].ip, path })
      const res = await Promise.all(followers.map(async f => await f.call('httpFetch', { url, bytes: BYTES }, limitS * followers.length * 10_000)))
      const start = Math.min(...res.map(x => x.t0))
      httpS = (Math.max(...res.map(x => x.t1)) - start) / 1000
      httpEach = res.map(x => r2((x.t1 - start) / 1000))
      log(`one source: ${followers.length} HTTP downloads from the leader at once: ${r2(httpS)} s`)
    }

    // --- one source over plain TCP: every follower downloads from the leader at once
    let oneSourceS: number | undefined
    if (OPTS.oneSource.includes('tcp')) {
      const res = await Promise.all(followers.map(async f => await f.call('tcpFetch', { ip: bed!.hosts[0].ip, port, bytes: BYTES }, limitS * followers.length * 10_000)))
      oneSourceS = (Math.max(...res.map(x => x.t1)) - Math.min(...res.map(x => x.t0))) / 1000
      log(`one source: ${followers.length} TCP downloads from the leader at once: ${r2(oneSourceS)} s`)
    }
    const ratio = r3(swarmS / limitS)
    return {
      hosts: HOSTS,
      rate_mbit: RATE,
      mib: MIB,
      tcp_congestion_control: await tcpCongestionControl(bed!.hosts[0]),
      limit_s: r2(limitS),
      swarm_s: r2(swarmS),
      swarm_with_import_s: r2((last - added.t0) / 1000),
      import_s: r2((added.t1 - added.t0) / 1000),
      ratio_to_limit: ratio,
      ...(singleS != null ? { single_tcp_s: r2(singleS), ratio_single_tcp_to_limit: r3(singleS / limitS) } : {}),
      ...(meshS != null ? { mesh_tcp_s: r2(meshS), ratio_mesh_tcp_to_limit: r3(meshS / limitS), ratio_to_mesh_tcp: r3(swarmS / meshS) } : {}),
      ...(httpS != null ? { one_source_http_s: r2(httpS), one_source_http_each_s: httpEach, ratio_one_source_http_to_limit: r3(httpS / limitS), speedup_vs_one_source_http: r2(httpS / swarmS) } : {}),
      ...(oneSourceS != null ? { one_source_tcp_s: r2(oneSourceS), ratio_one_source_to_limit: r3(oneSourceS / limitS), speedup_vs_one_source: r2(oneSourceS / swarmS) } : {}),
      per_host: perHost,
      connections_closed: connectionsClosed,
      timeline_mbit: timeline,
      leader_served_x: perHost[0].served_x,
      target: TARGETS.netns_ratio_to_limit,
      pass: ratio <= TARGETS.netns_ratio_to_limit
    }
  } finally {
    await Promise.allSettled(children.map(async c => { await c.stop() }))
    await bed?.destroy()
  }
}

// ---------------------------------------------------------------- main

function killAll (): void {
  for (const p of procs) { try { p.kill('SIGKILL') } catch {} }
}

export interface ContentResult {
  benchmark: 'content'
  environment: Record<string, unknown>
  params: Record<string, unknown>
  targets: typeof TARGETS
  loopback?: LoopbackResult
  netns?: NetnsResult | NetnsSkipped
  /** Set when a part failed (the parts before it are kept). */
  error?: string
}

/**
 * The content benchmark with `options`: the parts asked for, in order. A part that fails ends the
 * run with `error` set (what was measured before stays); a namespace part that cannot run here is
 * `{ skipped: reason }`. Children, namespaces and temp dirs are gone when it settles.
 */
export async function run (options: Partial<ContentOptions> = {}): Promise<ContentResult> {
  OPTS = { ...CONTENT_DEFAULTS, ...options }
  MIB = OPTS.mib
  BYTES = MIB * 1024 * 1024
  SWARM_MIB = OPTS.swarmMib ?? MIB
  SWARM_BYTES = SWARM_MIB * 1024 * 1024
  ROUNDS = OPTS.rounds
  HOSTS = OPTS.hosts
  RATE = OPTS.rate
  RAW_WRITE = OPTS.rawWriteKiB * 1024
  if (!(MIB > 0) || !(SWARM_MIB > 0) || !(ROUNDS >= 1) || !(HOSTS >= 2) || !(RATE > 0) || !(RAW_WRITE > 0)) throw new Error('bad arguments')
  if (OPTS.profile !== '') await mkdir(OPTS.profile, { recursive: true })
  const result: ContentResult = {
    benchmark: 'content',
    environment: { ...environment(), loadavg_start: loadavg().map(r2) },
    params: { mib: MIB, swarm_mib: SWARM_MIB, rounds: ROUNDS, hosts: HOSTS, rate_mbit: RATE, raw_write_kib: RAW_WRITE / 1024, one_source: OPTS.oneSource, host_options: 'defaults (lan) but dataDir, listen, name', host_node_flags: EXEC_ARGV.join(' '), host_malloc_env: agentEnvRecord(), host_sysctl: OPTS.hostSysctl },
    targets: TARGETS
  }
  process.on('exit', killAll)
  try {
    if (OPTS.parts.includes('loopback')) result.loopback = await loopback()
    if (OPTS.parts.includes('netns')) result.netns = await netns()
  } catch (err: any) {
    result.error = String(err?.stack ?? err)
    log(`FAILED: ${String(err?.message ?? err)}`)
  } finally {
    killAll()
    process.off('exit', killAll)
    await dirs.cleanup()
  }
  result.environment.loadavg_end = loadavg().map(r2)
  return result
}

/** Kills every child of a run interrupted by Ctrl-C and removes its temp dirs (namespaces remove themselves on exit). */
export async function abort (): Promise<void> {
  killAll()
  await dirs.cleanup()
}

function printTable (result: ContentResult): void {
  const rows: Array<Array<string | number>> = [['what', 'value', 'target / note']]
  const flags = EXEC_ARGV.join(' ')
  rows.push(['Node flags of the host processes', flags === '' ? '(none)' : flags, flags === AGENT_NODE_FLAGS.join(' ') ? 'the agent\'s' : 'CONTENT_HOST_NODE_FLAGS'])
  const lb = result.loopback
  if (lb != null) {
    rows.push([`loopback sync (host pair, ${lb.mib} MiB), MB/s p50`, lb.sync_p50_MBps, lb.sync_MBps.join(' ')])
    // Measurements left out with --kinds get no row (rather than NaN).
    if (lb.raw_libp2p_MBps.length > 0) rows.push([`raw libp2p stream (${lb.raw_write_kib} KiB writes), MB/s p50`, lb.raw_libp2p_p50_MBps, lb.raw_libp2p_MBps.join(' ')])
    if (lb.raw_libp2p_hashed_MBps.length > 0) rows.push(['raw libp2p stream, receiver hashing every MiB, MB/s p50', lb.raw_libp2p_hashed_p50_MBps, `${lb.raw_libp2p_hashed_MBps.join(' ')}; ${lb.ratio_hashed_to_raw_libp2p} × raw`])
    if (lb.sync_nostore_MBps.length > 0) rows.push(['sync, receiver storing no chunk file, MB/s p50', lb.sync_nostore_p50_MBps, `${lb.sync_nostore_MBps.join(' ')}; ${lb.ratio_nostore_to_raw_libp2p} × raw`])
    if (lb.raw_tcp_MBps.length > 0) rows.push(['raw TCP, MB/s p50', lb.raw_tcp_p50_MBps, lb.raw_tcp_MBps.join(' ')])
    const busy = Object.entries(lb.machine_cores_busy).map(([k, v]) => `${k} ${v}`).join(', ')
    if (busy !== '') rows.push([`cores busy on the machine (of ${lb.cores}), median`, busy, 'every process and the kernel'])
    const perGiB = Object.entries(lb.machine_cpu_s_per_GiB).map(([k, v]) => `${k} ${v}`).join(', ')
    if (perGiB !== '') rows.push(['machine CPU per GiB moved, s, median', perGiB, ''])
    if (lb.ratio_ceiling_at_raw_load != null) rows.push(['sync / raw this machine allows (at raw\'s load)', lb.ratio_ceiling_at_raw_load, 'raw\'s cores busy ÷ the sync\'s CPU per GiB'])
    if (lb.sync_MBps.length > 0 && lb.raw_libp2p_MBps.length > 0) rows.push(['sync / raw libp2p', lb.ratio_sync_to_raw_libp2p, `≥ ${lb.target} ${lb.pass ? 'PASS' : 'MISS'}`])
  }
  const nn = result.netns
  if (nn != null && 'skipped' in nn) rows.push(['netns', 'SKIPPED', nn.skipped])
  else if (nn != null) {
    rows.push([`netns: ${nn.hosts} hosts, ${nn.mib} MiB at ${nn.rate_mbit} Mbit/s: all complete, s`, nn.swarm_s, `limit ${nn.limit_s} s`])
    rows.push(['swarm / limit', nn.ratio_to_limit, `≤ ${nn.target} ${nn.pass ? 'PASS' : 'MISS'}`])
    rows.push(['TCP congestion control of the hosts', nn.tcp_congestion_control, 'the machine\'s default'])
    if (OPTS.hostSysctl.length > 0) rows.push(['kernel settings in the hosts\' namespaces', OPTS.hostSysctl.join(', '), '--host-sysctl'])
    if (nn.single_tcp_s != null) rows.push(['one TCP download, idle cable, s', nn.single_tcp_s, `${nn.ratio_single_tcp_to_limit ?? ''} × limit`])
    if (nn.mesh_tcp_s != null) rows.push(['the swarm\'s traffic over plain TCP, s', nn.mesh_tcp_s, `${nn.ratio_mesh_tcp_to_limit ?? ''} × limit; swarm ${nn.ratio_to_mesh_tcp ?? ''} × this`])
    if (nn.one_source_http_s != null) rows.push([`one source (${nn.hosts - 1} HTTP downloads from the leader), s`, nn.one_source_http_s, `${nn.ratio_one_source_http_to_limit ?? ''} × limit`])
    if (nn.one_source_tcp_s != null) rows.push([`one source (${nn.hosts - 1} TCP downloads from the leader), s`, nn.one_source_tcp_s, `${nn.ratio_one_source_to_limit ?? ''} × limit`])
    for (const h of nn.per_host) rows.push([`${h.role} ${h.ip}: served MiB (× content) / wire tx MiB`, `${h.served_mib} (${h.served_x}×)`, `${h.wire_tx_mib}${h.complete_s != null ? `, complete at ${h.complete_s} s` : ''}`])
  }
  if (rows.length > 1) process.stderr.write(table(rows) + '\n')
}

/** The command line's options (parseArgs, node:util); every one is in USAGE. */
export const CLI_OPTIONS = {
  mib: { type: 'string', default: String(CONTENT_DEFAULTS.mib) },
  /** Size of the namespace part, in MiB (default: --mib). */
  'swarm-mib': { type: 'string', default: '' },
  rounds: { type: 'string', default: String(CONTENT_DEFAULTS.rounds) },
  hosts: { type: 'string', default: String(CONTENT_DEFAULTS.hosts) },
  rate: { type: 'string', default: String(CONTENT_DEFAULTS.rate) },
  /** Write size of the raw libp2p baseline, in KiB. */
  'raw-write': { type: 'string', default: String(CONTENT_DEFAULTS.rawWriteKiB) },
  only: { type: 'string', default: '' },
  /** Which loopback measurements to run (comma-separated): sync, nostore, raw, verify, tcp. */
  kinds: { type: 'string', default: CONTENT_DEFAULTS.kinds.join(',') },
  /** Write a CPU profile of both loopback hosts for each measurement into this directory. */
  profile: { type: 'string', default: '' },
  /** Which one-source baselines part 2 runs (comma-separated): http, tcp; '' for none. */
  'one-source': { type: 'string', default: CONTENT_DEFAULTS.oneSource.join(',') },
  /** Skip the one-source baselines of part 2 (each takes about hosts − 1 times the limit). */
  'no-baseline': { type: 'boolean', default: false },
  /** Kernel settings applied in every host's namespace of part 2 (comma-separated net.…=N). */
  'host-sysctl': { type: 'string', default: '' }
} satisfies ParseArgsOptionsConfig

export const USAGE = `usage: npm run bench:content -- [options]
       node dist/benchmarks/content.js [options]     (after npm run build)

Content sync benchmark, with its baselines measured in the same run, in two parts:
  loopback  one host pair, two processes (benchmarks/content-host.ts), no shaping: the leader adds
            --mib MiB, the follower syncs it (verifying every chunk), next to the same sync with
            the follower storing no chunk file (what storage costs), a raw libp2p stream on the
            same connection, that stream with its receiver hashing every MiB (what verification
            alone costs) and raw TCP between the same two processes; --rounds rounds in a
            rotating order, medians.
  netns     --hosts hosts in network namespaces, every cable shaped to --rate Mbit/s: the time
            until every follower holds the leader's content, next to the physical limit (size ÷
            rate), to one-source distribution (every follower downloading from the leader at
            once, over HTTP and over TCP), to one TCP download on an otherwise idle cable, and to
            the swarm's own traffic over plain TCP (every follower downloading an equal share
            from every other host at once: what TCP makes of those flows on these cables).
            Needs Linux, root and iproute2; without them it is skipped, loudly, and the command
            exits 1.

options:
  --mib N            content size of the loopback part, in MiB (default ${CONTENT_DEFAULTS.mib})
  --swarm-mib N      content size of the netns part, in MiB (default: --mib)
  --rounds N         loopback rounds, each runs every measurement of --kinds once (default ${CONTENT_DEFAULTS.rounds})
  --hosts N          hosts in the netns part, one leader and the rest followers (default ${CONTENT_DEFAULTS.hosts})
  --rate MBIT        every cable's rate in the netns part, in Mbit/s (default ${CONTENT_DEFAULTS.rate})
  --raw-write KIB    write size of the raw libp2p baseline, in KiB (default ${CONTENT_DEFAULTS.rawWriteKiB})
  --only PART        run only one part: loopback or netns (default: both)
  --kinds LIST       loopback measurements to run, comma-separated, of sync, nostore (the sync
                     with the follower storing no chunk file), raw, verify (the raw stream with
                     its receiver hashing every MiB), tcp
                     (default ${CONTENT_DEFAULTS.kinds.join(',')})
  --profile DIR      write a CPU profile of both loopback hosts for each measurement into DIR
                     (default: none)
  --one-source LIST  one-source baselines of the netns part, comma-separated, of http, tcp; '' for
                     none; each takes about hosts − 1 times the limit (default ${CONTENT_DEFAULTS.oneSource.join(',')})
  --no-baseline      skip the one-source baselines of the netns part, whatever --one-source says
                     (default off)
  --host-sysctl LIST kernel settings applied inside every host's namespace of the netns part
                     before it starts, comma-separated net.…=N, e.g.
                     net.ipv4.tcp_notsent_lowat=131072 (default: none, the machine's own)
  -h, --help         print this help and exit

Environment: CONTENT_HOST_NODE_FLAGS, Node flags for the host processes instead of the agent's own
(${AGENT_NODE_FLAGS.join(' ')}): '' for Node's defaults, --cpu-prof … to profile them.

Output: one JSON object on stdout (also written to benchmarks/results/content-latest.json);
progress and a table on stderr.

Targets: loopback sync ≥ ${TARGETS.loopback_ratio_to_raw_libp2p} × raw libp2p; netns, every follower complete ≤ ${TARGETS.netns_ratio_to_limit} × the
physical limit.

Exits 0 also when a target is missed (\`pass\` in the JSON says so), 1 when the benchmark itself
fails or the netns part was asked for and skipped, 2 on a bad command line. Children and
namespaces are removed at the end, also on failure and on Ctrl-C.
`

if (import.meta.main) {
  const { values: args } = parseBenchArgs(USAGE, { options: CLI_OPTIONS })
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { void abort().finally(() => process.exit(130)) })
  }
  const parts = args.only === '' ? CONTENT_DEFAULTS.parts : [args.only as 'loopback' | 'netns']
  let hostSysctl: string[]
  try {
    hostSysctl = parseHostSysctl(args['host-sysctl'])
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message} (see --help)\n`)
    process.exit(2)
  }
  const result = await run({
    mib: Number(args.mib),
    swarmMib: args['swarm-mib'] !== '' ? Number(args['swarm-mib']) : undefined,
    rounds: Number(args.rounds),
    hosts: Number(args.hosts),
    rate: Number(args.rate),
    rawWriteKiB: Number(args['raw-write']),
    parts,
    kinds: args.kinds.split(',').filter(k => k !== '') as ContentOptions['kinds'],
    profile: args.profile,
    oneSource: args['no-baseline'] ? [] : args['one-source'].split(',').filter(k => k !== '') as ContentOptions['oneSource'],
    hostSysctl
  })
  await writeResult('content', result)
  process.stdout.write(JSON.stringify(result, null, 2) + '\n')
  printTable(result)
  // A namespace part asked for and skipped fails the command, as before: the reason is in the result.
  process.exit(result.error != null || (result.netns != null && 'skipped' in result.netns) ? 1 : 0)
}
