/**
 * Leader election for a group that has no cluster: a pure state machine in the style of Raft
 * (Ongaro, "Consensus: Bridging Theory and Practice", ch. 3 and §4.2.3, §3.10), with the roster
 * standing in for the log. It does no I/O, keeps no timers and signs nothing: every method takes
 * the time, and returns what the wiring must do as {@link ElectionOutput}s, in order.
 *
 * Safety (at most one leader per term) rests on two rules: a host casts at most one vote per
 * term and never forgets it (the vote is persisted before it is sent), and a winner needs votes
 * from a strict majority of the roster, {@link quorum}. Any two majorities of the same roster
 * share a member, and that member voted once.
 *
 * Wiring contract:
 * - Apply the outputs of a call in order. A `persist` output comes first and must be durable
 *   before anything of the same call leaves the host (a vote reply, vote requests, a transfer
 *   certificate): persist, then send. A crash between the two only loses a message.
 * - After `elected`, sign a roster `{ term, leader: self, version: held version + 1 }` with the
 *   signed votes as proof, store it and hand it back through {@link ElectionCore.observeRoster}.
 * - Call {@link ElectionCore.heardFromLeader} only for messages the leader sends as leader
 *   (heartbeats, roster pushes), and {@link ElectionCore.tick} at {@link ElectionCore.nextDeadline}
 *   (re-read it after every call).
 *
 * @packageDocumentation
 */
import { EdgelinkError } from '../errors.ts'

/** Lower bound of the randomised election timeout, ms. Also the leader-stickiness window of voters. */
export const ELECTION_TIMEOUT_MIN = 3000
/** Upper bound of the randomised election timeout, ms. */
export const ELECTION_TIMEOUT_MAX = 6000

/** What a host must keep across restarts. Losing it could let the host vote twice in one term. */
export interface ElectionState {
  /** The highest term this host has seen. Never decreases. */
  term: number
  /** The vote cast in `votedFor.term`; a vote for an older term is void. */
  votedFor?: { term: number, id: string }
}

/** The parts of the held (newest) signed roster that elections depend on. */
export interface RosterView {
  term: number
  version: number
  /** Peer id of the leader that signed this roster. */
  leader: string
  /** Peer ids of every member, the leader included. */
  members: readonly string[]
  /** While a cluster exists, hosts neither start elections nor vote in them; transfers still work. */
  clusterExists: boolean
}

export interface ElectionOptions {
  /** This host's peer id. */
  self: string
  /**
   * Lower bound of the election timeout, ms. A voter that heard from the leader more recently
   * than this refuses every vote, so one host that lost sight of a healthy leader cannot
   * depose it. Must exceed the leader's heartbeat interval by a few message delays.
   * @default 3000
   */
  electionTimeoutMin?: number
  /**
   * Upper bound of the election timeout, ms. Each wait is drawn uniformly in [min, max]; the
   * wider the range compared with a message delay, the rarer split votes.
   * @default 6000
   */
  electionTimeoutMax?: number
  /**
   * By how much both timeouts stretch for a roster of `members`: give it the heartbeat's stretch
   * (large groups space their heartbeats out), or a follower of a large group times out between
   * two heartbeats of a healthy leader. @default no stretch
   */
  stretch?: (members: number) => number
  /** Uniform in [0, 1); injectable so tests are deterministic. @default Math.random */
  random?: () => number
}

export interface VoteRequest {
  /** The term the candidate campaigns in. */
  term: number
  candidate: string
  /** (term, version) of the roster the candidate holds: voters refuse candidates older than theirs. */
  rosterTerm: number
  rosterVersion: number
  /**
   * Set when the candidacy was started by a {@link Transfer} from this leader. The wiring must
   * attach the signed certificate and drop requests whose certificate does not verify; voters
   * then skip leader stickiness (the leader itself asked for the change) and the cluster rule.
   */
  transferFrom?: string
}

/** Why a vote was refused. Stable strings: they may travel on the wire. */
export type VoteRefusal =
  | 'self' // a host does not answer its own request
  | 'not-member' // the voter or the candidate is not in the voter's roster
  | 'cluster' // a cluster exists: no elections
  | 'stale-term' // the request's term is older than the voter's
  | 'leader-alive' // the voter is the leader, or heard from it within electionTimeoutMin
  | 'stale-roster' // the candidate's roster is older than the voter's
  | 'already-voted' // the voter voted for another candidate in this term

export interface VoteReply {
  /** The voter's term after handling the request: a candidate that sees a higher one steps down. */
  term: number
  voter: string
  granted: boolean
  reason?: VoteRefusal
}

