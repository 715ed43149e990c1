/**
 * A multi-host test bed on Linux network namespaces: `createTestbed({ hosts: 3 })` gives three
 * hosts, each in a namespace of its own with one address in 198.18.0.0/15 (the benchmarking
 * range), cabled by veth pairs to one Linux bridge in a "switch" namespace. Faults are made on
 * the switch side: `cut` pulls a host's cable, `partition` moves ports onto separate bridges,
 * `shape` puts a token bucket (tbf) on both ends of a cable.
 *
 * Nothing is created in, or routed from, the machine's own namespace: every interface is made
 * directly inside a test namespace, none has a default route, so test traffic cannot leave.
 * Needs root (CAP_NET_ADMIN), iproute2 (`ip`, `tc`) and the veth, bridge and tbf kernel modules.
 *
 * Layout for prefix `el1234a` (names stay ≤ 15 characters, the kernel's limit):
 * ```
 *  netns el1234a-h0: lo, el1234a-h0 198.18.k.1/24 ──veth── el1234a-s0 ┐
 *  netns el1234a-h1: lo, el1234a-h1 198.18.k.2/24 ──veth── el1234a-s1 ├ bridge el1234a-b0 (netns el1234a-sw)
 *  netns el1234a-h2: lo, el1234a-h2 198.18.k.3/24 ──veth── el1234a-s2 ┘ (el1234a-b1… only while partitioned)
 * ```
 * Not a test file itself (no `.test.` in the name).
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'

/** Where the kernel allows test hosts: 198.18.0.0/15 (RFC 2544), never routed on a real network. */
export const TESTBED_RANGE = '198.18.0.0/15'
/** Set to `1` on a machine without network namespaces to skip (loudly) instead of failing. */
export const SKIP_VAR = 'EDGELINK_SKIP_NETNS'
/** tbf queue bound: packets wait at most this long, then drop (like a switch buffer). */
const TBF_LATENCY = '50ms'
/** tbf bucket floor: 64 KiB lets a full GSO segment through at 100 Mbit without bursting far past the rate. */
const TBF_MIN_BURST = 64 * 1024
/** Unmarked namespaces younger than this may belong to a run still setting up: never swept. */
const STALE_AGE_MS = 10_000
/** Written as the alias of `lo` in the switch namespace: who owns a run's namespaces. */
const MARKER = 'edgelink-testbed'
/** The default prefix scheme, `el<pid % 10000><a|b|…>`: what `cleanupStale()` sweeps. */
const SCHEME = /^el\d{1,4}[a-z]+$/
const IFNAMSIZ = 15

export type TestbedErrorCode =
  /** Namespaces cannot be created here (not Linux, not root, no iproute2, kernel modules missing). */
  | 'NETNS_UNAVAILABLE'
  /** A bad option or host index. */
  | 'INVALID_ARGUMENT'
  /** `ip` or `tc` failed; `command` and `stderr` say how. */
  | 'COMMAND_FAILED'
  /** Namespaces with this prefix belong to a live process (or one still setting up). */
  | 'PREFIX_IN_USE'
  /** The test bed was destroyed. */
  | 'DESTROYED'

export class TestbedError extends Error {
  override readonly name = 'TestbedError'
  readonly code: TestbedErrorCode
  readonly command?: string[]
  readonly stderr?: string

  constructor (code: TestbedErrorCode, message: string, detail: { command?: string[], stderr?: string } = {}) {
    super(message)
    this.code = code
    this.command = detail.command
    this.stderr = detail.stderr
  }
}

export interface TestbedOptions {
  /** How many hosts (1…250). */
  hosts: number
  /** tbf rate in Mbit/s on each host's cable, both directions (its upload and its download). Unshaped when unset. */
  rateMbit?: number
  /**
   * Prefix of every namespace and interface name. Must leave room for `-h<index>` within 15
   * characters.
   * @default `el<pid % 10000>` and a letter per test bed of this process (`el1234a`, `el1234b`, …)
   */
  prefix?: string
  /**
   * An IPv4 `/N` network inside 198.18.0.0/15 (N from 15 to 29); host i gets its (i + 1)th address.
   * @default 198.18.<k>.0/24, k varying with the pid and the test bed
   */
  subnet?: string
}

