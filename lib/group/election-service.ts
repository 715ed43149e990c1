import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import { pbStream } from '@libp2p/utils'
import * as Digest from 'multiformats/hashes/digest'
import type { Connection, PrivateKey, Stream } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import type { Clock, ClockTimer } from '../clock.ts'
import { EdgelinkError } from '../errors.ts'
import { heartbeatStretch } from '../gossip/status.ts'
import { ElectionReply, ElectionRequest } from '../link/link.ts'
import type { Logger } from '../logger.ts'
import { Mutex, withTimeout } from '../util.ts'
import { ElectionCore, type ElectionOutput, type ElectionState, type RosterView, type VoteRefusal } from './election.ts'
import { signVote, validVoters } from './leadership.ts'
import type { RosterData } from './roster.ts'

export const ELECTION_PROTOCOL = '/edgelink/election/1.0.0'
const MAX_ELECTION_MESSAGE = 8 * 1024

export interface ElectionContext {
  readonly id: string
  readonly key: PrivateKey
  readonly clock: Clock
  readonly log: Logger
  node(): Libp2p | undefined
  roster(): RosterData | undefined
  clusterExists(): boolean
  isMember(id: string): boolean
  /** Durably stores the election state; resolves before any message that depends on it leaves. */
  persist(state: ElectionState): Promise<void>
  /** This host won `term`: sign and adopt a roster naming it leader, with `votes` as proof. */
  becomeLeader(term: number, votes: Uint8Array[]): Promise<void>
  /** This host stopped leading. */
  steppedDown(term: number): void
}

/**
 * Wires the pure {@link ElectionCore} to the mesh: vote requests and hand-overs on
 * {@link ELECTION_PROTOCOL}, every vote signed by its voter so the new leader's roster carries
 * a proof any member can check. Calls into the core are serialised; a `persist` output is stored
 * before anything else that call produced is sent.
 */
export class ElectionService {
  private readonly ctx: ElectionContext
  private readonly timeouts: { electionTimeoutMin: number, electionTimeoutMax: number }
  private core?: ElectionCore
  private readonly mutex = new Mutex()
  private timer?: ClockTimer
  private running = false
  /** Signed votes received in the current candidacy, by voter. */
  private votes = new Map<string, Uint8Array>()
  private votesTerm = 0
  /** The certificate a transfer to this host came with (the old leader's signed vote). */
  private certificate?: { term: number, from: string, vote: Uint8Array }

  constructor (ctx: ElectionContext, timeouts: { electionTimeoutMin: number, electionTimeoutMax: number }) {
    this.ctx = ctx
    this.timeouts = timeouts
  }

  async start (persisted: ElectionState | undefined): Promise<void> {
    this.running = true
    await this.ctx.node()?.handle(ELECTION_PROTOCOL, (s, c) => { void this.onRequest(s, c) }, { maxInboundStreams: 16 })
    this.persisted = persisted
    this.rosterChanged()
  }

  private persisted?: ElectionState

  stop (): void {
    this.running = false
    if (this.timer != null) this.ctx.clock.clearTimeout(this.timer)
  }

  /** The state to keep on disk (term never decreases, one vote per term). */
  get state (): ElectionState | undefined { return this.core?.persistent ?? this.persisted }

  get role (): string { return this.core?.role ?? 'follower' }

  private view (): RosterView | undefined {
    const r = this.ctx.roster()
    if (r == null) return undefined
    return { term: r.term, version: r.version, leader: r.leader, members: r.members.map(m => m.id), clusterExists: this.ctx.clusterExists() }
  }

  /** Call after every roster or cluster change. */
  rosterChanged (): void {
    void this.call(now => {
      const view = this.view()
      if (view == null) {
        this.core = undefined
        return []
      }
      if (this.core == null) {
        this.core = new ElectionCore({ self: this.ctx.id, ...this.timeouts, stretch: heartbeatStretch }, this.persisted, view, now)
        return []
      }
      return this.core.observeRoster(view, now)
    })
  }

  /** The leader spoke (a status heartbeat from it arrived). */
  heard (sender: string): void {
    if (this.core == null || sender !== this.core.leader) return
    void this.call(now => this.core?.heardFromLeader(sender, now) ?? [])
  }

  /** Hands leadership to `target` (this host must lead). Resolves once the certificate is delivered. */
  async transfer (target: string, signal?: AbortSignal): Promise<void> {
    if (this.core == null) throw new EdgelinkError('NOT_LINKED')
    let sent: Promise<void> | undefined
    await this.call(now => {
      const outputs = this.core!.transferTo(target, now)
      return outputs
    }, out => {
      if (out.type === 'transfer') sent = this.sendTransfer(out, signal)
    })
    if (sent == null) throw new EdgelinkError('NOT_LEADER', 'the hand-over did not start')
    await sent
  }

