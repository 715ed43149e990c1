/**
 * The chunk exchange: protocol `/edgelink/content/1.0.0`, which serves chunks to members, and the
 * downloader that fetches a content's missing chunks from every connected member at once.
 *
 * One request per stream (yamux streams are cheap): HAVE(content) answers the have-bitmap,
 * GET(content, index, hash) answers the chunk's bytes or a typed refusal (NOT_FOUND, BUSY). A host
 * serves every chunk it holds, including chunks of content it is still downloading, so downloads
 * swarm: see {@link Swarm} for which chunk is asked of whom.
 *
 * Downloads are resumable by construction: only chunks the local bitmap lacks are fetched, and a
 * chunk is marked held only after the store verified and stored it.
 */
import { EventEmitter } from 'node:events'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { Clock, ClockTimer } from '../clock.ts'
import { EdgelinkError, isEdgelinkError, isErrorCode } from '../errors.ts'
import type { Logger } from '../logger.ts'
import { bitmapLength } from './bitmap.ts'
import { ContentRequest, ContentResponse } from './content.ts'
import { isChunkHash, MAX_CHUNKS } from './manifest.ts'
import { Swarm, type Assignment, type FailReason } from './swarm.ts'
import { TokenBucket } from './throttle.ts'
import { MAX_CHUNK_SIZE, type ContentProgress } from './types.ts'

export const CONTENT_PROTOCOL = '/edgelink/content/1.0.0'

/** Largest request: op, a 64-character id, an index and a 32-byte hash take ~110 bytes. */
const MAX_REQUEST_BYTES = 512
/** Largest length-prefixed piece of chunk bytes a receiver accepts. */
const MAX_FRAME = 1024 * 1024
/**
 * Chunk bytes are written in pieces of this size, waiting for the stream to drain between them,
 * so an upload holds its chunk plus about one piece in flight, whatever the chunk size.
 * 256 KiB is where Noise + Yamux writes stop getting faster (FACTS.md).
 */
export const SLICE_SIZE = 256 * 1024
/** Streams of this protocol per connection and direction (libp2p's defaults are 32 / 64). */
const STREAM_LIMIT = 256
/** Chunks no peer offers looked up in the local store per refresh. */
const SCAN_BATCH = 1024
/** Window of the download rate in progress events, in ms. */
const RATE_WINDOW = 5_000

/** What the exchange needs from the content store. */
export interface ChunkSource {
  hasChunk(hash: string): boolean | Promise<boolean>
  readChunk(hash: string): Promise<Uint8Array>
  /**
   * Verifies SHA-256 === hash (throws EdgelinkError CHUNK_CORRUPT otherwise) and stores it durably.
   * What it resolves to is ignored.
   */
  writeChunk(hash: string, bytes: Uint8Array): Promise<unknown>
  /**
   * Bit i = uniqueChunks[i] held (MSB-first, see `bitmap.ts`); undefined when the content is
   * unknown here. Read on every HAVE: it must reflect `markHave` at once.
   */
  bitmap(contentId: string): Uint8Array | undefined
  /** Records chunk `index` of the content as held (after `writeChunk`). What it resolves to is ignored. */
  markHave(contentId: string, index: number): Promise<unknown>
}

/** Options of {@link ContentExchange}. */
export interface ExchangeOptions {
  /**
   * Requests in flight to one peer, over all downloads. One request leaves the link idle for a
   * round trip between chunks; a few hide it. More only queue behind each other on the peer's
   * uplink and make a vanished peer cost more retries.
   * @default 4
   */
  perPeerConcurrency?: number
  /**
   * Requests in flight over all peers and downloads. Bounds memory: each holds up to one chunk
   * (1 MiB by default, 16 MiB at most) until it is verified and stored.
   * @default 16
   */
  totalConcurrency?: number
  /**
   * A request that moves no bytes for this long, in ms, fails and its chunk is asked elsewhere.
   * It measures silence, not duration, so it holds for any chunk size and link speed; shorter
   * reacts faster to a peer cut off without a reset, longer tolerates stalls of a loaded peer.
   * @default 30_000
   */
  chunkTimeout?: number
  /**
   * Corrupt chunks a peer may send for one content before it is no longer asked for that content.
   * One can be bit rot on the peer's disk; a pattern is a broken or hostile peer.
   * @default 2
   */
  maxBadChunks?: number
  /**
   * Upload limit of this host in bytes per second over all peers, 0 for none. Leaves room on a
   * thin link for everything else; every member still downloads at full speed from the others.
   * @default 0
   */
  uploadRate?: number
  /**
   * How often a download asks each peer for its have-bitmap again, in ms. Shorter lets followers
   * start serving each other sooner and notices peers that joined sooner; each refresh costs one
   * small request per peer (a peer that holds everything is not asked again).
   * @default 1_000
   */
  bitmapRefresh?: number
  /**
   * Chunk uploads served at once; further GETs are answered BUSY and asked elsewhere. Bounds the
   * memory uploads take (one chunk each).
   * @default 32
   */
  uploadSlots?: number
}

