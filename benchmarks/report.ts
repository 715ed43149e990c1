/**
 * The report of `npm run bench` (benchmarks/run.ts): one table row per figure, each next to its
 * baseline measured in the same run and the project's target, as Markdown, plus two SVG plots
 * rendered with vega-lite + vega (no canvas, no browser).
 *
 * Works on plain result objects (the shapes below are the parts of the benchmarks' results the
 * report reads), so it can be tested on a fixed object without running anything.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as vega from 'vega'
import * as vl from 'vega-lite'

// ---------------------------------------------------------------- the input

/** The issues' targets, printed next to every figure. */
export const TARGETS = {
  link_one_p50_ms: 250,
  link_many_all_ms: 2000,
  propagation_p50_ms: 30,
  propagation_max_ms: 100,
  unreachable_all_ms: 2000,
  /** Serf's failure detection at 50 members, the issue's reference. */
  unreachable_serf_reference_ms: 10_000,
  rss_per_idle_host_mb: 80,
  loopback_sync_over_raw_libp2p: 0.9,
  swarm_over_limit: 1.15
}

interface Latency { p50: number, max: number, samples?: number[] }

export interface ReportLink {
  one: { completed: { p50: number, max: number } }
  twenty: { followers: number, runs: unknown[], median_all_completed_ms: number }
  baseline: { raw_dial_request_p50_ms: number }
}

export type ReportGroupSize =
  | {
    formed: true
    size: number
    settings: Latency & { lost: number }
    status: Latency & { lost: number }
    /** `all_ms_max` is Infinity (null in JSON) when some host never saw the kill. */
    failure?: { kills: unknown[], all_ms_max: number | null }
    idle: { rss: { rss_mean_mb: number, rss_max_mb: number }, cpu_pct_all_hosts?: number }
    /** Hosts per Node process (absent or 1: one each); `processes` in all. */
    hosts_per_process?: number
    processes?: number
  }
  /** `stage: 'measure'`: the group formed, then a measurement broke (`error` says how). */
  | { formed: false, size: number, error?: unknown, stage?: unknown }

export interface ReportGroup {
  /** `memory.libp2p_gossipsub` and `memory.bare_node` are the RSS baselines. */
  baseline: { gossipsub_one_hop?: Latency, memory: Record<string, { rss_mean_mb: number }> }
  sizes: Record<string, ReportGroupSize>
  serf: { runs?: Array<{ size: number, failed_all_ms?: number | null, error?: string }>, skipped?: string }
}

export interface ReportExchange {
  params: { mib: number, chunkKiB: number }
  exchange_p50_MBps: number
  raw_p50_MBps: number
}

export interface ReportLoopback {
  mib: number
  raw_write_kib: number
  sync_p50_MBps: number
  raw_libp2p_p50_MBps: number
  /** The raw stream with its receiver hashing every MiB (results before it was measured lack it). */
  raw_libp2p_hashed_p50_MBps?: number | null
  /** The sync with the receiver storing no chunk file (results before it was measured lack it). */
  sync_nostore_p50_MBps?: number | null
  raw_tcp_p50_MBps: number | null
  /** CPU the whole machine spent per GiB moved, by kind (results before it was measured lack it). */
  machine_cpu_s_per_GiB?: Record<string, number>
  /** The sync / raw ratio the machine allows at the raw stream's load (see benchmarks/content.ts). */
  ratio_ceiling_at_raw_load?: number
}

export interface ReportSwarm {
  hosts: number
  rate_mbit: number
  mib: number
  limit_s: number
  swarm_s: number
  single_tcp_s?: number
  mesh_tcp_s?: number
  one_source_http_s?: number
  one_source_http_each_s?: number[]
  one_source_tcp_s?: number
  per_host: Array<{ role: string, complete_s?: number }>
}

/** A part that did not run here (`skipped`, with the reason) or broke (`failed`, with the error). */
export interface PartProblem { part: PartName, reason: string }
export type PartName = 'link' | 'group' | 'exchange' | 'loopback' | 'swarm'

export interface ReportInput {
  version: string
  date?: string
  /** Node, platform, cpus, load…: printed above the table. */
  environment?: Record<string, unknown>
  /** What each part ran with, printed above the table. */
  config?: Record<string, unknown>
  wall_ms?: number
  link?: ReportLink
  group?: ReportGroup
  exchange?: ReportExchange
  loopback?: ReportLoopback
  swarm?: ReportSwarm
  skipped?: PartProblem[]
  failed?: PartProblem[]
}