  // ------------------------------------------------------------ core calls and outputs

  /** Runs one core call and then its outputs, in order, under the mutex. */
  private async call (fn: (now: number) => ElectionOutput[], hook?: (out: ElectionOutput) => void): Promise<void> {
    await this.mutex.run(async () => {
      if (!this.running) return
      const outputs = fn(this.ctx.clock.now())
      await this.apply(outputs, hook)
      this.schedule()
    })
  }

  private async apply (outputs: ElectionOutput[], hook?: (out: ElectionOutput) => void): Promise<void> {
    for (const out of outputs) {
      hook?.(out)
      switch (out.type) {
        case 'persist':
          await this.ctx.persist(out.state)
          break
        case 'requestVotes':
          if (out.request.term !== this.votesTerm) {
            this.votes = new Map()
            this.votesTerm = out.request.term
          }
          this.ctx.log.info({ term: out.request.term }, 'leader silent: asking for votes')
          for (const to of out.to) void this.requestVote(to, out.request)
          break
        case 'elected': {
          const votes: Uint8Array[] = []
          for (const v of out.voters) {
            if (v === this.ctx.id) votes.push(await signVote(this.ctx.key, this.ctx.roster()!.groupId, out.term, this.ctx.id, this.ctx.id))
            else if (v === out.transferFrom && this.certificate?.term === out.term) votes.push(this.certificate.vote)
            else if (this.votes.has(v)) votes.push(this.votes.get(v)!)
          }
          this.ctx.log.info({ term: out.term, voters: out.voters.length }, 'elected leader')
          // Outside the mutex: adopting the roster calls back into rosterChanged.
          setImmediate(() => { this.ctx.becomeLeader(out.term, votes).catch(err => { this.ctx.log.warn({ err: String(err) }, 'could not take leadership') }) })
          break
        }
        case 'steppedDown':
          this.ctx.steppedDown(out.term)
          break
        case 'transfer':
          break
      }
    }
  }

  private schedule (): void {
    if (this.timer != null) this.ctx.clock.clearTimeout(this.timer)
    const at = this.core?.nextDeadline()
    if (at == null || !this.running) return
    const due = Math.max(at, this.ctx.clock.now())
    this.timer = this.ctx.clock.setTimeout(() => {
      // Late by more than half the shortest timeout: this host's loop stalled, and the silence
      // was its own (see ElectionCore.stalled). Either way, heartbeats that arrived meanwhile are
      // read first (timers run before I/O in a loop turn): the tick waits for the next turn.
      const late = this.ctx.clock.now() - due
      if (late > this.timeouts.electionTimeoutMin / 2) {
        void this.call(now => { this.core?.stalled(late, now); return [] })
        return
      }
      setImmediate(() => { void this.call(now => this.core?.tick(now) ?? []) })
    }, due - this.ctx.clock.now())
  }

  // ------------------------------------------------------------ wire

  private async requestVote (to: string, req: { term: number, candidate: string, rosterTerm: number, rosterVersion: number, transferFrom?: string }): Promise<void> {
    const node = this.ctx.node()
    const r = this.ctx.roster()
    if (node == null || r == null) return
    try {
      const signal = withTimeout(Math.max(500, this.timeouts.electionTimeoutMin / 2))
      const stream = await node.dialProtocol(peerIdFromString(to), ELECTION_PROTOCOL, { signal })
      const pb = pbStream(stream, { maxDataLength: MAX_ELECTION_MESSAGE })
      const cert = req.transferFrom != null && this.certificate?.term === req.term ? this.certificate.vote : new Uint8Array(0)
      await pb.write(encodeRequest(r.groupId, req, cert, false), ElectionRequest, { signal })
      const reply = await pb.read(ElectionReply, { signal })
      await stream.close({ signal }).catch(() => {})
      let granted = reply.granted
      if (granted) {
        // Count a vote only if it is signed by the voter for this very candidacy.
        const ok = await validVoters([reply.vote], r.groupId, req.term, this.ctx.id)
        granted = ok.has(to)
        if (granted) this.votes.set(to, reply.vote)
      }
      const term = Number(reply.term)
      await this.call(now => this.core?.handleVoteReply({ term, voter: to, granted, reason: (reply.reason || undefined) as VoteRefusal | undefined }, now) ?? [])
    } catch (err: any) {
      this.ctx.log.debug({ to, err: String(err?.message ?? err) }, 'vote request failed')
    }
  }