export const EXCHANGE_DEFAULTS: Readonly<Required<ExchangeOptions>> = {
  perPeerConcurrency: 4,
  totalConcurrency: 16,
  chunkTimeout: 30_000,
  maxBadChunks: 2,
  uploadRate: 0,
  bitmapRefresh: 1_000,
  uploadSlots: 32
}

/** What the exchange needs from the host. */
export interface ExchangeContext {
  node(): Libp2p | undefined
  isMember(id: string): boolean
  readonly source: ChunkSource
  readonly clock: Clock
  readonly log: Logger
}

/** Progress of one download; the host adds the content's name. */
export type ExchangeProgress = Omit<ContentProgress, 'name'>

export interface ExchangeEvents {
  progress: [ExchangeProgress]
  complete: [{ id: string }]
  /** A peer sent `maxBadChunks` corrupt chunks of a content and is no longer asked for it. */
  dropped: [{ id: string, peer: string }]
}

interface Run {
  id: string
  hashes: string[]
  sizes: number[]
  swarm?: Swarm
  ctl: AbortController
  totalBytes: number
  bytes: number
  samples: Array<{ t: number, bytes: number }>
  peerIds: Map<string, PeerId>
  /** Peers with a HAVE in flight. */
  asking: Set<string>
  /** In-flight GETs per peer, to abort them when the peer is dropped. */
  requests: Map<string, Set<AbortController>>
  timer?: ClockTimer
  /** A lookup of chunks no peer offers is running; where the next one starts. */
  scanning: boolean
  scanFrom: number
  done: Deferred
  finished: boolean
}

type Refusal = 'NOT_FOUND' | 'BUSY' | 'PROTOCOL_ERROR'

/** A typed refusal received from a peer. */
class RefusedError extends Error {
  override readonly name = 'RefusedError'
  readonly code: string
  constructor (code: string) {
    super(`the peer refused: ${code.slice(0, 32)}`)
    this.code = code
  }
}

/** The bytes a peer sent are not the chunk asked for (wrong length or wrong hash). */
class CorruptError extends Error {
  override readonly name = 'CorruptError'
}

export class ContentExchange extends EventEmitter<ExchangeEvents> {
  private readonly ctx: ExchangeContext
  private readonly opts: Required<ExchangeOptions>
  private readonly bucket?: TokenBucket
  private readonly runs = new Map<string, Run>()
  private readonly inflightPeer = new Map<string, number>()
  /** Peers dropped per content for sending corrupt chunks. */
  private readonly dropped = new Map<string, Set<string>>()
  private inflightTotal = 0
  private uploads = 0
  private running = false
  /** The node the protocol was registered on. */
  private node?: Libp2p
  /** Totals since start, for status and tests. */
  readonly counters = {
    /** GETs answered with the chunk, and the chunk bytes sent. */
    served: 0,
    servedBytes: 0,
    /** Streams aborted because the peer is not a member. */
    refused: 0,
    /** GETs answered BUSY. */
    busy: 0,
    /** GETs sent, chunks verified and stored, corrupt chunks received, other failed GETs. */
    requested: 0,
    received: 0,
    corrupt: 0,
    failed: 0
  }

