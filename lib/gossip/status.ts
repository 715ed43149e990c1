import { EventEmitter } from 'node:events'
import { TopicValidatorResult, type GossipSub, type Message } from '@libp2p/gossipsub'
import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import * as Digest from 'multiformats/hashes/digest'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import type { Clock, ClockTimer } from '../clock.ts'
import type { Logger } from '../logger.ts'
import { concat } from '../util.ts'
import { HostStatus, SignedStatus } from './gossip.ts'

/** Most addresses and failing checks one status may list; larger ones are rejected. */
const MAX_STATUS_ADDRS = 16
const MAX_FAILING = 32
/** A status message is small; anything bigger is not one. */
export const MAX_STATUS_BYTES = 16 * 1024
/** What a status signature covers, before the encoded HostStatus. */
export const STATUS_DOMAIN = new TextEncoder().encode('edgelink/status/v1')

/**
 * Heartbeats each host receives per `statusInterval`, at most: beyond this many members the
 * heartbeat period (and `failureTimeout` with it) grows in proportion to the group, so that the
 * group's heartbeat traffic grows with N rather than N². A killed host is still seen at once: its
 * connections close, and `disconnectGrace` does not grow.
 */
export const HEARTBEAT_FANIN = 16

/** How much longer than `statusInterval` heartbeats are apart in a group of `members` (≥ 1). */
export function heartbeatStretch (members: number): number {
  return Math.max(1, members / HEARTBEAT_FANIN)
}

export type Health = 'Healthy' | 'Unhealthy' | 'Unreachable'

export interface StatusOptions {
  /** Heartbeat period: every host publishes its status this often (and at once on a change). */
  statusInterval: number
  /**
   * Silence after which a host is `Unreachable`, whatever the connections say: covers hosts cut off
   * without a TCP close (cable pulled, link down). ≥ 3 heartbeats so load spikes do not flap.
   */
  failureTimeout: number
  /**
   * Silence after which a host this one has no connection to is `Unreachable`: a killed process
   * closes its connections at once, so this is what makes detection fast.
   */
  disconnectGrace: number
}

export interface StatusContext {
  readonly id: string
  /** This host's key: signs what it publishes. */
  readonly key: PrivateKey
  readonly clock: Clock
  readonly log: Logger
  pubsub(): GossipSub | undefined
  groupId(): string | undefined
  isMember(id: string): boolean
  /** Members in the roster, this host included. */
  memberCount(): number
  isConnected(id: string): boolean
  /** This host's status as it should be published now (seq and sentAt are filled in here). */
  localStatus(): Omit<HostStatus, 'seq' | 'sentAt'>
}

export interface PeerStatus {
  status: HostStatus
  /** Local clock when the newest status arrived. */
  heardAt: number
}

export function statusTopic (groupId: string): string { return `/edgelink/${groupId}/status/1` }

/**
 * Publishes this host's status on the group's status topic (on change and every
 * `statusInterval`), keeps the newest status of every member and derives its health.
 */
export class StatusService extends EventEmitter<{ health: [string, Health], status: [string, HostStatus] }> {
  private readonly ctx: StatusContext
  private readonly opts: StatusOptions
  private readonly table = new Map<string, PeerStatus>()
  private readonly lastHealth = new Map<string, Health>()
  /** Members connected but not heard from yet: since when this host has been waiting. */
  private readonly unheardSince = new Map<string, number>()
  private topic?: string
  private seq: bigint
  private heartbeat?: ClockTimer
  private checker?: ClockTimer
  private publishQueued = false
  private readonly author: Uint8Array
  private running = false
  /** When the health checker last ran (see scheduleCheck). */
  private lastCheck = 0
  /** Times this host's own event loop was found stalled, for metrics. */
  stalls = 0
  /** Messages received and rejected, for metrics. */
  readonly counters = { published: 0, received: 0, rejected: 0 }

  constructor (ctx: StatusContext, opts: StatusOptions) {
    super()
    this.ctx = ctx
    this.opts = opts
    // Restarts must not reuse sequence numbers: start from the clock (µs), then count.
    this.seq = BigInt(ctx.clock.now()) * 1000n
    this.author = peerIdFromString(ctx.id).toMultihash().bytes
  }