  private async sendTransfer (t: { term: number, to: string, rosterTerm: number, rosterVersion: number }, outer?: AbortSignal): Promise<void> {
    const node = this.ctx.node()
    const r = this.ctx.roster()
    if (node == null || r == null) throw new EdgelinkError('NOT_STARTED')
    const vote = await signVote(this.ctx.key, r.groupId, t.term, t.to, this.ctx.id)
    const signal = withTimeout(10_000, outer)
    let stream: Stream
    try {
      stream = await node.dialProtocol(peerIdFromString(t.to), ELECTION_PROTOCOL, { signal })
    } catch (err) {
      throw new EdgelinkError('UNKNOWN_HOST', 'the new leader could not be reached', { cause: err })
    }
    const pb = pbStream(stream, { maxDataLength: MAX_ELECTION_MESSAGE })
    await pb.write(encodeRequest(r.groupId, { term: t.term, candidate: t.to, rosterTerm: t.rosterTerm, rosterVersion: t.rosterVersion, transferFrom: this.ctx.id }, vote, true), ElectionRequest, { signal })
    const reply = await pb.read(ElectionReply, { signal })
    await stream.close({ signal }).catch(() => {})
    if (!reply.granted) throw new EdgelinkError('HOST_NOT_READY', `the host refused the hand-over: ${reply.reason}`)
  }

  private async onRequest (stream: Stream, conn: Connection): Promise<void> {
    const from = conn.remotePeer.toString()
    const signal = withTimeout(5_000)
    const pb = pbStream(stream, { maxDataLength: MAX_ELECTION_MESSAGE })
    try {
      if (!this.ctx.isMember(from)) throw new EdgelinkError('NOT_MEMBER')
      const msg = await pb.read(ElectionRequest, { signal })
      const r = this.ctx.roster()
      if (r == null || Buffer.from(msg.groupId).toString('hex') !== r.groupId) throw new EdgelinkError('NOT_MEMBER')
      const candidate = idOf(msg.candidate)
      const term = Number(msg.term)
      let transferFrom: string | undefined
      if (msg.transferFrom.length > 0) {
        transferFrom = idOf(msg.transferFrom)
        // The certificate must be the old leader's own signed vote for this candidate in this term.
        const ok = await validVoters([msg.transferVote], r.groupId, term, candidate)
        if (!ok.has(transferFrom)) throw new EdgelinkError('BAD_SIGNATURE', 'invalid hand-over certificate')
      }
      let reply: ElectionReply = { term: 0n, granted: false, reason: '', vote: new Uint8Array(0) }
      if (msg.transfer) {
        if (candidate !== this.ctx.id || transferFrom !== from) throw new EdgelinkError('PROTOCOL_ERROR', 'a hand-over comes from the leader to its target')
        await this.call(now => {
          const res = this.core?.acceptTransfer({ term, from, to: candidate, rosterTerm: Number(msg.rosterTerm), rosterVersion: Number(msg.rosterVersion) }, now)
          if (res == null) return []
          if (res.accepted) this.certificate = { term, from, vote: msg.transferVote }
          reply = { term: BigInt(this.core?.term ?? 0), granted: res.accepted, reason: res.reason ?? '', vote: new Uint8Array(0) }
          return res.outputs
        })
      } else {
        if (candidate !== from) throw new EdgelinkError('PROTOCOL_ERROR', 'a candidate asks for itself')
        let granted = false
        await this.call(now => {
          const res = this.core?.handleVoteRequest({ term, candidate, rosterTerm: Number(msg.rosterTerm), rosterVersion: Number(msg.rosterVersion), ...(transferFrom != null ? { transferFrom } : {}) }, now)
          if (res == null) return []
          granted = res.reply.granted
          reply = { term: BigInt(res.reply.term), granted, reason: res.reply.reason ?? '', vote: new Uint8Array(0) }
          // `persist` comes first in these outputs and is stored before the reply below leaves.
          return res.outputs
        })
        if (granted) reply.vote = await signVote(this.ctx.key, r.groupId, term, candidate, this.ctx.id) as Uint8Array<ArrayBuffer>
      }
      await pb.write(reply, ElectionReply, { signal })
      await stream.close({ signal }).catch(() => {})
    } catch (err: any) {
      stream.abort(err)
    }
  }
}

function idOf (b: Uint8Array): string { return peerIdFromMultihash(Digest.decode(b)).toString() }

function encodeRequest (groupId: string, req: { term: number, candidate: string, rosterTerm: number, rosterVersion: number, transferFrom?: string }, cert: Uint8Array, transfer: boolean): ElectionRequest {
  const mh = (id: string): Uint8Array<ArrayBuffer> => peerIdFromString(id).toMultihash().bytes as Uint8Array<ArrayBuffer>
  return {
    groupId: Buffer.from(groupId, 'hex') as Uint8Array<ArrayBuffer>,
    term: BigInt(req.term),
    candidate: mh(req.candidate),
    rosterTerm: BigInt(req.rosterTerm),
    rosterVersion: BigInt(req.rosterVersion),
    transferFrom: req.transferFrom != null ? mh(req.transferFrom) : new Uint8Array(0),
    transferVote: cert as Uint8Array<ArrayBuffer>,
    transfer
  }
}