export interface ExecOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Written to the command's stdin, which is then closed. */
  input?: string | Buffer
  /** SIGKILL after this many ms; the result then has `signal: 'SIGKILL'`. */
  timeoutMs?: number
  signal?: AbortSignal
}

export interface ExecResult { stdout: string, stderr: string, code: number | null, signal: NodeJS.Signals | null }

export interface NetnsHost {
  index: number
  /** The namespace name (for `ip netns exec`, `ip -n`). */
  name: string
  /** The host's address (no prefix length). */
  ip: string
  /** Its interface, inside its namespace. */
  ifname: string
  /** Runs `cmd` inside the namespace to completion; never rejects on a non-zero exit. */
  exec (cmd: string[], opts?: ExecOptions): Promise<ExecResult>
  /** Starts `cmd` inside the namespace (via `ip netns exec`, which execs it: the pid is the command's). */
  spawn (cmd: string[], opts?: SpawnOptions): ChildProcess
  /** The kernel's byte counters of the host's interface (everything on its cable, both ways, since it was made). */
  linkStats (): Promise<{ rxBytes: number, txBytes: number }>
}

export interface Testbed {
  readonly prefix: string
  /** The network, e.g. `198.18.42.0/24`. */
  readonly subnet: string
  /** The switch namespace, holding the bridge(s). */
  readonly switchNs: string
  readonly hosts: NetnsHost[]
  /** Pulls host i's cable at the switch: its port goes down, the host sees no carrier, packets to and from it are lost. */
  cut (i: number): Promise<void>
  /** Plugs host i's cable back in. */
  heal (i: number): Promise<void>
  /**
   * Splits the switch: hosts in each listed group reach only hosts of the same group; hosts in no
   * group form one more group. `partition([0])` isolates host 0 from the rest.
   */
  partition (...groups: number[][]): Promise<void>
  /** Undoes every partition and every cut (shaping stays). */
  healAll (): Promise<void>
  /** Sets host i's cable to `rateMbit` both ways; `null` removes the shaping. */
  shape (i: number, rateMbit: number | null): Promise<void>
  /** Kills every process in the namespaces and removes them all, with their interfaces and bridges. Idempotent. */
  destroy (): Promise<void>
}

// ---------------------------------------------------------------------------------------------
// Running ip and tc

function findTool (name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin']
  for (const d of dirs) if (d !== '' && existsSync(`${d}/${name}`)) return `${d}/${name}`
  return undefined
}

const IP = findTool('ip') ?? 'ip'
const TC = findTool('tc') ?? 'tc'

async function run (file: string, args: string[]): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err == null) { resolve(stdout); return }
      const command = [file, ...args]
      reject(new TestbedError('COMMAND_FAILED', `${command.join(' ')}: ${stderr.trim() !== '' ? stderr.trim() : err.message}`, { command, stderr }))
    })
  })
}

const ip = async (...args: string[]): Promise<string> => await run(IP, args)
const tc = async (...args: string[]): Promise<string> => await run(TC, args)