  constructor (ctx: ExchangeContext, options: ExchangeOptions = {}) {
    super()
    this.ctx = ctx
    const opts = { ...EXCHANGE_DEFAULTS }
    for (const [k, v] of Object.entries(options)) if (v !== undefined) (opts as Record<string, number>)[k] = v
    for (const [k, v] of Object.entries(opts)) {
      const min = k === 'uploadRate' ? 0 : 1
      if (!Number.isFinite(v) || v < min) throw new EdgelinkError('INVALID_ARGUMENT', `exchange option ${k} must be a number ≥ ${min}`)
    }
    this.opts = opts
    // The burst lets a quarter second of rate (at least one slice) leave at once after a pause.
    if (opts.uploadRate > 0) this.bucket = new TokenBucket(opts.uploadRate, Math.max(SLICE_SIZE, opts.uploadRate / 4), ctx.clock)
  }

  /** Serves the protocol on the current node. */
  async start (): Promise<void> {
    const node = this.ctx.node()
    if (node == null) throw new EdgelinkError('NOT_STARTED')
    await node.handle(CONTENT_PROTOCOL, (s, c) => { void this.onStream(s, c) }, { maxInboundStreams: STREAM_LIMIT, maxOutboundStreams: STREAM_LIMIT })
    // A member that connects joins running downloads at once rather than at the next refresh.
    node.addEventListener('peer:connect', this.onConnect)
    this.node = node
    this.running = true
  }

  private readonly onConnect = (): void => {
    for (const run of this.runs.values()) this.refresh(run)
  }

