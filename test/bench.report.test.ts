/**
 * The benchmark report (benchmarks/report.ts) on a small fixed results object: the table's rows,
 * ratios and met flags, the Markdown, and the two SVG plots parsed by a real browser (Chromium's
 * DOMParser) to check they are well-formed and hold every series. Tests the report code, not the
 * machine's speed: nothing is measured here.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { chromium, type Browser } from 'playwright-core'
import { buildRows, cdf, fmt, markdown, markdownTable, propagationSvg, syncSvg, TARGETS, writeReport, type ReportInput, type Row } from '../benchmarks/report.ts'

/** A run where some targets are met and some are not, with round numbers so ratios are exact. */
function fixture (): ReportInput {
  return {
    version: '9.8.7',
    date: '2026-01-02T03:04:05.000Z',
    environment: { node: 'v24.0.0', platform: 'linux-x64', cpus: 2, cpuModel: 'Test CPU', loadavg_start: [0.5, 0.4, 0.3] },
    config: { link: { rounds: 3 } },
    wall_ms: 125_000,
    link: {
      one: { completed: { p50: 15, max: 30 } },
      twenty: { followers: 20, runs: [{}, {}, {}], median_all_completed_ms: 2400 },
      baseline: { raw_dial_request_p50_ms: 6 }
    },
    group: {
      baseline: {
        gossipsub_one_hop: { p50: 2, max: 5, samples: [1.5, 2, 2, 2.5, 5] },
        memory: { libp2p_gossipsub: { rss_mean_mb: 100 }, bare_node: { rss_mean_mb: 50 } }
      },
      sizes: {
        10: {
          formed: true,
          size: 10,
          settings: { p50: 14, max: 56, lost: 0, samples: [5, 10, 14, 20, 56] },
          status: { p50: 6, max: 120, lost: 0, samples: [2, 4, 6, 9, 120] },
          failure: { kills: [{}, {}, {}], all_ms_max: 800 },
          idle: { rss: { rss_mean_mb: 120, rss_max_mb: 125 } }
        },
        20: {
          formed: true,
          size: 20,
          settings: { p50: 25, max: 90, lost: 2, samples: [7, 25, 30, 90] },
          status: { p50: 8, max: 40, lost: 0, samples: [3, 8, 12, 40] },
          failure: { kills: [{}], all_ms_max: null },
          idle: { rss: { rss_mean_mb: 78, rss_max_mb: 79 } }
        },
        30: { formed: false, size: 30, stage: 'measure', error: 'failed after forming: h0: NOT_LEADER only the leader may do this' },
        40: {
          formed: true,
          size: 40,
          hosts_per_process: 7,
          processes: 9,
          settings: { p50: 150, max: 900, lost: 0, samples: [20, 150, 900] },
          status: { p50: 50, max: 400, lost: 0, samples: [10, 50, 400] },
          idle: { rss: { rss_mean_mb: 320, rss_max_mb: 420 }, cpu_pct_all_hosts: 178 }
        },
        50: { formed: false, size: 50, error: 'linking 49 followers took over 99893 ms' }
      },
      serf: { runs: [{ size: 10, failed_all_ms: 6400 }, { size: 20, error: 'did not converge' }] }
    },
    exchange: { params: { mib: 128, chunkKiB: 1024 }, exchange_p50_MBps: 150, raw_p50_MBps: 300 },
    loopback: { mib: 256, raw_write_kib: 1024, sync_p50_MBps: 288, raw_libp2p_p50_MBps: 320, raw_libp2p_hashed_p50_MBps: 360, sync_nostore_p50_MBps: 320, raw_tcp_p50_MBps: 1280, machine_cpu_s_per_GiB: { sync: 6, raw: 4 }, ratio_ceiling_at_raw_load: 0.6 },
    swarm: {
      hosts: 5,
      rate_mbit: 100,
      mib: 128,
      limit_s: 10,
      swarm_s: 12,
      single_tcp_s: 10.5,
      mesh_tcp_s: 10.8,
      one_source_http_s: 40,
      one_source_http_each_s: [39, 39.5, 40, 40],
      one_source_tcp_s: 41,
      per_host: [{ role: 'leader' }, { role: 'follower', complete_s: 11 }, { role: 'follower', complete_s: 11.5 }, { role: 'follower', complete_s: 12 }, { role: 'follower', complete_s: 12 }]
    },
    skipped: [],
    failed: [{ part: 'exchange', reason: 'holder exited 1\n    at stack line' }]
  }
}