function runSync (file: string, args: string[]): string | undefined {
  try {
    return execFileSync(file, args, { stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8' })
  } catch {
    return undefined
  }
}

/** Names from `ip netns list` ("name (id: 3)" lines). */
async function listNetns (): Promise<string[]> {
  return parseNetnsList(await ip('netns', 'list'))
}

function parseNetnsList (out: string): string[] {
  return out.split('\n').map(l => l.trim().split(/\s+/)[0]).filter(n => n !== '')
}

async function delNetns (name: string): Promise<void> {
  await ip('netns', 'del', name).catch((err: TestbedError) => {
    if (!/No such file|does not exist|Invalid argument/i.test(err.stderr ?? '')) throw err
  })
}

/** Processes whose network namespace is `name` (started in it, or their children). */
async function netnsPids (name: string): Promise<number[]> {
  const out = await ip('netns', 'pids', name).catch(() => '')
  return out.split(/\s+/).filter(s => s !== '').map(Number)
}

function kill (pid: number, sig: NodeJS.Signals = 'SIGKILL'): void {
  try { process.kill(pid, sig) } catch {}
}

// ---------------------------------------------------------------------------------------------
// Ownership: who made a run's namespaces, so a sweep removes only what a dead process left

/** Field 22 of /proc/<pid>/stat: with the pid, it identifies a process across pid reuse. */
function startTicks (pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

const markerText = (): string => `${MARKER} pid=${process.pid} start=${startTicks(process.pid) ?? '0'}`

type Owner = 'self' | 'alive' | 'dead' | 'unknown'

async function ownerOf (switchNs: string): Promise<Owner> {
  const out = await ip('-n', switchNs, '-o', 'link', 'show', 'lo').catch(() => '')
  const m = new RegExp(`alias ${MARKER} pid=(\\d+) start=(\\d+)`).exec(out)
  if (m == null) return 'unknown'
  const pid = Number(m[1])
  if (startTicks(pid) !== m[2]) return 'dead'
  return pid === process.pid ? 'self' : 'alive'
}

function ageMs (ns: string): number {
  try {
    return Date.now() - statSync(`/run/netns/${ns}`).mtimeMs
  } catch {
    return Infinity
  }
}

/**
 * Removes namespaces that earlier, crashed runs left behind: those of `prefix` (`<prefix>-*`), or
 * with no prefix every run of the default scheme (`el<digits><letters>-*`). A run is left alone
 * while the process that made it lives, or while it is unmarked and younger than 10 s (still
 * being set up). Returns the namespaces removed.
 * @throws TestbedError `PREFIX_IN_USE` when `prefix` is given and belongs to a live run (not a sweep)
 */
export async function cleanupStale (prefix?: string): Promise<string[]> {
  const runs = new Map<string, string[]>()
  for (const ns of await listNetns()) {
    const cut = ns.lastIndexOf('-')
    if (cut <= 0) continue
    const p = ns.slice(0, cut)
    if (prefix != null ? p !== prefix : !SCHEME.test(p)) continue
    runs.set(p, [...(runs.get(p) ?? []), ns])
  }
  const removed: string[] = []
  for (const [p, names] of runs) {
    if (live.has(p)) {
      if (prefix != null) throw new TestbedError('PREFIX_IN_USE', `test bed prefix ${p} is in use by this process`)
      continue
    }
    const owner = await ownerOf(`${p}-sw`)
    const stale = owner === 'dead' || owner === 'self' ||
      (owner === 'unknown' && names.every(n => ageMs(n) > STALE_AGE_MS))
    if (!stale) {
      if (prefix != null) throw new TestbedError('PREFIX_IN_USE', `namespaces ${names.join(', ')} belong to a live process (${owner})`)
      continue
    }
    for (const n of names) for (const pid of await netnsPids(n)) kill(pid)
    for (const n of names) { await delNetns(n); removed.push(n) }
  }
  return removed
}

// ---------------------------------------------------------------------------------------------
// Availability

let probe: Promise<{ ok: boolean, reason?: string }> | undefined

/**
 * Whether this machine can run the test bed: makes (and removes) a namespace with a bridge, a
 * veth pair and a tbf qdisc. The answer is computed once per process.
 */
export async function netnsAvailable (): Promise<{ ok: boolean, reason?: string }> {
  probe ??= (async () => {
    if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux, this is ${process.platform}` }
    if (findTool('ip') == null) return { ok: false, reason: '`ip` not found (install Debian package iproute2)' }
    if (findTool('tc') == null) return { ok: false, reason: '`tc` not found (install Debian package iproute2)' }
    if (process.getuid?.() !== 0) return { ok: false, reason: `network namespaces need root (CAP_NET_ADMIN); uid is ${process.getuid?.()}` }
    const ns = `${nextPrefix()}-probe`
    try {
      await ip('netns', 'add', ns)
      await ip('-n', ns, 'link', 'add', 'pb', 'type', 'bridge')
      await ip('-n', ns, 'link', 'add', 'pa', 'type', 'veth', 'peer', 'name', 'pz')
      await ip('-n', ns, 'link', 'set', 'pz', 'master', 'pb')
      await tc('-n', ns, 'qdisc', 'add', 'dev', 'pa', 'root', 'tbf', 'rate', '100mbit', 'burst', '64kb', 'latency', TBF_LATENCY)
      return { ok: true }
    } catch (err: any) {
      return { ok: false, reason: err.message }
    } finally {
      await delNetns(ns).catch(() => {})
    }
  })()
  return await probe
}

/**
 * For a mocha `before` hook: returns when namespaces work. Otherwise fails loudly, unless
 * EDGELINK_SKIP_NETNS=1, in which case it prints the reason and skips the suite.
 * `available` is a seam for testing this function itself.
 */
export async function requireNetns (ctx: { skip: () => never }, available = netnsAvailable): Promise<void> {
  const r = await available()
  if (r.ok) return
  const banner = `NETWORK NAMESPACE TEST BED UNAVAILABLE: ${r.reason ?? 'unknown reason'}`
  if (process.env[SKIP_VAR] === '1') {
    console.warn(`\n  !!! ${banner}\n  !!! ${SKIP_VAR}=1 is set: skipping the multi-host tests.\n`)
    ctx.skip()
  }
  throw new TestbedError('NETNS_UNAVAILABLE', `${banner}. Run as root on Linux with iproute2, or set ${SKIP_VAR}=1 on a machine that cannot have namespaces.`)
}

// ---------------------------------------------------------------------------------------------
// Options

let beds = 0

/** `el<pid % 10000>` and a letter per call: a, b, …, z, ba, bb, … */
function nextPrefix (): string {
  let n = beds++
  let s = ''
  do { s = String.fromCharCode(97 + (n % 26)) + s; n = Math.floor(n / 26) } while (n > 0)
  return `el${process.pid % 10000}${s}`
}

const toInt = (a: string): number => a.split('.').reduce((v, o) => v * 256 + Number(o), 0) >>> 0
const toIp = (n: number): string => [24, 16, 8, 0].map(s => (n >>> s) & 255).join('.')

function parseSubnet (subnet: string, hosts: number): { base: number, bits: number } {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(subnet)
  if (m == null || m.slice(1, 5).some(o => Number(o) > 255)) throw new TestbedError('INVALID_ARGUMENT', `subnet must be a.b.c.d/N, got "${subnet}"`)
  const bits = Number(m[5])
  if (bits < 15 || bits > 29) throw new TestbedError('INVALID_ARGUMENT', `subnet prefix length must be 15…29, got /${bits}`)
  const mask = (0xffffffff << (32 - bits)) >>> 0
  const base = (toInt(m.slice(1, 5).join('.')) & mask) >>> 0
  if (((base & 0xfffe0000) >>> 0) !== toInt('198.18.0.0')) throw new TestbedError('INVALID_ARGUMENT', `subnet ${subnet} is outside ${TESTBED_RANGE}`)
  if (hosts > 2 ** (32 - bits) - 2) throw new TestbedError('INVALID_ARGUMENT', `${hosts} hosts do not fit in ${subnet}`)
  return { base, bits }
}

function checkRate (rateMbit: number): void {
  if (!Number.isFinite(rateMbit) || rateMbit < 0.01 || rateMbit > 100_000) throw new TestbedError('INVALID_ARGUMENT', `rateMbit must be 0.01…100000, got ${rateMbit}`)
}

// ---------------------------------------------------------------------------------------------
// Process-wide cleanup: every live test bed is removed on exit and on SIGINT/SIGTERM

const live = new Map<string, NetnsTestbed>()
let hooked = false

function destroyAllSync (): void {
  for (const bed of [...live.values()]) bed.destroySync()
}

function onSignal (sig: NodeJS.Signals): void {
  destroyAllSync()
  unhook()
  // Someone else (mocha) handles the signal: let them. Otherwise die of it, as we would have.
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig)
}

const onExit = (): void => { destroyAllSync() }

function hook (): void {
  if (hooked) return
  hooked = true
  process.on('exit', onExit)
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
}

function unhook (): void {
  if (!hooked) return
  hooked = false
  process.off('exit', onExit)
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)
}

// ---------------------------------------------------------------------------------------------
// The test bed

class NetnsTestbed implements Testbed {
  readonly prefix: string
  readonly subnet: string
  readonly switchNs: string
  readonly hosts: NetnsHost[] = []
  /** Every namespace this bed created, in creation order: what destroy removes. */
  private readonly created: string[] = []
  private readonly children = new Set<ChildProcess>()
  /** Bridge index each host's switch port is enslaved to (0 unless partitioned). */
  private readonly bridgeOf: number[] = []
  private readonly bridges = new Set<number>()
  private readonly isCut = new Set<number>()
  private destroyed = false
  private destroying?: Promise<void>

  constructor (prefix: string, subnet: string) {
    this.prefix = prefix
    this.subnet = subnet
    this.switchNs = `${prefix}-sw`
  }

  bridge (b: number): string { return `${this.prefix}-b${b}` }
  port (i: number): string { return `${this.prefix}-s${i}` }

  async addNetns (name: string): Promise<void> {
    this.check()
    await ip('netns', 'add', name)
    this.created.push(name)
  }

  async addBridge (b: number): Promise<void> {
    await ip('-n', this.switchNs, 'link', 'add', this.bridge(b), 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0')
    this.bridges.add(b)
    await ip('-n', this.switchNs, 'link', 'set', this.bridge(b), 'up')
  }

  async setup (count: number, base: number, rateMbit?: number): Promise<void> {
    await this.addNetns(this.switchNs)
    await ip('-n', this.switchNs, 'link', 'set', 'lo', 'alias', markerText())
    await this.addBridge(0)
    await Promise.all(Array.from({ length: count }, async (_, i) => { await this.addHost(i, toIp(base + i + 1), rateMbit) }))
  }

  async addHost (i: number, addr: string, rateMbit?: number): Promise<void> {
    const ns = `${this.prefix}-h${i}`
    const ifname = ns
    await this.addNetns(ns)
    // Both ends are born inside their namespaces: nothing ever appears in the machine's own.
    await ip('link', 'add', ifname, 'netns', ns, 'type', 'veth', 'peer', 'name', this.port(i), 'netns', this.switchNs)
    await ip('-n', this.switchNs, 'link', 'set', this.port(i), 'master', this.bridge(0), 'up')
    this.bridgeOf[i] = 0
    await ip('-n', ns, 'addr', 'add', `${addr}/${this.subnet.split('/')[1]}`, 'dev', ifname)
    await ip('-n', ns, 'link', 'set', 'lo', 'up')
    await ip('-n', ns, 'link', 'set', ifname, 'up')
    this.hosts[i] = this.makeHost(i, ns, addr, ifname)
    if (rateMbit != null) await this.shape(i, rateMbit)
  }

  makeHost (index: number, name: string, addr: string, ifname: string): NetnsHost {
    const spawnIn = (cmd: string[], opts: SpawnOptions = {}): ChildProcess => {
      this.check()
      if (cmd.length === 0) throw new TestbedError('INVALID_ARGUMENT', 'empty command')
      const child = spawn(IP, ['netns', 'exec', name, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
      this.children.add(child)
      child.on('exit', () => { this.children.delete(child) })
      child.on('error', () => { this.children.delete(child) })
      return child
    }
    const exec = async (cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> => await new Promise((resolve, reject) => {
      const child = spawnIn(cmd, { env: opts.env, cwd: opts.cwd, signal: opts.signal, stdio: [opts.input != null ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      child.stdout?.on('data', (b: Buffer) => { stdout += b.toString() })
      child.stderr?.on('data', (b: Buffer) => { stderr += b.toString() })
      const timer = opts.timeoutMs != null ? setTimeout(() => { child.kill('SIGKILL') }, opts.timeoutMs) : undefined
      child.on('error', err => { clearTimeout(timer); reject(err) })
      child.on('close', (code, signal) => { clearTimeout(timer); resolve({ stdout, stderr, code, signal }) })
      if (opts.input != null) child.stdin?.end(opts.input)
    })
    const linkStats = async (): Promise<{ rxBytes: number, txBytes: number }> => {
      this.check()
      const [link] = JSON.parse(await ip('-n', name, '-j', '-s', 'link', 'show', 'dev', ifname))
      return { rxBytes: Number(link.stats64.rx.bytes), txBytes: Number(link.stats64.tx.bytes) }
    }
    return { index, name, ip: addr, ifname, exec, spawn: spawnIn, linkStats }
  }

  private check (i?: number): void {
    if (this.destroyed) throw new TestbedError('DESTROYED', `test bed ${this.prefix} was destroyed`)
    if (i != null && (!Number.isInteger(i) || this.hosts[i] == null)) throw new TestbedError('INVALID_ARGUMENT', `no host ${i} (hosts 0…${this.hosts.length - 1})`)
  }

  async cut (i: number): Promise<void> {
    this.check(i)
    await ip('-n', this.switchNs, 'link', 'set', this.port(i), 'down')
    this.isCut.add(i)
  }

  async heal (i: number): Promise<void> {
    this.check(i)
    await ip('-n', this.switchNs, 'link', 'set', this.port(i), 'up')
    this.isCut.delete(i)
  }

  async partition (...groups: number[][]): Promise<void> {
    this.check()
    const want = this.hosts.map(() => 0)
    groups.forEach((g, k) => {
      for (const i of g) {
        this.check(i)
        if (want[i] !== 0) throw new TestbedError('INVALID_ARGUMENT', `host ${i} is in two groups`)
        want[i] = k + 1
      }
    })
    await this.moveTo(want)
  }

  async healAll (): Promise<void> {
    this.check()
    await this.moveTo(this.hosts.map(() => 0))
    for (const i of [...this.isCut]) await this.heal(i)
  }

  /** Re-enslaves each switch port to its group's bridge; a port keeps its state (up or cut) and qdiscs. */
  private async moveTo (want: number[]): Promise<void> {
    for (const b of new Set(want)) if (!this.bridges.has(b)) await this.addBridge(b)
    await Promise.all(want.map(async (b, i) => {
      if (this.bridgeOf[i] === b) return
      await ip('-n', this.switchNs, 'link', 'set', this.port(i), 'master', this.bridge(b))
      this.bridgeOf[i] = b
    }))
  }

  async shape (i: number, rateMbit: number | null): Promise<void> {
    this.check(i)
    const h = this.hosts[i]
    const ends: Array<[string, string]> = [[h.name, h.ifname], [this.switchNs, this.port(i)]]
    if (rateMbit == null) {
      await Promise.all(ends.map(async ([ns, dev]) => {
        await tc('-n', ns, 'qdisc', 'del', 'dev', dev, 'root').catch((err: TestbedError) => {
          if (!/No such file|Cannot delete qdisc with handle of zero|Invalid handle/i.test(err.stderr ?? '')) throw err
        })
      }))
      return
    }
    checkRate(rateMbit)
    // The bucket holds 4 ms of traffic (the timer granularity at HZ=250), never less than 64 KiB.
    const burst = Math.max(TBF_MIN_BURST, Math.ceil(rateMbit * 1e6 / 8 * 0.004))
    await Promise.all(ends.map(async ([ns, dev]) => {
      await tc('-n', ns, 'qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${rateMbit}mbit`, 'burst', String(burst), 'latency', TBF_LATENCY)
    }))
  }

  async destroy (): Promise<void> {
    this.destroying ??= (async () => {
      this.destroyed = true
      try {
        for (const c of this.children) kill(c.pid ?? -1)
        // Anything still inside (a child's children) would keep a namespace alive after its name is gone.
        for (let round = 0; round < 50; round++) {
          const pids = (await Promise.all(this.created.map(netnsPids))).flat()
          if (pids.length === 0) break
          for (const pid of pids) kill(pid)
          await new Promise(resolve => setTimeout(resolve, 20))
        }
        for (const ns of [...this.created].reverse()) await delNetns(ns)
        this.created.length = 0
      } finally {
        live.delete(this.prefix)
        if (live.size === 0) unhook()
      }
    })()
    await this.destroying
  }

  /** For process exit and signals, where nothing asynchronous runs any more. */
  destroySync (): void {
    this.destroyed = true
    for (const c of this.children) kill(c.pid ?? -1)
    for (const ns of this.created) {
      for (const pid of (runSync(IP, ['netns', 'pids', ns]) ?? '').split(/\s+/).filter(s => s !== '')) kill(Number(pid))
    }
    for (const ns of [...this.created].reverse()) runSync(IP, ['netns', 'del', ns])
    this.created.length = 0
    live.delete(this.prefix)
  }
}