  /** Stops serving and cancels every download. Safe to call twice. */
  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    for (const run of [...this.runs.values()]) this.finish(run, new EdgelinkError('ABORTED', 'the exchange stopped'))
    this.node?.removeEventListener('peer:connect', this.onConnect)
    await this.node?.unhandle(CONTENT_PROTOCOL).catch(() => {})
    this.node = undefined
  }

  /** Contents being downloaded. */
  downloads (): string[] { return [...this.runs.keys()] }

  /**
   * Downloads every chunk of `contentId` the local bitmap lacks from connected members, verified,
   * and resolves once the bitmap is full. Waits (asking again every `bitmapRefresh`) while no peer
   * holds a missing chunk; rejects only on `signal`, {@link cancel}, {@link stop} or a local store
   * failure. A second call for a content being downloaded joins the first; its `signal` then only
   * stops its own wait.
   *
   * @param uniqueChunks the content's distinct chunk hashes, in bitmap order
   * @param sizes the byte length of each of them
   */
  async fetch (contentId: string, uniqueChunks: string[], sizes: number[], options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = options
    checkFetchArgs(contentId, uniqueChunks, sizes)
    if (signal?.aborted === true) throw new EdgelinkError('ABORTED', 'the download was aborted', { cause: signal.reason })
    if (!this.running) throw new EdgelinkError('NOT_STARTED')
    const existing = this.runs.get(contentId)
    if (existing != null) {
      if (existing.hashes.length !== uniqueChunks.length) throw new EdgelinkError('BUSY', 'this content is being downloaded with another chunk list')
      await raceAbort(existing.done.promise, signal)
      return
    }
    const run: Run = {
      id: contentId,
      hashes: uniqueChunks.slice(),
      sizes: sizes.slice(),
      ctl: new AbortController(),
      totalBytes: sizes.reduce((a, b) => a + b, 0),
      bytes: 0,
      samples: [],
      peerIds: new Map(),
      asking: new Set(),
      requests: new Map(),
      scanning: false,
      scanFrom: 0,
      done: deferred(),
      finished: false
    }
    run.done.promise.catch(() => {})
    this.runs.set(contentId, run)
    const onAbort = (): void => { this.finish(run, new EdgelinkError('ABORTED', 'the download was aborted', { cause: signal?.reason })) }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      this.begin(run).catch(err => { this.finish(run, storeError(err)) })
      await run.done.promise
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  /** Cancels the download of `contentId`: its `fetch` rejects with ABORTED. Chunks already verified stay. */
  cancel (contentId: string): void {
    const run = this.runs.get(contentId)
    if (run != null) this.finish(run, new EdgelinkError('ABORTED', 'the download was cancelled'))
  }

  // ------------------------------------------------------------------ downloading

  private async begin (run: Run): Promise<void> {
    const n = run.hashes.length
    const have = this.ctx.source.bitmap(run.id)
    const swarm = new Swarm(n, have, { maxBadChunks: this.opts.maxBadChunks })
    for (const peer of this.dropped.get(run.id) ?? []) swarm.drop(peer)
    run.swarm = swarm
    for (let i = 0; i < n; i++) if (swarm.isDone(i)) run.bytes += run.sizes[i]
    run.samples.push({ t: this.ctx.clock.now(), bytes: run.bytes })
    this.progress(run)
    if (swarm.isDone()) {
      this.finish(run)
      return
    }
    this.tick(run)
  }

  /** Refreshes now and every `bitmapRefresh` until the download ends. */
  private tick (run: Run): void {
    if (run.finished) return
    this.refresh(run)
    if (!run.scanning) {
      run.scanning = true
      this.scan(run).then(() => { run.scanning = false }, err => { this.finish(run, storeError(err)) })
    }
    run.timer = this.ctx.clock.setTimeout(() => { this.tick(run) }, this.opts.bitmapRefresh)
  }

  /**
   * A chunk may be in the local store already, shared with content held before (a layer of two
   * images). Chunks some peer offers are looked up just before they are requested; this looks up
   * the ones no peer offers, a batch per refresh, so a content whose chunks are all here completes
   * with no peer at all, without a burst of lookups for every chunk at start.
   */
  private async scan (run: Run): Promise<void> {
    const swarm = run.swarm as Swarm
    const { indices, next } = swarm.orphans(run.scanFrom, SCAN_BATCH)
    run.scanFrom = next
    for (const i of indices) {
      if (run.finished) return
      if (swarm.isDone(i) || !(await this.ctx.source.hasChunk(run.hashes[i]))) continue
      await this.ctx.source.markHave(run.id, i)
      if (run.finished || !swarm.markDone(i)) continue
      run.bytes += run.sizes[i]
      this.progress(run)
      if (swarm.isDone()) this.finish(run)
    }
  }

  /** Asks connected members for bitmaps (but those known to hold everything) and forgets disconnected ones. */
  private refresh (run: Run): void {
    if (run.finished || run.swarm == null) return
    const swarm = run.swarm
    const node = this.ctx.node()
    const connected = new Map<string, PeerId>()
    for (const p of node?.getPeers() ?? []) {
      const id = p.toString()
      if (this.ctx.isMember(id)) connected.set(id, p)
    }
    for (const id of swarm.knownPeers()) {
      if (!connected.has(id)) swarm.removePeer(id)
    }
    for (const [id, peer] of connected) {
      run.peerIds.set(id, peer)
      if (run.asking.has(id) || !swarm.wantsBitmap(id)) continue
      run.asking.add(id)
      this.askHave(peer, run.id, run.hashes.length, run.ctl.signal)
        .then(bitmap => {
          if (run.finished) return
          swarm.setBitmap(id, bitmap ?? new Uint8Array(0))
          this.pump()
        }, (err: any) => {
          if (!run.finished) this.ctx.log.debug({ content: run.id, peer: id, err: String(err?.message ?? err) }, 'HAVE failed')
        })
        .finally(() => { run.asking.delete(id) })
    }
    this.pump()
  }

  /** Starts every request the limits allow, for every download in turn. */
  private pump (): void {
    for (const run of this.runs.values()) {
      if (run.finished || run.swarm == null) continue
      const total = this.opts.totalConcurrency - this.inflightTotal
      if (total <= 0) return
      const assigned = run.swarm.assign({ total, peer: id => this.opts.perPeerConcurrency - (this.inflightPeer.get(id) ?? 0) })
      for (const a of assigned) this.startGet(run, a)
    }
  }

  private startGet (run: Run, { peer, index }: Assignment): void {
    this.inflightTotal++
    this.inflightPeer.set(peer, (this.inflightPeer.get(peer) ?? 0) + 1)
    const ctl = new AbortController()
    const signal = AbortSignal.any([run.ctl.signal, ctl.signal])
    let mine = run.requests.get(peer)
    if (mine == null) run.requests.set(peer, mine = new Set())
    mine.add(ctl)
    const hash = run.hashes[index]
    const size = run.sizes[index]
    const get = async (): Promise<void> => {
      let bytes: Uint8Array | undefined
      try {
        // Stored meanwhile, by another download sharing the chunk or by the scan.
        if (await this.ctx.source.hasChunk(hash)) {
          await this.ctx.source.markHave(run.id, index)
          if (!run.finished) this.received(run, peer, index, size)
          return
        }
      } catch (err) {
        this.finish(run, storeError(err))
        return
      }
      this.counters.requested++
      try {
        const peerId = run.peerIds.get(peer) ?? peerIdFromString(peer)
        bytes = await this.requestChunk(peerId, run.id, index, hash, size, signal)
      } catch (err) {
        this.onGetFailed(run, peer, index, err)
        return
      }
      try {
        await this.ctx.source.writeChunk(hash, bytes)
      } catch (err) {
        if (isEdgelinkError(err, 'CHUNK_CORRUPT')) this.onGetFailed(run, peer, index, new CorruptError('the chunk does not match its hash'))
        else this.finish(run, storeError(err))
        return
      }
      try {
        await this.ctx.source.markHave(run.id, index)
      } catch (err) {
        this.finish(run, storeError(err))
        return
      }
      this.counters.received++
      if (!run.finished) this.received(run, peer, index, size)
    }
    void get().finally(() => {
      mine.delete(ctl)
      this.inflightTotal--
      const left = (this.inflightPeer.get(peer) ?? 1) - 1
      if (left === 0) this.inflightPeer.delete(peer)
      else this.inflightPeer.set(peer, left)
      this.pump()
    })
  }

  private received (run: Run, peer: string, index: number, size: number): void {
    const swarm = run.swarm as Swarm
    if (!swarm.succeeded(peer, index)) return
    run.bytes += size
    this.progress(run)
    if (swarm.isDone()) this.finish(run)
  }

  private onGetFailed (run: Run, peer: string, index: number, err: unknown): void {
    if (run.finished || run.swarm == null) return
    let reason: FailReason = 'error'
    if (err instanceof CorruptError) reason = 'corrupt'
    else if (err instanceof RefusedError && err.code === 'NOT_FOUND') reason = 'missing'
    else if (err instanceof RefusedError && err.code === 'BUSY') reason = 'busy'
    if (reason === 'corrupt') this.counters.corrupt++
    else this.counters.failed++
    const outcome = run.swarm.failed(peer, index, reason)
    this.ctx.log.debug({ content: run.id, peer, index, reason, err: String((err as Error)?.message ?? err) }, 'chunk request failed')
    if (outcome === 'dropped') {
      this.ctx.log.warn({ content: run.id, peer }, 'peer sent corrupt chunks; no longer asked for this content')
      for (const ctl of run.requests.get(peer) ?? []) ctl.abort(new EdgelinkError('ABORTED', 'peer dropped'))
      // Remembered while this exchange runs, so a restarted download does not trust it again.
      let dropped = this.dropped.get(run.id)
      if (dropped == null) this.dropped.set(run.id, dropped = new Set())
      dropped.add(peer)
      this.emit('dropped', { id: run.id, peer })
    } else if (reason === 'error' && (this.ctx.node()?.getConnections(run.peerIds.get(peer) ?? peerIdFromString(peer)).length ?? 0) === 0) {
      run.swarm.removePeer(peer)
    }
  }

  private progress (run: Run): void {
    const swarm = run.swarm
    if (swarm == null) return
    const now = this.ctx.clock.now()
    run.samples.push({ t: now, bytes: run.bytes })
    while (run.samples.length > 2 && run.samples[1].t <= now - RATE_WINDOW) run.samples.shift()
    const first = run.samples[0]
    const dt = now - first.t
    const rate = dt > 0 ? Math.round((run.bytes - first.bytes) * 1000 / dt) : 0
    const left = run.totalBytes - run.bytes
    this.emit('progress', {
      id: run.id,
      bytes: run.bytes,
      totalBytes: run.totalBytes,
      chunks: swarm.size - swarm.remaining,
      totalChunks: swarm.size,
      rate,
      eta: left === 0 ? 0 : rate > 0 ? Math.ceil(left / rate) : -1,
      peers: swarm.activePeers()
    })
  }

  private finish (run: Run, err?: unknown): void {
    if (run.finished) return
    run.finished = true
    if (run.timer != null) this.ctx.clock.clearTimeout(run.timer)
    run.ctl.abort(err ?? new EdgelinkError('ABORTED', 'the download finished'))
    if (this.runs.get(run.id) === run) this.runs.delete(run.id)
    if (err == null) {
      this.emit('complete', { id: run.id })
      run.done.resolve()
    } else {
      run.done.reject(err)
    }
    this.pump()
  }

  // ------------------------------------------------------------------ requests

  private async openStream (peer: PeerId, signal: AbortSignal): Promise<Stream> {
    const node = this.ctx.node()
    if (node == null) throw new EdgelinkError('NOT_STARTED')
    // Only peers connected now: a vanished peer fails fast instead of being redialled per chunk.
    const conn = node.getConnections(peer).find(c => c.status === 'open')
    if (conn == null) throw new EdgelinkError('TIMEOUT', 'the peer is not connected')
    return await conn.newStream(CONTENT_PROTOCOL, { signal, maxOutboundStreams: STREAM_LIMIT })
  }

  /** The peer's have-bitmap of a content with `chunks` distinct chunks; undefined when it does not know it. */
  async askHave (peer: PeerId, contentId: string, chunks: number, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    const dog = new Watchdog(this.opts.chunkTimeout)
    const sig = signal == null ? dog.signal : AbortSignal.any([signal, dog.signal])
    const max = bitmapLength(chunks)
    let stream: Stream | undefined
    try {
      stream = await this.openStream(peer, sig)
      const lp = lpStream(stream, { maxDataLength: max + 64 })
      await lp.write(ContentRequest.encode({ op: 'HAVE', contentId, index: 0, hash: new Uint8Array(0) }), { signal: sig })
      await stream.close({ signal: sig })
      const res = decodeResponse(await readFrame(lp, sig))
      if (res.code === 'NOT_FOUND') return undefined
      if (res.code !== '') throw new RefusedError(res.code)
      if (res.bitmap.length > max) throw new EdgelinkError('PROTOCOL_ERROR', `a bitmap of ${res.bitmap.length} bytes for ${chunks} chunks`)
      return res.bitmap
    } catch (err: any) {
      stream?.abort(err)
      throw err
    } finally {
      dog.stop()
    }
  }

  private async requestChunk (peer: PeerId, contentId: string, index: number, hash: string, size: number, signal: AbortSignal): Promise<Uint8Array> {
    const dog = new Watchdog(this.opts.chunkTimeout)
    const sig = AbortSignal.any([signal, dog.signal])
    let stream: Stream | undefined
    try {
      stream = await this.openStream(peer, sig)
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME, maxBufferSize: size + MAX_FRAME })
      await lp.write(ContentRequest.encode({ op: 'GET', contentId, index, hash: Buffer.from(hash, 'hex') }), { signal: sig })
      await stream.close({ signal: sig })
      const res = decodeResponse(await readFrame(lp, sig))
      if (res.code !== '') throw new RefusedError(res.code)
      if (res.size !== size) throw new CorruptError(`the peer announced ${res.size} bytes for a chunk of ${size}`)
      const out = new Uint8Array(size)
      let off = 0
      while (off < size) {
        const frame = await readFrame(lp, sig)
        if (off + frame.byteLength > size) throw new CorruptError('the peer sent more bytes than announced')
        for (const buf of frame) {
          out.set(buf, off)
          off += buf.byteLength
        }
        dog.kick()
      }
      return out
    } catch (err: any) {
      stream?.abort(err)
      throw err
    } finally {
      dog.stop()
    }
  }

  // ------------------------------------------------------------------ serving

  private async onStream (stream: Stream, conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString()
    if (!this.ctx.isMember(peer)) {
      // The connection gater keeps non-members out; this is the second lock.
      this.counters.refused++
      stream.abort(new EdgelinkError('NOT_MEMBER'))
      return
    }
    const dog = new Watchdog(this.opts.chunkTimeout)
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_REQUEST_BYTES })
      let req: ContentRequest
      try {
        req = ContentRequest.decode(await lp.read({ signal: dog.signal }))
      } catch (err) {
        if (dog.signal.aborted) throw err
        req = { op: '', contentId: '', index: 0, hash: new Uint8Array(0) }
      }
      if (!isChunkHash(req.contentId) || (req.op === 'GET' ? req.hash.length !== 32 : req.op !== 'HAVE')) {
        await this.refuse(lp, 'PROTOCOL_ERROR', dog.signal)
      } else if (req.op === 'HAVE') {
        const bitmap = this.ctx.source.bitmap(req.contentId)
        if (bitmap == null) await this.refuse(lp, 'NOT_FOUND', dog.signal)
        else await lp.write(ContentResponse.encode({ code: '', bitmap: bitmap as Uint8Array<ArrayBuffer>, size: 0 }), { signal: dog.signal })
      } else if (this.uploads >= this.opts.uploadSlots) {
        this.counters.busy++
        await this.refuse(lp, 'BUSY', dog.signal)
      } else {
        this.uploads++
        try {
          await this.serveChunk(lp, Buffer.from(req.hash).toString('hex'), dog)
        } finally {
          this.uploads--
        }
      }
      await stream.close({ signal: dog.signal })
    } catch (err: any) {
      stream.abort(err)
    } finally {
      dog.stop()
    }
  }

  private async serveChunk (lp: LengthPrefixedStream<Stream>, hash: string, dog: Watchdog): Promise<void> {
    const { source } = this.ctx
    let bytes: Uint8Array | undefined
    try {
      bytes = await source.readChunk(hash)
    } catch (err: any) {
      // CHUNK_MISSING, or CHUNK_CORRUPT when the store found bit rot (it drops the chunk).
      if (!isEdgelinkError(err, 'CHUNK_MISSING')) this.ctx.log.warn({ hash, err: String(err?.message ?? err) }, 'could not read a chunk to serve')
    }
    if (bytes == null || bytes.length > MAX_CHUNK_SIZE) {
      await this.refuse(lp, 'NOT_FOUND', dog.signal)
      return
    }
    await lp.write(ContentResponse.encode({ code: '', bitmap: new Uint8Array(0), size: bytes.length }), { signal: dog.signal })
    await sendSlices(lp, slices(bytes, SLICE_SIZE), {
      signal: dog.signal,
      throttle: this.bucket == null ? undefined : async (n, signal) => { await this.bucket?.take(n, signal) },
      onSent: n => {
        dog.kick()
        this.counters.servedBytes += n
      }
    })
    this.counters.served++
  }

  private async refuse (lp: LengthPrefixedStream<Stream>, code: Refusal, signal: AbortSignal): Promise<void> {
    await lp.write(ContentResponse.encode({ code, bitmap: new Uint8Array(0), size: 0 }), { signal })
  }
}

