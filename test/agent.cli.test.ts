/**
 * The agent and the CLI as an operator uses them: real agent processes on their own loopback
 * IPs, driven by separate `edgelink` processes. The `it`s of the group scenario run in order and
 * build on one another (link, refuse, restart, unlink, relink).
 */
import { strict as assert } from 'node:assert'
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { waitFor } from './helpers.ts'
import { AgentProc, cleanEnv, cli, expectRefusal, Fleet, fleetHooks, ROOT, run, waitForGroup } from './agent.procs.ts'

describe('agent CLI: a group of real agent processes', function () {
  this.timeout(30_000)
  const fleet = new Fleet()
  let leader: AgentProc
  let f1: AgentProc
  let f2: AgentProc
  let idle: AgentProc
  const ids: Record<string, string> = {}
  let usedToken = ''

  before(async function () {
    this.timeout(30_000)
    ;[leader, f1, f2, idle] = await Promise.all(['h1', 'h2', 'h3', 'h4'].map(async name => await fleet.agent({ name })))
    for (const a of [leader, f1, f2, idle]) ids[a.name] = await a.id()
  })

  after(async function () {
    this.timeout(20_000)
    await fleet.teardown()
  })

  it('links three hosts: `token` on the leader, `link` on the others', async () => {
    for (const f of [f1, f2]) {
      const t = await leader.cli('token')
      expect(t.code, t.stderr).to.equal(0)
      const token = t.stdout.trim()
      expect(t.stdout).to.equal(`${token}\n`) // only the token on stdout, for $(edgelink token)
      expect(t.stderr).to.match(/^valid for \d+s/)
      const l = await f.cli('link', token)
      expect(l.code, l.stderr).to.equal(0)
      expect(l.stdout).to.match(/^Linked to group\. \d hosts\.$/m)
      usedToken = token
    }
    await waitForGroup([leader, f1, f2], [ids.h1, ids.h2, ids.h3], ids.h1)
    const table = await leader.cli('hosts')
    expect(table.code).to.equal(0)
    for (const h of ['h1', 'h2', 'h3']) expect(table.stdout).to.include(` ${h} `)
    expect(table.stdout).to.include('leader').and.include('follower').and.include('Healthy')
  })

  it('`token --json` prints the token object and `link --json` the LinkStatus', async () => {
    const t = await leader.cli('token', '--json')
    expect(t.code).to.equal(0)
    const obj = JSON.parse(t.stdout)
    expect(obj).to.include.keys('token', 'interval', 'remainingTime', 'expiresAt', 'tokenId')
    expect(obj.interval).to.equal(120)
    const l = await f1.cli('link', obj.token, '--json')
    expectRefusal(l, 'ALREADY_MEMBER')
    expect(JSON.parse(l.stdout)).to.include({ status: 'Failed', errorCode: 'ALREADY_MEMBER', code: 'ALREADY_MEMBER' })
  })

  it('refuses through the CLI with exit 1 and the code on stderr, changing nothing', async () => {
    expectRefusal(await idle.cli('link', usedToken), 'TOKEN_USED')
    expectRefusal(await f2.cli('link', usedToken), 'ALREADY_MEMBER')
    expectRefusal(await idle.cli('link', 'garbage'), 'TOKEN_CORRUPT')
    expectRefusal(await f1.cli('unlink', ids.h3), 'NOT_LEADER')
    expectRefusal(await leader.cli('unlink', ids.h1), 'LEADER_HAS_FOLLOWERS')
    expect(await idle.hosts()).to.deep.equal([])
    await waitForGroup([leader, f1, f2], [ids.h1, ids.h2, ids.h3], ids.h1)
  })

  it('a follower stopped with SIGTERM rejoins on restart without a token', async () => {
    expect(await f2.stop()).to.equal(0)
    await assert.rejects(stat(join(f2.dataDir, 'api.json')), { code: 'ENOENT' })
    // Unhealthy or Unreachable, depending on how the library tells a closed connection.
    await waitFor(async () => (await leader.hosts()).find(r => r.id === ids.h3)?.health !== 'Healthy', 10_000, 'the leader to see h3 down')
    await f2.start() // same data dir, same mesh port
    await waitForGroup([leader, f1, f2], [ids.h1, ids.h2, ids.h3], ids.h1)
  })

  it('`unlink` on the leader removes a follower everywhere; it links again with a new token', async () => {
    const u = await leader.cli('unlink', ids.h3.slice(-10)) // the tail the table shows is enough
    expect(u.code, u.stderr).to.equal(0)
    expect(u.stdout).to.include(ids.h3)
    await waitForGroup([leader, f1], [ids.h1, ids.h2], ids.h1)
    await waitFor(async () => (await f2.hosts()).length === 0, 10_000, 'h3 to know it was unlinked')
    expect((await f2.api('GET', '/v1/edgelink/status')).body).to.include({ linked: false, role: null })

    const t = await leader.cli('token')
    expect(t.code).to.equal(0)
    const l = await f2.cli('link', t.stdout.trim())
    expect(l.code, l.stderr).to.equal(0)
    await waitForGroup([leader, f1, f2], [ids.h1, ids.h2, ids.h3], ids.h1)
  })

  it('`token stop` stops generation on the leader', async () => {
    const s = await leader.cli('token', 'stop')
    expect(s.code, s.stderr).to.equal(0)
    expect((await leader.api('GET', '/v1/edgelink/status')).body).to.include({ tokenGeneration: false, role: 'leader', linked: true })
  })

  it('a second agent on a data dir in use fails with one clear line', async () => {
    const before = await readFile(join(leader.dataDir, 'api.json'), 'utf8')
    const second = new AgentProc({ name: 'dup', ip: leader.ip, port: 0, dataDir: leader.dataDir })
    const r = await run(process.execPath, [join(ROOT, 'dist/agent/cli.js'), ...second.args], cleanEnv(), 20_000)
    expectRefusal(r, 'STORE_ERROR')
    expect(r.stderr).to.include(`data dir ${leader.dataDir} is in use by another process`)
    expect(await readFile(join(leader.dataDir, 'api.json'), 'utf8')).to.equal(before)
    expect((await leader.hosts()).length).to.equal(3)
  })

  it('api.json is 0600 on every host; no log holds a token or the API secret', async () => {
    for (const a of [leader, f1, f2, idle]) {
      expect((await stat(join(a.dataDir, 'api.json'))).mode & 0o777).to.equal(0o600)
      expect(a.stderr).to.include('edgelink agent running.')
      expect(a.stderr).to.not.include(usedToken)
      expect(a.stderr).to.not.include((await a.apiFile()).token)
    }
  })
})