// ---------------------------------------------------------------- the rows

export type Unit = 'ms' | 's' | 'MB' | 'MB/s'

export interface Row {
  part: PartName
  metric: string
  /** null: no value (the part was skipped or failed, the group did not form, a host never saw a kill). */
  value: number | null
  unit: Unit
  baseline?: { label: string, value: number | null }
  /** value ÷ baseline, unrounded; null without both. */
  ratio: number | null
  /**
   * `unit: 'x'` compares the ratio, else the value. `≈` is a reference, not a pass/fail target.
   */
  target?: { op: '<=' | '>=' | '≈', value: number, unit: Unit | 'x', note?: string }
  /** null: nothing to compare (no target, a reference, or no value because the part was skipped). */
  met: boolean | null
  note?: string
  /** The part did not run here: the row says why instead of a value. */
  skipped?: string
}

const finite = (x: number | null | undefined): x is number => typeof x === 'number' && Number.isFinite(x)

function row (r: Omit<Row, 'ratio' | 'met'> & { extraOk?: boolean }): Row {
  const base = r.baseline?.value
  const ratio = finite(r.value) && finite(base) && base !== 0 ? r.value / base : null
  let met: boolean | null = null
  if (r.target != null && r.target.op !== '≈') {
    const x = r.target.unit === 'x' ? ratio : r.value
    met = finite(x) ? (r.target.op === '<=' ? x <= r.target.value : x >= r.target.value) && (r.extraOk ?? true) : false
  }
  const { extraOk: _extraOk, ...rest } = r
  return { ...rest, ratio, met }
}

const PART_TITLES: Record<PartName, string> = {
  link: 'link latency (one follower, many at once)',
  group: 'group propagation, Unreachable, RSS',
  exchange: 'chunk exchange on loopback',
  loopback: 'content sync on loopback',
  swarm: 'swarm sync in network namespaces'
}