  start (): void {
    this.running = true
    this.groupChanged()
    this.scheduleHeartbeat(0)
    this.scheduleCheck()
  }

  stop (): void {
    this.running = false
    if (this.heartbeat != null) this.ctx.clock.clearTimeout(this.heartbeat)
    if (this.checker != null) this.ctx.clock.clearTimeout(this.checker)
  }

  /** Call when the group id or the roster changed: (re)subscribes and drops departed members. */
  groupChanged (): void {
    const pubsub = this.ctx.pubsub()
    if (pubsub == null) return
    const groupId = this.ctx.groupId()
    const topic = groupId == null ? undefined : statusTopic(groupId)
    if (topic !== this.topic) {
      if (this.topic != null) {
        pubsub.unsubscribe(this.topic)
        pubsub.topicValidators.delete(this.topic)
      }
      this.topic = topic
      this.table.clear()
      this.lastHealth.clear()
      this.unheardSince.clear()
      if (topic != null) {
        pubsub.topicValidators.set(topic, this.validate)
        pubsub.subscribe(topic)
        // Joining a group: tell it at once. Later roster changes wait for the heartbeat, or a
        // burst of joins would make every host publish once per join (N² messages).
        this.publishSoon()
      }
    }
    for (const id of this.table.keys()) if (!this.ctx.isMember(id)) this.table.delete(id)
    for (const id of this.unheardSince.keys()) if (!this.ctx.isMember(id)) this.unheardSince.delete(id)
  }

  /** Publishes at the next turn of the event loop, coalescing bursts of changes. */
  publishSoon (): void {
    if (this.publishQueued || !this.running) return
    this.publishQueued = true
    setImmediate(() => {
      this.publishQueued = false
      this.publish()
    })
  }

  get (id: string): PeerStatus | undefined { return this.table.get(id) }

  /** Derived health of a member as this host sees it. */
  health (id: string): Health {
    if (id === this.ctx.id) return this.ctx.localStatus().health === 'Unhealthy' ? 'Unhealthy' : 'Healthy'
    const entry = this.table.get(id)
    const connected = this.ctx.isConnected(id)
    if (entry == null) {
      if (!connected) return 'Unreachable'
      // Connected but never heard: silent since this host first looked, which a host that
      // publishes (at once when it joins, then every heartbeat) never stays for long.
      const now = this.ctx.clock.now()
      const since = this.unheardSince.get(id) ?? now
      this.unheardSince.set(id, since)
      return now - since > this.opts.failureTimeout * this.scale() ? 'Unreachable' : 'Healthy'
    }
    const silent = this.ctx.clock.now() - entry.heardAt
    if (silent > this.opts.failureTimeout * this.scale()) return 'Unreachable'
    if (!connected && silent > this.opts.disconnectGrace) return 'Unreachable'
    return entry.status.health === 'Unhealthy' ? 'Unhealthy' : 'Healthy'
  }

  /** Re-evaluates one host's health now (connection events call this) and emits a change. */
  check (id: string): void {
    if (!this.ctx.isMember(id)) return
    const h = this.health(id)
    if (this.lastHealth.get(id) !== h) {
      this.lastHealth.set(id, h)
      this.emit('health', id, h)
    }
  }

  /** How much longer than `statusInterval` heartbeats are apart in a group this size (≥ 1). */
  scale (): number {
    return heartbeatStretch(this.ctx.memberCount())
  }

  /** The heartbeat period now: `statusInterval`, stretched for large groups (see HEARTBEAT_FANIN). */
  heartbeatPeriod (): number {
    return Math.round(this.opts.statusInterval * this.scale())
  }

  private publish (): void {
    const pubsub = this.ctx.pubsub()
    if (!this.running || pubsub == null || this.topic == null) return
    const topic = this.topic
    const status = HostStatus.encode({ ...this.ctx.localStatus(), seq: ++this.seq, sentAt: BigInt(this.ctx.clock.now()) })
    void (async () => {
      const signature = await this.ctx.key.sign(concat(STATUS_DOMAIN, status))
      await pubsub.publish(topic, SignedStatus.encode({ author: this.author as Uint8Array<ArrayBuffer>, status: status as Uint8Array<ArrayBuffer>, signature: signature as Uint8Array<ArrayBuffer> }))
      this.counters.published++
    })().catch((err: any) => {
      this.ctx.log.debug({ err: String(err?.message ?? err) }, 'status publish failed')
    })
  }