/**
 * Builds a test bed. On any failure it removes what it made before rejecting.
 * @throws TestbedError `INVALID_ARGUMENT`, `PREFIX_IN_USE`, `COMMAND_FAILED`
 */
export async function createTestbed (opts: TestbedOptions): Promise<Testbed> {
  const count = opts.hosts
  if (!Number.isInteger(count) || count < 1 || count > 250) throw new TestbedError('INVALID_ARGUMENT', `hosts must be 1…250, got ${count}`)
  if (opts.rateMbit != null) checkRate(opts.rateMbit)
  const prefix = opts.prefix ?? nextPrefix()
  if (!/^[a-z][a-z0-9]*$/.test(prefix)) throw new TestbedError('INVALID_ARGUMENT', `prefix must be lowercase letters and digits, starting with a letter, got "${prefix}"`)
  const longest = Math.max(`${prefix}-h${count - 1}`.length, `${prefix}-b${count}`.length)
  if (longest > IFNAMSIZ) throw new TestbedError('INVALID_ARGUMENT', `prefix "${prefix}" makes interface names of ${longest} characters; the limit is ${IFNAMSIZ}`)
  const subnet = opts.subnet ?? `198.18.${(process.pid + beds) % 256}.0/24`
  const { base, bits } = parseSubnet(subnet, count)

  await cleanupStale(prefix)
  const bed = new NetnsTestbed(prefix, `${toIp(base)}/${bits}`)
  live.set(prefix, bed)
  hook()
  try {
    await bed.setup(count, base, opts.rateMbit)
  } catch (err) {
    await bed.destroy().catch(() => {})
    throw err
  }
  return bed
}