/**
 * Writes each piece as one length-prefixed message. `lp.write` waits for the stream's `drain`
 * event (rejecting on `close`) whenever `send` reports a full buffer, so at most about one piece
 * waits beyond the muxer's window: `stream.onDrain()`, which resolves once and then forever in
 * libp2p 3.3, is not used (FACTS.md). `throttle` is awaited before each piece.
 */
export async function sendSlices (lp: LengthPrefixedStream<Stream>, pieces: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, opts: {
  signal?: AbortSignal
  throttle?: (bytes: number, signal?: AbortSignal) => Promise<void>
  onSent?: (bytes: number) => void
} = {}): Promise<void> {
  for await (const piece of pieces) {
    if (opts.throttle != null) await opts.throttle(piece.byteLength, opts.signal)
    await lp.write(piece, { signal: opts.signal })
    opts.onSent?.(piece.byteLength)
  }
}

/** Views of `bytes`, `size` bytes each but the last (no copies). */
export function * slices (bytes: Uint8Array, size: number): Generator<Uint8Array> {
  for (let off = 0; off < bytes.length; off += size) yield bytes.subarray(off, Math.min(bytes.length, off + size))
}

/**
 * Aborts its signal after `ms` without a {@link kick}: a timeout on silence, not on duration.
 * Wall-clock, like every network timeout here. One timer, re-armed only when it fires.
 */
