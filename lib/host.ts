import { EventEmitter } from 'node:events'
import { arch, cpus, hostname, release, totalmem, type as osType } from 'node:os'
import { randomBytes } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { identify } from '@libp2p/identify'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Connection, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import { ipPort, ipPortOf, isLoopback, isWildcard, listenToMultiaddr, withoutPeer } from './addrs.ts'
import { EdgelinkError, isEdgelinkError } from './errors.ts'
import { openRoster, sanitizeFacts, signRoster, MAX_MEMBER_ADDRS, type Facts, type MemberInfo, type RosterData, type SignedRosterData } from './group/roster.ts'
import { loadOrCreateIdentity } from './identity.ts'
import { JoinRequest, JoinResponse, LeaveRequest, LeaveResponse, SignedRoster } from './link/link.ts'
import { JOIN_PROTOCOL, LEAVE_PROTOCOL, ROSTER_PROTOCOL, refusal, refuse, requestStream, rosterStream } from './link/protocol.ts'
import { computeProof, decodeToken, encodeToken, newId, newOtp, proofKey, verifyProof, type DecodedToken } from './link/token.ts'
import { resolveOptions, type HostOptions, type ResolvedOptions } from './options.ts'
import { Store, type ElectionRecord, type TokenRecord } from './store/index.ts'
import { hex, Mutex, throwIfAborted, WindowLimiter, withTimeout } from './util.ts'
import { VERSION } from './version.ts'
import type { ClockTimer } from './clock.ts'
import type { Logger } from './logger.ts'
import type { HostEvents, HostRow, LinkState, LinkStatus, LinkToken } from './types.ts'

export interface AbortOptions { signal?: AbortSignal }

/** Tokens stay on record this long after expiry so a late joiner hears "expired", not "unknown". */
const TOKEN_RECORD_GRACE = 10 * 60_000

/** How long roster changes are collected before one push to every member. */
const BROADCAST_DELAY = 15

interface CurrentToken { text: string, record: TokenRecord }

/**
 * One edge host: its identity, its store, its libp2p node and its place in a group.
 * Create it with {@link createHost}.
 */
export class Host extends EventEmitter<HostEvents> {
  /** This host's id (its libp2p peer id). */
  readonly id: string
  readonly peerId: PeerId
  readonly options: ResolvedOptions
  private readonly key: PrivateKey
  private readonly log: Logger
  private store?: Store
  private node?: Libp2p
  private roster?: SignedRosterData
  private election?: ElectionRecord
  private readonly tokens = new Map<string, TokenRecord>()
  private current?: CurrentToken
  private rotateTimer?: ClockTimer
  private generation = false
  private pinnedLeader?: string
  private linkState: { status: LinkState, errorMessage?: string, errorCode?: EdgelinkError['code'] } = { status: 'Pending' }
  private linking = false
  private readonly mutex = new Mutex()
  private readonly joinLimiter: WindowLimiter
  private readonly guests = new Map<string, ClockTimer>()
  private readonly lastSeen = new Map<string, number>()
  private advertised: string[] = []
  private reconnectTimer?: ClockTimer
  private broadcastQueued = false
  private readonly dialing = new Set<string>()
  private state: 'stopped' | 'starting' | 'started' | 'stopping' = 'stopped'

  constructor (key: PrivateKey, options: ResolvedOptions) {
    super()
    this.key = key
    this.options = options
    this.peerId = peerIdFromPrivateKey(key)
    this.id = this.peerId.toString()
    this.log = options.logger.child({ host: this.id.slice(-8) })
    this.joinLimiter = new WindowLimiter(options.joinRateLimit, options.joinRateWindow, options.clock)
  }

  // ---------------------------------------------------------------- lifecycle

  get started (): boolean { return this.state === 'started' }

  /** Opens the store, loads the group (if any) and starts listening. Idempotent. */
  async start (): Promise<void> {
    if (this.state !== 'stopped') return
    this.state = 'starting'
    try {
      this.store = await Store.open(this.options.dataDir)
      await this.loadState()
      this.node = await this.createNode()
      await this.node.start()
      this.advertised = this.computeAdvertised()
      await this.refreshOwnEntry()
      this.state = 'started'
      this.log.info({ addrs: this.advertised, linked: this.isLinked() }, 'host started')
      this.scheduleReconnect(0)
    } catch (err) {
      this.state = 'started'
      await this.stop().catch(() => {})
      throw err
    }
  }

