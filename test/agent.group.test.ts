/**
 * Group settings, the cluster and leadership through the agent, as an operator drives them: three
 * real agent processes on their own loopback IPs, linked and then changed with separate
 * `edgelink` processes. The `it`s run in order and build on one another (settings, cluster
 * create, scale, delete, leader transfer).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { expect } from 'chai'
import type { Command } from 'commander'
import { buildProgram } from '../agent/cli.ts'
import type { HostRow } from '../lib/index.ts'
import { waitFor } from './helpers.ts'
import { cleanEnv, CLI, cli, expectRefusal, Fleet, fleetHooks, waitForGroup, type AgentProc } from './agent.procs.ts'

const json = { 'content-type': 'application/json' }

describe('agent CLI and API: settings, cluster and leadership across three agents', function () {
  this.timeout(30_000)
  const fleet = new Fleet()
  const children: ChildProcess[] = []
  let h1: AgentProc
  let h2: AgentProc
  let h3: AgentProc
  const ids: Record<string, string> = {}
  /** The tail `edgelink hosts` shows, which every id argument accepts. */
  const tail = (name: string): string => ids[name].slice(-12)
  const all = (): string[] => [ids.h1, ids.h2, ids.h3]

  /** Every agent's `hosts --json` satisfies `ok` for every row. */
  async function waitForRows (what: string, ok: (row: HostRow) => boolean): Promise<void> {
    let last = ''
    try {
      await waitFor(async () => {
        const tables = await Promise.all([h1, h2, h3].map(async a => await a.hosts()))
        last = JSON.stringify(tables.map(t => t.map(r => [r.id.slice(-4), r.role, r.nodeRole, r.status, r.health])))
        return tables.every(rows => rows.length === 3 && rows.every(ok))
      }, 10_000, what)
    } catch (err: any) {
      throw new Error(`${err.message}; last seen ${last}`)
    }
  }

  before(async function () {
    this.timeout(30_000)
    ;[h1, h2, h3] = await Promise.all(['g1', 'g2', 'g3'].map(async name => await fleet.agent({ name })))
    ids.h1 = await h1.id()
    ids.h2 = await h2.id()
    ids.h3 = await h3.id()
    for (const f of [h2, h3]) {
      const t = await h1.cli('token')
      expect(t.code, t.stderr).to.equal(0)
      const l = await f.cli('link', t.stdout.trim())
      expect(l.code, l.stderr).to.equal(0)
    }
    await waitForGroup([h1, h2, h3], all(), ids.h1)
  })

  after(async function () {
    this.timeout(20_000)
    for (const c of children) if (c.exitCode == null && c.signalCode == null) c.kill('SIGKILL')
    await fleet.teardown()
  })

  it('`settings set` on the leader prints the result and reaches every follower', async () => {
    const r = await h1.cli('settings', 'set', 'ntpServers=10.0.0.1,10.0.0.2', 'httpProxy=http://proxy:3128', 'values.site=north')
    expect(r.code, r.stderr).to.equal(0)
    expect(r.stdout).to.match(/^ntpServers +10\.0\.0\.1,10\.0\.0\.2$/m).and.match(/^values\.site +north$/m)
    const want = { ntpServers: ['10.0.0.1', '10.0.0.2'], httpProxy: 'http://proxy:3128', values: { site: 'north' } }
    for (const f of [h2, h3]) {
      await waitFor(async () => {
        const g = await f.cli('settings', 'get', '--json')
        expect(g.code, g.stderr).to.equal(0)
        const s = JSON.parse(g.stdout)
        return s.httpProxy === want.httpProxy && JSON.stringify(s.ntpServers) === JSON.stringify(want.ntpServers) && s.values.site === 'north'
      }, 10_000, `the settings on ${f.name}`)
    }
  })

  it('`settings set` refuses a follower (NOT_LEADER) and a bad key (exit 1 INVALID_ARGUMENT), changing nothing', async () => {
    const before = (await h1.api('GET', '/v1/edgelink/settings')).body
    expectRefusal(await h2.cli('settings', 'set', 'ntpServers=10.9.9.9'), 'NOT_LEADER')
    // Keys are the library's to check: an unknown key or a missing `=` is a refusal (1), not usage (2).
    expectRefusal(await h1.cli('settings', 'set', 'bogus=1'), 'INVALID_ARGUMENT')
    expectRefusal(await h1.cli('settings', 'set', 'httpProxy'), 'INVALID_ARGUMENT')
    expect((await h1.cli('settings', 'set')).code).to.equal(2) // no assignment at all: usage
    for (const a of [h1, h2]) expect((await a.api('GET', '/v1/edgelink/settings')).body).to.deep.equal(before)
  })

  it('API: PUT with a wrong type or shape is 400 INVALID_ARGUMENT and changes nothing; PATCH takes KEY=VALUE', async () => {
    const before = (await h1.api('GET', '/v1/edgelink/settings')).body
    const bad = [
      { ...before, ntpServers: '10.0.0.9' }, // a string where a list goes (never coerced)
      { ...before, httpProxy: 42 },
      { ...before, values: { site: 7 } },
      { ...before, bogus: 'x' },
      { ntpServers: ['10.0.0.9'] }, // PUT replaces: every key is required
      { ...before, noProxy: Array.from({ length: 1025 }, () => 'x') }
    ]
    for (const body of bad) {
      const r = await h1.api('PUT', '/v1/edgelink/settings', { body: JSON.stringify(body), headers: json })
      expect([r.status, r.body.code], JSON.stringify(r.body)).to.deep.equal([400, 'INVALID_ARGUMENT'])
    }
    for (const body of [{ set: 'values.site=south' }, { set: [] }, {}]) {
      const r = await h1.api('PATCH', '/v1/edgelink/settings', { body: JSON.stringify(body), headers: json })
      expect([r.status, r.body.code]).to.deep.equal([400, 'INVALID_ARGUMENT'])
    }
    expect((await h1.api('GET', '/v1/edgelink/settings')).body).to.deep.equal(before)

    const patched = await h1.api('PATCH', '/v1/edgelink/settings', { body: JSON.stringify({ set: ['values.site=south'] }), headers: json })
    expect(patched.status).to.equal(200)
    expect(patched.body).to.deep.equal({ ...before, values: { site: 'south' } })
    // Settings may exceed the 64 KiB of other bodies (CA bundles), up to 1 MiB.
    const next = { ...before, values: { site: 'south' }, registryMirror: 'mirror.local:5000', caCertificates: ['x'.repeat(50 * 1024), 'y'.repeat(50 * 1024)] }
    const put = await h1.api('PUT', '/v1/edgelink/settings', { body: JSON.stringify(next), headers: json })
    expect(put.status).to.equal(200)
    expect(put.body).to.deep.equal(next)
    const huge = await h1.api('PUT', '/v1/edgelink/settings', { body: JSON.stringify({ ...before, caCertificates: Array.from({ length: 20 }, () => 'x'.repeat(60 * 1024)) }), headers: json })
    expect([huge.status, huge.body.code]).to.deep.equal([413, 'PAYLOAD_TOO_LARGE'])
    expect((await h1.api('GET', '/v1/edgelink/settings')).body).to.deep.equal(next)
    const follower = await h2.api('PUT', '/v1/edgelink/settings', { body: JSON.stringify(before), headers: json })
    expect([follower.status, follower.body.code]).to.deep.equal([403, 'NOT_LEADER'])
  })

  it('`cluster create` refuses an even control plane; `cluster show` and the API answer NO_CLUSTER', async () => {
    expectRefusal(await h1.cli('cluster', 'create', '--name', 'edge-a', '--control-plane', `${tail('h1')},${tail('h2')}`), 'INVALID_ARGUMENT')
    expectRefusal(await h1.cli('cluster', 'show'), 'NO_CLUSTER')
    expect((await h1.cli('cluster', 'create', '--control-plane', tail('h1'))).code).to.equal(2) // --name missing
    const r = await h1.api('POST', '/v1/edgelink/cluster', { body: JSON.stringify({ name: 'edge-a', controlPlane: [ids.h1], pools: [] }), headers: json })
    expect([r.status, r.body.code]).to.deep.equal([400, 'INVALID_ARGUMENT'])
    const g = await h2.api('GET', '/v1/edgelink/cluster')
    expect([g.status, g.body.code]).to.deep.equal([404, 'NO_CLUSTER'])
  })

  it('`cluster create` assigns node roles: every host shows them, In-Use, in `hosts --json`', async () => {
    const r = await h1.cli('cluster', 'create', '--name', 'edge-a', '--control-plane', tail('h1'), '--worker', tail('h2'), '--vip', '10.0.0.100', '--profile', 'edge-k3s', '--json')
    expect(r.code, r.stderr).to.equal(0)
    const c = JSON.parse(r.stdout)
    expect(c).to.include({ name: 'edge-a', vip: '10.0.0.100', profile: 'edge-k3s', createdBy: ids.h1 })
    const want: Record<string, [string, string]> = { [ids.h1]: ['init', 'In-Use'], [ids.h2]: ['worker', 'In-Use'], [ids.h3]: ['unknown', 'Ready'] }
    await waitForRows('node roles on every host', row => row.nodeRole === want[row.id][0] && row.status === want[row.id][1])
    const shown = await h3.cli('cluster', 'show', '--json')
    expect(shown.code, shown.stderr).to.equal(0)
    expect(JSON.parse(shown.stdout)).to.deep.equal(c)
    const human = await h1.cli('cluster', 'show')
    expect(human.stdout).to.include('Cluster edge-a').and.include('worker').and.include('init')
    expectRefusal(await h1.cli('cluster', 'create', '--name', 'edge-b', '--control-plane', tail('h1')), 'CLUSTER_EXISTS')
  })

  it('`cluster scale` keeps the control plane odd and moves hosts between pools', async () => {
    expectRefusal(await h1.cli('cluster', 'scale', '--add-control-plane', tail('h3')), 'INVALID_ARGUMENT')
    expect((await h1.cli('cluster', 'scale')).code).to.equal(2) // nothing to do: usage
    const r = await h1.cli('cluster', 'scale', '--remove', tail('h2'), '--add-control-plane', `${tail('h2')},${tail('h3')}`, '--json')
    expect(r.code, r.stderr).to.equal(0)
    expect(JSON.parse(r.stdout).pools).to.have.length(1)
    // With a cluster every control-plane host acts as leader.
    await waitForRows('a control plane of three', row => row.role === 'leader' && row.status === 'In-Use' && row.nodeRole === (row.id === ids.h1 ? 'init' : 'controlplane'))
  })

  it('`unlink` of an In-Use host exits 1 with HOST_IN_USE', async () => {
    expectRefusal(await h1.cli('unlink', tail('h3')), 'HOST_IN_USE')
    expect(await h1.hosts()).to.have.length(3)
  })

  it('`cluster delete` on a control-plane follower: every host Ready, that host the single leader', async () => {
    const st = JSON.parse((await h2.cli('status', '--json')).stdout)
    expect(st).to.include({ id: ids.h2, cluster: 'edge-a', nodeRole: 'controlplane', role: 'leader', health: 'Healthy' })
    const r = await h2.cli('cluster', 'delete')
    expect(r.code, r.stderr).to.equal(0)
    expect(r.stdout).to.include('Cluster edge-a deleted')
    await waitForGroup([h1, h2, h3], all(), ids.h2)
    await waitForRows('every host Ready', row => row.status === 'Ready' && row.nodeRole === 'unknown')
    const after = JSON.parse((await h2.cli('status', '--json')).stdout)
    expect(after).to.include({ role: 'leader', nodeRole: 'unknown', cluster: null, health: 'Healthy', linked: true, leader: ids.h2 })
    // The deletion started a new term led by h2; every host reports the same leader, term and roster version.
    expect(after.term).to.be.greaterThan(st.term)
    const h1st = JSON.parse((await h1.cli('status', '--json')).stdout)
    expect(h1st).to.include({ role: 'follower', cluster: null, leader: ids.h2, term: after.term, rosterVersion: after.rosterVersion })
    expect((await h2.cli('status')).stdout).to.match(/^Role: +leader$/m)
    expectRefusal(await h2.cli('cluster', 'delete'), 'NO_CLUSTER')
  })

  it('`hosts --watch` redraws the table until Ctrl-C, then exits 0', async () => {
    const child = spawn(process.execPath, [CLI, 'hosts', '--watch', '--interval', '300', '--data-dir', h1.dataDir], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(child)
    let out = ''
    let err = ''
    child.stdout.on('data', (b: Buffer) => { out += b.toString() })
    child.stderr.on('data', (b: Buffer) => { err += b.toString() })
    const exited = new Promise<number | null>(resolve => { child.on('exit', code => { resolve(code) }) })
    await new Promise(resolve => setTimeout(resolve, 1500))
    child.kill('SIGINT')
    expect(await exited, err).to.equal(0)
    // A pipe is not a terminal: frames are appended, without escape codes.
    expect(out.match(/^Every 0\.3s: edgelink hosts /gm)?.length ?? 0, out).to.be.at.least(2)
    expect(out).to.not.include('\x1b[')
    expect(out).to.include(' g1 ').and.include(' g2 ').and.include(' g3 ')
  })

  it('`leader transfer` hands the leader role to another host', async () => {
    const r = await h2.cli('leader', 'transfer', tail('h1'))
    expect(r.code, r.stderr).to.equal(0)
    expect(r.stdout).to.include(`Leadership transferred to ${ids.h1}.`)
    await waitForGroup([h1, h2, h3], all(), ids.h1)
    expect(JSON.parse((await h1.cli('status', '--json')).stdout)).to.include({ role: 'leader' })
    expectRefusal(await h3.cli('leader', 'transfer', tail('h2')), 'NOT_LEADER')
    expectRefusal(await h1.cli('leader', 'transfer', 'NoSuchHostTail'), 'UNKNOWN_HOST')
    const bad = await h1.api('POST', '/v1/edgelink/leader/transfer', { body: JSON.stringify({ hostId: 42 }), headers: json })
    expect([bad.status, bad.body.code]).to.deep.equal([400, 'INVALID_ARGUMENT'])
  })
})

