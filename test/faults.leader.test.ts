/**
 * Fault: the leader killed with SIGKILL, on real agent processes in network namespaces
 * (test/testbed/agents.ts). The survivors elect a new leader while they are a majority of the
 * roster, and only then; a token the dead leader issued no longer links anyone, while it is dead
 * and after it returns deposed; what a leader wrote before it died is not lost, neither for the
 * hosts that were up nor for one that was down or links only afterwards.
 */
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { expectRefusal } from './agent.procs.ts'
import { describeViews, faultBedHooks, leaderClaims, poll, sleep, splitTerms, viewOf, waitConverged, type NsAgent, type View } from './testbed/agents.ts'
import { sha256 } from './helpers.ts'


/** Waits until every agent of `live` shows one common leader other than the `not` ids, and returns it. */
async function electedAmong (live: NsAgent[], not: string[], ms: number): Promise<string> {
  let seen: View[] = []
  return await poll(async () => {
    seen = await Promise.all(live.map(async a => await viewOf(a, false)))
    const l = seen[0].leaders
    return l.length === 1 && !not.includes(l[0]) && seen.every(v => v.leaders.length === 1 && v.leaders[0] === l[0]) ? l[0] : undefined
  }, ms, 'the survivors to agree on a new leader', () => describeViews(seen))
}

const termsOf = (agents: NsAgent[]): string => JSON.stringify([...leaderClaims(agents)].map(([t, w]) => [t, [...w].sort()]))

