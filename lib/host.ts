import { EventEmitter } from 'node:events'
import { statfs } from 'node:fs/promises'
import { arch, cpus, hostname, loadavg, release, totalmem, type as osType } from 'node:os'
import { createHash, randomBytes } from 'node:crypto'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { peerIdFromMultihash, peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import * as Digest from 'multiformats/hashes/digest'
import { tcp, type TCPSocketOptions } from '@libp2p/tcp'
import type { TcpNetConnectOpts } from 'node:net'
import { meshYamux } from './yamux.ts'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Connection, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import { ipPort, ipPortOf, isLoopback, isWildcard, listenToMultiaddr, withoutPeer } from './addrs.ts'
import { EdgelinkError, isEdgelinkError } from './errors.ts'
import { ContentService } from './content/service.ts'
import type { ContentInfo, ContentKind } from './content/types.ts'
import { DocumentService, type DocRecord } from './gossip/documents.ts'
import { StatusService } from './gossip/status.ts'
import type { HostStatus } from './gossip/gossip.ts'
import { ElectionService } from './group/election-service.ts'
import { checkRosterSuccession } from './group/leadership.ts'
import { applyAssignments, authorize, checkClusterPlan, controlPlaneOf, EMPTY_SETTINGS, nodeRoleOf, parseCluster, parseSettings, workersOf, type ClusterDefinition, type GroupSettings, type MachinePool } from './group/state.ts'
import { openRoster, sanitizeFacts, signRoster, MAX_MEMBER_ADDRS, type Facts, type MemberInfo, type RosterData, type SignedRosterData } from './group/roster.ts'
import { loadOrCreateIdentity } from './identity.ts'
import { AdmitRequest, AdmitResponse, JoinRequest, JoinResponse, LeaveRequest, LeaveResponse, SignedRoster } from './link/link.ts'
import { ADMIT_PROTOCOL, JOIN_PROTOCOL, LEAVE_PROTOCOL, ROSTER_PROTOCOL, refusal, refuse, requestStream, rosterStream } from './link/protocol.ts'
import { computeProof, decodeToken, encodeToken, newId, newOtp, proofKey, verifyProof, type DecodedToken } from './link/token.ts'
import { resolveOptions, type HostOptions, type ResolvedOptions } from './options.ts'
import { Store, type ElectionRecord, type TokenRecord } from './store/index.ts'
import { hex, Mutex, throwIfAborted, WindowLimiter, withTimeout } from './util.ts'
import { meshNoise } from './noise-crypto.ts'
import { VERSION } from './version.ts'
import type { ClockTimer } from './clock.ts'
import type { Logger } from './logger.ts'
import type { HostEvents, HostRow, LinkState, LinkStatus, LinkToken } from './types.ts'

export interface AbortOptions { signal?: AbortSignal }

/** Tokens stay on record this long after expiry so a late joiner hears "expired", not "unknown". */
const TOKEN_RECORD_GRACE = 10 * 60_000

const EMPTY = new Uint8Array(0)

/** How long roster changes are collected before one push to every member. */
const BROADCAST_DELAY = 15

interface CurrentToken { text: string, record: TokenRecord }

/**
 * Totals a host counted, as plain numbers for monitoring ({@link Host.stats}). Counters only go
 * up; link counters count since the Host object was made, the others since it last started.
 */
export interface HostStats {
  link: {
    /** `link()` calls that got past argument checks (this host as the follower). */
    attempts: number
    /** Their outcomes: `Completed`, or the error code (`TOKEN_USED`, `LEADER_UNREACHABLE`, …). */
    results: Record<string, number>
    /** Join requests this host answered as the token's issuer: `admitted`, or the refusal code. */
    joins: Record<string, number>
  }
  gossip: {
    /** Status heartbeats: published, accepted from members (newer than the last), rejected by the validator. */
    status: { published: number, received: number, rejected: number }
    /**
     * Documents by kind (`settings`, `cluster`, `content`): published here, accepted from gossip,
     * pulled by anti-entropy, gossip messages rejected (`unknown` when undecodable or from a non-member).
     */
    documents: { published: Record<string, number>, received: Record<string, number>, synced: Record<string, number>, rejected: Record<string, number> }
  }
  content: {
    /** Chunk bytes served to peers / received from peers (verified and stored), and the chunk counts. */
    bytesSent: number
    bytesReceived: number
    chunksSent: number
    chunksReceived: number
    /** Chunks that failed verification (the sending peer is dropped for that content). */
    chunksCorrupt: number
  }
}

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
  /** Peers with at least one open connection, kept by the connection events. */
  private readonly connectedIds = new Set<string>()
  /** The current roster's member ids (see isMember). */
  private memberIds?: { roster: RosterData, ids: Set<string> }
  /** Host facts that do not change while the process runs (read once: `os.cpus()` is not free). */
  private fixedFacts?: Omit<Facts, 'name' | 'apiPort' | 'version'>
  /** Test hook: a fault injector that cuts this host off from the peers it names. */
  partitioned?: (peerId: string) => boolean
  private state: 'stopped' | 'starting' | 'started' | 'stopping' = 'stopped'
  private status?: StatusService
  private elections?: ElectionService
  private content?: ContentService
  private docs?: DocumentService
  private freeDisk = 0
  private diskTimer?: ClockTimer
  private readonly linkCounts = { attempts: 0, results: {} as Record<string, number>, joins: {} as Record<string, number> }

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
      await this.checkDisk()
      this.startGroupState()
      await this.docs!.start()
      await this.content!.start()
      this.status!.start()
      await this.elections!.start(this.election)
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
    if (this.diskTimer != null) clock.clearTimeout(this.diskTimer)
    this.status?.stop()
    await this.docs?.stop()
    this.elections?.stop()
    await this.content?.stop().catch(() => {})
    for (const t of this.guests.values()) clock.clearTimeout(t)
    this.guests.clear()
    this.connectedIds.clear()
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

  /**
   * What this host counted (links, joins, gossip messages, content bytes): a fresh snapshot of
   * plain numbers, cheap enough to read on every metrics scrape. Reading changes nothing.
   */
  stats (): HostStats {
    const s = this.status?.counters
    const d = this.docs?.byKind
    const c = this.content?.counters
    const copy = (r: Record<string, number> | undefined): Record<string, number> => ({ ...r })
    return {
      link: { attempts: this.linkCounts.attempts, results: copy(this.linkCounts.results), joins: copy(this.linkCounts.joins) },
      gossip: {
        status: { published: s?.published ?? 0, received: s?.received ?? 0, rejected: s?.rejected ?? 0 },
        documents: { published: copy(d?.published), received: copy(d?.received), synced: copy(d?.synced), rejected: copy(d?.rejected) }
      },
      content: {
        bytesSent: c?.servedBytes ?? 0,
        bytesReceived: c?.receivedBytes ?? 0,
        chunksSent: c?.served ?? 0,
        chunksReceived: c?.received ?? 0,
        chunksCorrupt: c?.corrupt ?? 0
      }
    }
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
    const connected = !self && this.isConnected(m.id)
    const ip = m.addrs.map(a => ipPortOf(a)?.ip).find(x => x != null) ?? ''
    const heard = self ? undefined : this.status?.get(m.id)
    const st: Partial<HostStatus> = self ? this.localStatus() : (heard?.status ?? {})
    const cluster = this.cluster()
    const nodeRole = nodeRoleOf(cluster, m.id)
    const health = this.status?.health(m.id) ?? (self || connected ? 'Healthy' : 'Unreachable')
    return {
      id: m.id,
      ip,
      localUIPort: m.facts.apiPort,
      overlayIP: '',
      role: this.actsAsLeader(m.id, r, cluster) ? 'leader' : 'follower',
      nodeRole,
      status: nodeRole === 'unknown' ? 'Ready' : 'In-Use',
      contentSyncStatus: st.contentSyncStatus === 'Not Synced' ? 'Not Synced' : 'Synced',
      health,
      config: {
        name: st.name || m.facts.name,
        hostname: st.hostname || m.facts.hostname,
        os: st.os || m.facts.os,
        arch: st.arch || m.facts.arch,
        cpus: st.cpus || m.facts.cpus,
        memory: Number(st.memory || m.facts.memory),
        version: st.version || m.facts.version,
        freeDisk: Number(st.freeDisk ?? 0),
        load: Number(st.load ?? 0) / 100,
        failing: st.failing ?? []
      },
      addrs: m.addrs,
      lastSeen: self ? this.options.clock.now() : (heard?.heardAt ?? (connected ? this.options.clock.now() : (this.lastSeen.get(m.id) ?? 0))),
      self
    }
  }

  /** Before a cluster exists the roster's leader leads; afterwards every control-plane host does. */
  private actsAsLeader (id: string, r: RosterData, cluster: ClusterDefinition | undefined): boolean {
    return cluster != null ? controlPlaneOf(cluster).includes(id) : id === r.leader
  }

  private isConnected (id: string): boolean {
    // Asked for every member several times a second by the health checker: a set, not libp2p's
    // connection lookup (which parses the id and walks the connection map each time).
    return this.connectedIds.has(id)
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
      if (!this.mayIssueTokens()) {
        throw new EdgelinkError(this.cluster() != null ? 'NOT_CONTROL_PLANE' : 'NOT_LEADER', this.cluster() != null ? 'only control-plane hosts can generate link tokens' : 'only the leader can generate link tokens')
      }
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
      if (!this.generation || !this.mayIssueTokens()) return
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
    this.linkCounts.attempts++
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
      count(this.linkCounts.results, 'Completed')
      this.log.info({ group: signed.roster.groupId, leader }, 'linked')
      this.scheduleReconnect(0)
      return this.linkStatus()
    } catch (err: any) {
      const e = isEdgelinkError(err) ? err : new EdgelinkError('PROTOCOL_ERROR', String(err?.message ?? err), { cause: err })
      this.setLinkState({ status: 'Failed', errorMessage: e.message, errorCode: e.code })
      count(this.linkCounts.results, e.code)
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
      // With a cluster the issuer may be a control-plane host rather than the roster's signer.
      if (!r.members.some(m => m.id === leader.toString()) || r.groupId !== hex(body.groupId) || !r.members.some(m => m.id === this.id)) {
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
      count(this.linkCounts.joins, res.code === '' ? 'admitted' : res.code)
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
    if (!this.mayIssueTokens()) return fail('NOT_LEADER', 'this host is not the leader')
    const record = this.tokens.get(hex(req.tokenId))
    const now = this.options.clock.now()
    if (record == null) return fail('TOKEN_UNKNOWN')
    // A follower whose join answer was lost (it timed out while an overloaded leader admitted it)
    // links again: a member that proves a token it was given gets the roster, nothing is consumed.
    if ((record.usedBy === id || isLive(record, now)) && this.roster!.roster.members.some(m => m.id === id) &&
        verifyProof(Buffer.from(record.proofKey, 'hex'), req.proof, req.tokenId, this.peerId, remote)) {
      return { code: '', message: '', roster: SignedRoster.decode(this.roster!.bytes) }
    }
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
    const member: MemberInfo = { id, addrs, facts: sanitizeFacts(req.facts), joinedAt: now }
    record.used = true
    record.usedBy = id
    if (!this.isLeader()) {
      // A control-plane host issued this token: the roster's leader adds the member and signs.
      let signed: SignedRosterData
      try {
        signed = await this.proposeMember(member)
      } catch (err) {
        record.used = false
        delete record.usedBy
        return fail(isEdgelinkError(err) ? err.code : 'LEADER_UNREACHABLE', isEdgelinkError(err) ? err.message : 'the group\'s leader could not be reached')
      }
      await this.store!.putToken(record)
      await this.adoptRoster(signed)
      if (this.current?.record === record) this.rotate()
      return { code: '', message: '', roster: SignedRoster.decode(signed.bytes) }
    }
    const r = this.roster!.roster
    const next: RosterData = {
      ...r,
      version: r.version + 1,
      members: [...r.members, member],
      removed: r.removed.filter(x => x !== id),
      issuedAt: now
    }
    await this.commitRoster(next, record)
    if (this.current?.record === record) this.rotate()
    this.log.info({ peer: id, version: next.version }, 'host linked')
    return { code: '', message: '', roster: SignedRoster.decode(this.roster!.bytes) }
  }

  /** Before a cluster the leader issues tokens; with one, every control-plane host does. */
  private mayIssueTokens (): boolean {
    const cluster = this.cluster()
    if (cluster != null) return controlPlaneOf(cluster).includes(this.id)
    return this.isLeader()
  }

  /** Asks the roster's leader to add a member this control-plane host admitted. */
  private async proposeMember (member: MemberInfo): Promise<SignedRosterData> {
    const r = this.roster!.roster
    const signal = withTimeout(this.options.requestTimeout)
    const stream = await this.node!.dialProtocol(peerIdFromString(r.leader), ADMIT_PROTOCOL, { signal })
    try {
      const pb = requestStream(stream)
      await pb.write({
        member: { id: peerIdFromString(member.id).toMultihash().bytes as Uint8Array<ArrayBuffer>, addrs: member.addrs.map(a => multiaddr(a).bytes as Uint8Array<ArrayBuffer>), facts: member.facts, joinedAt: BigInt(member.joinedAt) }
      }, AdmitRequest, { signal })
      const res = await pb.read(AdmitResponse, { signal })
      await stream.close({ signal }).catch(() => {})
      const refused = refusal(res)
      if (refused != null) throw refused
      if (res.roster == null) throw new EdgelinkError('PROTOCOL_ERROR', 'the leader sent no roster')
      const signed = await openRoster(SignedRoster.encode(res.roster))
      if (signed.roster.groupId !== r.groupId || !signed.roster.members.some(m => m.id === member.id)) throw new EdgelinkError('PROTOCOL_ERROR', 'the leader sent a roster without the new member')
      return signed
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }

  /** The roster's leader adds a member admitted by a control-plane host of the cluster. */
  private async onAdmit (stream: Stream, conn: Connection): Promise<void> {
    const signal = withTimeout(this.options.requestTimeout)
    const pb = requestStream(stream)
    try {
      const from = conn.remotePeer.toString()
      const req = await pb.read(AdmitRequest, { signal, limits: { member: { addrs: MAX_MEMBER_ADDRS } } } as any)
      const res = await this.mutex.run(async (): Promise<AdmitResponse> => {
        const cluster = this.cluster()
        if (!this.isLeader()) return refuse(new EdgelinkError('NOT_LEADER'))
        if (cluster == null || !controlPlaneOf(cluster).includes(from)) return refuse(new EdgelinkError('NOT_CONTROL_PLANE', 'only control-plane hosts may add members'))
        const m = req.member
        if (m == null) return refuse(new EdgelinkError('PROTOCOL_ERROR', 'no member'))
        let member: MemberInfo
        try {
          member = { id: peerIdFromMultihash(Digest.decode(m.id)).toString(), addrs: m.addrs.map(a => multiaddr(a).toString()), facts: sanitizeFacts(m.facts), joinedAt: Number(m.joinedAt) }
        } catch {
          return refuse(new EdgelinkError('PROTOCOL_ERROR', 'malformed member'))
        }
        const r = this.roster!.roster
        if (!r.members.some(x => x.id === member.id)) {
          await this.commitRoster({ ...r, version: r.version + 1, members: [...r.members, member], removed: r.removed.filter(x => x !== member.id), issuedAt: this.options.clock.now() })
          this.log.info({ peer: member.id, by: from }, 'host linked through a control-plane host')
        }
        return { code: '', message: '', roster: SignedRoster.decode(this.roster!.bytes) }
      })
      await pb.write(res, AdmitResponse, { signal })
      await stream.close({ signal })
    } catch (err: any) {
      stream.abort(err)
    }
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
    if (nodeRoleOf(this.cluster(), hostId) !== 'unknown') throw new EdgelinkError('HOST_IN_USE', 'the host is assigned to the cluster; remove it from the cluster first')
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
      // The leader's signed roster without this host can arrive first (from a leader that pushes
      // it before answering) and has already made it leave: that is the confirmation.
      if (this.roster?.roster.groupId !== r.groupId) return
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
        await this.removeMember(id, 'unlinked itself', { dismiss: false })
        return { code: '', message: '' }
      })
      // The answer first: the new roster makes the follower leave and hang up on everyone, which
      // would end this stream before it read the answer.
      await pb.write(res, LeaveResponse, { signal })
      await stream.close({ signal })
      if (res.code === '') await this.dismiss(conn.remotePeer)
    } catch (err: any) {
      stream.abort(err)
    }
  }

  /**
   * Leader only, under the mutex. With `dismiss: false` the caller tells the removed host and hangs
   * up on it itself ({@link dismiss}), when it has answered it first.
   */
  private async removeMember (id: string, reason: string, opts: { dismiss?: boolean } = {}): Promise<void> {
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
    if (opts.dismiss ?? true) await this.dismiss(peerIdFromString(id))
  }

  /** Sends a removed host the roster without it, then closes its connections: told first, so it knows it is idle again. */
  private async dismiss (peer: PeerId): Promise<void> {
    await this.pushRoster(peer).catch(() => {})
    await this.node?.hangUp(peer).catch(() => {})
  }

  // ---------------------------------------------------------------- group state

  private startGroupState (): void {
    const self = this
    const base = {
      id: this.id,
      key: this.key,
      clock: this.options.clock,
      log: this.log,
      pubsub: () => this.node?.services.pubsub as GossipSub | undefined,
      groupId: () => this.roster?.roster.groupId,
      isMember: (id: string) => this.isMember(id)
    }
    this.status = new StatusService({
      ...base,
      isConnected: (id) => this.isConnected(id),
      memberCount: () => this.roster?.roster.members.length ?? 1,
      localStatus: () => this.localStatus()
    }, this.options)
    this.status.on('health', (id, health) => {
      // Silent while connected: the connection is dead (a cut cable closes nothing). Drop it so
      // the reconnect loop dials the member again and the link comes back when the host does.
      if (health === 'Unreachable' && this.connectedIds.has(id)) this.node?.hangUp(peerIdFromString(id)).catch(() => {})
      const r = this.roster?.roster
      const m = r?.members.find(x => x.id === id)
      if (m != null && r != null) this.emit('host:health', this.row(m, r))
    })
    this.docs = new DocumentService({
      ...base,
      node: () => this.node,
      store: () => this.store!,
      authorize: (doc) => {
        const r = self.roster?.roster
        if (r == null) return new EdgelinkError('NOT_LINKED')
        return authorize(doc.author, doc.term, r, self.cluster())
      },
      parseBody: (kind, body, deleted, id) => {
        if (kind === 'settings') return parseSettings(body)
        if (kind === 'content') return ContentService.parseDocument(id, body, deleted)
        return deleted ? {} : parseCluster(body)
      },
      rosterInfo: () => ({ term: this.roster?.roster.term ?? 0, version: this.roster?.roster.version ?? 0, bytes: this.roster?.bytes }),
      receiveRoster: async (bytes) => { await this.receiveRoster(bytes) }
    }, this.options.syncInterval)
    this.docs.on('doc', (rec) => { this.onDocument(rec) })
    this.content = new ContentService({
      id: this.id,
      dataDir: this.options.dataDir,
      clock: this.options.clock,
      log: this.log,
      node: () => this.node,
      isMember: (id) => this.isMember(id),
      store: () => this.store!,
      docs: () => this.docs!,
      term: () => this.roster?.roster.term ?? 0,
      mayUpload: () => this.mayUpload()
    }, { chunkSize: this.options.chunkSize, uploadRate: this.options.uploadRate })
    for (const e of ['content:progress', 'content:complete', 'content:added', 'content:removed'] as const) {
      this.content.on(e, (arg: any) => {
        this.emit(e, arg)
        if (e !== 'content:progress') this.status?.publishSoon()
      })
    }
    this.status.on('status', (id) => { this.elections?.heard(id) })
    this.elections = new ElectionService({
      ...base,
      node: () => this.node,
      roster: () => this.roster?.roster,
      clusterExists: () => this.cluster() != null,
      persist: async (state) => {
        this.election = { ...(this.election ?? { leaderId: '', rosterVersion: 0 }), term: state.term, votedFor: state.votedFor }
        await this.store!.putElection(this.election)
      },
      becomeLeader: async (term, votes) => {
        await this.mutex.run(async () => {
          const r = this.roster?.roster
          if (r == null || r.term >= term) return
          await this.commitRoster({ ...r, term, leader: this.id, version: r.version + 1, issuedAt: this.options.clock.now(), proof: { votes: votes as Array<Uint8Array<ArrayBuffer>>, clusterDelete: new Uint8Array(0) } })
          this.log.info({ term }, 'this host leads the group now')
        })
        await this.takeOverDocuments(term)
      },
      steppedDown: (term) => { if (this.generation || this.hasLiveToken()) this.stepDown(term) }
    }, this.options)
  }

  /** This host's status as published to the group. */
  private localStatus (): Omit<HostStatus, 'seq' | 'sentAt'> {
    const f = this.facts()
    const r = this.roster?.roster
    const cluster = this.cluster()
    const nodeRole = nodeRoleOf(cluster, this.id)
    const failing = this.freeDisk > 0 && this.freeDisk < this.options.minFreeDisk ? ['disk'] : []
    return {
      name: f.name,
      addrs: this.advertised.map(a => multiaddr(a).bytes as Uint8Array<ArrayBuffer>),
      version: f.version,
      health: failing.length > 0 ? 'Unhealthy' : 'Healthy',
      failing,
      contentSyncStatus: this.content?.syncStatus().status ?? 'Synced',
      syncPercent: this.content?.syncStatus().percent ?? 100,
      hostname: f.hostname,
      os: f.os,
      arch: f.arch,
      cpus: f.cpus,
      memory: f.memory,
      freeDisk: BigInt(this.freeDisk),
      apiPort: f.apiPort,
      rosterVersion: BigInt(r?.version ?? 0),
      term: BigInt(r?.term ?? 0),
      role: r != null && this.actsAsLeader(this.id, r, cluster) ? 'leader' : 'follower',
      nodeRole,
      status: nodeRole === 'unknown' ? 'Ready' : 'In-Use',
      load: BigInt(Math.round(loadavg()[0] * 100))
    }
  }

  private async checkDisk (): Promise<void> {
    try {
      const st = await statfs(this.options.dataDir)
      const free = Number(st.bavail) * Number(st.bsize)
      const changed = (free < this.options.minFreeDisk) !== (this.freeDisk < this.options.minFreeDisk)
      this.freeDisk = free
      if (changed) this.status?.publishSoon()
    } catch {}
    this.diskTimer = this.options.clock.setTimeout(() => { void this.checkDisk() }, 30_000)
  }

  private groupChanged (): void {
    // A guest that became a member no longer holds one of the `maxGuests` slots.
    for (const [id, timer] of this.guests) {
      if (!this.isMember(id)) continue
      this.options.clock.clearTimeout(timer)
      this.guests.delete(id)
    }
    this.status?.groupChanged()
    this.docs?.groupChanged()
    this.elections?.rosterChanged()
  }

  /**
   * Hands leadership to another member (this host must lead). Resolves once every term change is
   * adopted here, i.e. `hostId` leads a new term.
   */
  async transferLeadership (hostId: string, options: AbortOptions = {}): Promise<void> {
    this.assertStarted()
    throwIfAborted(options.signal)
    const r = this.requireGroup()
    if (!r.members.some(m => m.id === hostId)) throw new EdgelinkError('UNKNOWN_HOST', `no host ${hostId} in this group`)
    if (hostId === this.id) throw new EdgelinkError('INVALID_ARGUMENT', 'this host already leads')
    if (!this.isLeader()) throw new EdgelinkError('NOT_LEADER', 'only the leader can hand over leadership')
    await this.elections!.transfer(hostId, options.signal)
    const end = Date.now() + this.options.requestTimeout
    while (this.roster?.roster.leader !== hostId) {
      if (Date.now() > end) throw new EdgelinkError('TIMEOUT', 'the new leader did not take over in time')
      throwIfAborted(options.signal)
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  }

  /**
   * A new leader first pulls the newest documents from the members it reaches (its voters among
   * them), then re-signs the ones of older terms in its own term.
   */
  private async takeOverDocuments (term: number): Promise<void> {
    const peers = (this.node?.getPeers() ?? []).filter(p => this.isMember(p.toString()))
    await Promise.allSettled(peers.map(async p => await this.docs!.syncWith(p)))
    await this.mutex.run(async () => {
      if (this.roster?.roster.term !== term || this.roster.roster.leader !== this.id) return
      const n = await this.docs!.reissue(term)
      this.log.info({ term, documents: n }, 'documents of earlier terms re-signed')
    })
  }

  /** The group's settings (defaults until someone sets them). */
  settings (): GroupSettings {
    return this.docs?.get<GroupSettings>('settings', 'group')?.body ?? structuredClone(EMPTY_SETTINGS)
  }

  /**
   * Changes group settings: an object replaces them, `KEY=VALUE` strings change single keys.
   * Only the leader (before a cluster) or a control-plane host (after) may; every member checks.
   */
  async updateSettings (change: Partial<GroupSettings> | string[], options: AbortOptions = {}): Promise<GroupSettings> {
    this.assertStarted()
    throwIfAborted(options.signal)
    return await this.mutex.run(async () => {
      this.requireGroup()
      const next = Array.isArray(change) ? applyAssignments(this.settings(), change) : parseSettings({ ...this.settings(), ...change })
      const rec = await this.docs!.write('settings', 'group', next, { term: this.roster!.roster.term })
      return rec.body as GroupSettings
    })
  }

  /** The cluster of this group, or undefined while none exists. */
  cluster (): ClusterDefinition | undefined {
    const rec = this.docs?.get<ClusterDefinition>('cluster', 'cluster')
    return rec == null || rec.deleted ? undefined : rec.body
  }

  /**
   * Creates the group's cluster. Only the leader, before a cluster exists. Control-plane count odd,
   * this host among them, every host linked, `Ready` and healthy. Assigned hosts become `In-Use`
   * and emit `cluster:assigned`; provisioning Kubernetes is up to the embedding agent.
   */
  async createCluster (spec: { name: string, controlPlane: string[], workers?: string[], vip?: string, profile?: string, variables?: Record<string, string>, labels?: Record<string, string>, taints?: string[] }, options: AbortOptions = {}): Promise<ClusterDefinition> {
    this.assertStarted()
    throwIfAborted(options.signal)
    return await this.mutex.run(async () => {
      const r = this.requireGroup()
      if (this.cluster() != null) throw new EdgelinkError('CLUSTER_EXISTS', `cluster ${this.cluster()!.name} already exists`)
      const pools: MachinePool[] = [{ name: 'control-plane', controlPlane: true, hosts: spec.controlPlane, labels: spec.labels ?? {}, taints: spec.taints ?? [] }]
      if ((spec.workers ?? []).length > 0) pools.push({ name: 'worker', controlPlane: false, hosts: spec.workers!, labels: spec.labels ?? {}, taints: [] })
      const def = parseCluster({ name: spec.name, profile: spec.profile ?? '', variables: spec.variables ?? {}, vip: spec.vip ?? '', pools, createdBy: this.id })
      const refusal = authorize(this.id, r.term, r, undefined)
      if (refusal != null) throw refusal
      checkClusterPlan(def, r, id => this.usableForCluster(id))
      const rec = await this.docs!.write('cluster', 'cluster', def, { term: r.term })
      return rec.body as ClusterDefinition
    })
  }

  /** Adds hosts to or removes hosts from the cluster's pools (control-plane count stays odd). */
  async scaleCluster (change: { addWorkers?: string[], addControlPlane?: string[], remove?: string[] }, options: AbortOptions = {}): Promise<ClusterDefinition> {
    this.assertStarted()
    throwIfAborted(options.signal)
    return await this.mutex.run(async () => {
      const r = this.requireGroup()
      const cur = this.cluster()
      if (cur == null) throw new EdgelinkError('NO_CLUSTER')
      const refusal = authorize(this.id, r.term, r, cur)
      if (refusal != null) throw refusal
      const remove = new Set(change.remove ?? [])
      const pools = cur.pools.map(p => ({ ...p, hosts: p.hosts.filter(h => !remove.has(h)) }))
      const add = (cp: boolean, ids: string[] | undefined): void => {
        if (ids == null || ids.length === 0) return
        let pool = pools.find(p => p.controlPlane === cp)
        if (pool == null) { pool = { name: cp ? 'control-plane' : 'worker', controlPlane: cp, hosts: [], labels: {}, taints: [] }; pools.push(pool) }
        pool.hosts.push(...ids)
      }
      add(true, change.addControlPlane)
      add(false, change.addWorkers)
      const def = parseCluster({ ...cur, pools: pools.filter(p => p.hosts.length > 0) })
      if (!controlPlaneOf(def).includes(def.createdBy)) def.createdBy = controlPlaneOf(def)[0] ?? this.id
      const fresh = [...controlPlaneOf(def), ...workersOf(def)].filter(id => !controlPlaneOf(cur).includes(id) && !workersOf(cur).includes(id))
      checkClusterPlan({ ...def, createdBy: controlPlaneOf(def).includes(this.id) ? this.id : def.createdBy }, r, id => fresh.includes(id) ? this.usableForCluster(id) : undefined)
      const rec = await this.docs!.write('cluster', 'cluster', def, { term: r.term })
      return rec.body as ClusterDefinition
    })
  }

  /**
   * Deletes the cluster: every host is `Ready` again, still linked, and this host becomes the
   * group's single leader (a new term, proven by the deletion it signed).
   */
  async deleteCluster (options: AbortOptions = {}): Promise<void> {
    this.assertStarted()
    throwIfAborted(options.signal)
    await this.mutex.run(async () => {
      const r = this.requireGroup()
      const cur = this.cluster()
      if (cur == null) throw new EdgelinkError('NO_CLUSTER')
      const refusal = authorize(this.id, r.term, r, cur)
      if (refusal != null) throw refusal
      const rec = await this.docs!.write('cluster', 'cluster', {}, { term: r.term, deleted: true })
      if (r.leader !== this.id) {
        await this.commitRoster({ ...r, term: r.term + 1, version: r.version + 1, leader: this.id, issuedAt: this.options.clock.now(), proof: { votes: [], clusterDelete: rec.signed as Uint8Array<ArrayBuffer> } })
      }
    })
    if (this.roster!.roster.term > (this.docs!.get('cluster', 'cluster')?.term ?? 0)) await this.takeOverDocuments(this.roster!.roster.term)
  }

  /** Why a host cannot be put into a cluster now, or undefined when it can. */
  private usableForCluster (id: string): string | undefined {
    if (nodeRoleOf(this.cluster(), id) !== 'unknown') return 'it is In-Use'
    const h = this.status?.health(id) ?? 'Healthy'
    return h === 'Healthy' ? undefined : `it is ${h}`
  }

  private requireGroup (): RosterData {
    const r = this.roster?.roster
    if (r == null) throw new EdgelinkError('NOT_LINKED', 'this host is in no group: generate a token or link first')
    return r
  }

  private lastNodeRole = 'unknown'

  // ---------------------------------------------------------------- content

  /**
   * Uploads a file or an OCI image layout to the group: stored here in chunks, announced by a
   * signed manifest, fetched by every member. Leader only before a cluster, control plane after.
   */
  /**
   * Why this host may not add or remove content now (`NOT_LINKED`, `NOT_LEADER`,
   * `NOT_CONTROL_PLANE`), or undefined when it may: the rule `addContent` applies, for callers
   * that want to refuse before doing costly work (an upload, say).
   */
  mayUpload (): EdgelinkError | undefined {
    const r = this.roster?.roster
    if (r == null) return new EdgelinkError('NOT_LINKED', 'this host is in no group: generate a token or link first')
    return authorize(this.id, r.term, r, this.cluster())
  }

  async addContent (path: string, options: AbortOptions & { kind?: ContentKind, name?: string, onProgress?: (p: { bytes: number, totalBytes: number }) => void } = {}): Promise<ContentInfo> {
    this.assertStarted()
    return await this.content!.add(path, options)
  }

  /** Every content announced to the group, with how much of it this host holds. */
  listContent (): ContentInfo[] {
    this.assertStarted()
    return this.content!.list()
  }

  contentInfo (id: string): ContentInfo {
    this.assertStarted()
    return this.content!.info(id)
  }

  /** Writes complete content back byte-identically to `dest`; resolves with the path written. */
  async exportContent (id: string, dest: string, options: AbortOptions & { overwrite?: boolean } = {}): Promise<string> {
    this.assertStarted()
    return await this.content!.export(id, dest, options)
  }

  /** Removes content from the group; every host frees chunks no other content uses. */
  async removeContent (id: string, options: AbortOptions = {}): Promise<void> {
    this.assertStarted()
    throwIfAborted(options.signal)
    await this.mutex.run(async () => { await this.content!.remove(id) })
  }

  private onDocument (rec: DocRecord): void {
    if (rec.kind === 'content') {
      this.content?.onDocument(rec)
      return
    }
    if (rec.kind === 'settings') this.emit('settings', rec.body as GroupSettings)
    if (rec.kind !== 'cluster') return
    const cluster = this.cluster()
    this.elections?.rosterChanged()
    this.emit('cluster', cluster)
    const role = nodeRoleOf(cluster, this.id)
    if (role !== this.lastNodeRole) {
      if (role === 'unknown') this.emit('cluster:released', { name: (rec.body as ClusterDefinition).name ?? '' })
      else this.emit('cluster:assigned', { cluster: cluster!, nodeRole: role })
      this.lastNodeRole = role
    }
    this.status?.publishSoon()
  }

  /** Checks a cluster-deletion proof carried by a roster of a new term. */
  private async clusterDeleteOk (signedDoc: Uint8Array, leader: string): Promise<boolean> {
    try {
      const rec = await this.docs!.open(signedDoc)
      if (rec.kind !== 'cluster' || !rec.deleted || rec.author !== leader) return false
      const held = this.docs!.get<ClusterDefinition>('cluster', 'cluster')
      if (held == null) return false
      if (held.deleted) return held.bodyHash === rec.bodyHash && held.author === rec.author && held.version === rec.version
      if (!controlPlaneOf(held.body).includes(leader)) return false
      await this.docs!.accept(rec)
      return true
    } catch {
      return false
    }
  }

  /** A roster received outside the roster protocol (anti-entropy). */
  private async receiveRoster (bytes: Uint8Array): Promise<void> {
    const cur = this.roster?.roster
    const signed = await openRoster(bytes, r => cur != null && r.groupId === cur.groupId && r.term === cur.term && r.version <= cur.version)
    if (signed != null) await this.mutex.run(async () => { await this.adoptRoster(signed) })
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
    const election = this.electionRecord(next)
    await this.store!.putRoster(signed.bytes, election, token)
    const before = this.roster?.roster
    this.roster = signed
    this.election = election
    this.announceChanges(before, next)
    this.groupChanged()
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
      const refusal = await checkRosterSuccession(cur, next, async (doc, leader) => await this.clusterDeleteOk(doc, leader))
      if (refusal != null) {
        if (refusal.code !== 'STALE_VERSION') this.log.info({ code: refusal.code, reason: refusal.message }, 'roster refused')
        return
      }
      if (cur.leader === this.id && next.leader !== this.id) this.stepDown(next.term)
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
    const election = this.electionRecord(next)
    await this.store!.putRoster(signed.bytes, election)
    const before = opts.replace && cur?.groupId !== next.groupId ? undefined : cur
    this.roster = signed
    this.election = election
    this.announceChanges(before, next)
    this.groupChanged()
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

  /** Election metadata to store with a roster: the term never goes back and a vote is never lost. */
  private electionRecord (next: RosterData): ElectionRecord {
    const persisted = this.elections?.state ?? this.election
    const term = Math.max(next.term, persisted?.term ?? 0)
    return { term, leaderId: next.leader, rosterVersion: next.version, ...(persisted?.votedFor != null ? { votedFor: persisted.votedFor } : {}) }
  }

  /** This host is no longer leader (a newer term has another): its tokens die with its term. */
  private stepDown (term: number): void {
    this.log.info({ term }, 'stepping down: another host leads a newer term')
    this.generation = false
    this.current = undefined
    if (this.rotateTimer != null) this.options.clock.clearTimeout(this.rotateTimer)
    for (const t of this.tokens.values()) t.burned = true
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
    this.groupChanged()
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
    const r = this.roster?.roster
    if (r == null || id === this.id) return false
    // Asked for every gossip message and connection: a set per roster, built on first use.
    if (this.memberIds?.roster !== r) this.memberIds = { roster: r, ids: new Set(r.members.map(m => m.id)) }
    return this.memberIds.ids.has(id)
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
    if (this.partitioned?.(id) === true) return false
    if (this.isMember(id)) return true
    if (direction === 'out') return this.pinnedLeader === id || (this.isLeader() && this.isTombstoned(id))
    if (!this.mayIssueTokens()) return false
    if (this.guests.size >= this.options.maxGuests) return false
    return this.hasLiveToken() || this.isTombstoned(id)
  }

  private onConnectionOpen (conn: Connection): void {
    const id = conn.remotePeer.toString()
    this.connectedIds.add(id)
    this.lastSeen.set(id, this.options.clock.now())
    if (this.isMember(id)) {
      this.status?.check(id)
      // One side of each pair runs anti-entropy on connect (the answerer pulls back if it lacks anything).
      if (this.node!.getConnections(conn.remotePeer).length === 1 && this.id < id) this.docs?.connected(conn.remotePeer)
      // The leader brings a (re)connecting member up to date; members need not echo it back.
      if (this.isLeader() && this.node!.getConnections(conn.remotePeer).length === 1) this.pushRoster(conn.remotePeer).catch(() => {})
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
      this.connectedIds.delete(id)
      const t = this.guests.get(id)
      if (t != null) this.options.clock.clearTimeout(t)
      this.guests.delete(id)
      this.status?.check(id)
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
      transports: [tcp(o.dialFrom != null ? { dialOpts: sourceAddress(o.dialFrom) } : {})],
      connectionEncrypters: [meshNoise()],
      streamMuxers: [meshYamux()],
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
      // No libp2p connection monitor: it pinged every connection every 10 s, all at once, and
      // aborted a connection whose ping failed, so a host whose CPU was busy for a few seconds
      // lost its members' connections and reconnected to all of them. Members' liveness is the
      // status heartbeat's job; it allows for this host's own stalls, and hangs up on a member it
      // finds silent while connected (see startGroupState), so that the member is dialled again.
      connectionMonitor: { enabled: false },
      services: {
        identify: identify(),
        // Gossip only among members (the gater keeps others out). floodPublish sends each message
        // straight to every subscribed peer: one hop in a full mesh, which is what a group is.
        pubsub: gossipsub({
          allowPublishToZeroTopicPeers: true,
          emitSelf: false,
          floodPublish: true,
          fallbackToFloodsub: false,
          doPX: false,
          // No gossipsub signatures: each member's connections are authenticated by Noise, and
          // what needs an author's signature carries its own (documents always; status, checked
          // when relayed by another member). Checking an Ed25519 signature on every message was a
          // fifth of an idle host's CPU. Message ids are then hashes of the data.
          globalSignaturePolicy: 'StrictNoSign',
          fastMsgIdFn: (msg) => createHash('sha256').update(msg.topic).update(msg.data ?? EMPTY).digest('base64'),
          // The group is a full mesh and floodPublish already sends every message to every member
          // directly, so mesh forwarding would only add copies (with D = 3, each host handled every
          // message about four times, and forwarding was two fifths of an idle host's CPU). No
          // mesh, then: a member that missed a message (no connection to its author yet, a frame
          // lost with a dropped connection) learns its id from the IHAVE gossip each heartbeat
          // sends to Dlazy random peers and pulls it with IWANT; documents are also covered by
          // anti-entropy. Each host so hears about three IHAVEs a second, each listing every
          // message its sender saw in the last three heartbeats. (gossipsub's default sends them
          // to a quarter of the peers instead, 12 a second per host at 50 hosts: as many messages
          // again as the heartbeats themselves.)
          D: 0,
          Dlo: 0,
          Dhi: 0,
          Dout: 0,
          Dlazy: 3,
          gossipFactor: 0,
          // Every peer passed the members-only gater; on one machine or behind one NAT, many
          // members share an IP, which gossipsub would otherwise penalise as a Sybil attack.
          scoreParams: { IPColocationFactorWeight: 0 }
        })
      }
    }).then(async node => {
      await node.handle(JOIN_PROTOCOL, (s, c) => { void this.onJoin(s, c) }, { maxInboundStreams: 4 })
      await node.handle(LEAVE_PROTOCOL, (s, c) => { void this.onLeave(s, c) }, { maxInboundStreams: 4 })
      await node.handle(ADMIT_PROTOCOL, (s, c) => { void this.onAdmit(s, c) }, { maxInboundStreams: 8 })
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
    this.fixedFacts ??= {
      hostname: hostname(),
      os: `${osType()} ${release()}`,
      arch: arch(),
      cpus: cpus().length,
      memory: BigInt(totalmem())
    }
    return { name: this.options.name, ...this.fixedFacts, apiPort: this.options.apiPort, version: this.options.version }
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
function count (counts: Record<string, number>, key: string): void { counts[key] = (counts[key] ?? 0) + 1 }

export async function createHost (options: HostOptions): Promise<Host> {
  const resolved = resolveOptions(options, VERSION)
  const key = await loadOrCreateIdentity(resolved.dataDir)
  const host = new Host(key, resolved)
  if (resolved.start) await host.start()
  return host
}

/**
 * TCP dial options binding the source address. @libp2p/tcp spreads its `dialOpts` into
 * `net.connect`'s options; its type lists only a subset of them.
 */
function sourceAddress (ip: string): TCPSocketOptions {
  const opts: TCPSocketOptions & Pick<TcpNetConnectOpts, 'localAddress'> = { localAddress: ip }
  return opts
}