/** A leader's hand-over: its vote for `to` in `term`, signed by the wiring as a certificate. */
export interface Transfer {
  /** The leader's term + 1. */
  term: number
  from: string
  to: string
  /** (term, version) of the leader's roster: the target must hold at least this one. */
  rosterTerm: number
  rosterVersion: number
}

/** Why a transfer was refused. */
export type TransferRefusal =
  | 'not-addressed' // `to` is another host
  | 'unknown-leader' // `from` is not the leader of the target's roster
  | 'not-member'
  | 'stale-term' // the target is already past `term`
  | 'already-voted' // the target voted for another host in `term`: one leader per term
  | 'stale-roster' // the target's roster is older than the leader's
  | 'leader' // the target already leads (it won an election meanwhile)

export type ElectionOutput =
  /** Store durably before sending anything else of the same call. */
  | { type: 'persist', state: ElectionState }
  /** Send `request` to every host in `to`; feed replies to {@link ElectionCore.handleVoteReply}. */
  | { type: 'requestVotes', request: VoteRequest, to: string[] }
  /**
   * This host won `term`. `voters` (self first) are a majority of the roster; `transferFrom`,
   * when set, voted by the transfer certificate rather than a vote reply.
   */
  | { type: 'elected', term: number, voters: string[], transferFrom?: string }
  /** This host left the leader or candidate role and follows; `term` is its term now. */
  | { type: 'steppedDown', term: number }
  /** Sign and send this certificate to `to`, which calls {@link ElectionCore.acceptTransfer}. */
  | ({ type: 'transfer' } & Transfer)

export type ElectionRole = 'leader' | 'follower' | 'candidate'

/** Votes needed to win in a roster of `members` hosts: a strict majority, so two never coexist. */
export function quorum (members: number): number {
  return Math.floor(members / 2) + 1
}

/** Orders rosters by term, then version: a new leader's first roster outranks all of an old one. */
function compareRoster (a: { term: number, version: number }, b: { term: number, version: number }): number {
  return a.term !== b.term ? a.term - b.term : a.version - b.version
}

function copyView (r: RosterView): RosterView {
  return { term: r.term, version: r.version, leader: r.leader, members: [...r.members], clusterExists: r.clusterExists }
}

/**
 * One host's side of the election. Single-threaded: the wiring serialises calls and applies
 * each call's outputs before the next call that depends on them.
 */
export class ElectionCore {
  private readonly self: string
  private readonly min: number
  private readonly max: number
  private readonly stretch: (members: number) => number
  private readonly random: () => number
  private state: ElectionState
  private roster: RosterView
  private _role: ElectionRole
  /** The leader this host follows; undefined while it campaigns or after it handed over. */
  private known: string | undefined
  /** Last contact with `known`, for leader stickiness; undefined when there is none to honour. */
  private lastHeard: number | undefined
  /** When a follower next campaigns, or a candidate gives up its attempt. */
  private deadline: number
  /** Candidate only: members that voted for this host in the current term. */
  private votes = new Set<string>()
  private transferFrom: string | undefined

  /**
   * @param persisted what the last {@link ElectionOutput} `persist` stored, or undefined on a
   *   fresh host. The term is never below the roster's, so a lost state cannot lower it.
   * @param roster the held roster. A host whose roster names it leader for its current term
   *   resumes as leader.
   * @param now counts as contact with the leader: a restarted host neither campaigns nor votes
   *   for electionTimeoutMin, as if it had just heard from the leader.
   */
  constructor (options: ElectionOptions, persisted: ElectionState | undefined, roster: RosterView, now: number) {
    this.self = options.self
    this.min = options.electionTimeoutMin ?? ELECTION_TIMEOUT_MIN
    this.max = options.electionTimeoutMax ?? ELECTION_TIMEOUT_MAX
    this.stretch = options.stretch ?? (() => 1)
    this.random = options.random ?? Math.random
    if (this.self === '') throw new EdgelinkError('INVALID_ARGUMENT', 'self must be a peer id')
    if (!(this.min > 0 && this.max >= this.min)) {
      throw new EdgelinkError('INVALID_ARGUMENT', 'election timeouts must satisfy 0 < min <= max')
    }
    const voted = persisted?.votedFor
    const term = Math.max(persisted?.term ?? 0, voted?.term ?? 0, roster.term)
    this.state = voted?.term === term ? { term, votedFor: { ...voted } } : { term }
    this.roster = copyView(roster)
    const leads = roster.leader === this.self && roster.term === term && this.isMember(this.self)
    this._role = leads ? 'leader' : 'follower'
    // A host past its roster's term may have campaigned before the restart: it follows nobody
    // until a roster or a heartbeat names a leader.
    this.known = leads || roster.term === term ? roster.leader : undefined
    this.lastHeard = now
    this.deadline = now + this.timeout()
  }