describe('faults: the leader killed', function () {
  this.timeout(120_000)
  const beds = faultBedHooks()

  it('the survivors elect a new leader; a token of the dead leader links no one, while it is dead nor once it is back deposed', async () => {
    // Four members and a fifth host that is in no group.
    const fb = await beds.create({ hosts: 5 })
    await fb.startAll()
    await fb.formGroup(0, [0, 1, 2, 3])
    const a = fb.agents
    const ids = fb.ids
    const members = ids.slice(0, 4)
    await a[0].setSettings('values.first=h0', 'ntpServers=ntp.example')
    await waitConverged(a.slice(0, 4), { members, leader: ids[0], settings: { values: { first: 'h0' } } }, 15_000)
    const oldToken = await a[0].token()

    await a[0].kill('SIGKILL')
    const second = await electedAmong(a.slice(1, 4), [ids[0]], 20_000)
    const l2 = a[ids.indexOf(second)]

    // The dead leader's token: nothing answers at the address it carries.
    expectRefusal(await a[4].cli('link', oldToken), 'LEADER_UNREACHABLE')

    await l2.setSettings('values.second=new')
    // The old leader returns, adopts the newer term, steps down and gets the change it missed.
    await a[0].start()
    await waitConverged(a.slice(0, 4), { members, leader: second, settings: { values: { first: 'h0', second: 'new' }, ntpServers: ['ntp.example'] } }, 30_000)
    expect(a[0].logs.some(l => l.run === 1 && l.msg === 'stepping down: another host leads a newer term'), 'the old leader steps down').to.equal(true)

    // Back, but deposed: its token from before still links no one, with a clear error.
    const deposed = await a[4].cli('link', oldToken)
    expect(deposed.code, deposed.stderr).to.equal(1)
    expect(deposed.stderr.trim().split('\n'), deposed.stderr).to.have.length(1)
    expect(deposed.stderr).to.match(/^edgelink: .+ \((TOKEN_REVOKED|TOKEN_UNKNOWN|WRONG_LEADER|NOT_LEADER|LEADER_REFUSED)\)\n$/)
    expect((await a[4].status()).groupId, 'the refused host is in no group').to.equal(null)

    // The new leader's token works.
    const linked = await a[4].link(await l2.token())
    expect(linked.status, JSON.stringify(linked.body)).to.equal(200)
    await waitConverged(a, { members: ids, leader: second, settings: { values: { first: 'h0', second: 'new' } } }, 20_000)
    expect(splitTerms(a), 'terms with two leaders').to.deep.equal([])
    console.log(`      new leader ${l2.name}; the deposed leader's token: "${deposed.stderr.trim()}"; terms ${termsOf(a)}`)
  })

  it('two of five elect no one; three of five do', async () => {
    const fb = await beds.create({ hosts: 5 })
    await fb.startAll()
    await fb.formGroup(0)
    const a = fb.agents
    const ids = fb.ids
    await a[0].setSettings('values.first=h0')
    await waitConverged(a, { members: ids, leader: ids[0], settings: { values: { first: 'h0' } } }, 15_000)

    // The leader and two followers die at once: two of five remain.
    await Promise.all([a[0].kill('SIGKILL'), a[1].kill('SIGKILL'), a[2].kill('SIGKILL')])
    const before = termsOf(a)
    await sleep(6_000) // three times the longest election timeout of the test preset
    expect(termsOf(a), 'no leadership claimed without a majority').to.equal(before)
    for (const v of await Promise.all([a[3], a[4]].map(async x => await viewOf(x, false)))) {
      expect(v.leaders, describeViews([v])).to.deep.equal([ids[0]])
      expect(v.health[ids[0]], describeViews([v])).to.equal('Unreachable')
    }
    // Candidates asked, and were refused a majority.
    expect(a.slice(3).some(x => x.logs.some(l => l.msg === 'leader silent: asking for votes')), 'the survivors tried').to.equal(true)

    // One follower returns: three of five, a majority. They elect one of themselves.
    await a[1].start()
    const elected = await electedAmong([a[1], a[3], a[4]], [ids[0], ids[2]], 30_000)
    await Promise.all([a[0].start(), a[2].start()])
    await waitConverged(a, { members: ids, leader: elected, settings: { values: { first: 'h0' } } }, 30_000)
    expect(splitTerms(a), 'terms with two leaders').to.deep.equal([])
  })

  it('what the dead leader wrote reaches a host that was down meanwhile and one that links afterwards', async () => {
    // Five members, h4 down while h0 writes; h5 links only after h0 is gone.
    const fb = await beds.create({ hosts: 6 })
    await fb.startAll()
    await fb.formGroup(0, [0, 1, 2, 3, 4])
    const a = fb.agents
    const ids = fb.ids
    await a[4].kill('SIGKILL')
    await a[0].setSettings('values.written=before-death', 'ntpServers=ntp.example')
    const file = join(fb.dir, 'by-h0.bin')
    const data = randomBytes(1024 * 1024 + 4321)
    await writeFile(file, data)
    const contentId: string = (await a[0].call('POST', '/v1/edgelink/content', { path: file })).id
    await poll(async () => (await Promise.all(a.slice(1, 4).map(async x => (await x.call('GET', `/v1/edgelink/content/${contentId}`).catch(() => ({}))).complete === true))).every(Boolean),
      20_000, 'the content on every live follower')

    await a[0].kill('SIGKILL')
    const elected = await electedAmong(a.slice(1, 4), [ids[0]], 20_000)
    const leader = a[ids.indexOf(elected)]

    await a[4].start()
    const linked = await a[5].link(await leader.token())
    expect(linked.status, JSON.stringify(linked.body)).to.equal(200)
    const up = a.slice(1)
    await waitConverged(up, { members: ids, down: [ids[0]], leader: elected, settings: { values: { written: 'before-death' }, ntpServers: ['ntp.example'] } }, 30_000)
      .catch((err: Error) => { throw new Error(`the settings written by the dead leader did not reach every host: ${err.message}`) })
    for (const x of [a[4], a[5]]) {
      const c = await poll(async () => {
        const info = await x.call('GET', `/v1/edgelink/content/${contentId}`).catch(() => undefined)
        return info?.complete === true ? info : undefined
      }, 30_000, `the dead leader's content complete on ${x.name}`)
      expect(c.haveBytes).to.equal(data.length)
      const out = join(fb.dir, `by-h0.${x.name}`)
      const ex = await x.cli('content', 'export', contentId, out)
      expect(ex.code, ex.stderr).to.equal(0)
      expect(sha256(await readFile(out))).to.equal(sha256(data))
    }
  })
})
