/**
 * The pure half of the chunk exchange: which missing chunk to ask of which peer. No I/O, no
 * clock; {@link ContentExchange} feeds it bitmaps and outcomes and runs what it assigns.
 *
 * Rarest first: chunks held by the fewest peers are asked for first, ties broken by a random rank
 * drawn once per download. Two followers fetching the same content from one leader therefore
 * start at different chunks and soon hold chunks the other lacks, which they then fetch from each
 * other instead of from the leader: the leader's uplink stops being the bottleneck (BitTorrent's
 * argument, kept without its tit-for-tat, since every member is trusted to serve).
 *
 * Seeds (peers holding the whole content, typically the uploader) are the scarce uplink: every
 * byte a seed sends twice is a byte of the content it does not send at all. So
 * - a chunk some other holder offers is asked of that holder, not of a seed (when that holder is
 *   busy, its next free slot is waited for);
 * - with `anyFromSeeds`, a chunk only seeds hold is not asked of a seed by name: the host sends
 *   an ANY request listing the first such chunks (in this order) and the seed picks one it has
 *   not given anyone else yet (super-seeding), or answers that it gave them all away (SENT). Each
 *   chunk then leaves the seed about once, to whichever downloader asked first, and reaches the
 *   others from that downloader: the seed's uplink carries only what no one else has, shared by
 *   the downloaders as fast as each takes it. Chunks a seed gave away are awaited from peers.
 *   Once no chunk is left that only seeds hold and nobody was given (the end: the seeds' uplinks
 *   have room), or when the exchange says the download is stalled (`fallback`: a recipient slow,
 *   stuck or gone), chunks still awaited are asked of seeds by name, with their free slots.
 */
import { bitmapLength, clearBit, hasBit } from './bitmap.ts'

const MISSING = 0
const INFLIGHT = 1
const DONE = 2

/** Chunks listed in one ANY request. */
export const ANY_CANDIDATES = 16

/** Why a request for a chunk failed; decides what happens to the peer. */
export type FailReason =
  /** The bytes did not hash to the chunk: counts toward `maxBadChunks`; never asked for it again. */
  | 'corrupt'
  /** The peer said NOT_FOUND: its bitmap was stale; that bit is cleared. */
  | 'missing'
  /** The peer said BUSY: rested until it is heard from again. */
  | 'busy'
  /** Stream reset, timeout, peer gone: after `maxErrors` in a row, rested until it is heard from again. */
  | 'error'
  /** Withdrawn for a reason that is not the peer's (another request broke the stream they shared): asked again, no penalty. */
  | 'cancelled'

/**
 * A request to start: chunk `index` of `peer`, or, with `any`, whichever of those chunks the peer
 * (a seed) picks (`index` is then -1 until {@link Swarm.picked} says which).
 */
export interface Assignment { peer: string, index: number, any?: number[] }

export interface SwarmOptions {
  /** Corrupt chunks from one peer before it is dropped for this content. */
  maxBadChunks: number
  /** Failed requests in a row before a peer is rested until it answers a HAVE again. @default 2 */
  maxErrors?: number
  /** Source of the tie-break ranks; inject a seeded one in tests. @default Math.random */
  random?: () => number
  /** Ask seeds with ANY requests for chunks only seeds hold (see above). @default false */
  anyFromSeeds?: boolean
}

/** Slots free for new requests, over all peers and per peer. */
export interface FreeSlots {
  total: number
  peer: (id: string) => number
  /** Seeds may be asked by name for chunks they gave others or downloaders hold (the download is stalled). @default false */
  fallback?: boolean
}

interface PeerState {
  /**
   * Held everything when first heard of (the uploader, or a host done before this download
   * began): a seed. A peer that completes while this host downloads is not: its uplink does not
   * carry what only it holds, and it holds what seeds gave away to it.
   */
  origin: boolean
  bitmap: Uint8Array
  /** Bits set in `bitmap` (up to `size`). */
  count: number
  /** Chunks of this content being fetched from the peer. */
  inflight: number
  bad: number
  errors: number
  dropped: boolean
  /** Not asked until it is heard from again (BUSY, or several errors in a row). */
  resting: boolean
  /** Chunks this peer sent corrupt: never asked of it again. */
  excluded: Set<number>
}

export class Swarm {
  /** Number of distinct chunks of the content. */
  readonly size: number
  private readonly anyFromSeeds: boolean
  private readonly state: Uint8Array
  /** Per chunk: a seed said it gave it to another downloader; awaited from the peers. */
  private readonly given: Uint8Array
  /** Chunk indices by random rank: the tie-break order, drawn once. */
  private readonly byRank: Uint32Array
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
  /** ANY requests that have not picked yet: each may still take one of the chunks listed. */
  private anyPending = 0