/** One row per figure, in the order of the table. */
export function buildRows (r: ReportInput): Row[] {
  const rows: Row[] = []
  const problem = (part: PartName): void => {
    const s = r.skipped?.find(p => p.part === part)
    const f = r.failed?.find(p => p.part === part)
    if (s != null) rows.push({ part, metric: PART_TITLES[part], value: null, unit: 's', ratio: null, met: null, skipped: s.reason })
    if (f != null) rows.push({ part, metric: PART_TITLES[part], value: null, unit: 's', ratio: null, met: false, note: `failed: ${f.reason.split('\n')[0]}` })
  }

  // ---- link
  if (r.link != null) {
    const raw = { label: 'raw libp2p dial + request/response, p50', value: r.link.baseline.raw_dial_request_p50_ms }
    rows.push(row({ part: 'link', metric: 'link, one follower: Completed, p50', value: r.link.one.completed.p50, unit: 'ms', baseline: raw, target: { op: '<=', value: TARGETS.link_one_p50_ms, unit: 'ms' } }))
    rows.push(row({
      part: 'link',
      metric: `link, ${r.link.twenty.followers} followers at once: all Completed (median of ${r.link.twenty.runs.length})`,
      value: r.link.twenty.median_all_completed_ms,
      unit: 'ms',
      baseline: raw,
      target: { op: '<=', value: TARGETS.link_many_all_ms, unit: 'ms', note: 'for 20 followers' }
    }))
  }
  problem('link')

  // ---- group
  if (r.group != null) {
    const g = r.group
    const hop = g.baseline.gossipsub_one_hop
    for (const s of Object.values(g.sizes).sort((a, b) => a.size - b.size)) {
      const n = s.size
      if (!s.formed) {
        const why = s.stage === 'measure' ? String(s.error) : `did not form: ${String(s.error ?? 'unknown')}`
        rows.push({ part: 'group', metric: `group of ${n} hosts`, value: null, unit: 'ms', ratio: null, met: false, note: why.slice(0, 200) })
        continue
      }
      const shared = (s.hosts_per_process ?? 1) > 1
        ? `${String(s.hosts_per_process)} hosts per process (${String(s.processes)} processes), idle load ${fmt((s.idle.cpu_pct_all_hosts ?? NaN) / 100)} cores`
        : undefined
      for (const kind of ['settings', 'status'] as const) {
        const lat = s[kind]
        const lost = [lat.lost > 0 ? `${lat.lost} arrivals lost` : undefined, shared].filter(x => x != null).join('; ') || undefined
        rows.push(row({ part: 'group', metric: `${kind} propagation to every host, p50, N=${n}`, value: lat.p50, unit: 'ms', baseline: { label: 'raw gossipsub one hop, p50', value: hop?.p50 ?? null }, target: { op: '<=', value: TARGETS.propagation_p50_ms, unit: 'ms' }, extraOk: lat.lost === 0, note: lost }))
        rows.push(row({ part: 'group', metric: `${kind} propagation to every host, max, N=${n}`, value: lat.max, unit: 'ms', baseline: { label: 'raw gossipsub one hop, max', value: hop?.max ?? null }, target: { op: '<=', value: TARGETS.propagation_max_ms, unit: 'ms' }, extraOk: lat.lost === 0, note: lost }))
      }
      if (s.failure != null) {
        const serf = g.serf.runs?.find(x => x.size === n)
        const serfLabel = g.serf.skipped != null ? `Serf: skipped (${g.serf.skipped})` : serf?.error != null ? 'Serf: did not converge' : `Serf: failed on every member, N=${n}`
        const all = finite(s.failure.all_ms_max) ? s.failure.all_ms_max : null
        rows.push(row({
          part: 'group',
          metric: `Unreachable on every host after SIGKILL, worst of ${s.failure.kills.length}, N=${n}`,
          value: all,
          unit: 'ms',
          baseline: { label: serfLabel, value: finite(serf?.failed_all_ms) ? serf.failed_all_ms : null },
          target: { op: '<=', value: TARGETS.unreachable_all_ms, unit: 'ms', note: `Serf reference ${TARGETS.unreachable_serf_reference_ms / 1000} s at 50` },
          note: all == null ? 'not every host saw a kill' : undefined
        }))
      }
      // With hosts sharing a process, its RSS is not one host's: no row.
      if (shared != null) continue
      const rss = s.idle.rss
      rows.push(row({
        part: 'group',
        metric: `RSS per idle host, mean, N=${n}`,
        value: rss.rss_mean_mb,
        unit: 'MB',
        baseline: { label: 'plain libp2p + gossipsub process', value: g.baseline.memory.libp2p_gossipsub?.rss_mean_mb ?? null },
        target: { op: '<=', value: TARGETS.rss_per_idle_host_mb, unit: 'MB' },
        extraOk: rss.rss_max_mb <= TARGETS.rss_per_idle_host_mb,
        note: `max ${fmt(rss.rss_max_mb)} MB` + (g.baseline.memory.bare_node != null ? `; bare Node ${fmt(g.baseline.memory.bare_node.rss_mean_mb)} MB` : '')
      }))
    }
  }
  problem('group')

  // ---- exchange
  if (r.exchange != null) {
    const e = r.exchange
    rows.push(row({ part: 'exchange', metric: `chunk exchange on loopback, ${e.params.mib} MiB in ${e.params.chunkKiB} KiB chunks, verified`, value: e.exchange_p50_MBps, unit: 'MB/s', baseline: { label: 'raw libp2p stream, same processes', value: e.raw_p50_MBps } }))
  }
  problem('exchange')

  // ---- content on loopback
  if (r.loopback != null) {
    const l = r.loopback
    const metric = `content sync on loopback, host pair, ${l.mib} MiB, median`
    rows.push(row({ part: 'loopback', metric, value: l.sync_p50_MBps, unit: 'MB/s', baseline: { label: `raw libp2p stream (${l.raw_write_kib} KiB writes), same connection`, value: l.raw_libp2p_p50_MBps }, target: { op: '>=', value: TARGETS.loopback_sync_over_raw_libp2p, unit: 'x' } }))
    if (finite(l.raw_libp2p_hashed_p50_MBps)) {
      rows.push(row({ part: 'loopback', metric, value: l.sync_p50_MBps, unit: 'MB/s', baseline: { label: 'raw libp2p stream, receiver hashing every MiB (verification alone)', value: l.raw_libp2p_hashed_p50_MBps } }))
    }
    if (finite(l.sync_nostore_p50_MBps)) {
      rows.push(row({ part: 'loopback', metric, value: l.sync_p50_MBps, unit: 'MB/s', baseline: { label: 'the same sync, receiver storing no chunk file (verification kept)', value: l.sync_nostore_p50_MBps } }))
    }
    rows.push(row({ part: 'loopback', metric, value: l.sync_p50_MBps, unit: 'MB/s', baseline: { label: 'raw TCP, same processes', value: l.raw_tcp_p50_MBps } }))
    const cpu = l.machine_cpu_s_per_GiB
    if (finite(cpu?.sync) && finite(cpu?.raw)) {
      const note = finite(l.ratio_ceiling_at_raw_load) ? `at the raw stream's load, this machine allows the sync ${l.ratio_ceiling_at_raw_load}× the raw stream's throughput` : undefined
      rows.push(row({ part: 'loopback', metric: 'CPU per GiB the loopback sync moved, whole machine (every process and the kernel)', value: cpu.sync, unit: 's', baseline: { label: 'the raw libp2p stream', value: cpu.raw }, note }))
    }
  }
  problem('loopback')

  // ---- swarm in namespaces
  if (r.swarm != null) {
    const w = r.swarm
    const followers = w.hosts - 1
    const limit = { label: `physical limit: ${w.mib} MiB ÷ ${w.rate_mbit} Mbit/s`, value: w.limit_s }
    const swarm = `swarm sync, ${followers} followers, ${w.mib} MiB on ${w.rate_mbit} Mbit/s cables: all complete`
    rows.push(row({ part: 'swarm', metric: swarm, value: w.swarm_s, unit: 's', baseline: limit, target: { op: '<=', value: TARGETS.swarm_over_limit, unit: 'x' } }))
    if (w.one_source_http_s != null) {
      rows.push(row({ part: 'swarm', metric: swarm, value: w.swarm_s, unit: 's', baseline: { label: `one-source HTTP: ${followers} fetches from the leader at once`, value: w.one_source_http_s } }))
      rows.push(row({ part: 'swarm', metric: `one-source HTTP download, ${followers} followers at once`, value: w.one_source_http_s, unit: 's', baseline: limit, target: { op: '≈', value: followers, unit: 'x', note: 'reference' } }))
    }
    if (w.one_source_tcp_s != null) {
      rows.push(row({ part: 'swarm', metric: `one-source plain TCP download, ${followers} followers at once`, value: w.one_source_tcp_s, unit: 's', baseline: limit, target: { op: '≈', value: followers, unit: 'x', note: 'reference' } }))
    }
    if (w.single_tcp_s != null) {
      rows.push(row({ part: 'swarm', metric: 'one plain TCP download on an idle cable', value: w.single_tcp_s, unit: 's', baseline: limit }))
    }
    if (w.mesh_tcp_s != null) {
      const mesh = `the swarm's traffic over plain TCP (each follower fetching 1/${followers} from every other host at once)`
      rows.push(row({ part: 'swarm', metric: swarm, value: w.swarm_s, unit: 's', baseline: { label: mesh, value: w.mesh_tcp_s } }))
      rows.push(row({ part: 'swarm', metric: mesh, value: w.mesh_tcp_s, unit: 's', baseline: limit }))
    }
  }
  problem('swarm')
  return rows
}

