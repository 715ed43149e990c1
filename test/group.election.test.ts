import { expect } from 'chai'
import fc from 'fast-check'
import { isEdgelinkError } from '../lib/errors.ts'
import {
  ElectionCore, quorum, ELECTION_TIMEOUT_MAX, ELECTION_TIMEOUT_MIN,
  type ElectionOptions, type ElectionOutput, type ElectionState, type RosterView, type Transfer, type VoteReply, type VoteRequest
} from '../lib/group/election.ts'
import { heartbeatStretch } from '../lib/gossip/status.ts'
import { rng } from './helpers.ts'

const [A, B, C, D, E] = ['a', 'b', 'c', 'd', 'e']
const MIN = ELECTION_TIMEOUT_MIN

function view (o: Partial<RosterView> = {}): RosterView {
  return { term: 1, version: 1, leader: A, members: [A, B, C], clusterExists: false, ...o }
}

/** random() = 0 makes every election timeout exactly electionTimeoutMin. */
function core (self: string, roster = view(), persisted?: ElectionState, now = 0, o: Partial<ElectionOptions> = {}): ElectionCore {
  return new ElectionCore({ self, random: () => 0, ...o }, persisted, roster, now)
}

function only<T extends ElectionOutput['type']> (outs: ElectionOutput[], type: T): Extract<ElectionOutput, { type: T }> {
  const found = outs.filter(o => o.type === type)
  expect(found, `one ${type} in ${JSON.stringify(outs)}`).to.have.length(1)
  return found[0] as Extract<ElectionOutput, { type: T }>
}

function codeOf (fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    if (isEdgelinkError(err)) return err.code
    throw err
  }
  return 'OK'
}

/** Starts `host`'s election at the first moment its timer allows; returns the vote request. */
function campaign (host: ElectionCore, now: number): VoteRequest {
  const outs = host.tick(now)
  expect(outs[0].type, 'persist before asking for votes').to.equal('persist')
  return only(outs, 'requestVotes').request
}