  /** `have`: this host's bitmap (missing = nothing held). */
  constructor (size: number, have: Uint8Array | undefined, opts: SwarmOptions) {
    this.size = size
    this.anyFromSeeds = opts.anyFromSeeds === true
    this.state = new Uint8Array(size)
    this.holders = new Uint32Array(size)
    this.given = new Uint8Array(size)
    this.maxBadChunks = Math.max(1, opts.maxBadChunks)
    this.maxErrors = Math.max(1, opts.maxErrors ?? 2)
    const random = opts.random ?? Math.random
    const rank = new Float64Array(size)
    this.left = size
    for (let i = 0; i < size; i++) {
      rank[i] = random()
      if (have != null && hasBit(have, i)) {
        this.state[i] = DONE
        this.left--
      }
    }
    this.byRank = Uint32Array.from({ length: size }, (_, i) => i).sort((a, b) => rank[a] - rank[b])
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

  /** Whether the peer is a seed: it held every chunk when first heard of, and still does. */
  isSeed (peer: string): boolean {
    const p = this.peers.get(peer)
    return p != null && !p.dropped && p.origin && p.count === this.size
  }

  /**
   * Whether to ask the peer for its bitmap again: not when it is dropped, nor when its last bitmap
   * had every chunk (asking tells nothing new) unless it is resting (its answer ends the rest).
   */
  wantsBitmap (peer: string): boolean {
    const p = this.peers.get(peer)
    if (p == null) return true
    if (p.dropped) return false
    return p.resting || p.count < this.size
  }

  /** Ends the peer's rest (it was heard from). */
  wake (peer: string): void {
    const p = this.peers.get(peer)
    if (p == null || p.dropped) return
    p.resting = false
    p.errors = 0
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

  private newPeer (): PeerState {
    return { origin: false, bitmap: new Uint8Array(bitmapLength(this.size)), count: 0, inflight: 0, bad: 0, errors: 0, dropped: false, resting: false, excluded: new Set() }
  }

  /** Stops using a peer for this content (it sent corrupt chunks before). */
  drop (peer: string): void {
    let p = this.peers.get(peer)
    if (p == null) {
      p = this.newPeer()
      this.peers.set(peer, p)
    }
    if (p.dropped) return
    this.forgetHoldings(p)
    p.dropped = true
  }

  /**
   * A peer's whole bitmap. Bits past `size` are ignored; a shorter bitmap means the rest is 0.
   * Also ends the peer's rest: it answered, so it is there.
   */
  setBitmap (peer: string, bitmap: Uint8Array): void {
    let p = this.peers.get(peer)
    const first = p == null
    if (p == null) {
      p = this.newPeer()
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
        p.count += now ? 1 : -1
        this.dirty = true
      }
    }
    p.bitmap = next
    if (first) p.origin = p.count === this.size
  }

  /** Chunks the peer has newly verified (a have update). Indices out of range are ignored. */
  addHave (peer: string, indices: Iterable<number>): void {
    const p = this.peers.get(peer)
    if (p == null || p.dropped) return
    p.resting = false
    for (const i of indices) {
      if (!Number.isInteger(i) || i < 0 || i >= this.size || hasBit(p.bitmap, i)) continue
      p.bitmap[i >> 3] |= 0x80 >> (i & 7)
      p.count++
      this.holders[i]++
      this.dirty = true
    }
  }

  /** A peer disconnected. Its in-flight requests are reported by their own outcome. */
  removePeer (peer: string): void {
    const p = this.peers.get(peer)
    if (p == null || p.dropped) return
    this.forgetHoldings(p)
    if (p.inflight === 0) this.peers.delete(peer)
    else {
      p.bitmap = new Uint8Array(p.bitmap.length)
      p.count = 0
    }
  }

  /**
   * Picks requests to start: missing chunks rarest first, each from a holder that is not a seed
   * when one has a free slot (the one with the most), else from a seed (with `anyFromSeeds`, as
   * ANY requests listing the first chunks only seeds hold). The chunks returned are marked in
   * flight (an ANY's once {@link picked}).
   */
  assign (free: FreeSlots): Assignment[] {
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
    const seeds = new Set<string>()
    for (const id of slots.keys()) if (this.isSeed(id)) seeds.add(id)
    let seedCount = 0
    for (const p of this.peers.values()) if (!p.dropped && p.origin && p.count === this.size) seedCount++
    const take = (id: string, n: number, i: number): void => {
      out.push({ peer: id, index: i })
      this.state[i] = INFLIGHT
      this.inflightCount++;
      (this.peers.get(id) as PeerState).inflight++
      total--
      if (n === 1) slots.delete(id)
      else slots.set(id, n - 1)
    }
    /** Chunks only seeds hold, for ANY requests. */
    const candidates: number[] = []
    /** Chunks to ask seeds for by name only when stalled. */
    const later: number[] = []
    let doneSeen = 0
    for (const i of this.order) {
      const st = this.state[i]
      if (st !== MISSING) {
        if (st === DONE) doneSeen++
        continue
      }
      let best: string | undefined
      let bestFree = 0
      let seed: string | undefined
      let seedFree = 0
      for (const [id, n] of slots) {
        const p = this.peers.get(id) as PeerState
        if (!hasBit(p.bitmap, i) || p.excluded.has(i)) continue
        if (seeds.has(id)) {
          if (n > seedFree) { seed = id; seedFree = n }
        } else if (n > bestFree) {
          best = id
          bestFree = n
        }
      }
      if (best != null) take(best, bestFree, i)
      else if (seed == null) continue
      // Held by a downloader too (busy now), or given to one: the seed's uplink is scarcer.
      else if (this.holders[i] > seedCount || this.given[i] === 1) later.push(i)
      else if (!this.anyFromSeeds) take(seed, seedFree, i)
      else if (candidates.length < ANY_CANDIDATES) candidates.push(i)
      if (total === 0 || slots.size === 0) break
    }
    // ANY requests to the seeds with free slots, all listing the same chunks: a seed picks one it
    // has not given away for each, a different one each time.
    // Each ANY still out may take one of them: no more ANYs than chunks left to pick.
    for (const id of candidates.length > 0 ? seeds : []) {
      let n = slots.get(id) ?? 0
      for (; n > 0 && total > 0 && this.anyPending < candidates.length; n--) {
        out.push({ peer: id, index: -1, any: candidates });
        (this.peers.get(id) as PeerState).inflight++
        this.anyPending++
        total--
      }
      slots.delete(id)
    }
    // Stalled, or the end: every chunk only seeds held is given away, so their uplinks have room
    // for what the downloaders are still relaying. Seeds' free slots go to those chunks by name.
    const endgame = this.anyFromSeeds && candidates.length === 0
    for (const i of free.fallback === true || endgame ? later : []) {
      if (total === 0 || slots.size === 0) break
      let seed: string | undefined
      let seedFree = 0
      for (const id of seeds) {
        const n = slots.get(id) ?? 0
        const p = this.peers.get(id) as PeerState
        if (n > seedFree && hasBit(p.bitmap, i) && !p.excluded.has(i)) { seed = id; seedFree = n }
      }
      if (seed != null) take(seed, seedFree, i)
    }
    // Walking past many done chunks each time is wasted work: compact now and then.
    if (doneSeen > 64 && doneSeen > this.order.length / 8) this.order = this.order.filter(i => this.state[i] !== DONE)
    return out
  }

  /**
   * The seed answering an ANY picked chunk i: it is in flight from now on, like any request.
   * Returns false when it was in flight or done already (asked of someone else meanwhile).
   */
  picked (i: number): boolean {
    this.anyPending--
    if (this.state[i] !== MISSING) return false
    this.state[i] = INFLIGHT
    this.inflightCount++
    return true
  }

  /**
   * An ANY request ended without a chunk picked: `sent` when the seed gave every listed chunk to
   * others (they are awaited from the peers from now on), else it failed like a request.
   */
  anyEnded (peer: string, candidates: number[], reason: FailReason | 'sent'): 'dropped' | 'resting' | undefined {
    this.anyPending--
    if (reason === 'sent') {
      for (const i of candidates) this.given[i] = 1
      const p = this.peers.get(peer)
      if (p != null) {
        p.inflight--
        this.maybeForget(peer, p)
      }
      return undefined
    }
    return this.failed(peer, -1, reason)
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
   * A request failed (`i` -1: an ANY before it picked); the chunk is missing again and goes to the next assignment (to another peer
   * when it was corrupt). Returns what happened to the peer.
   */
  failed (peer: string, i: number, reason: FailReason): 'dropped' | 'resting' | undefined {
    if (i >= 0 && this.state[i] === INFLIGHT) {
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
      if (i >= 0) p.excluded.add(i)
      if (p.bad >= this.maxBadChunks) {
        this.forgetHoldings(p)
        p.dropped = true
        outcome = 'dropped'
      }
    } else if (reason === 'missing') {
      if (i >= 0 && hasBit(p.bitmap, i)) {
        clearBit(p.bitmap, i)
        p.count--
        this.holders[i]--
        this.dirty = true
      }
    } else if (reason === 'busy') {
      p.resting = true
      outcome = 'resting'
    } else if (reason === 'cancelled') {
      outcome = undefined
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
    if (!p.dropped && p.inflight === 0 && p.count === 0 && p.bad === 0) this.peers.delete(id)
  }

  /** Rarest first, rank order within equally rare chunks: one pass over the rank order and a counting sort. O(size). */
  private rebuild (): void {
    let max = 0
    for (let i = 0; i < this.size; i++) if (this.holders[i] > max) max = this.holders[i]
    const counts = new Uint32Array(max + 2)
    for (const i of this.byRank) if (this.state[i] !== DONE && this.holders[i] > 0) counts[this.holders[i] + 1]++
    for (let h = 1; h < counts.length; h++) counts[h] += counts[h - 1]
    const order = new Array<number>(counts[counts.length - 1])
    for (const i of this.byRank) if (this.state[i] !== DONE && this.holders[i] > 0) order[counts[this.holders[i]]++] = i
    this.order = order
    this.dirty = false
  }
}