// ---------------------------------------------------------------- Markdown

/** Three significant figures at most, no exponent: 1076, 15.5, 2.58, 0.332. */
export function fmt (x: number): string {
  if (!Number.isFinite(x)) return String(x)
  const a = Math.abs(x)
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3
  return String(Number(x.toFixed(digits)))
}

const withUnit = (x: number, unit: Unit | 'x'): string => unit === 'x' ? `${fmt(x)}×` : `${fmt(x)} ${unit}`
const OPS = { '<=': '≤', '>=': '≥', '≈': '≈' }

function targetText (t: NonNullable<Row['target']>): string {
  const what = t.unit === 'x' ? `${fmt(t.value)}× baseline` : withUnit(t.value, t.unit)
  return `${OPS[t.op]} ${what}${t.note != null ? ` (${t.note})` : ''}`
}

export function metText (r: Row): string {
  if (r.skipped != null) return 'skipped'
  if (r.met == null) return '—'
  return r.met ? 'yes' : '**NO**'
}

/** `|` would end a cell. */
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')

export function markdownTable (rows: Row[]): string {
  const lines = ['| metric | value | baseline (same run) | ratio | target | met? |', '|---|---:|---|---:|---|---|']
  for (const r of rows) {
    const value = r.skipped != null ? `skipped: ${r.skipped}` : r.value == null ? (r.note ?? 'no value') : withUnit(r.value, r.unit) + (r.note != null ? ` (${r.note})` : '')
    const baseline = r.baseline == null ? '—' : `${r.baseline.label}: ${r.baseline.value == null ? 'n/a' : withUnit(r.baseline.value, r.unit)}`
    const ratio = r.ratio == null ? '—' : `${fmt(r.ratio)}×`
    const target = r.target == null ? '—' : targetText(r.target)
    lines.push(`| ${[r.metric, value, baseline, ratio, target, metText(r)].map(cell).join(' | ')} |`)
  }
  return lines.join('\n')
}