describe('group election: quorum and timers', () => {
  it('a quorum is a strict majority of the roster', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(quorum)).to.deep.equal([1, 2, 2, 3, 3, 4, 4])
    // Two disjoint sets of quorum(n) members would need more than n members.
    for (let n = 1; n <= 64; n++) expect(2 * quorum(n)).to.be.greaterThan(n)
  })

  it('a follower elects itself after the leader is silent for the timeout, on the injected clock', () => {
    const b = core(B)
    const c = core(C)
    expect(b.role).to.equal('follower')
    expect(b.nextDeadline()).to.equal(MIN)
    expect(b.tick(MIN - 1)).to.deep.equal([])
    const outs = b.tick(MIN)
    expect(outs[0]).to.deep.equal({ type: 'persist', state: { term: 2, votedFor: { term: 2, id: B } } })
    const ask = only(outs, 'requestVotes')
    expect(ask.request).to.deep.equal({ term: 2, candidate: B, rosterTerm: 1, rosterVersion: 1 })
    expect(ask.to).to.have.members([A, C])
    expect(b.role).to.equal('candidate')
    expect(b.leader).to.equal(undefined)

    const { reply, outputs } = c.handleVoteRequest(ask.request, MIN)
    expect(reply).to.deep.equal({ term: 2, voter: C, granted: true })
    expect(outputs).to.deep.equal([{ type: 'persist', state: { term: 2, votedFor: { term: 2, id: B } } }])

    expect(b.handleVoteReply(reply, MIN + 5)).to.deep.equal([{ type: 'elected', term: 2, voters: [B, C] }])
    expect(b.role).to.equal('leader')
    expect(b.leader).to.equal(B)
    expect(b.nextDeadline()).to.equal(undefined)
    // The wiring signs and hands back the new roster; the leader keeps leading and never campaigns.
    expect(b.observeRoster(view({ term: 2, version: 2, leader: B }), MIN + 6)).to.deep.equal([])
    expect(b.role).to.equal('leader')
    expect(b.tick(1e9)).to.deep.equal([])
    // A late duplicate reply changes nothing.
    expect(b.handleVoteReply(reply, MIN + 7)).to.deep.equal([])
  })

  it('large groups stretch both timeouts as they stretch the heartbeat: no election between two heartbeats of a live leader', () => {
    const fifty = view({ members: [A, B, C, ...Array.from({ length: 47 }, (_, i) => `m${i}`)] })
    const period = Math.round(1_000 * heartbeatStretch(50)) // 3125 ms: 50 members, 16 heartbeats per second each
    expect(period).to.be.greaterThan(MIN)
    // The shortest timeout (random() = 0) and a heartbeat every period, each one a little late.
    const live = (o: Partial<ElectionOptions>): number | undefined => {
      const b = core(B, fifty, undefined, 0, o)
      for (let t = 0; t <= 600_000; t += 10) {
        if (t % period === 0) b.heardFromLeader(A, t + 40)
        if (b.tick(t).length > 0) return t
      }
      return undefined
    }
    expect(live({ stretch: heartbeatStretch }), 'campaigned at').to.equal(undefined)
    // Unstretched, the same follower campaigns before the leader's second heartbeat.
    expect(live({})).to.equal(MIN + 40)
    // Voters keep the leader for as long: a candidate 4 s after the last heartbeat is refused.
    const c = core(C, fifty, undefined, 0, { stretch: heartbeatStretch })
    c.heardFromLeader(A, 1000)
    const ask: VoteRequest = { term: 2, candidate: B, rosterTerm: 1, rosterVersion: 1 }
    expect(c.handleVoteRequest(ask, 1000 + 4_000).reply.reason).to.equal('leader-alive')
    expect(c.handleVoteRequest(ask, 1000 + Math.ceil(MIN * heartbeatStretch(50))).reply.granted).to.equal(true)
  })

  it('hearing from the leader postpones the election; anyone else does not count', () => {
    const b = core(B)
    expect(b.heardFromLeader(C, 2000)).to.deep.equal([])
    expect(b.nextDeadline()).to.equal(MIN)
    b.heardFromLeader(A, 2000)
    expect(b.nextDeadline()).to.equal(2000 + MIN)
    expect(b.tick(MIN + 1999)).to.deep.equal([])
    expect(campaign(b, MIN + 2000).term).to.equal(2)
  })

  it('a stall of the follower\'s own loop moves its timer on by the stall, at most one timeout from now', () => {
    const b = core(B)
    expect(b.nextDeadline()).to.equal(MIN)
    b.stalled(2500, MIN + 2500) // found out 2.5 s late: the silence was its own
    expect(b.nextDeadline()).to.equal(MIN + 2500)
    expect(b.tick(MIN + 2499)).to.deep.equal([])
    b.stalled(60_000, MIN + 3000) // a huge stall: one timeout from now, not a minute
    expect(b.nextDeadline()).to.equal(MIN + 3000 + MIN)
    expect(campaign(b, 2 * MIN + 3000).term).to.equal(2)
    // A candidate's or leader's timer is not moved.
    b.stalled(10_000, 2 * MIN + 3100)
    expect(b.nextDeadline()).to.equal(2 * MIN + 3000 + MIN)
  })

  it('draws each timeout uniformly in [min, max] with the injected random()', () => {
    const draws = [0, 0.999999, 0.5]
    const b = core(B, view(), undefined, 0, { random: () => draws.shift()! })
    expect(b.nextDeadline()).to.equal(ELECTION_TIMEOUT_MIN)
    campaign(b, ELECTION_TIMEOUT_MIN)
    expect(b.nextDeadline()).to.equal(ELECTION_TIMEOUT_MIN + ELECTION_TIMEOUT_MAX)
    campaign(b, ELECTION_TIMEOUT_MIN + ELECTION_TIMEOUT_MAX)
    expect(b.nextDeadline()).to.equal(ELECTION_TIMEOUT_MIN + ELECTION_TIMEOUT_MAX + 4500)
    expect(() => core(B, view(), undefined, 0, { electionTimeoutMin: 500, electionTimeoutMax: 100 })).to.throw().with.property('code', 'INVALID_ARGUMENT')
  })

  it('an attempt without a majority times out and retries in a higher term', () => {
    const b = core(B)
    expect(campaign(b, MIN).term).to.equal(2)
    expect(b.tick(2 * MIN - 1)).to.deep.equal([])
    const again = b.tick(2 * MIN)
    expect(again[0]).to.deep.equal({ type: 'persist', state: { term: 3, votedFor: { term: 3, id: B } } })
    expect(only(again, 'requestVotes').request.term).to.equal(3)
    // A grant for the abandoned term no longer counts.
    expect(b.handleVoteReply({ term: 2, voter: C, granted: true }, 2 * MIN + 1)).to.deep.equal([])
    expect(b.role).to.equal('candidate')
  })

  it('no election and no vote while a cluster exists; the timer restarts when it goes', () => {
    const b = core(B, view({ clusterExists: true }))
    expect(b.nextDeadline()).to.equal(undefined)
    expect(b.tick(1e9)).to.deep.equal([])
    const c = core(C, view({ clusterExists: true }))
    const res = c.handleVoteRequest({ term: 2, candidate: B, rosterTerm: 1, rosterVersion: 1 }, 1e9)
    expect(res.reply).to.deep.equal({ term: 1, voter: C, granted: false, reason: 'cluster' })
    expect(res.outputs).to.deep.equal([])
    expect(b.observeRoster(view(), 1e9)).to.deep.equal([])
    expect(b.nextDeadline()).to.equal(1e9 + MIN)
  })

  it('a 1-member group never elects; its only member leads', () => {
    const a = core(A, view({ members: [A] }))
    expect(a.role).to.equal('leader')
    expect(a.nextDeadline()).to.equal(undefined)
    expect(a.tick(1e12)).to.deep.equal([])
    // A lone follower of a departed leader has nobody to reach a majority with either.
    const b = core(B, view({ members: [B] }))
    expect(b.nextDeadline()).to.equal(undefined)
    expect(b.tick(1e12)).to.deep.equal([])
  })

  it('a 2-member group needs both votes, so a live leader cannot be deposed', () => {
    const two = view({ members: [A, B] })
    const a = core(A, two)
    const b = core(B, two)
    const req = campaign(b, MIN)
    expect(b.role).to.equal('candidate')
    const res = a.handleVoteRequest(req, 1e6)
    expect(res.reply).to.deep.equal({ term: 1, voter: A, granted: false, reason: 'leader-alive' })
    expect(a.role).to.equal('leader')
    expect(b.handleVoteReply(res.reply, 1e6)).to.deep.equal([])
    expect(b.role).to.equal('candidate')

    // The old leader restarted past its roster's term (it had voted in term 2): it follows, and votes.
    const a2 = core(A, two, { term: 2, votedFor: { term: 2, id: A } }, 0)
    expect(a2.role).to.equal('follower')
    const b2 = core(B, two)
    b2.tick(MIN)
    const req3 = campaign(b2, 2 * MIN)
    expect(req3.term).to.equal(3)
    const granted = a2.handleVoteRequest(req3, 2 * MIN)
    expect(granted.reply.granted).to.equal(true)
    expect(b2.handleVoteReply(granted.reply, 2 * MIN)).to.deep.equal([{ type: 'elected', term: 3, voters: [B, A] }])
  })

  it('a candidate needs a strict majority: 2 of 5 never wins, 3 of 5 does', () => {
    const five = view({ members: [A, B, C, D, E] })
    const b = core(B, five)
    const req = campaign(b, MIN)
    const c = core(C, five)
    expect(b.handleVoteReply(c.handleVoteRequest(req, MIN).reply, MIN)).to.deep.equal([])
    expect(b.role).to.equal('candidate')
    const d = core(D, five)
    expect(only(b.handleVoteReply(d.handleVoteRequest(req, MIN).reply, MIN), 'elected').voters).to.deep.equal([B, C, D])
  })

  it('votes from non-members and refusals are not counted; a non-member candidate is refused', () => {
    const b = core(B)
    campaign(b, MIN)
    expect(b.handleVoteReply({ term: 2, voter: 'x', granted: true }, MIN)).to.deep.equal([])
    expect(b.handleVoteReply({ term: 2, voter: B, granted: true }, MIN)).to.deep.equal([])
    expect(b.handleVoteReply({ term: 2, voter: C, granted: false, reason: 'stale-roster' }, MIN)).to.deep.equal([])
    expect(b.role).to.equal('candidate')
    const c = core(C)
    const res = c.handleVoteRequest({ term: 9, candidate: 'x', rosterTerm: 9, rosterVersion: 9 }, 1e6)
    expect(res.reply.reason).to.equal('not-member')
    expect(res.outputs).to.deep.equal([])
    expect(c.term).to.equal(1)
  })
})