  /** Closes every connection and the store. Idempotent; state on disk is already durable. */
  async stop (): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return
    this.state = 'stopping'
    const { clock } = this.options
    if (this.reconnectTimer != null) clock.clearTimeout(this.reconnectTimer)
    if (this.rotateTimer != null) clock.clearTimeout(this.rotateTimer)
    for (const t of this.guests.values()) clock.clearTimeout(t)
    this.guests.clear()
    await this.mutex.run(async () => {
      await this.node?.stop()
      await this.store?.close()
    })
    this.node = undefined
    this.store = undefined
    this.state = 'stopped'
  }

  /** Mesh multiaddrs other hosts dial (with this host's `/p2p/` id). */
  get multiaddrs (): Multiaddr[] {
    return this.advertised.map(a => multiaddr(`${a}/p2p/${this.id}`))
  }

  /** The underlying libp2p node, for services that build on the mesh. */
  get libp2p (): Libp2p {
    if (this.node == null) throw new EdgelinkError('NOT_STARTED')
    return this.node
  }

  // ---------------------------------------------------------------- queries

  /** The group id (hex), or undefined while this host is not in a group. */
  get groupId (): string | undefined { return this.roster?.roster.groupId }

  /** True when this host is in a group with at least one other host. */
  isLinked (): boolean { return (this.roster?.roster.members.length ?? 0) > 1 }

  /** True when this host leads its group. */
  isLeader (): boolean { return this.roster?.roster.leader === this.id }

  /** The current roster, signed by the leader. */
  rosterData (): RosterData | undefined { return this.roster?.roster }

  /** True while token generation is on. */
  get tokenGeneration (): boolean { return this.generation }

  /** The Linked Edge Hosts table: every member, leader first. Empty while this host is in no group. */
  hosts (): HostRow[] {
    const r = this.roster?.roster
    if (r == null) return []
    const rows = r.members.map(m => this.row(m, r))
    return rows.sort((a, b) => (a.role === 'leader' ? -1 : 0) - (b.role === 'leader' ? -1 : 0))
  }

  linkStatus (): LinkStatus {
    const s = this.linkState
    // A host that is in a group with others is linked, whichever side of the link it was on.
    const state = s.status === 'Pending' && this.isLinked() ? 'Completed' : s.status
    const status: LinkStatus = { status: state, peers: this.hosts() }
    if (s.errorMessage != null) status.errorMessage = s.errorMessage
    if (s.errorCode != null) status.errorCode = s.errorCode
    return status
  }

  private row (m: MemberInfo, r: RosterData): HostRow {
    const self = m.id === this.id
    const connected = !self && this.node != null && this.node.getConnections(peerIdFromString(m.id)).length > 0
    const ip = m.addrs.map(a => ipPortOf(a)?.ip).find(x => x != null) ?? ''
    return {
      id: m.id,
      ip,
      localUIPort: m.facts.apiPort,
      overlayIP: '',
      role: m.id === r.leader ? 'leader' : 'follower',
      nodeRole: 'unknown',
      status: 'Ready',
      contentSyncStatus: 'Synced',
      health: self || connected ? 'Healthy' : 'Unhealthy',
      config: {
        name: m.facts.name,
        hostname: m.facts.hostname,
        os: m.facts.os,
        arch: m.facts.arch,
        cpus: m.facts.cpus,
        memory: Number(m.facts.memory),
        version: m.facts.version
      },
      addrs: m.addrs,
      lastSeen: self || connected ? this.options.clock.now() : (this.lastSeen.get(m.id) ?? 0),
      self
    }
  }

  // ---------------------------------------------------------------- tokens

  /**
   * Returns the live link token, starting token generation (and a group led by this host) if
   * needed. While generation is on, an expired or used token is replaced by a new one.
   * `fresh: true` issues an additional token, for linking several hosts at once.
   */
  async generateLinkToken (options: AbortOptions & { fresh?: boolean } = {}): Promise<LinkToken> {
    this.assertStarted()
    throwIfAborted(options.signal)
    return await this.mutex.run(async () => {
      if (this.roster == null) await this.createGroup()
      if (!this.isLeader()) throw new EdgelinkError('NOT_LEADER', 'only the leader can generate link tokens')
      this.generation = true
      const now = this.options.clock.now()
      if (options.fresh !== true && this.current != null && isLive(this.current.record, now)) {
        return this.tokenView(this.current)
      }
      const token = await this.issueToken()
      if (options.fresh !== true) this.makeCurrent(token)
      return this.tokenView(token)
    })
  }

  /** Stops token generation: every live token dies at once. */
  async stopTokenGeneration (): Promise<void> {
    this.assertStarted()
    await this.mutex.run(async () => {
      this.generation = false
      this.current = undefined
      if (this.rotateTimer != null) this.options.clock.clearTimeout(this.rotateTimer)
      const now = this.options.clock.now()
      for (const t of this.tokens.values()) {
        if (isLive(t, now)) {
          t.burned = true
          await this.store!.putToken(t)
        }
      }
      this.emit('token:stopped')
    })
  }

  private async issueToken (): Promise<CurrentToken> {
    const now = this.options.clock.now()
    await this.pruneTokens(now)
    const live = [...this.tokens.values()].filter(t => isLive(t, now)).length
    if (live >= this.options.maxLiveTokens) throw new EdgelinkError('TOO_MANY_TOKENS', `already ${live} live tokens`)
    if (this.advertised.length === 0) throw new EdgelinkError('INVALID_ARGUMENT', 'this host has no address other hosts can dial; set an advertise address')
    const otp = newOtp()
    const tokenId = newId()
    const record: TokenRecord = {
      id: hex(tokenId),
      proofKey: proofKey(otp).toString('hex'),
      createdAt: now,
      expiresAt: now + this.options.tokenTtl,
      used: false,
      failures: 0,
      burned: false
    }
    const text = encodeToken({
      leader: this.peerId,
      addrs: this.advertised.slice(0, 16).map(a => multiaddr(a)),
      groupId: Buffer.from(this.roster!.roster.groupId, 'hex'),
      tokenId,
      expiresAt: record.expiresAt
    }, otp)
    otp.fill(0)
    await this.store!.putToken(record)
    this.tokens.set(record.id, record)
    this.log.info({ tokenId: record.id, expiresAt: record.expiresAt }, 'link token issued')
    return { text, record }
  }

  private makeCurrent (token: CurrentToken): void {
    const { clock } = this.options
    this.current = token
    if (this.rotateTimer != null) clock.clearTimeout(this.rotateTimer)
    this.rotateTimer = clock.setTimeout(() => { this.rotate() }, token.record.expiresAt - clock.now())
    this.emit('token:generated', { tokenId: token.record.id, expiresAt: token.record.expiresAt })
  }

  /** Replaces the current token when it expired or was used, while generation is on. */
  private rotate (): void {
    if (!this.generation || this.state !== 'started') return
    this.mutex.run(async () => {
      if (!this.generation || !this.isLeader()) return
      if (this.current != null && isLive(this.current.record, this.options.clock.now())) return
      this.makeCurrent(await this.issueToken())
    }).catch(err => { this.log.warn({ err: String(err) }, 'token rotation failed') })
  }

  private tokenView (t: CurrentToken): LinkToken {
    const left = Math.max(0, t.record.expiresAt - this.options.clock.now())
    return {
      token: t.text,
      tokenId: t.record.id,
      expiresAt: t.record.expiresAt,
      interval: Math.round(this.options.tokenTtl / 1000),
      remainingTime: Math.floor(left / 1000)
    }
  }

  private async pruneTokens (now: number): Promise<void> {
    const old = [...this.tokens.values()].filter(t => now > t.expiresAt + TOKEN_RECORD_GRACE)
    if (old.length === 0) return
    for (const t of old) this.tokens.delete(t.id)
    await this.store!.deleteTokens(old.map(t => t.id))
  }

  private hasLiveToken (): boolean {
    const now = this.options.clock.now()
    for (const t of this.tokens.values()) if (isLive(t, now)) return true
    return false
  }

  // ---------------------------------------------------------------- linking (follower side)

  /**
   * Links this host to the group of the leader that issued `token`. Resolves with the
   * `Completed` status once this host holds the group's roster; throws an {@link EdgelinkError}
   * naming the reason otherwise (the host is then unchanged).
   */
  async link (token: string, options: AbortOptions = {}): Promise<LinkStatus> {
    this.assertStarted()
    throwIfAborted(options.signal)
    if (this.linking) throw new EdgelinkError('BUSY', 'a link is already in progress on this host')
    this.linking = true
    try {
      const decoded = decodeToken(token)
      const leader = decoded.body.leader.toString()
      if (leader === this.id) throw new EdgelinkError('SELF_LINK', 'this token was issued by this host; paste it on another host')
      if (this.roster?.roster.groupId === hex(decoded.body.groupId) && this.roster.roster.members.some(m => m.id === this.id) && this.isLinked()) {
        throw new EdgelinkError('ALREADY_MEMBER', 'this host is already a member of that group')
      }
      if (this.isLinked()) throw new EdgelinkError('ALREADY_LINKED', 'this host is already linked to a group; unlink it first')
      this.setLinkState({ status: 'InProgress' })
      const signed = await this.join(decoded, options.signal)
      await this.mutex.run(async () => {
        await this.adoptRoster(signed, { replace: true })
      })
      this.setLinkState({ status: 'Completed' })
      this.log.info({ group: signed.roster.groupId, leader }, 'linked')
      this.scheduleReconnect(0)
      return this.linkStatus()
    } catch (err: any) {
      const e = isEdgelinkError(err) ? err : new EdgelinkError('PROTOCOL_ERROR', String(err?.message ?? err), { cause: err })
      this.setLinkState({ status: 'Failed', errorMessage: e.message, errorCode: e.code })
      throw e
    } finally {
      this.linking = false
      this.pinnedLeader = undefined
    }
  }

  private setLinkState (s: typeof this.linkState): void {
    this.linkState = s
    this.emit('link:status', this.linkStatus())
  }

  private async join (token: DecodedToken, outer?: AbortSignal): Promise<SignedRosterData> {
    const { body } = token
    const leader = body.leader
    this.pinnedLeader = leader.toString()
    const signal = withTimeout(this.options.requestTimeout, outer)
    const stream = await this.dialLeader(token, signal)
    try {
      const pb = requestStream(stream)
      const key = proofKey(token.otp)
      await pb.write({
        tokenId: body.tokenId as Uint8Array<ArrayBuffer>,
        proof: computeProof(key, body.tokenId, leader, this.peerId) as Uint8Array<ArrayBuffer>,
        facts: this.facts(),
        addrs: this.advertised.map(a => multiaddr(a).bytes as Uint8Array<ArrayBuffer>),
        linked: this.isLinked(),
        inCluster: false
      }, JoinRequest, { signal })
      let res: JoinResponse
      try {
        res = await pb.read(JoinResponse, { signal })
      } catch (err) {
        throw this.networkError(err, token, signal)
      }
      await stream.close().catch(() => {})
      const refused = refusal(res)
      if (refused != null) throw refused
      if (res.roster == null) throw new EdgelinkError('PROTOCOL_ERROR', 'the leader sent no roster')
      const signed = await openRoster(SignedRoster.encode(res.roster))
      const r = signed.roster
      if (r.leader !== leader.toString() || r.groupId !== hex(body.groupId) || !r.members.some(m => m.id === this.id)) {
        throw new EdgelinkError('PROTOCOL_ERROR', 'the leader sent a roster for another group')
      }
      return signed
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }

  private async dialLeader (token: DecodedToken, signal: AbortSignal): Promise<Stream> {
    const leader = token.body.leader.toString()
    let last: unknown
    for (const addr of token.body.addrs) {
      throwIfAborted(signal)
      const target = addr.toString().includes('/p2p/') ? addr : addr.encapsulate(`/p2p/${leader}`)
      try {
        const stream = await this.node!.dialProtocol(target, JOIN_PROTOCOL, { signal })
        return stream
      } catch (err) {
        last = err
        const mapped = this.networkError(err, token, signal)
        if (mapped.code !== 'LEADER_UNREACHABLE') throw mapped
      }
    }
    throw this.networkError(last, token, signal)
  }

  /** Names a network failure while talking to the leader. */
  private networkError (err: any, token: DecodedToken, signal: AbortSignal): EdgelinkError {
    if (isEdgelinkError(err)) return err
    const text = `${err?.name ?? ''} ${err?.message ?? ''} ${err?.cause?.message ?? ''} ${(err?.errors ?? []).map((e: any) => `${e?.name} ${e?.message}`).join(' ')}`
    if (/UnexpectedPeer|InvalidPeerId|does not match expected|peer id mismatch/i.test(text)) {
      return new EdgelinkError('WRONG_LEADER', 'the host at the token\'s address is not the leader that issued the token', { cause: err })
    }
    if (this.options.clock.now() >= token.body.expiresAt) {
      return new EdgelinkError('TOKEN_EXPIRED', 'the token has expired', { cause: err })
    }
    if (/ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|NoValidAddresses|DialError/i.test(text) || (signal.aborted && !/reset|abort|EOF|closed/i.test(text))) {
      return new EdgelinkError('LEADER_UNREACHABLE', `the leader could not be reached at ${token.body.addrs.map(a => a.toString()).join(', ')}`, { cause: err })
    }
    if (signal.aborted) return new EdgelinkError('TIMEOUT', 'the leader did not answer in time', { cause: err })
    return new EdgelinkError('LEADER_REFUSED', 'the leader closed the connection: token generation may be stopped there, or the token is no longer live', { cause: err })
  }

  // ---------------------------------------------------------------- linking (leader side)

  private async onJoin (stream: Stream, conn: Connection): Promise<void> {
    const remote = conn.remotePeer
    const signal = withTimeout(this.options.requestTimeout)
    const pb = requestStream(stream)
    try {
      const ip = ipPortOf(conn.remoteAddr)?.ip ?? conn.remoteAddr.toString()
      let res: JoinResponse
      if (!this.joinLimiter.take(ip)) {
        this.log.warn({ peer: remote.toString(), ip }, 'join rate limit hit')
        res = { ...refuse(new EdgelinkError('RATE_LIMITED')) }
      } else {
        const req = await pb.read(JoinRequest, { signal, limits: { addrs: MAX_MEMBER_ADDRS } } as any)
        res = await this.mutex.run(async () => await this.admit(remote, req, conn))
      }
      await pb.write(res, JoinResponse, { signal })
      await stream.close({ signal })
    } catch (err: any) {
      this.log.debug({ peer: remote.toString(), err: String(err?.message ?? err) }, 'join exchange failed')
      stream.abort(err)
    }
  }

  /** Decides one join request. Runs under the mutex so token use and roster version are atomic. */
  private async admit (remote: PeerId, req: JoinRequest, conn: Connection): Promise<JoinResponse> {
    const id = remote.toString()
    const fail = (code: EdgelinkError['code'], message?: string): JoinResponse => {
      this.log.info({ peer: id, code }, 'join refused')
      return refuse(new EdgelinkError(code, message))
    }
    if (!this.isLeader()) return fail('NOT_LEADER', 'this host is not the leader')
    const record = this.tokens.get(hex(req.tokenId))
    const now = this.options.clock.now()
    if (record == null) return fail('TOKEN_UNKNOWN')
    if (record.burned) return fail(record.failures >= this.options.maxProofFailures ? 'TOKEN_BURNED' : 'TOKEN_REVOKED')
    if (record.used) return fail('TOKEN_USED')
    if (now >= record.expiresAt) return fail('TOKEN_EXPIRED')
    if (!verifyProof(Buffer.from(record.proofKey, 'hex'), req.proof, req.tokenId, this.peerId, remote)) {
      record.failures++
      if (record.failures >= this.options.maxProofFailures) record.burned = true
      await this.store!.putToken(record)
      this.log.warn({ peer: id, tokenId: record.id, failures: record.failures }, 'bad join proof')
      if (record.burned) {
        if (this.current?.record === record) this.rotate()
        return fail('TOKEN_BURNED', `the token was revoked after ${record.failures} bad proofs`)
      }
      return fail('BAD_PROOF')
    }
    if (this.roster!.roster.members.some(m => m.id === id)) return fail('ALREADY_MEMBER')
    if (req.inCluster) return fail('IN_CLUSTER', 'the host is assigned to a cluster; only idle hosts can link')
    if (req.linked) return fail('ALREADY_LINKED', 'the host is already linked to another group; unlink it there first')
    let addrs: string[]
    try {
      addrs = req.addrs.map(a => multiaddr(a).toString()).filter(a => ipPortOf(a) != null)
    } catch {
      return fail('PROTOCOL_ERROR', 'malformed address')
    }
    if (addrs.length === 0) {
      // Fall back to the address the connection came from.
      const from = ipPortOf(conn.remoteAddr)
      if (from != null) addrs = [ipPort(from.ip, from.port)]
    }
    record.used = true
    record.usedBy = id
    const r = this.roster!.roster
    const next: RosterData = {
      ...r,
      version: r.version + 1,
      members: [...r.members, { id, addrs, facts: sanitizeFacts(req.facts), joinedAt: now }],
      removed: r.removed.filter(x => x !== id),
      issuedAt: now
    }
    await this.commitRoster(next, record)
    if (this.current?.record === record) this.rotate()
    this.log.info({ peer: id, version: next.version }, 'host linked')
    return { code: '', message: '', roster: SignedRoster.decode(this.roster!.bytes) }
  }

  // ---------------------------------------------------------------- unlinking

  /**
   * Unlinks `hostId`. On the leader: any follower. On a follower: only itself (the leader is told
   * and must be reachable). Only hosts that are `Ready` (not In-Use) can be unlinked.
   */
  async unlink (hostId: string, options: AbortOptions = {}): Promise<void> {
    this.assertStarted()
    throwIfAborted(options.signal)
    const r = this.roster?.roster
    if (r == null || !this.isLinked()) throw new EdgelinkError('NOT_LINKED')
    const target = r.members.find(m => m.id === hostId)
    if (target == null) throw new EdgelinkError('UNKNOWN_HOST', `no host ${hostId} in this group`)
    if (hostId === r.leader) throw new EdgelinkError('LEADER_HAS_FOLLOWERS', 'the leader cannot be unlinked while it has followers; unlink the followers first')
    if (this.isLeader()) {
      await this.mutex.run(async () => { await this.removeMember(hostId, 'unlinked by the leader') })
      return
    }
    if (hostId !== this.id) throw new EdgelinkError('NOT_LEADER', 'a follower can unlink only itself')
    const signal = withTimeout(this.options.requestTimeout, options.signal)
    let stream: Stream
    try {
      stream = await this.node!.dialProtocol(peerIdFromString(r.leader), LEAVE_PROTOCOL, { signal })
    } catch (err) {
      throw new EdgelinkError('LEADER_UNREACHABLE', 'the leader could not be reached; it must be online to unlink a follower', { cause: err })
    }
    let res: LeaveResponse
    try {
      const pb = requestStream(stream)
      await pb.write({ groupId: Buffer.from(r.groupId, 'hex') as Uint8Array<ArrayBuffer> }, LeaveRequest, { signal })
      res = await pb.read(LeaveResponse, { signal })
      await stream.close().catch(() => {})
    } catch (err) {
      stream.abort(err as Error)
      throw new EdgelinkError(signal.aborted ? 'TIMEOUT' : 'LEADER_UNREACHABLE', 'the leader did not confirm the unlink', { cause: err })
    }
    const refused = refusal(res)
    if (refused != null) throw refused
    // The leader also pushes the new roster; leaving here makes the outcome independent of it.
    await this.mutex.run(async () => { if (this.roster?.roster.groupId === r.groupId) await this.resetToIdle('unlinked itself') })
  }

  private async onLeave (stream: Stream, conn: Connection): Promise<void> {
    const signal = withTimeout(this.options.requestTimeout)
    const pb = requestStream(stream)
    try {
      const req = await pb.read(LeaveRequest, { signal })
      const id = conn.remotePeer.toString()
      const res = await this.mutex.run(async (): Promise<LeaveResponse> => {
        const r = this.roster?.roster
        if (r == null || !this.isLeader()) return refuse(new EdgelinkError('NOT_LEADER'))
        if (hex(req.groupId) !== r.groupId || !r.members.some(m => m.id === id)) return refuse(new EdgelinkError('NOT_MEMBER'))
        await this.removeMember(id, 'unlinked itself', { hangUp: false })
        return { code: '', message: '' }
      })
      await pb.write(res, LeaveResponse, { signal })
      await stream.close({ signal })
      if (res.code === '') await this.node?.hangUp(conn.remotePeer).catch(() => {})
    } catch (err: any) {
      stream.abort(err)
    }
  }

  /** Leader only, under the mutex. */
  private async removeMember (id: string, reason: string, opts: { hangUp: boolean } = { hangUp: true }): Promise<void> {
    const r = this.roster!.roster
    const now = this.options.clock.now()
    const next: RosterData = {
      ...r,
      version: r.version + 1,
      members: r.members.filter(m => m.id !== id),
      removed: [...r.removed.filter(x => x !== id), id].slice(-this.options.maxTombstones),
      issuedAt: now
    }
    await this.commitRoster(next)
    this.log.info({ peer: id, reason }, 'host unlinked')
    // Tell the removed host before closing its connections, so it knows it is idle again.
    await this.pushRoster(peerIdFromString(id)).catch(() => {})
    if (opts.hangUp) await this.node?.hangUp(peerIdFromString(id)).catch(() => {})
  }

  // ---------------------------------------------------------------- roster

  private async createGroup (): Promise<void> {
    const now = this.options.clock.now()
    const roster: RosterData = {
      groupId: randomBytes(16).toString('hex'),
      version: 1,
      term: 1,
      leader: this.id,
      members: [this.ownEntry(now)],
      removed: [],
      issuedAt: now
    }
    await this.commitRoster(roster)
    this.log.info({ group: roster.groupId }, 'group created with this host as leader')
  }

  private ownEntry (joinedAt: number): MemberInfo {
    return { id: this.id, addrs: this.advertised, facts: this.facts(), joinedAt }
  }

  /** The leader re-signs its own entry when its addresses or facts changed since the last start. */
  private async refreshOwnEntry (): Promise<void> {
    if (!this.isLeader()) return
    await this.mutex.run(async () => {
      const r = this.roster!.roster
      const me = r.members.find(m => m.id === this.id)!
      const fresh = this.ownEntry(me.joinedAt)
      if (JSON.stringify(fresh, bigintJson) === JSON.stringify(me, bigintJson)) return
      await this.commitRoster({ ...r, version: r.version + 1, members: r.members.map(m => m.id === this.id ? fresh : m), issuedAt: this.options.clock.now() })
    })
  }

  /** Leader only: signs, stores (atomically with `token`), adopts and broadcasts a roster. */
  private async commitRoster (next: RosterData, token?: TokenRecord): Promise<void> {
    const signed = await signRoster(this.key, next)
    const election: ElectionRecord = { term: next.term, leaderId: next.leader, rosterVersion: next.version, votedFor: this.election?.votedFor }
    await this.store!.putRoster(signed.bytes, election, token)
    const before = this.roster?.roster
    this.roster = signed
    this.election = election
    this.announceChanges(before, next)
    this.scheduleBroadcast()
  }

  /**
   * Adopts a roster received from the group (under the mutex). Accepts only rosters signed by
   * this group's leader and newer than the one held; with `replace`, the roster of a new group.
   */
  private async adoptRoster (signed: SignedRosterData, opts: { replace?: boolean } = {}): Promise<void> {
    const next = signed.roster
    const cur = this.roster?.roster
    if (!opts.replace && cur != null) {
      if (next.groupId !== cur.groupId || next.leader !== cur.leader) return
      if (next.version <= cur.version) return
    }
    if (!next.members.some(m => m.id === this.id)) {
      await this.resetToIdle('unlinked by the leader')
      return
    }
    if (opts.replace && cur != null && cur.groupId !== next.groupId) {
      // A solo group (this host generated a token but nobody joined) is dropped for the new one.
      await this.store!.clearGroup()
      this.tokens.clear()
      this.current = undefined
      this.generation = false
      this.announceChanges(cur, undefined)
    }
    const election: ElectionRecord = { term: next.term, leaderId: next.leader, rosterVersion: next.version, votedFor: this.election?.votedFor }
    await this.store!.putRoster(signed.bytes, election)
    const before = opts.replace && cur?.groupId !== next.groupId ? undefined : cur
    this.roster = signed
    this.election = election
    this.announceChanges(before, next)
    for (const m of before?.members ?? []) {
      if (!next.members.some(x => x.id === m.id)) this.node?.hangUp(peerIdFromString(m.id)).catch(() => {})
    }
    this.scheduleReconnect(0)
  }

  private announceChanges (before: RosterData | undefined, after: RosterData | undefined): void {
    const had = new Set(before?.members.map(m => m.id) ?? [])
    const has = new Set(after?.members.map(m => m.id) ?? [])
    if (after != null) {
      for (const m of after.members) if (!had.has(m.id)) this.emit('host:linked', this.row(m, after))
      this.emit('roster', { version: after.version, members: after.members.map(m => m.id) })
    }
    for (const id of had) {
      if (!has.has(id)) this.emit('host:unlinked', { id, reason: 'removed from the roster' })
    }
  }

  /** Forgets the group: this host is idle again and may link anywhere. Under the mutex. */
  private async resetToIdle (reason: string): Promise<void> {
    const before = this.roster?.roster
    await this.store!.clearGroup()
    this.roster = undefined
    this.election = undefined
    this.tokens.clear()
    this.current = undefined
    this.generation = false
    this.linkState = { status: 'Pending' }
    this.log.info({ reason }, 'this host is no longer linked')
    if (before != null) {
      for (const m of before.members) {
        if (m.id === this.id) continue
        this.emit('host:unlinked', { id: m.id, reason })
        this.node?.hangUp(peerIdFromString(m.id)).catch(() => {})
      }
      this.emit('host:unlinked', { id: this.id, reason })
    }
    this.emit('link:status', this.linkStatus())
  }

  private scheduleBroadcast (): void {
    if (this.broadcastQueued) return
    this.broadcastQueued = true
    // Coalesce a burst of joins into one push of the newest roster. Joiners get the roster in the
    // join answer, so the delay only affects when the other members see them.
    setTimeout(() => {
      this.broadcastQueued = false
      if (this.node == null || this.roster == null) return
      for (const conn of this.node.getConnections()) {
        if (this.isMember(conn.remotePeer.toString())) this.pushRoster(conn.remotePeer).catch(() => {})
      }
    }, BROADCAST_DELAY).unref()
  }

  private async pushRoster (peer: PeerId): Promise<void> {
    if (this.node == null || this.roster == null) return
    const signal = withTimeout(this.options.requestTimeout)
    const stream = await this.node.dialProtocol(peer, ROSTER_PROTOCOL, { signal })
    try {
      await rosterStream(stream).write(this.roster.bytes, { signal })
      await stream.close({ signal })
    } catch (err: any) {
      stream.abort(err)
    }
  }

  private async onRoster (stream: Stream, conn: Connection): Promise<void> {
    const signal = withTimeout(this.options.requestTimeout)
    try {
      const from = conn.remotePeer.toString()
      // Only members (and, on an unlinked host, its former group) may tell us about the roster.
      if (!this.isMember(from)) throw new EdgelinkError('NOT_MEMBER')
      const bytes = await rosterStream(stream).read({ signal })
      const cur = this.roster?.roster
      const signed = await openRoster(bytes.subarray(), r => cur != null && r.groupId === cur.groupId && r.version <= cur.version)
      if (signed != null) await this.mutex.run(async () => { await this.adoptRoster(signed) })
      await stream.close({ signal }).catch(() => {})
    } catch (err: any) {
      this.log.debug({ peer: conn.remotePeer.toString(), err: String(err?.message ?? err) }, 'roster push rejected')
      stream.abort(err)
    }
  }

  // ---------------------------------------------------------------- connections

  private isMember (id: string): boolean {
    return id !== this.id && (this.roster?.roster.members.some(m => m.id === id) ?? false)
  }

  private isTombstoned (id: string): boolean {
    return this.roster?.roster.removed.includes(id) ?? false
  }

  /**
   * The connection gater's single rule. Members always; the pinned leader while this host links;
   * on the leader, a bounded number of guests while a token is live (they can only join), and
   * recently unlinked hosts (so they learn they were unlinked).
   */
  private mayConnect (peer: PeerId, direction: 'in' | 'out'): boolean {
    const id = peer.toString()
    if (this.isMember(id)) return true
    if (direction === 'out') return this.pinnedLeader === id || (this.isLeader() && this.isTombstoned(id))
    if (!this.isLeader()) return false
    if (this.guests.size >= this.options.maxGuests) return false
    return this.hasLiveToken() || this.isTombstoned(id)
  }

  private onConnectionOpen (conn: Connection): void {
    const id = conn.remotePeer.toString()
    this.lastSeen.set(id, this.options.clock.now())
    if (this.isMember(id)) {
      // The leader brings a (re)connecting member up to date; members need not echo it back.
      if (this.isLeader() && this.node!.getConnections(conn.remotePeer).length === 1) this.pushRoster(conn.remotePeer).catch(() => {})
      const r = this.roster?.roster
      const m = r?.members.find(x => x.id === id)
      if (m != null && r != null) this.emit('host:health', this.row(m, r))
      return
    }
    if (this.pinnedLeader === id) return
    // A guest: bounded time, then closed unless it became a member.
    if (this.isTombstoned(id)) this.pushRoster(conn.remotePeer).catch(() => {})
    if (!this.guests.has(id)) {
      const timer = this.options.clock.setTimeout(() => {
        this.guests.delete(id)
        if (!this.isMember(id)) this.node?.hangUp(conn.remotePeer).catch(() => {})
      }, this.options.guestTimeout)
      this.guests.set(id, timer)
    }
  }

  private onConnectionClose (conn: Connection): void {
    const id = conn.remotePeer.toString()
    this.lastSeen.set(id, this.options.clock.now())
    if (this.node?.getConnections(conn.remotePeer).length === 0) {
      const t = this.guests.get(id)
      if (t != null) this.options.clock.clearTimeout(t)
      this.guests.delete(id)
      const r = this.roster?.roster
      const m = r?.members.find(x => x.id === id)
      if (m != null && r != null) this.emit('host:health', this.row(m, r))
    }
  }

  private scheduleReconnect (delay: number): void {
    const { clock } = this.options
    if (this.reconnectTimer != null) clock.clearTimeout(this.reconnectTimer)
    this.reconnectTimer = clock.setTimeout(() => {
      this.reconnect().finally(() => {
        if (this.state === 'started') this.scheduleReconnect(this.options.reconnectInterval)
      }).catch(() => {})
    }, delay)
  }

  /** Dials every member this host has no connection to. */
  private async reconnect (): Promise<void> {
    const node = this.node
    const r = this.roster?.roster
    if (node == null || r == null || this.state !== 'started') return
    await Promise.allSettled(r.members.filter(m => m.id !== this.id).map(async m => {
      // One side of each follower pair dials (the smaller id), so a burst of joins does not open
      // every connection twice; everyone dials the leader and the leader dials everyone.
      if (!this.isLeader() && m.id !== r.leader && this.id > m.id) return
      if (this.dialing.has(m.id)) return
      const peer = peerIdFromString(m.id)
      if (node.getConnections(peer).length > 0) return
      const addrs = m.addrs.map(a => multiaddr(`${a}/p2p/${m.id}`))
      if (addrs.length === 0) return
      this.dialing.add(m.id)
      try {
        await node.dial(addrs, { signal: withTimeout(this.options.requestTimeout) })
      } finally {
        this.dialing.delete(m.id)
      }
    }))
  }

  // ---------------------------------------------------------------- wiring

  private async loadState (): Promise<void> {
    const bytes = await this.store!.getRoster()
    if (bytes != null) {
      this.roster = await openRoster(bytes)
      this.election = await this.store!.getElection()
    }
    for (const t of await this.store!.listTokens()) this.tokens.set(t.id, t)
  }

  private async createNode (): Promise<Libp2p> {
    const o = this.options
    const listen = o.listen.map(listenToMultiaddr)
    const listenPort = ipPortOf(listen[0])?.port ?? 0
    const announce = o.advertise.length > 0 && listenPort !== 0 ? o.advertise.map(ip => ipPort(ip, listenPort)) : undefined
    return await createLibp2p({
      privateKey: this.key,
      start: false,
      addresses: { listen, ...(announce != null ? { announce } : {}) },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: {
        denyDialPeer: (peer) => !this.mayConnect(peer, 'out'),
        denyInboundEncryptedConnection: (peer) => !this.mayConnect(peer, 'in'),
        denyOutboundEncryptedConnection: (peer) => !this.mayConnect(peer, 'out'),
        // Only dial what the roster and tokens say; nothing libp2p learns elsewhere.
        denyDialMultiaddr: () => false
      },
      connectionManager: {
        // Linking many hosts at once comes from many IPs but, in tests, one; allow bursts.
        inboundConnectionThreshold: 200,
        maxIncomingPendingConnections: 200,
        maxConnections: 1024
      },
      services: {
        identify: identify(),
        ping: ping()
      }
    }).then(async node => {
      await node.handle(JOIN_PROTOCOL, (s, c) => { void this.onJoin(s, c) }, { maxInboundStreams: 4 })
      await node.handle(LEAVE_PROTOCOL, (s, c) => { void this.onLeave(s, c) }, { maxInboundStreams: 4 })
      await node.handle(ROSTER_PROTOCOL, (s, c) => { void this.onRoster(s, c) }, { maxInboundStreams: 8, maxOutboundStreams: 8 })
      node.addEventListener('connection:open', (e) => { this.onConnectionOpen(e.detail) })
      node.addEventListener('connection:close', (e) => { this.onConnectionClose(e.detail) })
      return node
    })
  }

  /** Addresses for tokens and the roster: advertise IPs, else the listen addresses (wildcards expanded, loopback dropped). */
  private computeAdvertised (): string[] {
    const node = this.node!
    const bound = node.getMultiaddrs().map(withoutPeer)
    const port = ipPortOf(bound[0] ?? '')?.port
    if (this.options.advertise.length > 0 && port != null) {
      return this.options.advertise.map(ip => ipPort(ip, port))
    }
    const listensWildcard = this.options.listen.map(listenToMultiaddr).some(a => isWildcard(ipPortOf(a)?.ip ?? ''))
    const all = [...new Set(bound)].filter(a => ipPortOf(a) != null)
    const external = all.filter(a => !isLoopback(ipPortOf(a)!.ip) && !ipPortOf(a)!.ip.startsWith('fe80'))
    return listensWildcard && external.length > 0 ? external : all
  }

  private facts (): Facts {
    return {
      name: this.options.name,
      hostname: hostname(),
      os: `${osType()} ${release()}`,
      arch: arch(),
      cpus: cpus().length,
      memory: BigInt(totalmem()),
      apiPort: this.options.apiPort,
      version: this.options.version
    }
  }

  private assertStarted (): void {
    if (this.state !== 'started') throw new EdgelinkError('NOT_STARTED', 'the host is not started')
  }
}

function isLive (t: TokenRecord, now: number): boolean {
  return !t.used && !t.burned && now < t.expiresAt
}

function bigintJson (_k: string, v: unknown): unknown { return typeof v === 'bigint' ? v.toString() : v }

/**
 * Creates a host: loads (or creates) its identity and store under `options.dataDir` and, unless
 * `start: false`, starts it.
 */
export async function createHost (options: HostOptions): Promise<Host> {
  const resolved = resolveOptions(options, VERSION)
  const key = await loadOrCreateIdentity(resolved.dataDir)
  const host = new Host(key, resolved)
  if (resolved.start) await host.start()
  return host
}