class Watchdog {
  private readonly ctl = new AbortController()
  private readonly ms: number
  private last = 0
  private timer?: NodeJS.Timeout

  constructor (ms: number) {
    this.ms = ms
    this.last = Date.now()
    this.arm(ms)
  }

  get signal (): AbortSignal { return this.ctl.signal }

  kick (): void { this.last = Date.now() }

  stop (): void {
    if (this.timer != null) clearTimeout(this.timer)
    this.timer = undefined
  }

  private arm (ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined
      const idle = Date.now() - this.last
      if (idle >= this.ms) this.ctl.abort(new EdgelinkError('TIMEOUT', `no progress for ${this.ms} ms`))
      else this.arm(this.ms - idle)
    }, ms)
    this.timer.unref()
  }
}

const LENGTH_ERRORS = new Set(['InvalidDataLengthError', 'InvalidDataLengthLengthError', 'InvalidMessageLengthError'])

/** `lp.read`, with a frame over the bound reported as the peer's fault. */
async function readFrame (lp: LengthPrefixedStream<Stream>, signal: AbortSignal): Promise<Uint8ArrayList> {
  try {
    return await lp.read({ signal })
  } catch (err: any) {
    if (LENGTH_ERRORS.has(err?.name)) throw new EdgelinkError('PROTOCOL_ERROR', `a frame over the limit: ${String(err.message).slice(0, 200)}`)
    throw err
  }
}