/** The whole Markdown page: what ran where, the table, skipped and failed parts, the plots. */
export function markdown (r: ReportInput, rows: Row[] = buildRows(r)): string {
  const env = r.environment ?? {}
  const machine = [env.node, env.platform, env.cpus != null ? `${String(env.cpus)} × ${String(env.cpuModel ?? 'CPU')}` : undefined].filter(x => x != null).join(', ')
  const load = Array.isArray(env.loadavg_start) ? `, load average at start ${(env.loadavg_start as number[]).join(' ')}` : ''
  const wall = r.wall_ms != null ? `, ${Math.floor(r.wall_ms / 60_000)} min ${Math.round((r.wall_ms % 60_000) / 1000)} s in all` : ''
  const out = [
    `# edgelink ${r.version}: benchmarks`,
    '',
    `\`npm run bench\`${r.date != null ? ` on ${r.date}` : ''}${machine !== '' ? ` (${machine}${load})` : ''}${wall}.`,
    'Every baseline was measured in the same run on the same machine; ratio = value ÷ baseline.',
    'Absolute times depend on the machine and on what else runs on it; the ratios much less.',
    '',
    markdownTable(rows),
    ''
  ]
  const problems = [...(r.skipped ?? []).map(p => `- **skipped** ${PART_TITLES[p.part]}: ${p.reason}`), ...(r.failed ?? []).map(p => `- **failed** ${PART_TITLES[p.part]}: ${p.reason.split('\n')[0]}`)]
  if (problems.length > 0) out.push(...problems, '')
  if (r.config != null) out.push('Sizes: ' + Object.entries(r.config).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join('; ') + '.', '')
  out.push(`![propagation latency](${r.version}-propagation.svg)`, '', `![swarm sync time](${r.version}-sync.svg)`, '')
  return out.join('\n')
}

// ---------------------------------------------------------------- plots

async function render (spec: vl.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}

/** A chart with only a message, for a part that has no data in this run. */
async function messageChart (title: string, message: string): Promise<string> {
  return await render({
    title,
    width: 720,
    height: 60,
    data: { values: [{ message }] },
    mark: { type: 'text', fontSize: 13, align: 'left', x: 0, y: 30 },
    encoding: { text: { field: 'message', type: 'nominal' } }
  })
}

/** Points of the empirical CDF of `samples` (a step per sample). */
export function cdf (samples: number[]): Array<{ ms: number, fraction: number }> {
  const s = [...samples].filter(Number.isFinite).sort((a, b) => a - b)
  return s.map((ms, i) => ({ ms: Math.max(ms, 0.01), fraction: (i + 1) / s.length }))
}

/** The propagation series in the plot: one per kind and group size, plus the raw gossipsub hop. */
export function propagationSeries (r: ReportInput): Array<{ series: string, samples: number[] }> {
  const out: Array<{ series: string, samples: number[] }> = []
  if (r.group == null) return out
  for (const s of Object.values(r.group.sizes).sort((a, b) => a.size - b.size)) {
    if (!s.formed) continue
    for (const kind of ['status', 'settings'] as const) {
      if ((s[kind].samples?.length ?? 0) > 0) out.push({ series: `${kind} N=${s.size}`, samples: s[kind].samples! })
    }
  }
  const hop = r.group.baseline.gossipsub_one_hop?.samples
  if (hop != null && hop.length > 0) out.push({ series: 'baseline: raw gossipsub hop', samples: hop })
  return out
}

/** How the plotted groups ran: one process per host, or how many shared one. */
function processLayout (r: ReportInput): string {
  const shared = Object.values(r.group?.sizes ?? {}).filter(s => s.formed && (s.hosts_per_process ?? 1) > 1)
  return ['one process per host', ...shared.map(s => `N=${s.size}: ${String((s as { hosts_per_process?: number }).hosts_per_process)} per process`)].join(', ')
}

