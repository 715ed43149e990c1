/**
 * Shared pieces of the benchmarks: statistics, loopback addresses, temp dirs, result files and
 * the raw-libp2p baseline every benchmark divides by (so results are ratios measured in the same
 * run, not lone absolute times that depend on the machine).
 */
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { VERSION } from '../lib/index.ts'

// ---------------------------------------------------------------- statistics

export interface Summary { n: number, min: number, p50: number, p90: number, max: number, mean: number }

/** Nearest-rank percentile (no interpolation: every reported figure is a real sample). */
export function percentile (samples: number[], p: number): number {
  if (samples.length === 0) return NaN
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

export function median (samples: number[]): number { return percentile(samples, 50) }

/** Milliseconds rounded to 0.01: finer digits are noise at these sizes. */
export const ms = (x: number): number => Math.round(x * 100) / 100

export function summarize (samples: number[]): Summary {
  return {
    n: samples.length,
    min: ms(Math.min(...samples)),
    p50: ms(percentile(samples, 50)),
    p90: ms(percentile(samples, 90)),
    max: ms(Math.max(...samples)),
    mean: ms(samples.reduce((a, b) => a + b, 0) / samples.length)
  }
}

// ---------------------------------------------------------------- command line

/**
 * `parseArgs` (node:util) with `-h, --help` added: on `--help` prints `usage` to stdout and exits
 * 0; on a command line parseArgs refuses (unknown option, missing value, value for a boolean,
 * stray argument) prints `error: <message> (see --help)` to stderr and exits 2, without a stack
 * trace. Returns what parseArgs returns, typed by `config` as parseArgs types it.
 */
export function parseBenchArgs<T extends ParseArgsConfig> (usage: string, config: T): ReturnType<typeof parseArgs<T>> {
  let parsed: ReturnType<typeof parseArgs<T>>
  try {
    parsed = parseArgs({ ...config, options: { ...config.options, help: { type: 'boolean', short: 'h' } } }) as ReturnType<typeof parseArgs<T>>
  } catch (err) {
    process.stderr.write(`error: ${(err as Error)?.message ?? String(err)} (see --help)\n`)
    process.exit(2)
  }
  const values = parsed.values as Record<string, unknown>
  if (values.help === true) {
    process.stdout.write(usage.endsWith('\n') ? usage : usage + '\n')
    process.exit(0)
  }
  delete values.help
  return parsed
}

// ---------------------------------------------------------------- addresses and dirs

// 127.0.20.2 … 127.0.29.254: away from the tests' 127.0.1.x so a benchmark can run beside them.
// Ports are OS-chosen, so reusing an IP after its host stopped is safe.
let nextIp = 0
export function loopbackIp (): string {
  const n = nextIp++ % (10 * 253)
  return `127.0.${20 + Math.floor(n / 253)}.${(n % 253) + 2}`
}

/** Temp dirs under os.tmpdir(), all removed by one `cleanup()` (call it in `finally`). */
export class TempDirs {
  private readonly dirs: string[] = []

  async make (prefix = 'edgelink-bench-'): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), prefix))
    this.dirs.push(d)
    return d
  }

  async cleanup (): Promise<void> {
    await Promise.allSettled(this.dirs.splice(0).map(async d => { await rm(d, { recursive: true, force: true }) }))
  }
}

// ---------------------------------------------------------------- results

/** The package root: the nearest folder up from this file with a package.json (works from dist/ and from source). */
export function packageRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url))
    dir = up
  }
  return dir
}

/**
 * The Node flags the agent runs with (`bin/edgelink`, and the single binary's `execArgv` in
 * `scripts/build-binary.mjs`; a test keeps the three equal): a 1 MiB young generation, and no
 * TurboFan (optimisation up to Maglev). Benchmarks that measure the agent's behaviour start their
 * host processes with them.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--max-opt=2']

/**
 * The environment `bin/edgelink` gives the agent unless already set (a test keeps the two equal):
 * at most two glibc malloc arenas and a fixed 128 KiB mmap threshold. Benchmarks give it to every
 * process they start, baselines too, below the caller's own environment, as the launcher does.
 */
export const AGENT_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' }

/** This process's environment over {@link AGENT_ENV}, plus `extra`: a benchmark child's environment. */
export function agentEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...AGENT_ENV, ...process.env, ...extra }
}

/** The values benchmark children get for {@link AGENT_ENV}'s variables (the caller's own where set): what a result records. */
export function agentEnvRecord (): Record<string, string | null> {
  const env = agentEnv()
  return Object.fromEntries(Object.keys(AGENT_ENV).map(k => [k, env[k] ?? null]))
}