// ---------------------------------------------------------------------------------------------
// Small TCP tools that run inside the namespaces (node only: no extra packages)

/** A sink: counts what a client sends and, when the client ends, answers `{"bytes":n}` and closes. */
const SERVER_JS = `
const net = require('node:net')
const srv = net.createServer(s => {
  let n = 0
  s.on('data', b => { n += b.length })
  s.on('end', () => { s.end(JSON.stringify({ bytes: n })) })
  s.on('error', () => {})
})
srv.listen(Number(process.argv[2]), process.argv[1], () => { console.log(JSON.stringify({ port: srv.address().port })) })
`

/** Connects, sends `bytes` zeros, ends, waits for the sink's answer; prints the result as JSON. */
const CLIENT_JS = `
const net = require('node:net')
const [host, port, bytes, timeout] = process.argv.slice(1).map((v, i) => i === 0 ? v : Number(v))
const t0 = process.hrtime.bigint()
let answer = ''
const done = r => { console.log(JSON.stringify(r)); process.exit(0) }
const s = net.connect({ host, port })
s.setTimeout(timeout, () => { done({ ok: false, error: 'ETIMEDOUT' }) })
s.on('error', e => { done({ ok: false, error: e.code ?? e.message }) })
s.on('data', b => { answer += b })
s.on('end', () => {
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  done({ ok: true, ms, bytes: JSON.parse(answer).bytes })
})
s.on('connect', () => {
  const chunk = Buffer.alloc(64 * 1024)
  let left = bytes
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, chunk.length)
      left -= n
      if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) { s.once('drain', pump); return }
    }
    s.end()
  }
  pump()
})
`