describe('group election: voting rules', () => {
  const five = view({ members: [A, B, C, D, E] })
  const req = (candidate: string, term: number, rosterTerm = 1, rosterVersion = 1): VoteRequest => ({ term, candidate, rosterTerm, rosterVersion })

  it('grants at most one vote per term, repeats it to the same candidate, and persists it before the reply', () => {
    const c = core(C, five)
    const first = c.handleVoteRequest(req(B, 2), MIN)
    expect(first.reply.granted).to.equal(true)
    expect(first.outputs).to.deep.equal([{ type: 'persist', state: { term: 2, votedFor: { term: 2, id: B } } }])
    const other = c.handleVoteRequest(req(D, 2), MIN + 1)
    expect(other.reply).to.deep.equal({ term: 2, voter: C, granted: false, reason: 'already-voted' })
    expect(other.outputs).to.deep.equal([])
    // A retransmitted request gets the same answer without a second write.
    expect(c.handleVoteRequest(req(B, 2), MIN + 2)).to.deep.equal({ reply: { term: 2, voter: C, granted: true }, outputs: [] })
    // A new term frees the vote.
    const next = c.handleVoteRequest(req(D, 3), MIN + 3)
    expect(next.reply.granted).to.equal(true)
    expect(next.outputs[0]).to.deep.equal({ type: 'persist', state: { term: 3, votedFor: { term: 3, id: D } } })
    // An older term is refused and reports the newer one.
    expect(c.handleVoteRequest(req(E, 2), MIN + 4).reply).to.deep.equal({ term: 3, voter: C, granted: false, reason: 'stale-term' })
  })

  it('a restart that reloads the persisted state keeps the vote', () => {
    const c = core(C, five)
    const granted = c.handleVoteRequest(req(B, 2), MIN)
    const stored = only(granted.outputs, 'persist').state
    const c2 = core(C, five, stored, MIN + 10)
    expect(c2.term).to.equal(2)
    expect(c2.handleVoteRequest(req(D, 2), 2 * MIN + 10).reply.reason).to.equal('already-voted')
    expect(c2.handleVoteRequest(req(B, 2), 2 * MIN + 10).reply.granted).to.equal(true)
    // A vote for an older term than the roster's is void.
    const c3 = core(C, view({ members: [A, B, C, D, E], term: 4, leader: A }), stored, 0)
    expect(c3.persistent).to.deep.equal({ term: 4 })
  })

  it('refuses a candidate whose roster is older, comparing term before version, but adopts its term', () => {
    const newer = view({ members: [A, B, C, D, E], version: 5 })
    const c = core(C, newer)
    const stale = c.handleVoteRequest(req(B, 2, 1, 4), MIN)
    expect(stale.reply).to.deep.equal({ term: 2, voter: C, granted: false, reason: 'stale-roster' })
    expect(stale.outputs).to.deep.equal([{ type: 'persist', state: { term: 2 } }])
    // A roster from a later term wins whatever its version.
    const d = core(D, newer)
    expect(d.handleVoteRequest(req(B, 3, 2, 1), MIN).reply.granted).to.equal(true)
    expect(d.handleVoteRequest(req(E, 4, 1, 5), MIN).reply.granted).to.equal(true)
  })

  it('leader stickiness: a voter that heard from the leader within the minimum timeout refuses and keeps its term', () => {
    const c = core(C, five)
    c.heardFromLeader(A, 1000)
    const early = c.handleVoteRequest(req(B, 7), 1000 + MIN - 1)
    expect(early.reply).to.deep.equal({ term: 1, voter: C, granted: false, reason: 'leader-alive' })
    expect(early.outputs).to.deep.equal([])
    expect(c.term).to.equal(1)
    expect(c.handleVoteRequest(req(B, 7), 1000 + MIN).reply.granted).to.equal(true)
    // A freshly (re)started voter counts its start as contact.
    expect(core(D, five, undefined, 500).handleVoteRequest(req(B, 2), 500 + MIN - 1).reply.reason).to.equal('leader-alive')
  })

  it('the leader refuses every vote and keeps its term, however long the silence', () => {
    const a = core(A, five)
    const res = a.handleVoteRequest(req(B, 50, 1, 1), 1e9)
    expect(res.reply).to.deep.equal({ term: 1, voter: A, granted: false, reason: 'leader-alive' })
    expect(res.outputs).to.deep.equal([])
    expect(a.role).to.equal('leader')
  })
})

