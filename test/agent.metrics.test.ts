/**
 * Prometheus metrics at `GET /metrics`: real agent processes linked through the CLI, scraped
 * over HTTP before and after real work (a link, a settings change, a content sync), the output
 * checked against the text exposition format; and `host.stats()` with crafted gossip in process.
 */
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'chai'
import { createMetrics } from '../agent/metrics.ts'
import { craftDocument, gossip, rejection, Testbed, waitFor } from './helpers.ts'
import { AgentProc, Fleet, fleetHooks, waitForGroup } from './agent.procs.ts'

// ------------------------------------------------------------ the text format

interface Sample { name: string, labels: Record<string, string>, value: number }
interface Family { name: string, type: string, help: string, samples: Sample[] }

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES = ['counter', 'gauge', 'histogram', 'summary', 'untyped']
const SUFFIXES: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count'] }

/**
 * A strict parser of the Prometheus text exposition format 0.0.4: HELP and TYPE once per family
 * and before its samples, valid metric and label names, escaped label values, float values, no
 * duplicate series, a newline at the end. Throws on the first violation, naming the line.
 */
export function parsePrometheus (text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline')
  const families = new Map<string, Family>()
  const series = new Set<string>()
  const lines = text.slice(0, -1).split('\n')
  lines.forEach((line, i) => {
    const fail = (why: string): never => { throw new Error(`line ${i + 1}: ${why}: ${line}`) }
    if (line === '') return
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line)
    if (meta != null) {
      const [, what, name, rest] = meta
      if (!NAME.test(name)) fail('bad metric name')
      const f = families.get(name) ?? { name, type: 'untyped', help: '', samples: [] }
      if (f.samples.length > 0) fail(`${what} after samples`)
      if (what === 'TYPE') {
        if (!TYPES.includes(rest)) fail('unknown type')
        f.type = rest
      } else {
        f.help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\')
      }
      families.set(name, f)
      return
    }
    if (line.startsWith('#')) return // a comment
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)( -?\d+)?$/.exec(line) ?? fail('not a sample')
    const [, name, rawLabels, rawValue] = m
    const labels = rawLabels == null ? {} : parseLabels(rawLabels.slice(1, -1), fail)
    const value = parseFloatLikeGo(rawValue) ?? fail('bad value')
    const family = families.get(name) ?? [...families.values()].find(f => (SUFFIXES[f.type] ?? []).some(s => name === f.name + s)) ?? fail('sample without a TYPE')
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`
    if (series.has(key)) fail('duplicate series')
    series.add(key)
    family.samples.push({ name, labels, value })
  })
  return families
}

/** Values are what Go's strconv.ParseFloat reads (Prometheus uses it): decimals, and Inf / NaN in any case. */
function parseFloatLikeGo (s: string): number | undefined {
  if (/^[+-]?(inf|infinity)$/i.test(s)) return s.startsWith('-') ? -Infinity : Infinity
  if (/^[+-]?nan$/i.test(s)) return NaN
  return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s) ? Number(s) : undefined
}

function parseLabels (s: string, fail: (why: string) => never): Record<string, string> {
  const labels: Record<string, string> = {}
  let i = 0
  while (i < s.length) {
    const eq = s.indexOf('="', i)
    if (eq < 0) fail('bad label')
    const name = s.slice(i, eq)
    if (!LABEL.test(name) || name in labels) fail(`bad or repeated label name "${name}"`)
    let value = ''
    let j = eq + 2
    for (; j < s.length && s[j] !== '"'; j++) {
      if (s[j] === '\\') {
        const next = s[++j]
        if (next === 'n') value += '\n'
        else if (next === '\\' || next === '"') value += next
        else fail('bad escape in a label value')
      } else {
        value += s[j]
      }
    }
    if (j >= s.length) fail('unterminated label value')
    labels[name] = value
    i = j + 1
    if (i < s.length) {
      if (s[i] !== ',') fail('expected a comma between labels')
      i++
    }
  }
  return labels
}

/** The value of one series (labels must match exactly the ones given); undefined if absent. */
function value (families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const f = families.get(name)
  const want = JSON.stringify(Object.entries(labels).sort())
  return f?.samples.find(s => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want)?.value
}

function must (families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const v = value(families, name, labels)
  if (v === undefined) throw new Error(`no series ${name}${JSON.stringify(labels)}`)
  return v
}

// ------------------------------------------------------------ scraping real agents

async function scrape (a: AgentProc, bearer?: string | null): Promise<{ status: number, type: string, text: string }> {
  const { url, token } = await a.apiFile()
  const auth = bearer === null ? undefined : bearer ?? token
  const res = await fetch(new URL('/metrics', url), { headers: auth != null ? { authorization: `Bearer ${auth}` } : {} })
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() }
}

async function metrics (a: AgentProc): Promise<Map<string, Family>> {
  const r = await scrape(a)
  expect(r.status, r.text).to.equal(200)
  return parsePrometheus(r.text)
}

describe('agent metrics: /metrics on real agent processes', function () {
  this.timeout(60_000)
  const fleet = new Fleet()
  let leader: AgentProc
  let follower: AgentProc

  before(async function () {
    this.timeout(30_000)
    ;[leader, follower] = await Promise.all(['m1', 'm2'].map(async name => await fleet.agent({ name })))
  })

  after(async function () {
    this.timeout(20_000)
    await fleet.teardown()
  })

  it('refuses a scrape without the bearer secret or with a wrong one (401)', async () => {
    const { token } = await leader.apiFile()
    for (const bearer of [null, '', 'wrong', token.replace(/^./, c => c === 'a' ? 'b' : 'a')]) {
      const r = await scrape(leader, bearer)
      expect(r.status, `bearer ${String(bearer)}`).to.equal(401)
      expect(JSON.parse(r.text)).to.include({ code: 'UNAUTHORIZED' })
      expect(r.text).to.not.include('edgelink_')
    }
  })

  it('serves the Prometheus text format with the process metrics and an unlinked host', async () => {
    const r = await scrape(leader)
    expect(r.status).to.equal(200)
    expect(r.type).to.match(/^text\/plain; version=0\.0\.4/)
    const m = parsePrometheus(r.text)
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_open_fds', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(m.has(name), name).to.equal(true)
    }
    expect(must(m, 'process_resident_memory_bytes')).to.be.greaterThan(10 * 1024 * 1024)
    for (const f of m.values()) {
      if (!f.name.startsWith('edgelink_')) continue
      expect(f.help, f.name).to.not.equal('')
      expect(['counter', 'gauge'], f.name).to.include(f.type)
      if (f.type === 'counter') expect(f.name).to.match(/_total$/)
    }
    expect(must(m, 'edgelink_host_info', { id: await leader.id(), version: (await leader.api('GET', '/v1/edgelink/status')).body.version })).to.equal(1)
    expect(must(m, 'edgelink_linked')).to.equal(0)
    expect(must(m, 'edgelink_group_hosts')).to.equal(0)
    expect(must(m, 'edgelink_link_attempts_total')).to.equal(0)
    expect(must(m, 'edgelink_content_sync_ratio')).to.equal(1)
    for (const kind of ['settings', 'cluster', 'content']) {
      expect(must(m, 'edgelink_gossip_messages_total', { topic: 'documents', kind, direction: 'in' })).to.equal(0)
    }
  })

  it('counts the link on both hosts: attempts and results on the follower, the admitted join on the leader', async () => {
    const t = await leader.cli('token')
    expect(t.code, t.stderr).to.equal(0)
    const l = await follower.cli('link', t.stdout.trim())
    expect(l.code, l.stderr).to.equal(0)
    const ids = [await leader.id(), await follower.id()]
    await waitForGroup([leader, follower], ids, ids[0])
    const [ml, mf] = await Promise.all([metrics(leader), metrics(follower)])
    expect(must(mf, 'edgelink_link_attempts_total')).to.equal(1)
    expect(must(mf, 'edgelink_link_results_total', { result: 'Completed' })).to.equal(1)
    expect(must(ml, 'edgelink_link_joins_total', { result: 'admitted' })).to.equal(1)
    expect(must(ml, 'edgelink_link_attempts_total')).to.equal(0)
    for (const [m, lead] of [[ml, 1], [mf, 0]] as const) {
      expect(must(m, 'edgelink_linked')).to.equal(1)
      expect(must(m, 'edgelink_leader')).to.equal(lead)
      expect(must(m, 'edgelink_group_hosts')).to.equal(2)
      expect(must(m, 'edgelink_hosts', { health: 'Healthy' })).to.equal(2)
      expect(must(m, 'edgelink_hosts', { health: 'Unreachable' })).to.equal(0)
    }
    // Status heartbeats flow both ways once linked (one a second).
    await waitFor(async () => {
      const all = await Promise.all([metrics(leader), metrics(follower)])
      return all.every(m => must(m, 'edgelink_gossip_messages_total', { topic: 'status', kind: 'status', direction: 'in' }) > 0 &&
        must(m, 'edgelink_gossip_messages_total', { topic: 'status', kind: 'status', direction: 'out' }) > 0)
    }, 10_000, 'status gossip counted on both hosts')
  })

  it('counts a settings change going out on the leader and coming in on the follower', async () => {
    const doc = (m: Map<string, Family>, direction: string): number => must(m, 'edgelink_gossip_messages_total', { topic: 'documents', kind: 'settings', direction })
    const arrived = (m: Map<string, Family>): number => doc(m, 'in') + must(m, 'edgelink_documents_synced_total', { kind: 'settings' })
    const [l0, f0] = await Promise.all([metrics(leader), metrics(follower)])
    const s = await leader.cli('settings', 'set', 'ntpServers=10.0.0.1,10.0.0.2', 'values.site=metrics')
    expect(s.code, s.stderr).to.equal(0)
    await waitFor(async () => arrived(await metrics(follower)) > arrived(f0), 10_000, 'the settings counted on the follower')
    const [l1, f1] = await Promise.all([metrics(leader), metrics(follower)])
    expect(doc(l1, 'out')).to.equal(doc(l0, 'out') + 1)
    expect(arrived(f1)).to.equal(arrived(f0) + 1)
    expect(doc(f1, 'out')).to.equal(doc(f0, 'out')) // followers may not write settings
    expect((await follower.api('GET', '/v1/edgelink/settings')).body.values).to.deep.equal({ site: 'metrics' })
    for (const m of [l1, f1]) {
      expect(must(m, 'edgelink_gossip_messages_rejected_total', { topic: 'documents', kind: 'settings' })).to.equal(0)
      expect(must(m, 'edgelink_gossip_messages_rejected_total', { topic: 'status', kind: 'status' })).to.equal(0)
    }
    // Heartbeats keep counting.
    await waitFor(async () => must(await metrics(follower), 'edgelink_gossip_messages_total', { topic: 'status', kind: 'status', direction: 'out' }) >
      must(f1, 'edgelink_gossip_messages_total', { topic: 'status', kind: 'status', direction: 'out' }), 5_000, 'more heartbeats')
  })

  it('counts content bytes out on the uploader and in on the follower, and the sync progress', async () => {
    const size = 3 * 1024 * 1024 + 12_345 // four chunks of 1 MiB, the last one short
    const file = join(await fleet.dir(), 'payload.bin')
    await writeFile(file, randomBytes(size))
    const add = await leader.cli('content', 'add', file, '--name', 'payload', '--json')
    expect(add.code, add.stderr).to.equal(0)
    const id: string = JSON.parse(add.stdout).id
    const w = await follower.cli('content', 'wait', id, '--timeout', '60')
    expect(w.code, w.stderr).to.equal(0)
    const [ml, mf] = await Promise.all([metrics(leader), metrics(follower)])
    expect(must(mf, 'edgelink_content_bytes_total', { direction: 'in' })).to.equal(size)
    expect(must(mf, 'edgelink_content_chunks_total', { direction: 'in' })).to.equal(4)
    expect(must(ml, 'edgelink_content_bytes_total', { direction: 'out' })).to.equal(size)
    expect(must(ml, 'edgelink_content_chunks_total', { direction: 'out' })).to.equal(4)
    expect(must(ml, 'edgelink_content_bytes_total', { direction: 'in' })).to.equal(0)
    expect(must(mf, 'edgelink_content_chunks_corrupt_total')).to.equal(0)
    for (const m of [ml, mf]) {
      expect(must(m, 'edgelink_content_size_bytes', { content: id, name: 'payload' })).to.equal(size)
      expect(must(m, 'edgelink_content_have_bytes', { content: id, name: 'payload' })).to.equal(size)
      expect(must(m, 'edgelink_content_sync_ratio')).to.equal(1)
    }
    expect(must(ml, 'edgelink_gossip_messages_total', { topic: 'documents', kind: 'content', direction: 'out' })).to.equal(1)
    expect(must(mf, 'edgelink_gossip_messages_total', { topic: 'documents', kind: 'content', direction: 'in' }) +
      must(mf, 'edgelink_documents_synced_total', { kind: 'content' })).to.equal(1)
  })
})

describe('agent metrics: a scrape-only secret (--metrics-secret-file)', function () {
  this.timeout(60_000)
  const fleet = fleetHooks()

  it('reads /metrics with the metrics secret and nothing else; the API secret still reads everything', async () => {
    const dir = await fleet.dir()
    const file = join(dir, 'metrics-secret')
    const metricsSecret = randomBytes(24).toString('hex')
    await writeFile(file, metricsSecret + '\n', { mode: 0o600 })
    const a = await fleet.agent({ name: 'ms', flags: ['--metrics-secret-file', file] })
    const r = await scrape(a, metricsSecret)
    expect(r.status, r.text).to.equal(200)
    expect(parsePrometheus(r.text).has('edgelink_group_hosts')).to.equal(true)
    // Every other route refuses it, reads and writes alike; nothing changes.
    for (const [method, path] of [['GET', '/v1/edgelink/status'], ['GET', '/v1/edgelink/hosts'], ['POST', '/v1/edge-mgmt/edgehosts/current/link/generate-token'], ['GET', '/v1/edgelink/events']]) {
      const res = await a.api(method, path, { auth: metricsSecret })
      expect(res.status, `${method} ${path}`).to.equal(401)
    }
    expect((await a.api('GET', '/v1/edgelink/status')).body.tokenGeneration).to.equal(false)
    expect((await scrape(a)).status).to.equal(200)
    // A wrong metrics secret is refused like any wrong bearer.
    expect((await scrape(a, metricsSecret.replace(/^./, c => c === 'a' ? 'b' : 'a'))).status).to.equal(401)
  })
})

describe('host.stats() and the metrics registry with crafted gossip (in process, real libp2p)', function () {
  this.timeout(30_000)
  const bed = new Testbed()
  after(async () => { await bed.teardown() })

  it('counts refused links on both sides and gossip the validators reject, by kind', async () => {
    const [leader, f1] = await bed.group(2)
    const idle = await bed.host()
    expect(f1.stats().link).to.deep.equal({ attempts: 1, results: { Completed: 1 }, joins: {} })
    expect(leader.stats().link.joins).to.deep.equal({ admitted: 1 })

    // A used token: refused by the leader (counted there) and by the linking host.
    const { token } = await leader.generateLinkToken()
    const third = await bed.host()
    await third.link(token)
    expect((await rejection(async () => await idle.link(token))).code).to.equal('TOKEN_USED')
    expect((await rejection(async () => await idle.link('EL1garbage'))).code).to.equal('TOKEN_CORRUPT')
    expect(idle.stats().link).to.deep.equal({ attempts: 2, results: { TOKEN_USED: 1, TOKEN_CORRUPT: 1 }, joins: {} })
    expect(leader.stats().link.joins).to.deep.equal({ admitted: 2, TOKEN_USED: 1 })

    // A follower signs settings (only the leader may) and a stranger's document is relayed.
    await waitFor(() => [leader, f1, third].every(h => h.hosts().length === 3), 10_000, 'three members')
    await gossip(f1, await craftDocument(f1 as any, 'settings', 'group', { values: { v: 'evil' } }, 10, leader.rosterData()!.term))
    const strangerKey = await generateKeyPair('Ed25519')
    await gossip(f1, await craftDocument({ id: peerIdFromPrivateKey(strangerKey).toString(), key: strangerKey } as any, 'cluster', 'cluster', { name: 'x' }, 1, 1))
    await waitFor(() => (leader.stats().gossip.documents.rejected.settings ?? 0) >= 1 && (leader.stats().gossip.documents.rejected.cluster ?? 0) >= 1, 5_000, 'both rejections counted')
    expect(leader.settings().values).to.not.have.property('v')

    const text = await createMetrics(leader).metrics()
    const m = parsePrometheus(text)
    expect(must(m, 'edgelink_gossip_messages_rejected_total', { topic: 'documents', kind: 'settings' })).to.be.at.least(1)
    expect(must(m, 'edgelink_gossip_messages_rejected_total', { topic: 'documents', kind: 'cluster' })).to.be.at.least(1)
    expect(must(m, 'edgelink_link_joins_total', { result: 'TOKEN_USED' })).to.equal(1)
    expect(must(m, 'edgelink_group_hosts')).to.equal(3)
    // Reading does not change anything: two snapshots in a row agree.
    expect(leader.stats().link).to.deep.equal(leader.stats().link)
  })
})