describe('agent CLI: the group commands without an agent', function () {
  this.timeout(20_000)
  const fleet = fleetHooks()

  it('exits 2 on usage errors and documents every command with examples', async () => {
    const usage = [
      ['settings'], ['settings', 'frob'], ['settings', 'set'], ['cluster'], ['cluster', 'create', '--name', 'x'],
      ['cluster', 'scale'], ['cluster', 'create', '--name', 'x', '--control-plane', 'a', '--variable', 'novalue'],
      ['leader'], ['leader', 'transfer'], ['hosts', '--watch', '--interval', '5'], ['status', 'extra']
    ]
    for (const args of usage) {
      const r = await cli(...args)
      expect(r.code, `edgelink ${args.join(' ')}: ${r.stderr}`).to.equal(2)
    }
    // Every command of the program, groups included, walked from the program itself.
    const all: string[][] = []
    const walk = (c: Command, path: string[]): void => {
      for (const sub of c.commands) {
        if (sub.name() === 'help') continue
        all.push([...path, sub.name()])
        walk(sub, [...path, sub.name()])
      }
    }
    walk(buildProgram(), [])
    expect(all.length).to.be.greaterThan(20)
    for (const args of all) {
      const help = await cli(...args, '--help')
      expect(help.code, args.join(' ')).to.equal(0)
      expect(help.stdout, args.join(' ')).to.include('Examples:')
    }
  })

  it('exits 1 with one line when no agent runs for the data dir', async () => {
    const dir = await fleet.dir()
    for (const args of [['settings', 'get'], ['settings', 'set', 'a=b'], ['cluster', 'show'], ['cluster', 'delete'], ['leader', 'transfer', 'x'], ['status'], ['hosts', '--watch']]) {
      const r = await cli(...args, '--data-dir', dir)
      expect([r.code, r.stderr], args.join(' ')).to.deep.equal([1, `edgelink: no agent is running for data dir ${dir} (start it with \`edgelink agent\`)\n`])
    }
  })
})