  get role (): ElectionRole { return this._role }

  /** The highest term seen (not necessarily the leader's: see {@link leaderTerm}). */
  get term (): number { return this.state.term }

  /** The leader this host follows (itself when leader); undefined while campaigning or leaderless. */
  get leader (): string | undefined { return this._role === 'candidate' ? undefined : this.known }

  /** The term of the held roster: the term its leader was elected in. */
  get leaderTerm (): number { return this.roster.term }

  /** A copy of what must be persisted now; equal to the last `persist` output. */
  get persistent (): ElectionState {
    return this.state.votedFor == null ? { term: this.state.term } : { term: this.state.term, votedFor: { ...this.state.votedFor } }
  }

  /**
   * Takes in a roster the wiring verified and adopted. Only a roster newer than the held one,
   * by (term, version), changes anything; the same one may update `clusterExists`.
   *
   * A newer roster from a higher or equal term makes this host follow its leader (a leader or
   * candidate steps down); one from an older term still ends a candidacy, since its leader was
   * alive to sign it, but leaves a leader of a newer term in place. Either way it counts as
   * contact with the leader and resets the election timer.
   */
  observeRoster (roster: RosterView, now: number): ElectionOutput[] {
    const cmp = compareRoster(roster, this.roster)
    if (cmp < 0) return []
    if (cmp === 0) {
      if (this.roster.clusterExists && !roster.clusterExists) this.deadline = now + this.timeout()
      this.roster.clusterExists = roster.clusterExists
      return []
    }
    const out: ElectionOutput[] = []
    this.roster = copyView(roster)
    const raised = this.adopt(roster.term)
    if (roster.leader === this.self && roster.term === this.state.term && this.isMember(this.self)) {
      // Our own roster for the term we won (or restarted in).
      this._role = 'leader'
      this.known = this.self
      this.lastHeard = now
    } else if (this._role === 'leader' && roster.term < this.state.term) {
      // Signed before our election: the membership is taken in, the leadership stays.
    } else {
      this.follow(roster.leader, now, out)
    }
    if (raised) out.unshift(this.persistOutput())
    return out
  }

  /**
   * Records a message `leader` sent as leader. Counts only if it is the leader this host knows
   * from its roster (apply any roster the message carries first); a candidate then gives up.
   */
  heardFromLeader (leader: string, now: number): ElectionOutput[] {
    if (leader === this.self || leader !== this.roster.leader || this._role === 'leader') return []
    // Also taken up by a host that follows no one (restarted past its roster's term): following
    // grants nothing, so a living roster leader is safe to follow whatever the terms.
    const out: ElectionOutput[] = []
    this.follow(leader, now, out)
    return out
  }

  /**
   * Starts an election when the election timer has run out: a follower whose leader went
   * silent, or a candidate whose attempt ended without a majority (it retries with term + 1).
   * Harmless to call early or often.
   */
  tick (now: number): ElectionOutput[] {
    if (!this.canCampaign() || now < this.deadline) return []
    if (this.roster.clusterExists) {
      // Only a transfer candidacy gets here; it failed, and with a cluster no election follows.
      const out: ElectionOutput[] = []
      this.stepDown(out)
      this.deadline = now + this.timeout()
      return out
    }
    return this.campaign(now, undefined)
  }

  /**
   * This host could not run for `ms` (its own event loop stalled: CPU starved, a long GC pause).
   * It heard nothing meanwhile through no fault of the leader, so a follower's election timer
   * moves on by as much (at most one full timeout from now).
   */
  stalled (ms: number, now: number): void {
    if (this._role !== 'follower' || ms <= 0) return
    this.deadline = Math.max(this.deadline, Math.min(now + this.timeout(), this.deadline + ms))
  }

  /** When {@link tick} next has something to do; undefined while it never will (leader, cluster). */
  nextDeadline (): number | undefined {
    if (!this.canCampaign()) return undefined
    if (this.roster.clusterExists && this._role !== 'candidate') return undefined
    return this.deadline
  }