describe('group election: stepping down', () => {
  it('a candidate that sees a higher term in a reply steps down and persists the term', () => {
    const b = core(B)
    campaign(b, MIN)
    expect(b.handleVoteReply({ term: 5, voter: C, granted: false, reason: 'stale-roster' }, MIN + 1)).to.deep.equal([
      { type: 'persist', state: { term: 5 } },
      { type: 'steppedDown', term: 5 }
    ])
    expect(b.role).to.equal('follower')
    expect(b.term).to.equal(5)
  })

  it('a candidate asked for a vote in a higher term steps down and may grant it', () => {
    const b = core(B)
    campaign(b, MIN)
    const res = b.handleVoteRequest({ term: 3, candidate: C, rosterTerm: 1, rosterVersion: 1 }, MIN + 10)
    expect(res.reply.granted).to.equal(true)
    expect(res.outputs).to.deep.equal([
      { type: 'persist', state: { term: 3, votedFor: { term: 3, id: C } } },
      { type: 'steppedDown', term: 3 }
    ])
    // Same term: it already voted for itself.
    const d = core(D, view({ members: [A, B, C, D] }))
    campaign(d, MIN)
    expect(d.handleVoteRequest({ term: 2, candidate: C, rosterTerm: 1, rosterVersion: 1 }, MIN).reply.reason).to.equal('already-voted')
    expect(d.role).to.equal('candidate')
  })

  it('a leader that sees a roster from a higher term steps down and follows its leader', () => {
    const a = core(A)
    const outs = a.observeRoster(view({ term: 3, version: 2, leader: C }), 100)
    expect(outs).to.deep.equal([{ type: 'persist', state: { term: 3 } }, { type: 'steppedDown', term: 3 }])
    expect(a.role).to.equal('follower')
    expect(a.leader).to.equal(C)
    expect(a.nextDeadline()).to.equal(100 + MIN)
  })

  it('a roster from an older term ends a candidacy but not the leadership of a newer term', () => {
    const b = core(B)
    campaign(b, MIN)
    expect(b.observeRoster(view({ version: 2 }), MIN + 1)).to.deep.equal([{ type: 'steppedDown', term: 2 }])
    expect(b.leader).to.equal(A)
    expect(b.term).to.equal(2)

    const c = core(C)
    const req = campaign(c, MIN)
    c.handleVoteReply(core(B).handleVoteRequest(req, MIN).reply, MIN)
    expect(c.role).to.equal('leader')
    // The old leader's last roster arrives before the new one is signed: taken in, leadership kept.
    expect(c.observeRoster(view({ version: 3 }), MIN + 2)).to.deep.equal([])
    expect(c.role).to.equal('leader')
    expect(c.leaderTerm).to.equal(1)
  })

  it('a candidate that hears from its roster leader again gives up', () => {
    const b = core(B)
    campaign(b, MIN)
    expect(b.heardFromLeader(C, MIN + 1)).to.deep.equal([])
    expect(b.heardFromLeader(A, MIN + 1)).to.deep.equal([{ type: 'steppedDown', term: 2 }])
    expect(b.leader).to.equal(A)
    expect(b.nextDeadline()).to.equal(2 * MIN + 1)
  })

  it('restarts as leader only when its roster names it for its current term', () => {
    expect(core(A, view(), { term: 1 }).role).to.equal('leader')
    const past = core(A, view(), { term: 2, votedFor: { term: 2, id: C } })
    expect(past.role).to.equal('follower')
    expect(past.leader).to.equal(undefined)
  })
})

