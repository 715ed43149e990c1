/**
 * The pure half of the chunk exchange: which missing chunk to ask of which peer. No I/O, no
 * clock; {@link ContentExchange} feeds it bitmaps and outcomes and runs what it assigns.
 *
 * Rarest first: chunks held by the fewest peers are asked for first, ties broken by a random rank
 * drawn once per download. Two followers fetching the same content from one leader therefore
 * start at different chunks and soon hold chunks the other lacks, which they then fetch from each
 * other instead of from the leader: the leader's uplink stops being the bottleneck (BitTorrent's
 * argument, kept without its tit-for-tat, since every member is trusted to serve).
 */
import { bitmapLength, clearBit, hasBit } from './bitmap.ts'

const MISSING = 0
const INFLIGHT = 1
const DONE = 2

/** Why a request for a chunk failed; decides what happens to the peer. */
export type FailReason =
  /** The bytes did not hash to the chunk: counts toward `maxBadChunks`; never asked for it again. */
  | 'corrupt'
  /** The peer said NOT_FOUND: its bitmap was stale; that bit is cleared. */
  | 'missing'
  /** The peer said BUSY: rested until its next bitmap. */
  | 'busy'
  /** Stream reset, timeout, peer gone: after `maxErrors` in a row, rested until its next bitmap. */
  | 'error'

export interface Assignment { peer: string, index: number }

export interface SwarmOptions {
  /** Corrupt chunks from one peer before it is dropped for this content. */
  maxBadChunks: number
  /** Failed requests in a row before a peer is rested until it answers a HAVE again. @default 2 */
  maxErrors?: number
  /** Source of the tie-break ranks; inject a seeded one in tests. @default Math.random */
  random?: () => number
}

interface PeerState {
  bitmap: Uint8Array
  /** Chunks of this content being fetched from the peer. */
  inflight: number
  bad: number
  errors: number
  dropped: boolean
  /** Not asked until its next bitmap arrives (BUSY, or several errors in a row). */
  resting: boolean
  /** Chunks this peer sent corrupt: never asked of it again. */
  excluded: Set<number>
}

export class Swarm {
  /** Number of distinct chunks of the content. */
  readonly size: number
  private readonly state: Uint8Array
  private readonly rank: Float64Array
  /** Per chunk, how many peers not dropped hold it. */
  private readonly holders: Uint32Array
  private readonly peers = new Map<string, PeerState>()
  private readonly maxBadChunks: number
  private readonly maxErrors: number
  /** Chunks not done with at least one holder, rarest first; rebuilt when holders change. */
  private order: number[] = []
  private dirty = true
  private left: number
  private inflightCount = 0

  /** `have`: this host's bitmap (missing = nothing held). */
  constructor (size: number, have: Uint8Array | undefined, opts: SwarmOptions) {
    this.size = size
    this.state = new Uint8Array(size)
    this.rank = new Float64Array(size)
    this.holders = new Uint32Array(size)
    this.maxBadChunks = Math.max(1, opts.maxBadChunks)
    this.maxErrors = Math.max(1, opts.maxErrors ?? 2)
    const random = opts.random ?? Math.random
    this.left = size
    for (let i = 0; i < size; i++) {
      this.rank[i] = random()
      if (have != null && hasBit(have, i)) {
        this.state[i] = DONE
        this.left--
      }
    }
  }

  /** Chunks not yet verified here. */
  get remaining (): number { return this.left }
  get inflight (): number { return this.inflightCount }
  isDone (i?: number): boolean { return i == null ? this.left === 0 : this.state[i] === DONE }

  /**
   * Marks a chunk held without fetching it (found in the local store, e.g. shared with other
   * content). A request for it still in flight ends with {@link succeeded} or {@link failed} as usual.
   * Returns false when it was done already.
   */
  markDone (i: number): boolean {
    if (this.state[i] === DONE) return false
    if (this.state[i] === INFLIGHT) this.inflightCount--
    this.state[i] = DONE
    this.left--
    return true
  }