const find = (rows: Row[], metric: string, baseline?: string): Row => {
  const hit = rows.filter(r => r.metric === metric && (baseline == null || r.baseline?.label.startsWith(baseline) === true))
  expect(hit, `${metric} / ${baseline ?? ''}`).to.have.length(1)
  return hit[0]
}

describe('benchmark report', function () {
  this.timeout(60_000)
  let browser: Browser
  let dir: string

  before(async () => {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium' })
    dir = await mkdtemp(join(tmpdir(), 'edgelink-report-'))
  })
  after(async () => {
    await browser?.close()
    await rm(dir, { recursive: true, force: true })
  })

  /** Parses `svg` in Chromium as image/svg+xml: the root's name, parse errors, every <text>'s content, counts of marks. */
  async function parseSvg (svg: string): Promise<{ root: string, errors: number, texts: string[], paths: number, width: number }> {
    const page = await browser.newPage()
    try {
      // Runs in the page (this project's types have no DOM lib).
      return await page.evaluate((s: string) => {
        const doc = new (globalThis as any).DOMParser().parseFromString(s, 'image/svg+xml')
        const root = doc.documentElement
        return {
          root: String(root.nodeName),
          errors: Number(doc.getElementsByTagName('parsererror').length),
          texts: [...doc.getElementsByTagName('text')].map((t: any) => String(t.textContent ?? '')),
          paths: Number(doc.getElementsByTagName('path').length),
          width: Number(root.getAttribute('width'))
        }
      }, svg)
    } finally {
      await page.close()
    }
  }

  it('makes one row per figure with its baseline, ratio, target and met flag', () => {
    const rows = buildRows(fixture())

    const one = find(rows, 'link, one follower: Completed, p50')
    expect(one.value).to.equal(15)
    expect(one.baseline).to.deep.equal({ label: 'raw libp2p dial + request/response, p50', value: 6 })
    expect(one.ratio).to.equal(2.5)
    expect(one.target).to.include({ op: '<=', value: TARGETS.link_one_p50_ms, unit: 'ms' })
    expect(one.met).to.equal(true)

    const many = find(rows, 'link, 20 followers at once: all Completed (median of 3)')
    expect(many.ratio).to.equal(400)
    expect(many.met).to.equal(false) // 2400 ms > 2000 ms

    // Propagation: p50 against 30 ms, max against 100 ms; lost arrivals fail a row whose value is in target.
    expect(find(rows, 'settings propagation to every host, p50, N=10').ratio).to.equal(7)
    expect(find(rows, 'settings propagation to every host, p50, N=10').met).to.equal(true)
    expect(find(rows, 'status propagation to every host, max, N=10')).to.include({ value: 120, ratio: 24, met: false })
    const lost = find(rows, 'settings propagation to every host, p50, N=20')
    expect(lost.value).to.equal(25)
    expect(lost.met).to.equal(false)
    expect(lost.note).to.equal('2 arrivals lost')
    expect(find(rows, 'status propagation to every host, max, N=20').met).to.equal(true)

    // Unreachable next to Serf at the same N; a kill not seen everywhere has no value and fails.
    const unreachable = find(rows, 'Unreachable on every host after SIGKILL, worst of 3, N=10')
    expect(unreachable.baseline).to.deep.equal({ label: 'Serf: failed on every member, N=10', value: 6400 })
    expect(unreachable.ratio).to.equal(0.125)
    expect(unreachable.met).to.equal(true)
    const unseen = find(rows, 'Unreachable on every host after SIGKILL, worst of 1, N=20')
    expect(unseen).to.include({ value: null, ratio: null, met: false })
    expect(unseen.baseline?.value).to.equal(null)

    // RSS: the mean and the max must both be under 80 MB.
    expect(find(rows, 'RSS per idle host, mean, N=10')).to.include({ ratio: 1.2, met: false })
    expect(find(rows, 'RSS per idle host, mean, N=20')).to.include({ ratio: 0.78, met: true })

    // Hosts sharing processes: said next to each figure, and no RSS row (a process is not a host).
    expect(find(rows, 'settings propagation to every host, p50, N=40').note).to.equal('7 hosts per process (9 processes), idle load 1.78 cores')
    expect(rows.some(r => r.metric === 'RSS per idle host, mean, N=40')).to.equal(false)

    // A group that did not form is a failed row, not a missing one.
    expect(find(rows, 'group of 50 hosts')).to.include({ value: null, met: false, note: 'did not form: linking 49 followers took over 99893 ms' })
    expect(find(rows, 'group of 30 hosts')).to.include({ value: null, met: false, note: 'failed after forming: h0: NOT_LEADER only the leader may do this' })
    // Sizes in order, whatever the object's key order.
    expect(rows.filter(r => r.part === 'group').map(r => /N=(\d+)|of (\d+) hosts/.exec(r.metric)?.slice(1).find(x => x != null))).to.deep.equal([...Array(6).fill('10'), ...Array(6).fill('20'), '30', ...Array(4).fill('40'), '50'])

    // A ratio target compares the ratio: 288 / 320 = 0.9 ≥ 0.9.
    const sync = find(rows, 'content sync on loopback, host pair, 256 MiB, median', 'raw libp2p stream (')
    expect(sync.ratio).to.equal(0.9)
    expect(sync.met).to.equal(true)
    // Against the raw stream that only hashes: a reference, no target.
    expect(find(rows, 'content sync on loopback, host pair, 256 MiB, median', 'raw libp2p stream, receiver hashing')).to.include({ ratio: 0.8, met: null })
    // Against itself without storage: what writing the chunk files costs, a reference too.
    expect(find(rows, 'content sync on loopback, host pair, 256 MiB, median', 'the same sync, receiver storing no chunk file')).to.include({ ratio: 0.9, value: 288, met: null })
    // The whole machine's CPU per GiB, sync against raw stream, with the ratio the machine allows.
    const cpu = find(rows, 'CPU per GiB the loopback sync moved, whole machine (every process and the kernel)', 'the raw libp2p stream')
    expect(cpu).to.include({ value: 6, unit: 's', ratio: 1.5, met: null })
    expect(cpu.note).to.include('0.6×')
    const tcp = find(rows, 'content sync on loopback, host pair, 256 MiB, median', 'raw TCP')
    expect(tcp.ratio).to.equal(0.225)
    expect(tcp.met).to.equal(null)

    // Swarm: 12 s over a 10 s limit is 1.2× > 1.15×; the one-source rows are references.
    const swarmMetric = 'swarm sync, 4 followers, 128 MiB on 100 Mbit/s cables: all complete'
    expect(find(rows, swarmMetric, 'physical limit')).to.include({ ratio: 1.2, met: false })
    expect(find(rows, swarmMetric, 'one-source HTTP')).to.include({ ratio: 0.3, met: null })
    const http = find(rows, 'one-source HTTP download, 4 followers at once')
    expect(http).to.include({ ratio: 4, met: null })
    expect(http.target).to.include({ op: '≈', value: 4 })
    expect(find(rows, 'one-source plain TCP download, 4 followers at once').ratio).to.equal(4.1)
    expect(find(rows, 'one plain TCP download on an idle cable').ratio).to.equal(1.05)
    // The swarm's traffic over plain TCP: a baseline of the swarm (12 / 10.8 s) and a row of its own against the limit.
    const mesh = "the swarm's traffic over plain TCP (each follower fetching 1/4 from every other host at once)"
    const overMesh = find(rows, swarmMetric, "the swarm's traffic over plain TCP")
    expect(overMesh.met).to.equal(null)
    expect(overMesh.ratio).to.be.closeTo(12 / 10.8, 1e-9)
    expect(find(rows, mesh, 'physical limit').ratio).to.be.closeTo(1.08, 1e-9)

    // The failed part is in the table too, with the first line of its error.
    const failed = rows.filter(r => r.part === 'exchange')
    expect(failed.map(r => r.metric)).to.include('chunk exchange on loopback, 128 MiB in 1024 KiB chunks, verified')
    expect(failed.find(r => r.value == null)).to.include({ met: false, note: 'failed: holder exited 1' })
  })

  it('records a skipped part as skipped, with its reason', () => {
    const input = fixture()
    delete input.swarm
    input.skipped = [{ part: 'swarm', reason: 'network namespaces are not available: uid is 1000' }]
    const rows = buildRows(input)
    const row = rows.find(r => r.part === 'swarm')!
    expect(row.skipped).to.equal('network namespaces are not available: uid is 1000')
    expect(row.met).to.equal(null)
    const table = markdownTable(rows)
    expect(table).to.match(/\| swarm sync in network namespaces \| skipped: network namespaces are not available: uid is 1000 \| — \| — \| — \| skipped \|/)
  })

  it('renders the Markdown table: header, one line per row, ratios and met flags', () => {
    const input = fixture()
    const rows = buildRows(input)
    const table = markdownTable(rows).split('\n')
    expect(table[0]).to.equal('| metric | value | baseline (same run) | ratio | target | met? |')
    expect(table).to.have.length(rows.length + 2)
    expect(table).to.include('| link, one follower: Completed, p50 | 15 ms | raw libp2p dial + request/response, p50: 6 ms | 2.5× | ≤ 250 ms | yes |')
    expect(table).to.include('| content sync on loopback, host pair, 256 MiB, median | 288 MB/s | raw libp2p stream (1024 KiB writes), same connection: 320 MB/s | 0.9× | ≥ 0.9× baseline | yes |')
    expect(table).to.include('| swarm sync, 4 followers, 128 MiB on 100 Mbit/s cables: all complete | 12 s | physical limit: 128 MiB ÷ 100 Mbit/s: 10 s | 1.2× | ≤ 1.15× baseline | **NO** |')
    expect(table).to.include('| settings propagation to every host, p50, N=20 | 25 ms (2 arrivals lost) | raw gossipsub one hop, p50: 2 ms | 12.5× | ≤ 30 ms | **NO** |')
    expect(table).to.include('| one-source HTTP download, 4 followers at once | 40 s | physical limit: 128 MiB ÷ 100 Mbit/s: 10 s | 4× | ≈ 4× baseline (reference) | — |')
    // Every data line has the same number of cells as the header.
    for (const line of table) expect(line.split(/(?<!\\)\|/).length, line).to.equal(8)

    const md = markdown(input, rows)
    expect(md).to.contain('# edgelink 9.8.7: benchmarks')
    expect(md).to.contain('v24.0.0, linux-x64, 2 × Test CPU, load average at start 0.5 0.4 0.3')
    expect(md).to.contain('2 min 5 s in all')
    expect(md).to.contain('- **failed** chunk exchange on loopback: holder exited 1')
    expect(md).to.contain('![propagation latency](9.8.7-propagation.svg)')
    expect(md).to.contain('![swarm sync time](9.8.7-sync.svg)')
  })

  it('formats numbers to at most three significant figures', () => {
    expect([fmt(1075.69), fmt(15.47), fmt(2.583), fmt(0.3321), fmt(4), fmt(0.125)]).to.deep.equal(['1076', '15.5', '2.58', '0.332', '4', '0.125'])
    expect(cdf([3, 1, 2, 2])).to.deep.equal([{ ms: 1, fraction: 0.25 }, { ms: 2, fraction: 0.5 }, { ms: 2, fraction: 0.75 }, { ms: 3, fraction: 1 }])
  })

  it('draws the propagation CDF with every series and both targets, as well-formed SVG', async () => {
    const svg = await propagationSvg(fixture())
    const p = await parseSvg(svg)
    expect(p.root).to.equal('svg')
    expect(p.errors).to.equal(0)
    const texts = p.texts.join('\n')
    for (const series of ['status N=10 (n=5)', 'settings N=10 (n=5)', 'status N=20 (n=4)', 'settings N=20 (n=4)', 'status N=40 (n=3)', 'settings N=40 (n=3)', 'baseline: raw gossipsub hop (n=5)']) expect(texts).to.contain(series)
    expect(texts).to.contain('one process per host, N=40: 7 per process')
    expect(texts).to.contain('p50 target 30 ms')
    expect(texts).to.contain('max target 100 ms')
    expect(texts).to.contain('edgelink 9.8.7: propagation latency to every host (CDF)')
    // One line per series.
    expect((svg.match(/aria-roledescription="line mark"/g) ?? []).length).to.equal(7)
  })

  it('draws the sync bars against the limit and the one-source baselines, as well-formed SVG', async () => {
    const svg = await syncSvg(fixture())
    const p = await parseSvg(svg)
    expect(p.root).to.equal('svg')
    expect(p.errors).to.equal(0)
    const texts = p.texts.join('\n')
    for (const label of ['physical limit (128 MiB ÷ 100 Mbit/s)', 'edgelink swarm, 4 followers', 'one TCP download, idle cable', "the swarm's traffic, plain TCP", 'one source, HTTP, 4 at once', 'one source, TCP, 4 at once']) expect(texts).to.contain(label)
    expect(texts).to.contain('12 s (1.2× limit)')
    expect(texts).to.contain('40 s (4× limit)')
    expect(texts).to.contain('target ≤ 1.15× limit')
    expect(texts).to.contain('10.8 s (1.08× limit)')
    // Six bars.
    expect((svg.match(/aria-roledescription="bar"/g) ?? []).length).to.equal(6)
  })

  it('draws a message instead of a plot for a part that did not run', async () => {
    const input = fixture()
    delete input.swarm
    delete input.group
    input.skipped = [{ part: 'swarm', reason: 'network namespaces are not available: uid is 1000' }]
    input.failed = [{ part: 'group', reason: 'spawn failed' }]
    const sync = await parseSvg(await syncSvg(input))
    expect(sync.errors).to.equal(0)
    expect(sync.texts.join('\n')).to.contain('no swarm figures in this run: skipped (network namespaces are not available: uid is 1000)')
    const prop = await parseSvg(await propagationSvg(input))
    expect(prop.errors).to.equal(0)
    expect(prop.texts.join('\n')).to.contain('no propagation samples in this run: group benchmark failed (spawn failed)')
  })

  it('writes <version>.json, .md and both SVGs', async () => {
    const { files, rows } = await writeReport(fixture(), dir)
    expect(files.json).to.equal(join(dir, '9.8.7.json'))
    const json = JSON.parse(await readFile(files.json, 'utf8'))
    expect(json.version).to.equal('9.8.7')
    expect(json.rows).to.have.length(rows.length)
    expect(json.swarm.swarm_s).to.equal(12)
    expect(await readFile(files.markdown, 'utf8')).to.contain(markdownTable(rows))
    for (const f of [files.propagationSvg, files.syncSvg]) {
      expect(f.startsWith(join(dir, '9.8.7-'))).to.equal(true)
      const p = await parseSvg(await readFile(f, 'utf8'))
      expect(p.errors).to.equal(0)
      expect(p.width).to.be.greaterThan(300)
    }
  })
})