describe('group election: hand-over', () => {
  it('the leader votes for the target in term + 1 and steps down; in 3 members the target leads at once', () => {
    const a = core(A)
    const b = core(B)
    const outs = a.transferTo(B, 100)
    expect(outs).to.deep.equal([
      { type: 'persist', state: { term: 2, votedFor: { term: 2, id: B } } },
      { type: 'transfer', term: 2, from: A, to: B, rosterTerm: 1, rosterVersion: 1 },
      { type: 'steppedDown', term: 2 }
    ])
    expect(a.role).to.equal('follower')
    const t = only(outs, 'transfer')
    const res = b.acceptTransfer(t, 110)
    expect(res.accepted).to.equal(true)
    expect(res.outputs).to.deep.equal([
      { type: 'persist', state: { term: 2, votedFor: { term: 2, id: B } } },
      { type: 'elected', term: 2, voters: [B, A], transferFrom: A }
    ])
    expect(b.role).to.equal('leader')
    // Accepted once only.
    expect(b.acceptTransfer(t, 120)).to.deep.equal({ accepted: false, reason: 'leader', outputs: [] })
  })

  it('a 2-member group hands over at once', () => {
    const two = view({ members: [A, B] })
    const t = only(core(A, two).transferTo(B, 0), 'transfer')
    expect(only(core(B, two).acceptTransfer(t, 1).outputs, 'elected').voters).to.deep.equal([B, A])
  })

  it('a target that voted for another host in that term refuses: one leader per term', () => {
    const a = core(A)
    const b = core(B)
    const t = only(a.transferTo(B, 0), 'transfer')
    // C campaigned in term 2 first and B voted for it.
    expect(b.handleVoteRequest({ term: 2, candidate: C, rosterTerm: 1, rosterVersion: 1 }, MIN).reply.granted).to.equal(true)
    expect(b.acceptTransfer(t, MIN + 1)).to.deep.equal({ accepted: false, reason: 'already-voted', outputs: [] })
    expect(b.term).to.equal(2)
    expect(b.role).to.equal('follower')
  })

  it('in 5 members the target campaigns with the certificate, which overrides leader stickiness', () => {
    const five = view({ members: [A, B, C, D, E] })
    const a = core(A, five)
    const [b, c, d, e] = [B, C, D, E].map(id => core(id, five))
    for (const f of [b, c, d, e]) f.heardFromLeader(A, 90)
    const t = only(a.transferTo(B, 100), 'transfer')
    const res = b.acceptTransfer(t, 110)
    expect(res.outputs[0]).to.deep.equal({ type: 'persist', state: { term: 2, votedFor: { term: 2, id: B } } })
    const ask = only(res.outputs, 'requestVotes')
    expect(ask.request).to.deep.equal({ term: 2, candidate: B, rosterTerm: 1, rosterVersion: 1, transferFrom: A })
    expect(ask.to).to.have.members([C, D, E])
    expect(b.role).to.equal('candidate')
    const r = c.handleVoteRequest(ask.request, 120).reply
    expect(r.granted).to.equal(true)
    // Without the certificate the same voter, fresh from the leader, would refuse.
    const { transferFrom: _, ...plain } = ask.request
    expect(d.handleVoteRequest({ ...plain, term: 3 }, 120).reply.reason).to.equal('leader-alive')
    expect(b.handleVoteReply(r, 130)).to.deep.equal([{ type: 'elected', term: 2, voters: [B, A, C], transferFrom: A }])
  })

  it('a hand-over cannot make a second leader in a term a majority elected without the old leader', () => {
    // A and B are cut off from C, D, E; A hands over to B while C wins term 2 with D and E.
    const five = view({ members: [A, B, C, D, E] })
    const t = only(core(A, five).transferTo(B, 0), 'transfer')
    const b = core(B, five)
    const [c, d, e] = [C, D, E].map(id => core(id, five))
    const req = campaign(c, MIN)
    for (const v of [d, e]) c.handleVoteReply(v.handleVoteRequest(req, MIN).reply, MIN)
    expect(c.role).to.equal('leader')
    const ask = only(b.acceptTransfer(t, MIN).outputs, 'requestVotes').request
    expect(b.role).to.equal('candidate')
    // After the heal B's votes are gone: everyone else has voted in term 2.
    for (const v of [d, e]) expect(v.handleVoteRequest(ask, MIN + 1).reply.reason).to.equal('already-voted')
    expect(c.handleVoteRequest(ask, MIN + 1).reply.reason).to.equal('leader-alive')
  })

  it('refuses certificates from another host, for a past term, or ahead of its roster', () => {
    const cert = (o: Partial<Transfer> = {}): Transfer => ({ term: 2, from: A, to: B, rosterTerm: 1, rosterVersion: 1, ...o })
    expect(core(B).acceptTransfer(cert({ to: C }), 0).reason).to.equal('not-addressed')
    expect(core(B).acceptTransfer(cert({ from: C }), 0).reason).to.equal('unknown-leader')
    expect(core(B).acceptTransfer(cert({ rosterVersion: 2 }), 0).reason).to.equal('stale-roster')
    expect(core(B, view(), { term: 3 }).acceptTransfer(cert(), 0).reason).to.equal('stale-term')
    // Its own candidacy in that term is no obstacle: the certificate adds the leader's vote.
    const b = core(B)
    campaign(b, MIN)
    expect(only(b.acceptTransfer(cert(), MIN + 1).outputs, 'elected').voters).to.deep.equal([B, A])
  })

  it('only the leader of the held roster may hand over, and only to another member', () => {
    expect(codeOf(() => core(B).transferTo(C, 0))).to.equal('NOT_LEADER')
    expect(codeOf(() => core(A).transferTo('x', 0))).to.equal('UNKNOWN_HOST')
    expect(codeOf(() => core(A).transferTo(A, 0))).to.equal('INVALID_ARGUMENT')
    const a = core(A)
    a.transferTo(B, 0)
    expect(codeOf(() => a.transferTo(C, 0))).to.equal('NOT_LEADER')
    // Elected but its roster not yet signed: not yet.
    const c = core(C)
    c.handleVoteReply(core(B).handleVoteRequest(campaign(c, MIN), MIN).reply, MIN)
    expect(c.role).to.equal('leader')
    expect(codeOf(() => c.transferTo(B, MIN))).to.equal('NOT_LEADER')
    c.observeRoster(view({ term: 2, version: 2, leader: C }), MIN)
    expect(codeOf(() => c.transferTo(B, MIN))).to.equal('OK')
  })

  it('with a cluster, a hand-over still works but a failed one does not turn into an election', () => {
    const five = view({ members: [A, B, C, D, E], clusterExists: true })
    const b = core(B, five)
    const res = b.acceptTransfer(only(core(A, five).transferTo(B, 0), 'transfer'), 10)
    const ask = only(res.outputs, 'requestVotes').request
    expect(core(C, five).handleVoteRequest(ask, 20).reply.granted).to.equal(true)
    expect(b.nextDeadline()).to.equal(10 + MIN)
    expect(b.tick(10 + MIN)).to.deep.equal([{ type: 'steppedDown', term: 2 }])
    expect(b.nextDeadline()).to.equal(undefined)
  })
})