  /** Peers this content is being fetched from right now. */
  activePeers (): number {
    let n = 0
    for (const p of this.peers.values()) if (p.inflight > 0) n++
    return n
  }

  isDropped (peer: string): boolean { return this.peers.get(peer)?.dropped === true }

  /**
   * Whether to ask the peer for its bitmap again: not when it is dropped, nor when its last bitmap
   * had every chunk (asking tells nothing new) unless it is resting (its answer ends the rest).
   */
  wantsBitmap (peer: string): boolean {
    const p = this.peers.get(peer)
    if (p == null) return true
    if (p.dropped) return false
    return p.resting || !this.isComplete(p)
  }

  private isComplete (p: PeerState): boolean {
    const full = this.size >> 3
    for (let b = 0; b < full; b++) if (p.bitmap[b] !== 0xff) return false
    for (let i = full * 8; i < this.size; i++) if (!hasBit(p.bitmap, i)) return false
    return true
  }

  knownPeers (): string[] { return [...this.peers.keys()] }

  /**
   * Up to `max` missing chunks that no peer offers, from chunk `from` on (wrapping), and where to
   * continue: the ones worth looking for in the local store.
   */
  orphans (from: number, max: number): { indices: number[], next: number } {
    const indices: number[] = []
    let i = from % Math.max(1, this.size)
    for (let seen = 0; seen < this.size && indices.length < max; seen++) {
      if (this.state[i] === MISSING && this.holders[i] === 0) indices.push(i)
      i = (i + 1) % this.size
    }
    return { indices, next: i }
  }

  /** Stops using a peer for this content (it sent corrupt chunks before). */
  drop (peer: string): void {
    let p = this.peers.get(peer)
    if (p == null) {
      p = { bitmap: new Uint8Array(bitmapLength(this.size)), inflight: 0, bad: 0, errors: 0, dropped: false, resting: false, excluded: new Set() }
      this.peers.set(peer, p)
    }
    if (p.dropped) return
    this.forgetHoldings(p)
    p.dropped = true
  }

  /**
   * A peer's HAVE answer. Bits past `size` are ignored; a shorter bitmap means the rest is 0.
   * Also ends the peer's rest: it answered, so it is there.
   */
  setBitmap (peer: string, bitmap: Uint8Array): void {
    let p = this.peers.get(peer)
    if (p == null) {
      p = { bitmap: new Uint8Array(bitmapLength(this.size)), inflight: 0, bad: 0, errors: 0, dropped: false, resting: false, excluded: new Set() }
      this.peers.set(peer, p)
    }
    if (p.dropped) return
    p.resting = false
    p.errors = 0
    const old = p.bitmap
    const next = new Uint8Array(old.length)
    next.set(bitmap.subarray(0, next.length))
    const tail = this.size & 7
    if (tail !== 0 && next.length > 0) next[next.length - 1] &= (0xff << (8 - tail)) & 0xff
    for (let b = 0; b < next.length; b++) {
      if (old[b] === next[b]) continue
      for (let i = b * 8; i < Math.min(this.size, b * 8 + 8); i++) {
        const was = hasBit(old, i)
        const now = hasBit(next, i)
        if (was === now) continue
        this.holders[i] += now ? 1 : -1
        this.dirty = true
      }
    }
    p.bitmap = next
  }

  /** A peer disconnected. Its in-flight requests are reported by their own outcome. */
  removePeer (peer: string): void {
    const p = this.peers.get(peer)
    if (p == null || p.dropped) return
    this.forgetHoldings(p)
    if (p.inflight === 0) this.peers.delete(peer)
    else p.bitmap = new Uint8Array(p.bitmap.length)
  }