  private scheduleHeartbeat (delay: number): void {
    this.heartbeat = this.ctx.clock.setTimeout(() => {
      if (!this.running) return
      this.publish()
      this.scheduleHeartbeat(this.heartbeatPeriod())
    }, delay)
  }

  /**
   * Health changes by silence have no event of their own: look a few times per heartbeat.
   *
   * A host whose own event loop stalled (CPU starved, a long GC pause) heard nothing meanwhile,
   * through no fault of the others: when this timer fires later than it should by more than half
   * of `disconnectGrace`, the stall is not counted as their silence. And the look itself waits for
   * the I/O that piled up meanwhile (timers run before I/O in a loop turn), so heartbeats already
   * received are read first.
   */
  private scheduleCheck (): void {
    const period = Math.max(50, Math.floor(this.opts.disconnectGrace / 4))
    this.lastCheck = this.ctx.clock.now()
    this.checker = this.ctx.clock.setTimeout(() => {
      if (!this.running) return
      const now = this.ctx.clock.now()
      const late = now - this.lastCheck - period
      if (late > this.opts.disconnectGrace / 2) {
        this.stalls++
        for (const entry of this.table.values()) entry.heardAt = Math.min(now, entry.heardAt + late)
        for (const [id, since] of this.unheardSince) this.unheardSince.set(id, Math.min(now, since + late))
      }
      setImmediate(() => {
        if (!this.running) return
        for (const id of [...this.table.keys(), ...this.unheardSince.keys()]) this.check(id)
      })
      this.scheduleCheck()
    }, period)
  }

  /**
   * Checks and takes in one status message. Gossip carries no signatures of its own (see the
   * host's gossipsub options): a status that comes straight from its author was authenticated by
   * the Noise session it came over, so only a copy relayed by another member has its author's
   * signature checked (about 130 µs, which at 16 heartbeats a second was a fifth of an idle host's
   * CPU). A status is recorded here, once, so delivery has nothing left to do.
   */
  readonly validate = (from: PeerId, msg: Message): TopicValidatorResult | Promise<TopicValidatorResult> => {
    if (msg.data.length > MAX_STATUS_BYTES) return this.reject('too large')
    let signed: SignedStatus
    let author: PeerId
    let status: HostStatus
    try {
      signed = SignedStatus.decode(msg.data)
      author = peerIdFromMultihash(Digest.decode(signed.author))
      status = HostStatus.decode(signed.status, { limits: { addrs: MAX_STATUS_ADDRS, failing: MAX_FAILING } })
    } catch {
      return this.reject('malformed')
    }
    const id = author.toString()
    if (!this.ctx.isMember(id) || !this.ctx.isMember(from.toString())) return this.reject('not a member')
    if (id === this.ctx.id) return TopicValidatorResult.Ignore
    // Replays and reordered heartbeats carry an older seq: neither delivered nor forwarded.
    if (this.stale(id, status)) return TopicValidatorResult.Ignore
    if (from.equals(author)) return this.record(id, status)
    return (async () => {
      let ok = false
      try {
        ok = author.publicKey != null && await author.publicKey.verify(concat(STATUS_DOMAIN, signed.status), signed.signature)
      } catch {}
      if (!ok) return this.reject('bad signature')
      return this.stale(id, status) ? TopicValidatorResult.Ignore : this.record(id, status)
    })()
  }

  private stale (id: string, status: HostStatus): boolean {
    const prev = this.table.get(id)
    return prev != null && status.seq <= prev.status.seq
  }

  private record (id: string, status: HostStatus): TopicValidatorResult {
    this.counters.received++
    this.unheardSince.delete(id)
    this.table.set(id, { status, heardAt: this.ctx.clock.now() })
    this.emit('status', id, status)
    this.check(id)
    return TopicValidatorResult.Accept
  }

  private reject (why: string): TopicValidatorResult {
    this.counters.rejected++
    this.ctx.log.debug({ why }, 'status message rejected')
    return TopicValidatorResult.Reject
  }
}