describe('agent CLI: usage errors, no agent, the launcher', function () {
  this.timeout(20_000)
  const fleet = fleetHooks()

  it('exits 2 on usage errors', async () => {
    for (const args of [['bogus'], ['link'], ['token', 'frob'], ['hosts', '--bogus'], ['agent', '--api', 'nonsense'], ['agent', '--advertise', 'not-an-ip'], []]) {
      const r = await cli(...args)
      expect(r.code, `edgelink ${args.join(' ')}: ${r.stderr}`).to.equal(2)
    }
    const help = await cli('link', '--help')
    expect(help.code).to.equal(0)
    expect(help.stdout).to.include('Examples:')
  })

  it('exits 1 with one line when no agent runs for the data dir', async () => {
    const dir = await fleet.dir()
    const expected = `edgelink: no agent is running for data dir ${dir} (start it with \`edgelink agent\`)\n`
    for (const args of [['hosts'], ['token'], ['link', 'EL1x'], ['unlink', 'x']]) {
      const r = await cli(...args, '--data-dir', dir)
      expect(r.code).to.equal(1)
      expect(r.stderr).to.equal(expected)
    }
    // A stale api.json (agent killed with SIGKILL) reads the same.
    await writeFile(join(dir, 'api.json'), JSON.stringify({ url: 'http://127.0.0.1:1', token: 'x', pid: 1 }))
    const r = await cli('hosts', '--data-dir', dir)
    expect([r.code, r.stderr]).to.deep.equal([1, expected])
  })

  it('reads every agent setting from EDGELINK_* variables', async () => {
    const a = await fleet.agent({ name: 'env-host', viaEnv: true })
    const st = (await a.api('GET', '/v1/edgelink/status')).body
    expect(st.addrs).to.deep.equal([`/ip4/${a.ip}/tcp/${a.port}/p2p/${st.id}`])
    expect(a.stderr).to.include('edgelink agent running.').and.not.include('"level":30') // EDGELINK_LOG_LEVEL=warn
    expect((await a.cli('token')).code).to.equal(0)
    expect((await a.hosts())[0].config.name).to.equal('env-host')
  })

  it('the CLI reads its data dir from EDGELINK_DATA_DIR, else XDG_STATE_HOME', async () => {
    const dir = await fleet.dir()
    const r = await run(process.execPath, [join(ROOT, 'dist/agent/cli.js'), 'hosts'], cleanEnv({ EDGELINK_DATA_DIR: dir }))
    expect(r.stderr).to.include(`for data dir ${dir} `)
    const x = await run(process.execPath, [join(ROOT, 'dist/agent/cli.js'), 'hosts'], cleanEnv({ XDG_STATE_HOME: dir }))
    expect(x.stderr).to.include(`for data dir ${join(dir, 'edgelink')} `)
  })

  it('bin/edgelink finds Node >= 22 on its own, also through an npm-style symlink', async () => {
    const bin = join(ROOT, 'bin/edgelink')
    expect((await stat(bin)).mode & 0o111).to.not.equal(0)
    const direct = await run(bin, ['--help'])
    expect(direct.code, direct.stderr).to.equal(0)
    expect(direct.stdout).to.include('Usage: edgelink')
    const linkDir = join(await fleet.dir(), '.bin')
    await mkdir(linkDir)
    await symlink(bin, join(linkDir, 'edgelink'))
    const linked = await run(join(linkDir, 'edgelink'), ['hosts', '--help'])
    expect(linked.code, linked.stderr).to.equal(0)
    const bad = await run(bin, ['--help'], cleanEnv({ EDGELINK_NODE: '/nonexistent/node' }))
    expect(bad.code).to.equal(1)
    expect(bad.stderr).to.include('EDGELINK_NODE')
  })
})