export interface TcpServer {
  host: NetnsHost
  port: number
  close (): Promise<void>
}

/** Starts a TCP sink in `host` on `port` (0: any) and resolves once it listens on the host's address. */
export async function tcpServer (host: NetnsHost, port = 0): Promise<TcpServer> {
  const child = host.spawn([process.execPath, '-e', SERVER_JS, host.ip, String(port)])
  let err = ''
  child.stderr?.on('data', (b: Buffer) => { err += b.toString() })
  const exited = new Promise<void>(resolve => { child.on('exit', () => { resolve() }) })
  const bound = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString()
      if (out.includes('\n')) resolve(JSON.parse(out).port)
    })
    child.on('exit', code => { reject(new Error(`tcp server in ${host.name} exited ${code}: ${err}`)) })
  })
  return {
    host,
    port: bound,
    close: async () => {
      if (child.exitCode == null && child.signalCode == null) child.kill('SIGKILL')
      await exited
    }
  }
}

export interface TcpResult { ok: boolean, error?: string, ms?: number, bytes?: number }

/**
 * From inside `from`, connects to `ip:port` (a {@link tcpServer}), sends `bytes` and waits for
 * the server's count. `{ ok: false, error }` when it cannot connect or times out.
 */
export async function tcpSend (from: NetnsHost, ip: string, port: number, bytes = 0, timeoutMs = 2_000): Promise<TcpResult> {
  const r = await from.exec([process.execPath, '-e', CLIENT_JS, ip, String(port), String(bytes), String(timeoutMs)], { timeoutMs: timeoutMs + 30_000 })
  try {
    return JSON.parse(r.stdout)
  } catch {
    throw new Error(`tcp client in ${from.name} printed no result (code ${r.code}, signal ${r.signal}): ${r.stderr}`)
  }
}