describe('group election: one voter under arbitrary requests (property)', () => {
  it('never grants two candidates in a term, even across restarts, and never lowers its term', () => {
    const members = [A, B, C, D, E]
    const step = fc.oneof(
      fc.record({
        kind: fc.constant('vote' as const),
        term: fc.integer({ min: 0, max: 6 }),
        candidate: fc.constantFrom(...members, 'x'),
        rosterTerm: fc.integer({ min: 0, max: 3 }),
        rosterVersion: fc.integer({ min: 0, max: 3 }),
        dt: fc.integer({ min: 0, max: 4000 })
      }),
      fc.record({ kind: fc.constant('restart' as const), dt: fc.integer({ min: 0, max: 4000 }) }),
      fc.record({ kind: fc.constant('tick' as const), dt: fc.integer({ min: 0, max: 8000 }) }),
      fc.record({ kind: fc.constant('heard' as const), dt: fc.integer({ min: 0, max: 4000 }) })
    )
    fc.assert(fc.property(fc.array(step, { maxLength: 60 }), steps => {
      const roster = view({ members, version: 2 })
      let stored: ElectionState | undefined
      let v = new ElectionCore({ self: C, random: () => 0.5 }, stored, roster, 0)
      let now = 0
      const votes = new Map<number, string>()
      let lastTerm = v.term
      const record = (outs: ElectionOutput[]): void => {
        for (const o of outs) {
          if (o.type !== 'persist') continue
          expect(o.state.term).to.be.at.least(stored?.term ?? 0)
          stored = o.state
          const vf = o.state.votedFor
          if (vf == null) continue
          expect(votes.get(vf.term) ?? vf.id, `second vote in term ${vf.term}`).to.equal(vf.id)
          votes.set(vf.term, vf.id)
        }
      }
      for (const s of steps) {
        now += s.dt
        if (s.kind === 'restart') v = new ElectionCore({ self: C, random: () => 0.5 }, stored, roster, now)
        else if (s.kind === 'tick') record(v.tick(now))
        else if (s.kind === 'heard') v.heardFromLeader(A, now)
        else {
          const { reply, outputs } = v.handleVoteRequest(s, now)
          record(outputs)
          if (reply.granted) {
            // What a crash right after sending would reload already holds this vote.
            expect(stored?.votedFor).to.deep.equal({ term: s.term, id: s.candidate })
            expect(reply.term).to.equal(s.term)
          }
        }
        expect(v.term).to.be.at.least(lastTerm)
        lastTerm = v.term
      }
    }), { numRuns: 300, seed: 7 })
  })
})

// ------------------------------------------------------------------ simulation

interface Ev { at: number, seq: number, fn: () => void }

/** A binary min-heap on (at, seq): events at the same instant run in the order they were made. */
class Queue {
  private h: Ev[] = []
  private seq = 0
  push (at: number, fn: () => void): void {
    const h = this.h
    h.push({ at, seq: this.seq++, fn })
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.less(h[i], h[p])) break
      this.swap(i, p)
      i = p
    }
  }

  pop (): Ev | undefined {
    const h = this.h
    const top = h[0]
    const last = h.pop()
    if (h.length > 0 && last != null) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && this.less(h[l], h[m])) m = l
        if (r < h.length && this.less(h[r], h[m])) m = r
        if (m === i) break
        this.swap(i, m)
        i = m
      }
    }
    return top
  }

  private less (a: Ev, b: Ev): boolean { return a.at < b.at || (a.at === b.at && a.seq < b.seq) }

  private swap (i: number, j: number): void {
    const t = this.h[i]
    this.h[i] = this.h[j]
    this.h[j] = t
  }
}

type Msg =
  | { kind: 'vote', req: VoteRequest }
  | { kind: 'reply', reply: VoteReply }
  | { kind: 'hb', roster: RosterView }
  | { kind: 'roster', roster: RosterView }
  | { kind: 'transfer', t: Transfer }

interface SimNode {
  id: string
  up: boolean
  /** Incarnation: events scheduled for an earlier one are dropped after a crash. */
  gen: number
  core?: ElectionCore
  /** The store: survives crashes. */
  state?: ElectionState
  roster: RosterView
  heartbeating: boolean
  tickAt?: number
}

interface SimConfig {
  seed: number
  n: number
  /** Faults (crashes, partitions, drops, hand-overs) happen in [0, faultsUntil). */
  faultsUntil: number
  /** Fault-free time after the final heal; the group must have converged by its end. */
  settle: number
  /** Mutation switch for the harness's own test: restart with an empty store. */
  forgetOnRestart?: boolean
}

interface SimResult {
  elections: number
  maxTerm: number
  /** Fault-free time the group took to reach a single leader that every host follows. */
  convergedAfter: number
}

const HEARTBEAT = 1000 // below electionTimeoutMin / 2, so one lost heartbeat never looks like a dead leader
const MAX_DELAY = 150

/**
 * Runs N hosts with the real ElectionCore over an in-memory network on a virtual clock; the
 * wiring here is what lib/host.ts is meant to do (persist, then send; sign a roster after
 * `elected`; heartbeat as leader; answer a stale roster with the newer one). Throws on the first
 * violated invariant, with the seed and the last events.
 */
