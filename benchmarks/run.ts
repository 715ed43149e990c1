/**
 * `npm run bench`: every benchmark, one after the other, with sizes that fit a 2-core machine and
 * a few minutes, then the report (benchmarks/report.ts):
 *
 *   benchmarks/results/<version>.json            every part's full result, and the table's rows
 *   benchmarks/results/<version>.md              one row per figure: value, baseline, ratio, target, met?
 *   benchmarks/results/<version>-propagation.svg propagation latency distribution (CDF per kind and N)
 *   benchmarks/results/<version>-sync.svg        swarm sync time vs the physical limit and one source
 *
 *   npm run bench -- [--only link,group,exchange,loopback,swarm] [--quick] [--out DIR]
 *   npm run bench -- --from benchmarks/results/<version>.json   (only redraw the report of a run)
 *
 * `--quick` runs tiny sizes (about a minute) and writes into a temp dir unless `--out` is given:
 * for trying the runner, not for figures. Progress goes to stderr; stdout gets one JSON summary
 * (the files and the rows). The network-namespace part needs Linux, root and iproute2; without
 * them it is recorded as skipped with the reason, and said so loudly. Exits 1 when a part failed
 * (a missed target is not a failure: the table says `NO`).
 */
import { readFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import type { ParseArgsOptionsConfig } from 'node:util'
import { netnsAvailable } from '../test/testbed/netns.ts'
import * as content from './content.ts'
import * as exchange from './exchange.ts'
import * as group from './group.ts'
import { environment, packageRoot, parseBenchArgs } from './lib.ts'
import * as link from './link.ts'
import { markdownTable, TARGETS, writeReport, type PartName, type PartProblem, type ReportInput } from './report.ts'

export interface Sizes {
  link: Partial<link.LinkOptions>
  group: Partial<group.GroupOptions>
  exchange: Partial<exchange.ExchangeOptions>
  loopback: Partial<content.ContentOptions>
  swarm: Partial<content.ContentOptions>
}

/**
 * About 6–9 minutes on 2 cores (the one-source baselines alone take 2 × 4 × the swarm's limit,
 * about 3 minutes at 256 MiB; N=50 about 2.5). The swarm moves 256 MiB, the size its target is set for.
 */
export const FULL: Sizes = {
  link: { rounds: 15, twentyRuns: 3, followers: 20 },
  group: { sizes: [10, 50], rounds: 15, kills: 3, serf: true, idleS: 8, variants: [] },
  exchange: { mib: 128, chunkKiB: 1024, rounds: 2 },
  loopback: { mib: 256, rounds: 2, parts: ['loopback'] },
  swarm: { mib: 256, swarmMib: 256, hosts: 5, rate: 100, parts: ['netns'], oneSource: ['http', 'tcp'], singleTcp: true, meshTcp: true }
}

/** Tiny sizes that still exercise every code path: for trying the runner. */
export const QUICK: Sizes = {
  link: { rounds: 3, twentyRuns: 1, followers: 5 },
  group: { sizes: [5], rounds: 5, kills: 1, serf: true, idleS: 2, variants: [] },
  exchange: { mib: 16, chunkKiB: 1024, rounds: 1 },
  loopback: { mib: 32, rounds: 1, parts: ['loopback'] },
  swarm: { mib: 16, swarmMib: 16, hosts: 5, rate: 100, parts: ['netns'], oneSource: ['http', 'tcp'], singleTcp: true, meshTcp: true }
}

const PARTS: PartName[] = ['link', 'group', 'exchange', 'loopback', 'swarm']
const log = (s: string): void => { process.stderr.write(`[bench] ${s}\n`) }
const loud = (s: string): void => { process.stderr.write(`\n!!! ${s}\n\n`) }
const r2 = (x: number): number => Math.round(x * 100) / 100

function packageVersion (): string {
  return JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')).version
}

export interface RunOptions { only?: PartName[], quick?: boolean, out?: string, sizes?: Sizes }

export type BenchResults = ReportInput & {
  benchmark: 'all'
  parts_ms: Partial<Record<PartName, number>>
  /** The content benchmark's own header for the two content parts (parameters, load). */
  content_runs?: Array<Omit<content.ContentResult, 'loopback' | 'netns'>>
}

/** Runs the parts asked for and writes the report; returns the results and the files written. */
export async function runAll (o: RunOptions = {}): Promise<{ results: BenchResults, files: Awaited<ReturnType<typeof writeReport>>['files'], rows: Awaited<ReturnType<typeof writeReport>>['rows'] }> {
  const sizes = o.sizes ?? (o.quick === true ? QUICK : FULL)
  const only = o.only ?? PARTS
  const out = o.out ?? (o.quick === true ? join(tmpdir(), 'edgelink-bench-quick') : join(packageRoot(), 'benchmarks', 'results'))
  const t0 = Date.now()
  const skipped: PartProblem[] = []
  const failed: PartProblem[] = []
  const results: BenchResults = {
    benchmark: 'all',
    version: packageVersion(),
    date: new Date().toISOString(),
    environment: { ...environment(), loadavg_start: loadavg().map(r2) },
    config: Object.fromEntries(only.map(p => [p, sizes[p]])),
    parts_ms: {},
    skipped,
    failed
  }

  // Say at once, not after five minutes, that a part cannot run here.
  if (only.includes('swarm')) {
    const ns = await netnsAvailable()
    if (!ns.ok) loud(`network namespaces are not available here (${ns.reason ?? 'unknown reason'}): the swarm sync part will be SKIPPED`)
  }

  const part = async (name: PartName, fn: () => Promise<void>): Promise<void> => {
    if (!only.includes(name)) return
    const start = Date.now()
    log(`${name}: start (${JSON.stringify(sizes[name])})`)
    try {
      await fn()
    } catch (err: any) {
      failed.push({ part: name, reason: String(err?.stack ?? err) })
      loud(`${name} FAILED: ${String(err?.message ?? err)}`)
    }
    results.parts_ms[name] = Date.now() - start
    log(`${name}: done in ${Math.round((Date.now() - start) / 1000)} s (${Math.round((Date.now() - t0) / 1000)} s so far)`)
  }
  const contentPart = async (options: Partial<content.ContentOptions>): Promise<content.ContentResult> => {
    const res = await content.run(options)
    const { loopback: _l, netns: _n, ...header } = res
    ;(results.content_runs ??= []).push(header)
    if (res.error != null) throw new Error(res.error)
    return res
  }

  await part('link', async () => { results.link = await link.run(sizes.link) })
  await part('group', async () => { results.group = await group.run(sizes.group) })
  await part('exchange', async () => { results.exchange = await exchange.run(sizes.exchange) })
  await part('loopback', async () => { results.loopback = (await contentPart(sizes.loopback)).loopback })
  await part('swarm', async () => {
    const res = await contentPart(sizes.swarm)
    if (res.netns != null && 'skipped' in res.netns) skipped.push({ part: 'swarm', reason: res.netns.skipped })
    else results.swarm = res.netns
  })

  results.wall_ms = Date.now() - t0
  ;(results.environment as Record<string, unknown>).loadavg_end = loadavg().map(r2)
  const { files, rows } = await writeReport(results, out)
  return { results, files, rows }
}

async function abortAll (): Promise<void> {
  await Promise.allSettled([link.abort(), group.abort(), content.abort()])
}

/** The command line's options (parseArgs, node:util); every one is in USAGE. */
export const CLI_OPTIONS = {
  only: { type: 'string', default: PARTS.join(',') },
  quick: { type: 'boolean', default: false },
  out: { type: 'string' },
  /** A results file of an earlier run: write its report again (into --out, default its folder) without running anything. */
  from: { type: 'string' }
} satisfies ParseArgsOptionsConfig

export const USAGE = `usage: npm run bench -- [options]
       node dist/benchmarks/run.js [options]     (after npm run build)
       npm run bench -- --from benchmarks/results/<version>.json     (only redraw a run's report)

Every benchmark, one after the other, with sizes that fit a 2-core machine (about 6–9 minutes),
then the report.

options:
  --only PARTS   comma-separated parts to run, of ${PARTS.join(', ')}
                 (default ${PARTS.join(',')})
  --quick        tiny sizes (about a minute) that still exercise every code path: for trying the
                 runner, not for figures; writes into ${join(tmpdir(), 'edgelink-bench-quick')} unless --out is given
                 (default off)
  --out DIR      folder of the report files (default benchmarks/results; with --from, that file's folder)
  --from FILE    a results file of an earlier run: write its report again, run nothing (default none)
  -h, --help     print this help and exit

Writes into the --out folder:
  <version>.json               every part's full result, and the table's rows
  <version>.md                 one row per figure: value, baseline, ratio, target, met?
  <version>-propagation.svg    propagation latency distribution (CDF per kind and N)
  <version>-sync.svg           swarm sync time vs the physical limit and one source

Output: one JSON summary on stdout (version, files, rows, skipped and failed parts); progress
and the table on stderr.

Targets: link, one follower p50 ≤ ${TARGETS.link_one_p50_ms} ms, 20 followers at once all ≤ ${TARGETS.link_many_all_ms} ms; settings and
status propagation p50 ≤ ${TARGETS.propagation_p50_ms} ms, max ≤ ${TARGETS.propagation_max_ms} ms; a killed host Unreachable on every host
≤ ${TARGETS.unreachable_all_ms} ms; RSS per idle host ≤ ${TARGETS.rss_per_idle_host_mb} MB; loopback sync ≥ ${TARGETS.loopback_sync_over_raw_libp2p} × raw libp2p; swarm sync ≤ ${TARGETS.swarm_over_limit} × the
physical limit.

The swarm part needs Linux, root and iproute2 (network namespaces); without them it is skipped,
loudly, with the reason. Exits 0 when every part ran (a missed target is a NO in the table),
1 when a part failed, 2 on a bad command line or an unknown part.
`

if (import.meta.main) {
  const { values: args } = parseBenchArgs(USAGE, { options: CLI_OPTIONS })
  if (args.from != null) {
    const { rows: _rows, ...results } = JSON.parse(readFileSync(args.from, 'utf8')) as BenchResults & { rows?: unknown }
    const { files, rows } = await writeReport(results, args.out ?? dirname(resolve(args.from)))
    process.stderr.write('\n' + markdownTable(rows) + '\n\n')
    log(`written ${Object.values(files).join(', ')}`)
    process.stdout.write(JSON.stringify({ version: results.version, files }, null, 2) + '\n')
    process.exit(0)
  }
  const only = args.only.split(',').map(s => s.trim()).filter(s => s !== '') as PartName[]
  const unknown = only.filter(p => !PARTS.includes(p))
  if (unknown.length > 0) {
    process.stderr.write(`error: unknown part(s) ${unknown.join(', ')}; parts: ${PARTS.join(', ')} (see --help)\n`)
    process.exit(2)
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { void abortAll().finally(() => process.exit(130)) })
  }
  try {
    const { results, files, rows } = await runAll({ only, quick: args.quick, out: args.out })
    process.stderr.write('\n' + markdownTable(rows) + '\n\n')
    for (const s of results.skipped ?? []) loud(`SKIPPED ${s.part}: ${s.reason}`)
    for (const f of results.failed ?? []) loud(`FAILED ${f.part}: ${f.reason.split('\n')[0]}`)
    log(`written ${Object.values(files).join(', ')} (${Math.round(results.wall_ms! / 1000)} s in all)`)
    process.stdout.write(JSON.stringify({
      version: results.version,
      wall_ms: results.wall_ms,
      parts_ms: results.parts_ms,
      files,
      rows: rows.map(r => ({ metric: r.metric, value: r.value, unit: r.unit, baseline: r.baseline, ratio: r.ratio == null ? null : Math.round(r.ratio * 1000) / 1000, target: r.target, met: r.met, ...(r.note != null ? { note: r.note } : {}), ...(r.skipped != null ? { skipped: r.skipped } : {}) })),
      skipped: results.skipped,
      failed: (results.failed ?? []).map(f => ({ part: f.part, reason: f.reason.split('\n')[0] }))
    }, null, 2) + '\n')
    process.exitCode = (results.failed ?? []).length > 0 ? 1 : 0
  } catch (err) {
    process.stderr.write(`benchmark failed: ${(err as Error)?.stack ?? String(err)}\n`)
    process.exitCode = 1
  } finally {
    await abortAll()
  }
  // Libraries may leave handles (timers, sockets) behind; the report is written.
  process.exit()
}