export async function propagationSvg (r: ReportInput): Promise<string> {
  const title = `edgelink ${r.version}: propagation latency to every host (CDF)`
  const series = propagationSeries(r)
  if (series.length === 0) {
    const why = [...(r.skipped ?? []), ...(r.failed ?? [])].find(p => p.part === 'group')
    return await messageChart(title, `no propagation samples in this run${why != null ? `: group benchmark ${r.skipped?.includes(why) === true ? 'skipped' : 'failed'} (${why.reason.split('\n')[0].slice(0, 120)})` : ''}`)
  }
  const points = series.flatMap(s => cdf(s.samples).map(p => ({ series: `${s.series} (n=${s.samples.length})`, ...p })))
  // Labels at different heights: on a log axis 30 and 100 ms are close.
  const targets = [
    { ms: TARGETS.propagation_p50_ms, label: `p50 target ${TARGETS.propagation_p50_ms} ms`, at: 0.97 },
    { ms: TARGETS.propagation_max_ms, label: `max target ${TARGETS.propagation_max_ms} ms`, at: 0.03 }
  ]
  return await render({
    title: { text: title, subtitle: `status and settings changes, ${processLayout(r)}; baseline: one gossipsub hop between two plain libp2p processes, same run` },
    width: 640,
    height: 360,
    layer: [
      {
        data: { values: points },
        mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2 },
        encoding: {
          x: { field: 'ms', type: 'quantitative', scale: { type: 'log', nice: false, domain: [Math.min(1, ...points.map(p => p.ms)), Math.max(200, ...points.map(p => p.ms))] }, title: 'ms after the change (log scale)' },
          y: { field: 'fraction', type: 'quantitative', scale: { domain: [0, 1] }, title: 'fraction of arrivals' },
          color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'right', labelLimit: 320 } },
          strokeDash: { field: 'series', type: 'nominal', legend: null }
        }
      },
      {
        data: { values: targets },
        mark: { type: 'rule', color: '#c0392b', strokeDash: [6, 4] },
        encoding: { x: { field: 'ms', type: 'quantitative' } }
      },
      {
        data: { values: targets },
        mark: { type: 'text', color: '#c0392b', align: 'left', dx: 4 },
        encoding: { x: { field: 'ms', type: 'quantitative' }, y: { field: 'at', type: 'quantitative' }, text: { field: 'label', type: 'nominal' } }
      },
      {
        data: { values: [{ fraction: 0.5 }] },
        mark: { type: 'rule', color: '#999', strokeDash: [2, 3] },
        encoding: { y: { field: 'fraction', type: 'quantitative' } }
      }
    ],
    resolve: { scale: { color: 'independent' } }
  } as vl.TopLevelSpec)
}

/** The bars of the sync plot, in order: label, seconds, kind. */
export function syncBars (w: ReportSwarm): Array<{ label: string, seconds: number, kind: string, text: string }> {
  const followers = w.hosts - 1
  const bars: Array<{ label: string, seconds: number, kind: string }> = [
    { label: `physical limit (${w.mib} MiB ÷ ${w.rate_mbit} Mbit/s)`, seconds: w.limit_s, kind: 'limit' },
    { label: `edgelink swarm, ${followers} followers`, seconds: w.swarm_s, kind: 'edgelink' }
  ]
  if (w.single_tcp_s != null) bars.push({ label: 'one TCP download, idle cable', seconds: w.single_tcp_s, kind: 'baseline' })
  if (w.mesh_tcp_s != null) bars.push({ label: 'the swarm\'s traffic, plain TCP', seconds: w.mesh_tcp_s, kind: 'baseline' })
  if (w.one_source_http_s != null) bars.push({ label: `one source, HTTP, ${followers} at once`, seconds: w.one_source_http_s, kind: 'baseline' })
  if (w.one_source_tcp_s != null) bars.push({ label: `one source, TCP, ${followers} at once`, seconds: w.one_source_tcp_s, kind: 'baseline' })
  return bars.map(b => ({ ...b, text: b.kind === 'limit' ? `${fmt(b.seconds)} s` : `${fmt(b.seconds)} s (${fmt(b.seconds / w.limit_s)}× limit)` }))
}