function simulate (cfg: SimConfig): SimResult {
  const rnd = rng(cfg.seed)
  const q = new Queue()
  let now = 0
  const trace: string[] = []
  const log = (line: string): void => {
    trace.push(`${now} ${line}`)
    if (trace.length > 40) trace.shift()
  }
  const fail = (what: string): never => {
    throw new Error(`seed ${cfg.seed} (n=${cfg.n}) at ${now} ms: ${what}\n  ${trace.join('\n  ')}`)
  }
  const ids = Array.from({ length: cfg.n }, (_, i) => `n${i}`)
  const initial: RosterView = { term: 1, version: 1, leader: ids[0], members: ids, clusterExists: false }
  const nodes = new Map<string, SimNode>(ids.map(id => [id, { id, up: true, gen: 0, roster: initial, state: { term: 1 }, heartbeating: false }]))
  const options = (id: string): ElectionOptions => ({ self: id, random: rnd })

  // Invariant records. Votes are taken from what reached the store, so a restart that forgot one shows.
  const votes = new Map<string, string>() // `${voter}/${term}` -> candidate
  const leaders = new Map<number, string>() // term -> winner
  const attemptStart = new Map<string, number>() // `${candidate}/${term}` -> when it first voted for itself
  let partition: { side: Set<string>, since: number } | undefined
  let dropRate = 0
  let elections = 0

  const reachable = (a: string, b: string): boolean => partition == null || partition.side.has(a) === partition.side.has(b)

  const send = (from: string, to: string, msg: Msg): void => {
    if (rnd() < dropRate) return
    q.push(now + 1 + Math.floor(rnd() * MAX_DELAY), () => {
      const n = nodes.get(to)!
      if (!n.up || !reachable(from, to)) return
      receive(n, from, msg)
    })
  }

  const scheduleTick = (n: SimNode): void => {
    const at = n.core?.nextDeadline()
    if (at == null || at === n.tickAt) return
    n.tickAt = at
    const gen = n.gen
    q.push(Math.max(at, now), () => {
      if (n.gen !== gen || !n.up) return
      if (n.tickAt === at) n.tickAt = undefined
      apply(n, n.core!.tick(now))
    })
  }

  const heartbeat = (n: SimNode): void => {
    if (n.heartbeating || n.core?.role !== 'leader') return
    n.heartbeating = true
    const gen = n.gen
    const beat = (): void => {
      if (n.gen !== gen || n.core?.role !== 'leader') { if (n.gen === gen) n.heartbeating = false; return }
      for (const m of n.roster.members) if (m !== n.id) send(n.id, m, { kind: 'hb', roster: n.roster })
      q.push(now + HEARTBEAT, beat)
    }
    beat()
  }

  const adopt = (n: SimNode, roster: RosterView): boolean => {
    const newer = roster.term > n.roster.term || (roster.term === n.roster.term && roster.version > n.roster.version)
    if (newer) {
      n.roster = roster
      apply(n, n.core!.observeRoster(roster, now))
    }
    return newer
  }

  const apply = (n: SimNode, outs: ElectionOutput[]): void => {
    for (const o of outs) {
      switch (o.type) {
        case 'persist': {
          if (o.state.term < (n.state?.term ?? 0)) fail(`${n.id} persisted a lower term ${o.state.term}`)
          const vf = o.state.votedFor
          if (vf != null) {
            const key = `${n.id}/${vf.term}`
            const prev = votes.get(key)
            if (prev != null && prev !== vf.id) fail(`${n.id} voted for ${prev} and ${vf.id} in term ${vf.term}`)
            votes.set(key, vf.id)
            if (vf.id === n.id && !attemptStart.has(key)) attemptStart.set(key, now)
          }
          n.state = o.state
          break
        }
        case 'requestVotes':
          for (const to of o.to) send(n.id, to, { kind: 'vote', req: o.request })
          break
        case 'elected': {
          elections++
          log(`${n.id} elected in term ${o.term} by ${o.voters.join(',')}`)
          const prev = leaders.get(o.term)
          if (prev != null) fail(`two elections in term ${o.term}: ${prev} and ${n.id}`)
          leaders.set(o.term, n.id)
          const voters = new Set(o.voters)
          if (voters.size !== o.voters.length) fail('a voter counted twice')
          if (voters.size < quorum(n.roster.members.length)) fail(`elected by ${voters.size} of ${n.roster.members.length}`)
          for (const v of voters) {
            if (!n.roster.members.includes(v)) fail(`non-member ${v} voted`)
            if (votes.get(`${v}/${o.term}`) !== n.id) fail(`${v} never stored a vote for ${n.id} in term ${o.term}`)
          }
          // Every vote of an attempt that ran wholly inside one partition crossed no cut.
          const start = attemptStart.get(`${n.id}/${o.term}`)!
          if (partition != null && partition.since <= start) {
            const side = [...ids].filter(id => reachable(id, n.id))
            if (side.length < quorum(cfg.n)) fail(`the minority side ${side.join(',')} elected ${n.id}`)
            for (const v of voters) if (!reachable(v, n.id)) fail(`a vote from ${v} crossed the partition`)
          }
          // The wiring: sign the new roster with this host as leader, store it, take it in.
          n.roster = { ...n.roster, term: o.term, version: n.roster.version + 1, leader: n.id }
          apply(n, n.core!.observeRoster(n.roster, now))
          break
        }
        case 'steppedDown':
          log(`${n.id} stepped down in term ${o.term}`)
          break
        case 'transfer':
          log(`${n.id} hands over to ${o.to} for term ${o.term}`)
          send(n.id, o.to, { kind: 'transfer', t: o })
          break
      }
    }
    heartbeat(n)
    scheduleTick(n)
  }

  const receive = (n: SimNode, from: string, msg: Msg): void => {
    const core = n.core!
    switch (msg.kind) {
      case 'vote': {
        const { reply, outputs } = core.handleVoteRequest(msg.req, now)
        apply(n, outputs)
        if (reply.granted) {
          const vf = n.state?.votedFor
          if (vf?.term !== msg.req.term || vf.id !== msg.req.candidate) fail(`${n.id} replied with a vote it had not stored`)
        }
        send(n.id, from, { kind: 'reply', reply })
        break
      }
      case 'reply':
        apply(n, core.handleVoteReply(msg.reply, now))
        break
      case 'hb': {
        const newer = adopt(n, msg.roster)
        const r = msg.roster
        if (!newer && (r.term < n.roster.term || (r.term === n.roster.term && r.version < n.roster.version))) {
          send(n.id, from, { kind: 'roster', roster: n.roster })
        }
        apply(n, core.heardFromLeader(from, now))
        break
      }
      case 'roster':
        adopt(n, msg.roster)
        break
      case 'transfer':
        apply(n, core.acceptTransfer(msg.t, now).outputs)
        break
    }
  }

  const start = (n: SimNode): void => {
    n.up = true
    n.heartbeating = false
    n.tickAt = undefined
    if (cfg.forgetOnRestart === true) n.state = undefined
    n.core = new ElectionCore(options(n.id), n.state, n.roster, now)
    log(`${n.id} starts in term ${n.core.term} as ${n.core.role}`)
    apply(n, [])
  }

  const crash = (n: SimNode): void => {
    n.up = false
    n.gen++
    n.core = undefined
    log(`${n.id} crashes`)
  }

  for (const n of nodes.values()) start(n)

  // Faults: every 0.3–4 s one random event, until faultsUntil.
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]
  const fault = (): void => {
    if (now >= cfg.faultsUntil) return
    const x = rnd()
    const all = [...nodes.values()]
    if (x < 0.2) {
      const up = all.filter(n => n.up)
      if (up.length > 0) {
        const n = pick(up)
        crash(n)
        q.push(now + 500 + Math.floor(rnd() * 15_000), () => { if (!n.up) start(n) })
      }
    } else if (x < 0.35) {
      const side = new Set(ids.filter(() => rnd() < 0.5))
      if (side.size > 0 && side.size < ids.length) {
        partition = { side, since: now }
        log(`partition ${[...side].join(',')} | ${ids.filter(id => !side.has(id)).join(',')}`)
      }
    } else if (x < 0.5) {
      partition = undefined
      log('heal')
    } else if (x < 0.6) {
      dropRate = rnd() < 0.3 ? 0 : rnd() * 0.3
    } else if (x < 0.75) {
      const leader = all.find(n => n.up && n.core?.role === 'leader' && n.roster.leader === n.id && n.roster.term === n.core.term)
      if (leader != null) apply(leader, leader.core!.transferTo(pick(ids.filter(id => id !== leader.id)), now))
    } else if (x < 0.85) {
      // A membership-facts update: same term, next version.
      const leader = all.find(n => n.up && n.core?.role === 'leader' && n.roster.leader === n.id)
      if (leader != null) adopt(leader, { ...leader.roster, version: leader.roster.version + 1 })
    }
    q.push(now + 300 + Math.floor(rnd() * 3700), fault)
  }
  q.push(0, fault)

  q.push(cfg.faultsUntil, () => {
    partition = undefined
    dropRate = 0
    log('final heal')
    for (const n of nodes.values()) if (!n.up) start(n)
  })

  // After the final heal, probe every 100 ms for one leader that every host follows in its term.
  let lastUnsettled = cfg.faultsUntil
  const settled = (): string | undefined => {
    const all = [...nodes.values()]
    const leads = all.filter(n => n.core?.role === 'leader')
    if (leads.length !== 1) return `${leads.length} leaders`
    const l = leads[0]
    for (const n of all) {
      if (n.core?.leader !== l.id) return `${n.id} follows ${n.core?.leader}, not ${l.id}`
      if (n.core.leaderTerm !== l.core!.term) return `${n.id} holds the roster of term ${n.core.leaderTerm}, the leader leads ${l.core!.term}`
    }
    return undefined
  }
  const end = cfg.faultsUntil + cfg.settle
  for (let t = cfg.faultsUntil; t <= end; t += 100) {
    q.push(t, () => { if (settled() != null) lastUnsettled = now })
  }

  for (;;) {
    const ev = q.pop()
    if (ev == null || ev.at > end) break
    now = ev.at
    ev.fn()
  }
  const why = settled()
  if (why != null) fail(`not converged ${cfg.settle} ms after the final heal: ${why}`)
  return { elections, maxTerm: Math.max(...leaders.keys(), 1), convergedAfter: lastUnsettled - cfg.faultsUntil }
}

