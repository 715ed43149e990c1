/**
 * Faults of the network, on real agent processes in network namespaces (test/testbed/agents.ts):
 * a host's cable pulled and plugged back, and the group split in two and healed. Each checks
 * recovery (Unreachable, then Healthy again; one leader) and that nothing is lost (every change
 * made meanwhile reaches every host, by anti-entropy where gossip could not carry it).
 */
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { describeViews, faultBedHooks, leaderClaims, poll, Recorder, splitTerms, viewOf, waitConverged, type View } from './testbed/agents.ts'
import { sha256 } from './helpers.ts'


describe('faults: network', function () {
  this.timeout(150_000)
  const beds = faultBedHooks()

  it('a cut link: the host goes Unreachable, comes back Healthy and receives every change made meanwhile', async () => {
    const fb = await beds.create({ hosts: 4 })
    await fb.startAll()
    await fb.formGroup(0)
    const [leader] = fb.agents
    const cutId = fb.ids[3]
    await leader.setSettings('values.before=1')
    await waitConverged(fb.agents, { members: fb.ids, leader: fb.ids[0], settings: { values: { before: '1' } } }, 15_000)

    await fb.bed.cut(3)
    let seen: View[] = []
    await poll(async () => {
      seen = await Promise.all(fb.agents.slice(0, 3).map(async a => await viewOf(a, false)))
      return seen.every(v => v.health[cutId] === 'Unreachable' && Object.entries(v.health).every(([id, h]) => id === cutId || h === 'Healthy'))
    }, 15_000, 'the cut host Unreachable on every other host, the rest Healthy', () => describeViews(seen))
    // On its side of the cable, everyone else is gone.
    const lonely = await viewOf(fb.agents[3], false)
    await poll(async () => {
      const v = await viewOf(fb.agents[3], false)
      return Object.entries(v.health).every(([id, h]) => id === cutId ? h === 'Healthy' : h === 'Unreachable')
    }, 15_000, 'the others Unreachable on the cut host', () => describeViews([lonely]))

    // Changes while it is cut off: gossip cannot reach it, each one touches a key of its own.
    const values: Record<string, string> = { before: '1' }
    for (let k = 1; k <= 5; k++) {
      await leader.setSettings(`values.k${k}=v${k}`)
      values[`k${k}`] = `v${k}`
    }
    await leader.setSettings('noProxy=.internal,10.0.0.0/8')
    const file = join(fb.dir, 'during-cut.bin')
    const data = randomBytes(1536 * 1024)
    await writeFile(file, data)
    const contentId: string = (await leader.call('POST', '/v1/edgelink/content', { path: file })).id
    const cutView = await viewOf(fb.agents[3])
    expect(cutView.settings?.values, 'nothing reaches the cut host').to.deep.equal({ before: '1' })

    await fb.bed.heal(3)
    await waitConverged(fb.agents, { members: fb.ids, leader: fb.ids[0], settings: { values, noProxy: ['.internal', '10.0.0.0/8'] } }, 30_000)
    const got = await poll(async () => {
      const c = await fb.agents[3].call('GET', `/v1/edgelink/content/${contentId}`).catch(() => undefined)
      return c?.complete === true ? c : undefined
    }, 30_000, 'the content added during the cut, complete on the healed host')
    expect(got.haveBytes).to.equal(data.length)
    const out = join(fb.dir, 'during-cut.out')
    const ex = await fb.agents[3].cli('content', 'export', contentId, out)
    expect(ex.code, ex.stderr).to.equal(0)
    expect(sha256(await readFile(out))).to.equal(sha256(data))
    // A follower that lost its cable did not depose anyone.
    expect(splitTerms(fb.agents)).to.deep.equal([])
    expect([...leaderClaims(fb.agents).values()].flatMap(s => [...s])).to.deep.equal(['h0'])
  })

  it('a partition: only the majority elects, never two leaders in one term, and all converge after the heal', async () => {
    const fb = await beds.create({ hosts: 5 })
    await fb.startAll()
    await fb.formGroup(0)
    const ids = fb.ids
    await fb.agents[0].setSettings('values.phase=formed')
    await waitConverged(fb.agents, { members: ids, leader: ids[0], settings: { values: { phase: 'formed' } } }, 15_000)
    const rec = new Recorder(fb.agents, 400)
    try {
      // The leader and one follower on one side, three hosts on the other.
      const claimsBefore = leaderClaims(fb.agents)
      const splitAt = Date.now()
      await fb.bed.partition([0, 1], [2, 3, 4])
      const major = fb.agents.slice(2)
      let seen: View[] = []
      const newLeader = await poll(async () => {
        seen = await Promise.all(major.map(async a => await viewOf(a, false)))
        const l = seen[0].leaders
        const agreed = l.length === 1 && l[0] !== ids[0] && seen.every(v => v.leaders.length === 1 && v.leaders[0] === l[0])
        const reachable = seen.every(v => [0, 1].every(i => v.health[ids[i]] === 'Unreachable'))
        return agreed && reachable ? l[0] : undefined
      }, 30_000, 'the majority side to elect one leader', () => describeViews(seen))
      expect(ids.slice(2)).to.include(newLeader)
      const newAgent = fb.agents[ids.indexOf(newLeader)]

      // The majority's leader changes settings; the minority side misses it.
      await newAgent.setSettings('values.phase=majority', 'registryMirror=https://mirror.example')

      // The minority side cannot elect anyone: after several election timeouts it still knows only h0.
      await new Promise(resolve => setTimeout(resolve, 4_000))
      const minor = await Promise.all(fb.agents.slice(0, 2).map(async a => await viewOf(a, false)))
      for (const v of minor) expect(v.leaders, describeViews(minor)).to.deep.equal([ids[0]])
      const claimsDuring = leaderClaims(fb.agents)
      for (const [term, who] of claimsDuring) {
        if (claimsBefore.has(term)) continue
        expect([...who].filter(n => n === 'h0' || n === 'h1'), `minority claimed term ${term}`).to.deep.equal([])
      }

      await fb.bed.healAll()
      const healedAt = Date.now()
      await waitConverged(fb.agents, { members: ids, leader: newLeader, settings: { values: { phase: 'majority' }, registryMirror: 'https://mirror.example' } }, 40_000)
      const views = await rec.stop()
      expect(splitTerms(fb.agents), 'terms with two leaders').to.deep.equal([])
      // Over the whole run, every host saw at most one leader at a time, and after the split only
      // the old leader (until told otherwise) or the majority's.
      for (const v of views.filter(x => x.up)) {
        expect(v.leaders.length, describeViews([v])).to.be.at.most(1)
        if (v.at > splitAt) expect([ids[0], newLeader], describeViews([v])).to.include.members(v.leaders)
      }
      console.log(`      partition: new leader ${fb.agents[ids.indexOf(newLeader)].name}; converged ${Date.now() - healedAt} ms after the heal; terms ${JSON.stringify([...leaderClaims(fb.agents)].map(([t, w]) => [t, [...w]]))}`)
    } finally {
      await rec.stop()
    }
  })

  it('a partition: what the cut-off old leader still wrote is dropped after the heal, everywhere', async () => {
    const fb = await beds.create({ hosts: 3 })
    await fb.startAll()
    await fb.formGroup(0)
    const ids = fb.ids
    await fb.agents[0].setSettings('values.phase=formed')
    await waitConverged(fb.agents, { members: ids, leader: ids[0], settings: { values: { phase: 'formed' } } }, 15_000)

    // The leader alone on one side: it still believes it leads and accepts a write.
    await fb.bed.partition([0], [1, 2])
    const newLeader = await poll(async () => {
      const vs = await Promise.all(fb.agents.slice(1).map(async a => await viewOf(a, false)))
      const l = vs[0].leaders
      return l.length === 1 && l[0] !== ids[0] && vs.every(v => v.leaders[0] === l[0] && v.leaders.length === 1) ? l[0] : undefined
    }, 30_000, 'the majority side to elect one leader')
    const stale = await fb.agents[0].api('PATCH', '/v1/edgelink/settings', { body: JSON.stringify({ set: ['values.phase=minority', 'values.stale=1'] }), headers: { 'content-type': 'application/json' } })
    await fb.agents[ids.indexOf(newLeader)].setSettings('values.phase=majority')

    await fb.bed.healAll()
    // The deposed leader adopts the newer term; its write of the old term must not survive anywhere.
    const final = await waitConverged(fb.agents, { members: ids, leader: newLeader, settings: { values: { phase: 'majority' } } }, 30_000)
    expect(final.map(v => v.settings?.values), `the deposed leader's write was answered ${stale.status}`).to.deep.equal(final.map(() => ({ phase: 'majority' })))
    expect(splitTerms(fb.agents), 'terms with two leaders').to.deep.equal([])
  })
})