  /**
   * Answers a vote request. Persist `outputs` (a `persist` comes first), then send `reply`.
   *
   * Refusals for `self`, `not-member`, `cluster` and `leader-alive` leave the term alone, so a
   * removed host or one cut off from a healthy leader cannot inflate terms and depose it.
   * Otherwise a higher term is adopted (stepping down a candidate) even when the vote is refused.
   */
  handleVoteRequest (req: VoteRequest, now: number): { reply: VoteReply, outputs: ElectionOutput[] } {
    const out: ElectionOutput[] = []
    let dirty = false
    const answer = (granted: boolean, reason?: VoteRefusal): { reply: VoteReply, outputs: ElectionOutput[] } => {
      if (dirty) out.unshift(this.persistOutput())
      const reply: VoteReply = { term: this.state.term, voter: this.self, granted }
      if (reason != null) reply.reason = reason
      return { reply, outputs: out }
    }
    if (req.candidate === this.self) return answer(false, 'self')
    if (!this.isMember(this.self) || !this.isMember(req.candidate)) return answer(false, 'not-member')
    const transfer = req.transferFrom != null && req.transferFrom === this.roster.leader && req.transferFrom !== req.candidate
    if (!transfer && this.roster.clusterExists) return answer(false, 'cluster')
    if (req.term < this.state.term) return answer(false, 'stale-term')
    if (this._role === 'leader') return answer(false, 'leader-alive')
    if (!transfer && this.lastHeard != null && now - this.lastHeard < this.min * this.stretchNow()) return answer(false, 'leader-alive')
    if (this.adopt(req.term)) {
      dirty = true
      this.stepDown(out)
    }
    if (compareRoster({ term: req.rosterTerm, version: req.rosterVersion }, this.roster) < 0) return answer(false, 'stale-roster')
    const voted = this.state.votedFor
    if (voted != null && voted.term === this.state.term) {
      if (voted.id !== req.candidate) return answer(false, 'already-voted')
    } else {
      this.state.votedFor = { term: this.state.term, id: req.candidate }
      dirty = true
    }
    // Raft resets the timer on a grant: a voter that just helped someone campaign waits its turn.
    this.deadline = now + this.timeout()
    return answer(true)
  }

  /**
   * Counts a reply to this host's vote request. A higher term in any reply makes a candidate or
   * leader step down; replies from other terms, non-members or after the attempt are ignored.
   */
  handleVoteReply (reply: VoteReply, now: number): ElectionOutput[] {
    if (reply.term > this.state.term) {
      const out: ElectionOutput[] = []
      this.adopt(reply.term)
      this.stepDown(out)
      out.unshift(this.persistOutput())
      return out
    }
    if (this._role !== 'candidate' || reply.term !== this.state.term || !reply.granted) return []
    if (!this.isMember(reply.voter) || reply.voter === this.self) return []
    this.votes.add(reply.voter)
    return this.countVotes(now)
  }

  /**
   * Leader only: hands leadership to `target`. The leader votes for `target` in term + 1 (the
   * returned certificate is that vote) and steps down at once, so it cannot sign a roster that
   * competes with its successor's.
   *
   * The target wins at once when its own vote and the certificate make a majority (groups of two
   * or three); in larger groups it still needs votes, which the certificate lets it collect from
   * voters that heard from this leader recently. That keeps one leader per term: handing a term
   * over outright could collide with an election for the same term run by a majority that cannot
   * reach this leader.
   *
   * @throws EdgelinkError NOT_LEADER unless this host leads the term of its held roster (after
   *   `elected`, only once the new roster was observed); UNKNOWN_HOST if `target` is not a
   *   member; INVALID_ARGUMENT if `target` is this host.
   */
  transferTo (target: string, now: number): ElectionOutput[] {
    if (this._role !== 'leader' || this.roster.leader !== this.self || this.roster.term !== this.state.term) {
      throw new EdgelinkError('NOT_LEADER', 'only the leader of the held roster can hand over leadership')
    }
    if (target === this.self) throw new EdgelinkError('INVALID_ARGUMENT', 'the leader cannot hand over to itself')
    if (!this.isMember(target)) throw new EdgelinkError('UNKNOWN_HOST', `${target} is not a member of the group`)
    const term = this.state.term + 1
    this.state = { term, votedFor: { term, id: target } }
    this._role = 'follower'
    this.known = undefined
    this.lastHeard = undefined
    this.deadline = now + this.timeout()
    return [
      this.persistOutput(),
      { type: 'transfer', term, from: this.self, to: target, rosterTerm: this.roster.term, rosterVersion: this.roster.version },
      { type: 'steppedDown', term }
    ]
  }