function decodeResponse (bytes: Uint8Array | Uint8ArrayList): ContentResponse {
  try {
    const res = ContentResponse.decode(bytes)
    if (res.code !== '' && res.code !== 'NOT_FOUND' && res.code !== 'BUSY' && !isErrorCode(res.code)) res.code = 'PROTOCOL_ERROR'
    return res
  } catch (err: any) {
    throw new EdgelinkError('PROTOCOL_ERROR', `malformed content response: ${String(err?.message ?? err).slice(0, 200)}`)
  }
}

function storeError (err: unknown): EdgelinkError {
  if (err instanceof EdgelinkError) return err
  return new EdgelinkError('STORE_ERROR', `the content store failed: ${String((err as Error)?.message ?? err)}`, { cause: err })
}

function checkFetchArgs (contentId: string, hashes: string[], sizes: number[]): void {
  if (!isChunkHash(contentId)) throw new EdgelinkError('INVALID_ARGUMENT', 'a content id is 64 lowercase hex characters')
  if (!Array.isArray(hashes) || !Array.isArray(sizes) || hashes.length !== sizes.length) throw new EdgelinkError('INVALID_ARGUMENT', 'one size per chunk is needed')
  if (hashes.length > MAX_CHUNKS) throw new EdgelinkError('INVALID_ARGUMENT', `content may have at most ${MAX_CHUNKS} chunks`)
  for (let i = 0; i < hashes.length; i++) {
    if (!isChunkHash(hashes[i])) throw new EdgelinkError('INVALID_ARGUMENT', `chunk ${i} is not a SHA-256 hex hash`)
    const s = sizes[i]
    if (!Number.isSafeInteger(s) || s < 0 || s > MAX_CHUNK_SIZE) throw new EdgelinkError('INVALID_ARGUMENT', `chunk ${i} has an invalid size`)
  }
}

interface Deferred { promise: Promise<void>, resolve: () => void, reject: (err: unknown) => void }

function deferred (): Deferred {
  let resolve!: () => void
  let reject!: (err: unknown) => void
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

async function raceAbort<T> (p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal == null) return await p
  if (signal.aborted) throw new EdgelinkError('ABORTED', 'the wait was aborted', { cause: signal.reason })
  return await new Promise<T>((resolve, reject) => {
    const onAbort = (): void => { reject(new EdgelinkError('ABORTED', 'the wait was aborted', { cause: signal.reason })) }
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(resolve, reject).finally(() => { signal.removeEventListener('abort', onAbort) })
  })
}
