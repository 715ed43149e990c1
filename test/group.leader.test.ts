import { expect } from 'chai'
import type { Host } from '../lib/index.ts'
import { rejection, Testbed, waitFor } from './helpers.ts'

/** Records every (term → leader) any host adopted, to check "one leader per term". */
function watchTerms (hosts: Host[]): Map<number, Set<string>> {
  const seen = new Map<number, Set<string>>()
  const note = (h: Host): void => {
    const r = h.rosterData()
    if (r == null) return
    if (!seen.has(r.term)) seen.set(r.term, new Set())
    seen.get(r.term)!.add(r.leader)
  }
  for (const h of hosts) { note(h); h.on('roster', () => { note(h) }) }
  return seen
}

function partition (hosts: Host[], side: Host[]): void {
  const a = new Set(side.map(h => h.id))
  for (const h of hosts) h.partitioned = (peer: string) => a.has(h.id) !== a.has(peer)
  for (const h of hosts) for (const p of hosts) if (h.partitioned!(p.id)) void h.libp2p.hangUp(p.peerId).catch(() => {})
}

function heal (hosts: Host[]): void { for (const h of hosts) h.partitioned = undefined }

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('leadership: hand-over and elections (real libp2p over loopback)', function () {
  this.timeout(60_000)
  const bed = new Testbed()
  afterEach(async () => { await bed.teardown() })

  it('hands leadership over explicitly; the old leader\'s tokens die', async () => {
    const [leader, f1, f2] = await bed.group(3)
    const terms = watchTerms([leader, f1, f2])
    const { token } = await leader.generateLinkToken()
    await leader.transferLeadership(f1.id)
    await waitFor(() => [leader, f1, f2].every(h => h.rosterData()?.leader === f1.id && h.rosterData()?.term === 2), 5_000, 'f1 leads term 2 everywhere')
    expect(leader.isLeader()).to.equal(false)
    expect((await rejection(async () => await leader.generateLinkToken())).code).to.equal('NOT_LEADER')
    const newcomer = await bed.host()
    expect((await rejection(async () => await newcomer.link(token))).code).to.be.oneOf(['NOT_LEADER', 'LEADER_REFUSED'])
    await newcomer.link((await f1.generateLinkToken()).token)
    await waitFor(() => [leader, f1, f2, newcomer].every(h => h.hosts().length === 4), 5_000, 'newcomer everywhere')
    expect([...terms.values()].every(s => s.size === 1)).to.equal(true)
    expect((await rejection(async () => await f2.transferLeadership(leader.id))).code).to.equal('NOT_LEADER')
  })

  it('elects a new leader when the leader dies; the returning leader steps down', async () => {
    const [leader, f1, f2] = await bed.group(3)
    const terms = watchTerms([leader, f1, f2])
    const addr = leader.multiaddrs[0].toString().split('/')
    const dataDir = leader.options.dataDir
    const { token } = await leader.generateLinkToken()
    await leader.stop()
    await waitFor(() => f1.rosterData()!.term > 1 && f1.rosterData()!.leader === f2.rosterData()!.leader && f1.rosterData()!.term === f2.rosterData()!.term, 15_000, 'a new leader')
    const next = f1.rosterData()!.leader
    expect([f1.id, f2.id]).to.include(next)
    // The dead leader's token no longer works, even once it is back.
    const back = await bed.host({ dataDir, listen: [`${addr[2]}:${addr[4]}`] })
    watchTerms([back])
    await waitFor(() => back.rosterData()!.leader === next, 10_000, 'old leader adopts the new term')
    expect(back.isLeader()).to.equal(false)
    const newcomer = await bed.host()
    expect((await rejection(async () => await newcomer.link(token))).code).to.be.oneOf(['NOT_LEADER', 'TOKEN_BURNED', 'LEADER_REFUSED'])
    expect(newcomer.isLinked()).to.equal(false)
    for (const [term, leaders] of terms) expect(leaders.size, `term ${term}`).to.equal(1)
  })

  it('documents of an earlier term reach hosts that missed them: a newcomer after an election gets the old leader\'s settings', async () => {
    const [leader, f1, f2] = await bed.group(3)
    await leader.updateSettings(['ntpServers=old-term.example'])
    await waitFor(() => [f1, f2].every(h => h.settings().ntpServers.includes('old-term.example')), 5_000, 'settings everywhere')
    await leader.stop()
    await waitFor(() => f1.rosterData()!.term > 1 && f1.rosterData()!.leader === f2.rosterData()!.leader, 15_000, 'a new leader')
    const next = [f1, f2].find(h => h.isLeader())!
    const newcomer = await bed.host()
    await newcomer.link((await next.generateLinkToken()).token)
    await waitFor(() => newcomer.settings().ntpServers.includes('old-term.example'), 10_000, 'the newcomer holds the settings written in term 1')
  })

  it('after a partition heals, what the cut-off old leader wrote in its old term loses to the new term everywhere', async () => {
    const hosts = await bed.group(5)
    const [leader, ...rest] = hosts
    partition(hosts, [leader, rest[0]])
    const major = rest.slice(1)
    await waitFor(() => major.some(h => h.isLeader()), 15_000, 'the majority elects')
    const next = major.find(h => h.isLeader())!
    await next.updateSettings(['values.side=majority'])
    // The old leader, cut off with one follower, still believes it leads term 1 and writes.
    await leader.updateSettings(['values.side=minority', 'values.extra=1']).catch(() => {})
    heal(hosts)
    await waitFor(() => hosts.every(h => h.settings().values.side === 'majority' && h.settings().values.extra == null), 20_000, 'every host holds the majority\'s settings')
    expect(hosts.filter(h => h.isLeader()).map(h => h.id)).to.deep.equal([next.id])
  })

  it('a minority never elects; after the heal everyone converges on one leader per term', async () => {
    const hosts = await bed.group(3)
    const [leader, f1, f2] = hosts
    const terms = watchTerms(hosts)
    // f2 alone is a minority: it must not elect anyone, however long it waits.
    partition(hosts, [f2])
    await sleep(4_500)
    expect(f2.rosterData()!.leader).to.equal(leader.id)
    expect(f2.rosterData()!.term).to.equal(1)
    expect(leader.isLeader()).to.equal(true)
    heal(hosts)
    await waitFor(() => hosts.every(h => h.hosts().every(r => r.health === 'Healthy')), 10_000, 'healed')
    // Now the leader alone is cut off: the majority (f1, f2) elects; the old leader cannot change the roster.
    partition(hosts, [leader])
    await waitFor(() => f1.rosterData()!.term > 1 && f1.rosterData()!.leader === f2.rosterData()!.leader, 15_000, 'majority elects')
    expect(leader.rosterData()!.term).to.equal(1)
    heal(hosts)
    await waitFor(() => hosts.every(h => h.rosterData()!.term === f1.rosterData()!.term && h.rosterData()!.leader === f1.rosterData()!.leader), 10_000, 'converged')
    expect(leader.isLeader()).to.equal(false)
    for (const [term, leaders] of terms) expect(leaders.size, `term ${term}`).to.equal(1)
  })

  it('no election while a cluster exists', async () => {
    const [leader, f1, f2] = await bed.group(3)
    await leader.createCluster({ name: 'edge', controlPlane: [leader.id, f1.id, f2.id] })
    await waitFor(() => f2.cluster() != null && f1.cluster() != null, 5_000, 'cluster everywhere')
    await leader.stop()
    await sleep(3_000)
    expect(f1.rosterData()!.term).to.equal(1)
    expect(f2.rosterData()!.term).to.equal(1)
    // Control-plane hosts act as leaders all the same.
    await f1.updateSettings(['values.still=managed'])
    await waitFor(() => f2.settings().values.still === 'managed', 5_000, 'settings from a cp host')
  })
})