  /**
   * Takes a hand-over certificate the wiring verified (signed by `t.from`). Accepted only if
   * `t.from` leads this host's roster, this host has no vote for another host in `t.term` and is
   * not past it, and its roster is at least the leader's. On acceptance the host campaigns in
   * `t.term` with its own vote and the certificate's: the outputs hold `elected` when those two
   * are a majority, else `requestVotes` carrying `transferFrom`. Persist before sending.
   */
  acceptTransfer (t: Transfer, now: number): { accepted: boolean, reason?: TransferRefusal, outputs: ElectionOutput[] } {
    const refuse = (reason: TransferRefusal): { accepted: false, reason: TransferRefusal, outputs: ElectionOutput[] } => ({ accepted: false, reason, outputs: [] })
    if (t.to !== this.self || t.from === this.self) return refuse('not-addressed')
    if (t.from !== this.roster.leader) return refuse('unknown-leader')
    if (!this.isMember(this.self) || !this.isMember(t.from)) return refuse('not-member')
    if (this._role === 'leader') return refuse('leader')
    if (t.term < this.state.term) return refuse('stale-term')
    const voted = this.state.votedFor
    if (t.term === this.state.term && voted?.term === t.term && voted.id !== this.self) return refuse('already-voted')
    if (compareRoster(this.roster, { term: t.rosterTerm, version: t.rosterVersion }) < 0) return refuse('stale-roster')
    return { accepted: true, outputs: this.campaign(now, t) }
  }

  // ------------------------------------------------------------------ internals

  private timeout (): number {
    return Math.round((this.min + Math.floor(this.random() * (this.max - this.min + 1))) * this.stretchNow())
  }

  /** The timeouts' stretch for the roster held now (≥ 1). */
  private stretchNow (): number {
    return Math.max(1, this.stretch(this.roster.members.length))
  }

  private isMember (id: string): boolean { return this.roster.members.includes(id) }

  /** A 1-member group is its own leader; a removed host has no say. */
  private canCampaign (): boolean {
    return this._role !== 'leader' && this.roster.members.length >= 2 && this.isMember(this.self)
  }

  /** Moves to `term` if it is higher, voiding the vote. True when it did (the caller persists). */
  private adopt (term: number): boolean {
    if (term <= this.state.term) return false
    this.state = { term }
    this.votes.clear()
    return true
  }

  private stepDown (out: ElectionOutput[]): void {
    if (this._role === 'follower') return
    if (this._role === 'leader') this.known = undefined
    this._role = 'follower'
    this.votes.clear()
    this.transferFrom = undefined
    out.push({ type: 'steppedDown', term: this.state.term })
  }

  private follow (leader: string, now: number, out: ElectionOutput[]): void {
    this.stepDown(out)
    // Our own roster from a term we no longer lead names no one to follow.
    this.known = leader === this.self ? undefined : leader
    if (this.known != null) this.lastHeard = now
    this.deadline = now + this.timeout()
  }

  /** Starts a candidacy in the next term, or in `t.term` backed by a transfer certificate. */
  private campaign (now: number, t: Transfer | undefined): ElectionOutput[] {
    const term = t?.term ?? this.state.term + 1
    const continuing = this._role === 'candidate' && this.state.term === term
    this.adopt(term)
    this.state.votedFor = { term, id: this.self }
    this._role = 'candidate'
    if (!continuing) this.votes = new Set([this.self])
    this.transferFrom = t?.from
    if (t != null) this.votes.add(t.from)
    this.known = undefined
    this.deadline = now + this.timeout()
    const out: ElectionOutput[] = [this.persistOutput()]
    const won = this.countVotes(now)
    if (won.length > 0) return [...out, ...won]
    const request: VoteRequest = { term, candidate: this.self, rosterTerm: this.roster.term, rosterVersion: this.roster.version }
    if (t != null) request.transferFrom = t.from
    out.push({ type: 'requestVotes', request, to: this.roster.members.filter(m => !this.votes.has(m)) })
    return out
  }

  private countVotes (now: number): ElectionOutput[] {
    if (this.votes.size < quorum(this.roster.members.length)) return []
    this._role = 'leader'
    this.known = this.self
    this.lastHeard = now
    const elected: ElectionOutput = { type: 'elected', term: this.state.term, voters: [...this.votes] }
    if (this.transferFrom != null) elected.transferFrom = this.transferFrom
    this.votes.clear()
    this.transferFrom = undefined
    return [elected]
  }

  private persistOutput (): ElectionOutput {
    return { type: 'persist', state: this.persistent }
  }
}