describe('group election: simulated network with drops, partitions, crashes and hand-overs', function () {
  this.timeout(60_000)
  // ~1 ms of real time per schedule of 3.5 simulated minutes.
  const SEEDS = 1000
  const FAULTS = 150_000
  // Convergence needs the stickiness window to lapse (3 s) and an election or two (3-6 s each,
  // more after a split vote): the worst measured over 5000 seeds was 9.1 s. 60 s leaves room for
  // a run of unlucky split votes without making a hang look like success.
  const SETTLE = 60_000

  it(`${SEEDS} schedules of 3-7 hosts: one leader per term, no minority wins, convergence after the final heal`, () => {
    let elections = 0
    let worst = 0
    let maxTerm = 0
    for (let seed = 1; seed <= SEEDS; seed++) {
      const res = simulate({ seed, n: 3 + (seed % 5), faultsUntil: FAULTS, settle: SETTLE })
      elections += res.elections
      worst = Math.max(worst, res.convergedAfter)
      maxTerm = Math.max(maxTerm, res.maxTerm)
    }
    // The schedules must actually exercise elections, not just keep the first leader.
    expect(elections).to.be.greaterThan(SEEDS * 3)
    expect(worst).to.be.lessThan(SETTLE)
    console.log(`      ${SEEDS} schedules, ${elections} elections, highest term ${maxTerm}, slowest convergence ${worst} ms after the final heal`)
  })

  it('the harness catches a host that forgets its vote on restart', () => {
    const caught: string[] = []
    for (let seed = 1; seed <= 100 && caught.length === 0; seed++) {
      try {
        simulate({ seed, n: 3 + (seed % 5), faultsUntil: FAULTS, settle: SETTLE, forgetOnRestart: true })
      } catch (err: any) {
        caught.push(String(err.message))
      }
    }
    expect(caught, 'no schedule noticed the lost votes').to.have.length(1)
    expect(caught[0]).to.match(/voted for .* and .* in term|two elections in term/)
  })
})