/** CPU time the whole machine spent busy (all cores, all processes), in ms, from /proc/stat. */
export function machineBusyMs (): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait
  return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0)) * 10
}

/** Bytes (or MiB figures computed from bytes) as MB with one decimal. */
export const mb = (bytes: number): number => Math.round(bytes / (1024 * 1024) * 10) / 10

/** RSS of a process split as the kernel sees it, in bytes: anon (its own), file (binary + libraries, shared between processes), and PSS (shared pages divided among their users). */
export function procMemory (pid: number): { rss: number, anon: number, file: number, pss: number } {
  const field = (text: string, name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  let pss = NaN
  try { pss = field(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Pss') } catch {}
  return { rss: field(status, 'VmRSS'), anon: field(status, 'RssAnon'), file: field(status, 'RssFile'), pss }
}

/** Fields every result file starts with, so results of different machines and versions compare. */
export function environment (): Record<string, unknown> {
  const c = cpus()
  return { version: VERSION, node: process.version, platform: `${process.platform}-${process.arch}`, cpus: c.length, cpuModel: c[0]?.model ?? '', date: new Date().toISOString() }
}

/** Writes `benchmarks/results/<name>-latest.json` and returns its path. */
export async function writeResult (name: string, result: unknown): Promise<string> {
  const dir = join(packageRoot(), 'benchmarks', 'results')
  await mkdir(dir, { recursive: true })
  const file = join(dir, `${name}-latest.json`)
  await writeFile(file, JSON.stringify(result, null, 2) + '\n')
  return file
}

/** Left-aligned first column, right-aligned numbers: enough for a short table on stderr. */
export function table (rows: Array<Array<string | number>>): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map(r => String(r[i] ?? '').length)))
  return rows.map(r => r.map((c, i) => i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i])).join('  ')).join('\n')
}

export async function sleep (msec: number): Promise<void> { await new Promise(resolve => setTimeout(resolve, msec)) }

// ---------------------------------------------------------------- raw libp2p baseline

const ECHO_PROTOCOL = '/edgelink-bench/echo/1.0.0'

/**
 * Two bare libp2p nodes with edgelink's transport stack (TCP + Noise + Yamux, same connection
 * manager limits), no edgelink on top. `sample()` times what any libp2p request costs:
 * dial a new connection, one request, one response. With `identify` the nodes also run the
 * identify exchange edgelink's hosts run on every connection (it competes for the same CPU).
 */
export class RawPair {
  readonly a: Libp2p
  readonly b: Libp2p

  // No parameter properties: the file stays runnable by Node's type stripping too.
  private constructor (a: Libp2p, b: Libp2p) {
    this.a = a
    this.b = b
  }

  static async start (options: { identify?: boolean } = {}): Promise<RawPair> {
    const make = async (): Promise<Libp2p> => await createLibp2p({
      addresses: { listen: [`/ip4/${loopbackIp()}/tcp/0`] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: { denyDialMultiaddr: () => false },
      connectionManager: { inboundConnectionThreshold: 200, maxIncomingPendingConnections: 200, maxConnections: 1024 },
      services: (options.identify === true ? { identify: identify() } : {}) as Record<string, any>
    })
    const [a, b] = await Promise.all([make(), make()])
    await b.handle(ECHO_PROTOCOL, async (stream) => {
      try {
        const lp = lpStream(stream)
        await lp.write(await lp.read())
        await stream.close()
      } catch (err: any) { stream.abort(err) }
    })
    return new RawPair(a, b)
  }

  /** One dial + request/response on a new connection, in ms. The hang-up afterwards is not timed. */
  async sample (): Promise<number> {
    const addr = multiaddr(this.b.getMultiaddrs()[0].toString())
    const signal = AbortSignal.timeout(10_000)
    const t0 = performance.now()
    const stream = await this.a.dialProtocol(addr, ECHO_PROTOCOL, { signal })
    const lp = lpStream(stream)
    await lp.write(new Uint8Array(256), { signal })
    await lp.read({ signal })
    const elapsed = performance.now() - t0
    await stream.close().catch(() => {})
    await this.a.hangUp(this.b.peerId)
    // Both sides must have let go, or the next dial reuses the connection and skips the handshake.
    for (let i = 0; i < 200 && (this.a.getConnections().length > 0 || this.b.getConnections().length > 0); i++) await sleep(5)
    return elapsed
  }

  async stop (): Promise<void> {
    await Promise.allSettled([this.a.stop(), this.b.stop()])
  }
}