  /**
   * Picks requests to start: missing chunks rarest first, each from the holder with the most free
   * slots. `free.total` and `free.peer(id)` are the slots left under the exchange-wide limits
   * (shared with other downloads). The chunks returned are marked in flight.
   */
  assign (free: { total: number, peer: (id: string) => number }): Assignment[] {
    const out: Assignment[] = []
    let total = free.total
    if (total <= 0 || this.left === 0) return out
    const slots = new Map<string, number>()
    for (const [id, p] of this.peers) {
      if (p.dropped || p.resting) continue
      const n = free.peer(id)
      if (n > 0) slots.set(id, n)
    }
    if (slots.size === 0) return out
    if (this.dirty) this.rebuild()
    let doneSeen = 0
    for (const i of this.order) {
      const st = this.state[i]
      if (st !== MISSING) {
        if (st === DONE) doneSeen++
        continue
      }
      let best: string | undefined
      let bestFree = 0
      for (const [id, n] of slots) {
        if (n <= bestFree) continue
        const p = this.peers.get(id) as PeerState
        if (hasBit(p.bitmap, i) && !p.excluded.has(i)) { best = id; bestFree = n }
      }
      if (best == null) continue
      out.push({ peer: best, index: i })
      this.state[i] = INFLIGHT
      this.inflightCount++;
      (this.peers.get(best) as PeerState).inflight++
      if (bestFree === 1) slots.delete(best)
      else slots.set(best, bestFree - 1)
      if (--total === 0 || slots.size === 0) break
    }
    // Walking past many done chunks each time is wasted work: compact now and then.
    if (doneSeen > 64 && doneSeen > this.order.length / 2) this.order = this.order.filter(i => this.state[i] !== DONE)
    return out
  }

  /** The chunk from `peer` was verified and stored. Returns false when it was done already. */
  succeeded (peer: string, i: number): boolean {
    const p = this.peers.get(peer)
    if (p != null) {
      p.inflight--
      p.errors = 0
      this.maybeForget(peer, p)
    }
    if (this.state[i] === INFLIGHT) this.inflightCount--
    if (this.state[i] === DONE) return false
    this.state[i] = DONE
    this.left--
    return true
  }

  /**
   * A request failed; the chunk is missing again and goes to the next assignment (to another peer
   * when it was corrupt). Returns what happened to the peer.
   */
  failed (peer: string, i: number, reason: FailReason): 'dropped' | 'resting' | undefined {
    if (this.state[i] === INFLIGHT) {
      this.state[i] = MISSING
      this.inflightCount--
    }
    const p = this.peers.get(peer)
    if (p == null) return undefined
    p.inflight--
    let outcome: 'dropped' | 'resting' | undefined
    if (p.dropped) {
      outcome = undefined
    } else if (reason === 'corrupt') {
      p.bad++
      p.excluded.add(i)
      if (p.bad >= this.maxBadChunks) {
        this.forgetHoldings(p)
        p.dropped = true
        outcome = 'dropped'
      }
    } else if (reason === 'missing') {
      if (hasBit(p.bitmap, i)) {
        clearBit(p.bitmap, i)
        this.holders[i]--
        this.dirty = true
      }
    } else if (reason === 'busy') {
      p.resting = true
      outcome = 'resting'
    } else if (++p.errors >= this.maxErrors) {
      p.resting = true
      outcome = 'resting'
    }
    this.maybeForget(peer, p)
    return outcome
  }

  private forgetHoldings (p: PeerState): void {
    for (let i = 0; i < this.size; i++) {
      if (hasBit(p.bitmap, i)) {
        this.holders[i]--
        this.dirty = true
      }
    }
  }

  /** A removed peer's record lingers until its last request ends; dropped peers stay dropped. */
  private maybeForget (id: string, p: PeerState): void {
    if (!p.dropped && p.inflight === 0 && this.holdingsEmpty(p) && p.bad === 0) this.peers.delete(id)
  }

  private holdingsEmpty (p: PeerState): boolean {
    for (let b = 0; b < p.bitmap.length; b++) if (p.bitmap[b] !== 0) return false
    return true
  }

  private rebuild (): void {
    const order: number[] = []
    for (let i = 0; i < this.size; i++) if (this.state[i] !== DONE && this.holders[i] > 0) order.push(i)
    order.sort((a, b) => (this.holders[a] - this.holders[b]) || (this.rank[a] - this.rank[b]))
    this.order = order
    this.dirty = false
  }
}
