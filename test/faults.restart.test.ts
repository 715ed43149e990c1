/**
 * Fault: a follower killed with SIGKILL and restarted. Agents run as real processes in network
 * namespaces (test/testbed/agents.ts). The follower comes back with everything it held — roster,
 * settings, its content — read from its own disk (it restarts with its cable pulled, so nothing
 * can reach it from the group), then rejoins and receives what changed while it was dead.
 */
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { faultBedHooks, poll, viewOf, describeViews, waitConverged, type View } from './testbed/agents.ts'
import { sha256 } from './helpers.ts'

const MiB = 1024 * 1024

describe('faults: a follower killed with SIGKILL and restarted', function () {
  this.timeout(120_000)
  const beds = faultBedHooks()

  it('comes back with its roster, settings and content from disk, rejoins and gets what changed meanwhile', async () => {
    const fb = await beds.create({ hosts: 3 })
    await fb.startAll()
    await fb.formGroup(0)
    const [leader, , victim] = fb.agents
    const victimId = fb.ids[2]

    await leader.setSettings('ntpServers=ntp1.example,ntp2.example', 'values.round=1')
    const file = join(fb.dir, 'payload.bin')
    const data = randomBytes(3 * MiB + 12345)
    await writeFile(file, data)
    const added = await leader.call('POST', '/v1/edgelink/content', { path: file, kind: 'file' })
    const contentId: string = added.id
    await poll(async () => {
      const rows = await Promise.all(fb.agents.map(async a => await a.call('GET', '/v1/edgelink/content')))
      return rows.every(r => r.length === 1 && r[0].complete === true)
    }, 30_000, 'the content complete on every host')
    const before = await waitConverged(fb.agents, { members: fb.ids, leader: fb.ids[0], settings: { values: { round: '1' } } }, 20_000)

    await victim.kill('SIGKILL')
    // The others notice: the dead host turns Unreachable on both of them.
    let seen: View[] = []
    await poll(async () => {
      seen = await Promise.all([fb.agents[0], fb.agents[1]].map(async a => await viewOf(a, false)))
      return seen.every(v => v.health[victimId] === 'Unreachable')
    }, 15_000, 'the killed follower Unreachable on the others', () => describeViews(seen))

    // A change the dead host misses.
    await leader.setSettings('values.round=2', 'httpProxy=http://proxy.example:3128')

    // Restart cut off from everyone: what it shows comes from its own disk.
    await fb.bed.cut(2)
    await victim.start()
    const alone = await viewOf(victim)
    expect(alone.up, alone.error).to.equal(true)
    expect(alone.members, 'roster from disk').to.deep.equal(before[2].members)
    expect(alone.leaders, 'leader from disk').to.deep.equal([fb.ids[0]])
    expect(alone.settings, 'settings from disk').to.deep.equal(before[2].settings)
    const st = await victim.status()
    expect(st.id).to.equal(victimId)
    expect(st.linked).to.equal(true)
    const held = await victim.call('GET', `/v1/edgelink/content/${contentId}`)
    expect(held.complete, 'content from disk').to.equal(true)
    expect(held.haveChunks).to.equal(held.totalChunks)

    // Cable back: it rejoins and receives the change made while it was dead (anti-entropy).
    await fb.bed.heal(2)
    const after = await waitConverged(fb.agents, {
      members: fb.ids,
      leader: fb.ids[0],
      settings: { values: { round: '2' }, httpProxy: 'http://proxy.example:3128', ntpServers: ['ntp1.example', 'ntp2.example'] }
    }, 30_000)
    expect(after[2].members).to.deep.equal(before[0].members)

    // Its content is byte-identical, exported by the operator's CLI on that host.
    const out = join(fb.dir, 'payload.out')
    const ex = await victim.cli('content', 'export', contentId.slice(0, 12), out)
    expect(ex.code, ex.stderr).to.equal(0)
    expect(sha256(await readFile(out))).to.equal(sha256(data))
    // Nothing in its logs says it lost or rebuilt anything.
    expect(victim.logs.filter(l => l.msg === 'stored document unreadable; it will be synced again')).to.deep.equal([])
    expect(victim.logs.filter(l => l.msg === 'this host is no longer linked')).to.deep.equal([])
  })
})