export async function syncSvg (r: ReportInput): Promise<string> {
  const title = `edgelink ${r.version}: swarm sync time vs the physical limit and one source`
  const w = r.swarm
  if (w == null) {
    const why = [...(r.skipped ?? []), ...(r.failed ?? [])].find(p => p.part === 'swarm')
    return await messageChart(title, `no swarm figures in this run${why != null ? `: ${r.skipped?.includes(why) === true ? 'skipped' : 'failed'} (${why.reason.split('\n')[0].slice(0, 120)})` : ''}`)
  }
  const bars = syncBars(w)
  const labels = bars.map(b => b.label)
  // Each follower's finish: where the tail is.
  const ticks = [
    ...w.per_host.filter(h => h.complete_s != null).map(h => ({ label: labels[1], seconds: h.complete_s! })),
    ...(w.one_source_http_each_s ?? []).map(s => ({ label: bars.find(b => b.label.startsWith('one source, HTTP'))!.label, seconds: s }))
  ]
  const target = TARGETS.swarm_over_limit * w.limit_s
  const y = { field: 'label', type: 'nominal', title: null, sort: labels, scale: { domain: labels }, axis: { labelLimit: 360 } } as const
  const maxX = Math.max(...bars.map(b => b.seconds), target) * 1.35
  return await render({
    title: { text: title, subtitle: `${w.hosts} hosts in network namespaces, every cable ${w.rate_mbit} Mbit/s; baselines measured in the same run; ticks: each follower done` },
    width: 560,
    height: 40 * bars.length,
    layer: [
      {
        data: { values: bars },
        mark: { type: 'bar', height: 22 },
        encoding: {
          y,
          x: { field: 'seconds', type: 'quantitative', title: 'seconds until every follower holds the content', scale: { domain: [0, maxX] } },
          color: { field: 'kind', type: 'nominal', title: null, scale: { domain: ['limit', 'edgelink', 'baseline'], range: ['#95a5a6', '#2e86c1', '#e67e22'] }, legend: { orient: 'bottom' } }
        }
      },
      {
        data: { values: bars },
        mark: { type: 'text', align: 'left', dx: 4 },
        encoding: { y, x: { field: 'seconds', type: 'quantitative' }, text: { field: 'text', type: 'nominal' } }
      },
      {
        data: { values: ticks },
        mark: { type: 'tick', color: '#1b2631', thickness: 2, size: 22 },
        encoding: { y, x: { field: 'seconds', type: 'quantitative' } }
      },
      {
        data: { values: [{ seconds: target, label: `target ≤ ${TARGETS.swarm_over_limit}× limit` }] },
        mark: { type: 'rule', color: '#c0392b', strokeDash: [6, 4] },
        encoding: { x: { field: 'seconds', type: 'quantitative' } }
      },
      {
        data: { values: [{ seconds: target, label: `target ≤ ${TARGETS.swarm_over_limit}× limit` }] },
        mark: { type: 'text', color: '#c0392b', align: 'left', dx: 4, y: -6 },
        encoding: { x: { field: 'seconds', type: 'quantitative' }, text: { field: 'label', type: 'nominal' } }
      }
    ]
  } as vl.TopLevelSpec)
}

// ---------------------------------------------------------------- files

export interface ReportFiles { json: string, markdown: string, propagationSvg: string, syncSvg: string }

/**
 * Writes `<version>.json` (the results with the rows), `<version>.md`, `<version>-propagation.svg`
 * and `<version>-sync.svg` into `dir`; returns their paths and the rows.
 */
export async function writeReport (r: ReportInput, dir: string): Promise<{ files: ReportFiles, rows: Row[] }> {
  const rows = buildRows(r)
  await mkdir(dir, { recursive: true })
  const files: ReportFiles = {
    json: join(dir, `${r.version}.json`),
    markdown: join(dir, `${r.version}.md`),
    propagationSvg: join(dir, `${r.version}-propagation.svg`),
    syncSvg: join(dir, `${r.version}-sync.svg`)
  }
  const [prop, sync] = [await propagationSvg(r), await syncSvg(r)]
  await writeFile(files.json, JSON.stringify({ ...r, rows }, null, 2) + '\n')
  await writeFile(files.markdown, markdown(r, rows))
  await writeFile(files.propagationSvg, prop + '\n')
  await writeFile(files.syncSvg, sync + '\n')
  return { files, rows }
}
