/**
 * The chunk exchange: protocol `/edgelink/content/2.0.0`, which serves chunks to members, and the
 * downloader that fetches a content's missing chunks from every connected member at once.
 *
 * A stream carries a sequence of requests, answered in order (wire format: `content.proto`):
 * - GET and ANY: a downloader keeps one stream per peer open while it fetches (a
 *   {@link GetChannel}) and pipelines its requests on it, so no chunk pays for a stream, a
 *   protocol negotiation or a round trip of its own. A chunk's bytes follow its response header
 *   unframed and are copied once, from the stream's buffers into a reused, page-aligned chunk
 *   buffer, and hashed on the way, while they are in the cache: a chunk that is not what was asked
 *   for never reaches the store, and one that is goes to disk with O_DIRECT (`direct.ts`). How many
 *   are outstanding adapts to the peer: enough for WINDOW_TIME at the rate it sends at (plus one
 *   waiting), 2 to `perPeerConcurrency`; a deeper queue on a slow link only delays everything on
 *   that connection (libp2p's connection monitor closes a connection whose ping takes ~5 s).
 *   A request leaves that window once its bytes are in; `totalConcurrency` bounds the chunks held
 *   until verified and stored, so the local store's latency does not idle the link.
 * - ANY asks a seed (a peer holding the whole content) for any one of a list of chunks that it
 *   has not given to another downloader: the seed's uplink then carries each chunk about once,
 *   and the downloaders get the rest from each other (see {@link Swarm}).
 * - WATCH subscribes to a peer's have-updates: its bitmap, then the chunks it adds as it adds
 *   them, so followers start serving each other within tens of ms. HAVE (a one-off bitmap) stays.
 *
 * A host serves every chunk it holds, including chunks of content it is still downloading, so
 * downloads swarm.
 *
 * Downloads are resumable by construction: only chunks the local bitmap lacks are fetched, and a
 * chunk is marked held only after the store verified and stored it.
 */
import { createHash, type Hash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import type { Connection, PeerId, Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import { Uint8ArrayList } from 'uint8arraylist'
import type { Clock, ClockTimer } from '../clock.ts'
import { EdgelinkError, isEdgelinkError, isErrorCode } from '../errors.ts'
import type { Logger } from '../logger.ts'
import { bitmapLength, fullBitmap, hasBit } from './bitmap.ts'
import { ChunkBuffers, SizePool } from './direct.ts'
import { ContentRequest, ContentResponse } from './content.ts'
import { isChunkHash, MAX_CHUNKS } from './manifest.ts'
import { ANY_CANDIDATES, Swarm, type Assignment, type FailReason } from './swarm.ts'
import { TokenBucket } from './throttle.ts'
import { MAX_CHUNK_SIZE, type ContentProgress } from './types.ts'

/**
 * 2.0.0: many requests per stream, chunk bytes unframed, ANY and WATCH. 1.0.0 (one request per
 * stream, chunk bytes in length-prefixed pieces) was never released; the two do not talk.
 */
export const CONTENT_PROTOCOL = '/edgelink/content/2.0.0'

/** Largest request: a GET (op, a 64-character id, an index, a 32-byte hash) takes ~110 bytes, an ANY listing 16 chunks ~800. */
const MAX_REQUEST_BYTES = 2048
/** Largest response header to a GET (a code and a size take < 40 bytes). */
const MAX_HEADER_BYTES = 256
/**
 * Requests a client may have outstanding on one stream. A server reads a stream's requests as it
 * answers them; more than this many unread ones are a broken client and end the stream, so what a
 * stream can make a server hold is bounded (64 × 2 KiB).
 */
export const MAX_PIPELINE = 64
/**
 * GETs of one stream a server works on at once: one being sent and one being read from disk, so
 * the next chunk is ready when the current one is out. Each holds an upload slot.
 */
const READ_AHEAD = 2
/**
 * With an upload limit, chunk bytes are written in pieces of this size, each paid for with tokens
 * first. 256 KiB is where Noise + Yamux writes stop getting faster (FACTS.md).
 */
export const SLICE_SIZE = 256 * 1024
/**
 * Without a limit, in pieces of this size: every piece waits for the stream's `drain` when the
 * stream reports a full buffer, so an upload holds its chunk plus about one piece in flight.
 */
const WRITE_SIZE = 1024 * 1024
/** Streams of this protocol per connection and direction (libp2p's defaults are 32 / 64). */
const STREAM_LIMIT = 256
/** A download channel with nothing outstanding is closed after this long, in ms (at most chunkTimeout / 2). */
const CHANNEL_IDLE = 5_000
/** The time's worth of a peer's sending rate kept requested from it, in ms (see `window`). */
const WINDOW_TIME = 100
/** The fewest requests kept outstanding to a peer: one being answered, one waiting. */
const MIN_WINDOW = 2
/** Half-life of the peer sending rate a download channel measures, in ms. */
const RATE_HALF_LIFE = 1_000
/** Chunk buffers (received and served) are freed after this long without a download or an upload, in ms. */
const BUFFER_IDLE = 10_000
/** A download that received no chunk for this long, in ms, may ask seeds for any chunk (see Swarm). */
const STALL = 2_000
/** Chunks no peer offers looked up in the local store per refresh. */
const SCAN_BATCH = 1024
/** Window of the download rate in progress events, in ms. */
const RATE_WINDOW = 5_000

/** What the exchange needs from the content store. */
export interface ChunkSource {
  hasChunk(hash: string): boolean | Promise<boolean>
  /**
   * Reads a chunk to serve. With `into`, reads it into the buffer that returns for its size (the
   * exchange's serving pool) and resolves with a view of it.
   */
  readChunk(hash: string, into?: (size: number) => Uint8Array): Promise<Uint8Array>
  /**
   * Stores a chunk durably. `digest` is the SHA-256 the exchange computed of `bytes` as they
   * arrived, already found equal to `hash`: the store need not hash them again (it throws
   * EdgelinkError CHUNK_CORRUPT if they differ). What it resolves to is ignored. `bytes` is the
   * exchange's again once the promise settles (it receives the next chunk into it): copy what you
   * keep. They may be a page-aligned view the store can write with O_DIRECT (see `direct.ts`).
   */
  writeChunk(hash: string, bytes: Uint8Array, digest: string): Promise<unknown>
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
   * Requests outstanding to one peer, over all downloads, from the request until the chunk is
   * stored here. They are pipelined on one stream, so a few keep the peer's uplink busy across
   * the round trip and the local verify-and-store; more only queue on the peer and make a
   * vanished peer cost more retries. At most {@link MAX_PIPELINE}.
   * @default 8
   */
  perPeerConcurrency?: number
  /**
   * Requests in flight over all peers and downloads. Bounds memory: each holds up to one chunk
   * (1 MiB by default, 16 MiB at most) until it is verified and stored.
   * @default 32
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
  perPeerConcurrency: 8,
  totalConcurrency: 32,
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
  /** Have-update subscriptions (WATCH streams) to peers, open or opening. */
  watches: Map<string, { stream?: Stream }>
  /** In-flight GETs per peer, to abort them when the peer is dropped. */
  requests: Map<string, Set<AbortController>>
  timer?: ClockTimer
  /** A lookup of chunks no peer offers is running; where the next one starts. */
  scanning: boolean
  scanFrom: number
  /** When the last chunk was received (or the download began), Date.now(). */
  lastChunk: number
  done: Deferred
  finished: boolean
}

type Refusal = 'NOT_FOUND' | 'BUSY' | 'SENT' | 'PROTOCOL_ERROR'

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

/** The request was withdrawn because its channel ended for another request's fault: no one's failure. */
class CancelledError extends Error {
  override readonly name = 'CancelledError'
}

export class ContentExchange extends EventEmitter<ExchangeEvents> {
  private readonly ctx: ExchangeContext
  private readonly opts: Required<ExchangeOptions>
  private readonly bucket?: TokenBucket
  private readonly runs = new Map<string, Run>()
  private readonly inflightPeer = new Map<string, number>()
  /** One download channel per peer, shared by every download. */
  private readonly channels = new Map<string, GetChannel>()
  /** Buffers chunks are received into (page-aligned, for direct writes). */
  private readonly buffers: ChunkBuffers
  /** Buffers chunks are read into to be served; one goes back only once nothing refers to it. */
  private readonly serveBuffers: ServeBuffers
  private readonly giving = new Giving()
  /** Peers watching each content held here (WATCH streams served). */
  private readonly watchers = new Map<string, Set<Watcher>>()
  /** Peers dropped per content for sending corrupt chunks. */
  private readonly dropped = new Map<string, Set<string>>()
  private inflightTotal = 0
  private uploads = 0
  private lastBufferUse = 0
  private bufferTimer?: ClockTimer
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
    /**
     * Chunks requested (GETs, and ANYs once the seed picked), chunks verified and stored, corrupt
     * chunks received, other failed requests.
     */
    requested: 0,
    received: 0,
    /** Bytes of the chunks received (verified and stored). */
    receivedBytes: 0,
    corrupt: 0,
    failed: 0,
    /** ANY requests answered SENT: the seed gave every chunk listed to other downloaders. */
    sent: 0,
    /** Download channels opened (one per peer while it is being fetched from). */
    channels: 0,
    /** WATCH requests served (a downloader asking this host's bitmap and its updates). */
    watches: 0
  }

  constructor (ctx: ExchangeContext, options: ExchangeOptions = {}) {
    super()
    this.ctx = ctx
    const opts = { ...EXCHANGE_DEFAULTS }
    for (const [k, v] of Object.entries(options)) if (v !== undefined && k in opts) (opts as Record<string, number>)[k] = v
    for (const [k, v] of Object.entries(opts)) {
      const min = k === 'uploadRate' ? 0 : 1
      if (!Number.isFinite(v) || v < min) throw new EdgelinkError('INVALID_ARGUMENT', `exchange option ${k} must be a number ≥ ${min}`)
    }
    if (opts.perPeerConcurrency > MAX_PIPELINE) throw new EdgelinkError('INVALID_ARGUMENT', `exchange option perPeerConcurrency must be at most ${MAX_PIPELINE}`)
    this.opts = opts
    this.buffers = new ChunkBuffers(opts.totalConcurrency)
    this.serveBuffers = new ServeBuffers(opts.uploadSlots)
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
    for (const ch of [...this.channels.values()]) ch.abort(new EdgelinkError('ABORTED', 'the exchange stopped'))
    for (const set of [...this.watchers.values()]) for (const w of [...set]) w.end(new EdgelinkError('ABORTED', 'the exchange stopped'))
    this.node?.removeEventListener('peer:connect', this.onConnect)
    if (this.bufferTimer != null) this.ctx.clock.clearTimeout(this.bufferTimer)
    this.bufferTimer = undefined
    this.buffers.clear()
    this.serveBuffers.clear()
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
   * @param options.seeds peers presumed to hold the whole content (its uploader): asked at once,
   *   without waiting for their bitmap's round trip. One that does not answers NOT_FOUND and is
   *   asked for its bitmap like any other peer.
   */
  async fetch (contentId: string, uniqueChunks: string[], sizes: number[], options: { signal?: AbortSignal, seeds?: string[] } = {}): Promise<void> {
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
      watches: new Map(),
      requests: new Map(),
      scanning: false,
      scanFrom: 0,
      lastChunk: Date.now(),
      done: deferred(),
      finished: false
    }
    run.done.promise.catch(() => {})
    this.runs.set(contentId, run)
    const onAbort = (): void => { this.finish(run, new EdgelinkError('ABORTED', 'the download was aborted', { cause: signal?.reason })) }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      this.begin(run, options.seeds ?? []).catch(err => { this.finish(run, storeError(err)) })
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

  private async begin (run: Run, seeds: string[]): Promise<void> {
    const n = run.hashes.length
    const have = this.ctx.source.bitmap(run.id)
    const swarm = new Swarm(n, have, { maxBadChunks: this.opts.maxBadChunks, anyFromSeeds: true })
    for (const peer of this.dropped.get(run.id) ?? []) swarm.drop(peer)
    run.swarm = swarm
    // A presumed seed is asked at once: its bitmap's round trip (a stream opened and answered by a
    // host that has just announced the content to everyone) delays every first chunk.
    const full = fullBitmap(n)
    for (const peer of this.ctx.node()?.getPeers() ?? []) {
      const id = peer.toString()
      if (!seeds.includes(id) || !this.ctx.isMember(id) || swarm.isDropped(id)) continue
      run.peerIds.set(id, peer)
      swarm.setBitmap(id, full)
    }
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
      this.noteHave(run.id, i)
      if (run.finished || !swarm.markDone(i)) continue
      run.bytes += run.sizes[i]
      this.progress(run)
      if (swarm.isDone()) this.finish(run)
    }
  }

  /**
   * Subscribes to the have-updates of connected members (but those known to hold everything) and
   * forgets disconnected ones. A peer rested (BUSY, errors) is asked again from the next refresh on.
   */
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
      if (run.watches.has(id)) swarm.wake(id)
      else if (swarm.wantsBitmap(id)) this.watch(run, id, peer)
    }
    this.pump()
  }

  /**
   * Opens a WATCH stream to the peer: its bitmap now, then every chunk it adds, as it adds them.
   * Ends with the download, or when the peer does not know the content (asked again at the next
   * refresh) or goes away.
   */
  private watch (run: Run, id: string, peer: PeerId): void {
    const swarm = run.swarm as Swarm
    const entry: { stream?: Stream } = {}
    run.watches.set(id, entry)
    // The download channel opens meanwhile, so the first request goes out as soon as the bitmap
    // says what to ask (an unused channel closes after CHANNEL_IDLE).
    this.channel(id, peer)
    const done = (): void => { if (run.watches.get(id) === entry) run.watches.delete(id) }
    this.openStream(peer, run.ctl.signal).then(stream => {
      if (run.finished || swarm.isDropped(id)) {
        stream.abort(new EdgelinkError('ABORTED', 'the download ended'))
        done()
        return
      }
      entry.stream = stream
      const frames = new FrameReader(bitmapLength(run.hashes.length) + 64)
      const onMessage = (evt: StreamMessageEvent): void => {
        try {
          for (const buf of evt.data instanceof Uint8Array ? [evt.data] : evt.data) {
            let pos = 0
            while (pos < buf.length) {
              pos = frames.push(buf, pos)
              const frame = frames.take()
              if (frame != null && !run.finished) this.onWatchMessage(run, id, decodeResponse(frame))
            }
          }
        } catch (err: any) {
          this.ctx.log.debug({ content: run.id, peer: id, err: String(err?.message ?? err) }, 'WATCH failed')
          stream.abort(err)
        }
      }
      stream.addEventListener('message', onMessage)
      stream.addEventListener('close', done)
      stream.addEventListener('remoteCloseWrite', () => {
        done()
        stream.close().catch(() => {})
      })
      stream.send(lengthPrefixed(ContentRequest.encode({ op: 'WATCH', contentId: run.id, index: 0, hash: new Uint8Array(0) })))
    }, (err: any) => {
      done()
      if (!run.finished) this.ctx.log.debug({ content: run.id, peer: id, err: String(err?.message ?? err) }, 'WATCH failed')
    })
  }

  /**
   * A peer watching a content this host downloads knows that content now: watch it back at once.
   * It may have answered this host's own WATCH with NOT_FOUND a moment ago (it had not registered
   * the manifest yet), and the next refresh is up to `bitmapRefresh` away: a second of relays lost
   * at the start of every download, when they matter most.
   */
  private watchBack (contentId: string, id: string, peer: PeerId): void {
    const run = this.runs.get(contentId)
    if (run == null || run.finished || run.swarm == null || run.watches.has(id) || !run.swarm.wantsBitmap(id)) return
    run.peerIds.set(id, peer)
    this.watch(run, id, peer)
  }

  private onWatchMessage (run: Run, peer: string, res: ContentResponse): void {
    const swarm = run.swarm as Swarm
    if (res.code === 'NOT_FOUND') {
      // Not registered there yet: a downloader-to-be, holding nothing.
      swarm.setBitmap(peer, new Uint8Array(0))
    } else if (res.code !== '') {
      throw new RefusedError(res.code)
    } else if (res.bitmap.length > 0 || res.have.length === 0) {
      if (res.bitmap.length > bitmapLength(run.hashes.length)) throw new EdgelinkError('PROTOCOL_ERROR', `a bitmap of ${res.bitmap.length} bytes for ${run.hashes.length} chunks`)
      swarm.setBitmap(peer, res.bitmap)
    } else {
      swarm.addHave(peer, res.have)
    }
    this.pump()
  }

  /** Tells the peers watching a content that this host now holds chunk `index` of it. */
  private noteHave (contentId: string, index: number): void {
    for (const w of this.watchers.get(contentId) ?? []) w.add(index)
  }

  /** Starts every request the limits allow, for every download in turn. */
  private pump (): void {
    for (const run of this.runs.values()) {
      if (run.finished || run.swarm == null) continue
      const total = this.opts.totalConcurrency - this.inflightTotal
      if (total <= 0) return
      const fallback = Date.now() - run.lastChunk > STALL
      const assigned = run.swarm.assign({ total, peer: id => this.window(id) - (this.inflightPeer.get(id) ?? 0), fallback })
      for (const a of assigned) this.startGet(run, a)
    }
  }

  /**
   * Runs one request. It counts against `perPeerConcurrency` until its bytes are here (or it
   * failed), and against `totalConcurrency` until its chunk is verified and stored: the local
   * store's latency then never idles the link, and memory stays bounded.
   */
  private startGet (run: Run, a: Assignment): void {
    const { peer } = a
    const swarm = run.swarm as Swarm
    this.inflightTotal++
    this.inflightPeer.set(peer, (this.inflightPeer.get(peer) ?? 0) + 1)
    let onWire = true
    const offWire = (): void => {
      if (!onWire) return
      onWire = false
      const left = (this.inflightPeer.get(peer) ?? 1) - 1
      if (left === 0) this.inflightPeer.delete(peer)
      else this.inflightPeer.set(peer, left)
    }
    const ctl = new AbortController()
    const signal = AbortSignal.any([run.ctl.signal, ctl.signal])
    let mine = run.requests.get(peer)
    if (mine == null) run.requests.set(peer, mine = new Set())
    mine.add(ctl)
    /** The chunk: known at once for a GET, once the seed picked for an ANY. */
    let index = a.index
    /** Whether the swarm counts chunk `index` in flight for this request (not when an ANY picked one asked elsewhere meanwhile). */
    let owned = a.any == null
    let picked = a.any == null
    const get = async (): Promise<void> => {
      let got: Received
      try {
        // Stored meanwhile, by another download sharing the chunk or by the scan.
        if (a.any == null && await this.ctx.source.hasChunk(run.hashes[index])) {
          await this.ctx.source.markHave(run.id, index)
          this.noteHave(run.id, index)
          if (!run.finished) this.received(run, peer, index, run.sizes[index])
          return
        }
      } catch (err) {
        this.finish(run, storeError(err))
        return
      }
      if (a.any == null) this.counters.requested++
      try {
        const ch = this.channel(peer, run.peerIds.get(peer) ?? peerIdFromString(peer))
        got = a.any == null
          ? await ch.get(run.id, index, run.hashes[index], run.sizes[index], signal)
          : await ch.getAny(run.id, a.any.map(i => ({ index: i, hash: run.hashes[i], size: run.sizes[i] })), signal, i => {
            index = i
            picked = true
            owned = swarm.picked(i)
            this.counters.requested++
          })
      } catch (err) {
        this.onGetFailed(run, peer, owned ? index : -1, err, picked ? undefined : a.any)
        return
      }
      // The next request to this peer may go out while this chunk is stored.
      run.lastChunk = Date.now()
      mine.delete(ctl)
      offWire()
      this.pump()
      const { bytes, digest } = got
      // Finished meanwhile (complete through another request, cancelled, the content removed):
      // writing now could put back a chunk file a removal has just deleted.
      if (run.finished) {
        this.buffers.put(bytes)
        return
      }
      try {
        // Hashed as it arrived: a chunk that is not what was asked for never reaches the store.
        if (digest !== run.hashes[index]) throw new EdgelinkError('CHUNK_CORRUPT', `chunk ${index} does not match its hash`)
        await this.ctx.source.writeChunk(run.hashes[index], bytes, digest)
      } catch (err) {
        if (isEdgelinkError(err, 'CHUNK_CORRUPT')) this.onGetFailed(run, peer, owned ? index : -1, new CorruptError('the chunk does not match its hash'))
        else this.finish(run, storeError(err))
        return
      } finally {
        this.buffers.put(bytes)
      }
      try {
        await this.ctx.source.markHave(run.id, index)
        this.noteHave(run.id, index)
      } catch (err) {
        this.finish(run, storeError(err))
        return
      }
      this.counters.received++
      this.counters.receivedBytes += run.sizes[index]
      if (!run.finished) this.received(run, peer, index, run.sizes[index])
    }
    void get().finally(() => {
      mine.delete(ctl)
      offWire()
      this.inflightTotal--
      this.pump()
    })
  }

  /**
   * Requests to keep outstanding to a peer: enough to cover WINDOW_TIME at the rate it has been
   * sending at, plus one (so a request is always waiting at the peer), at least 2, at most
   * `perPeerConcurrency`. A deep queue at a slow peer only delays everything asked of it: the
   * order it serves in, the chunks others could have relayed sooner, the end of the download.
   */
  private window (peer: string): number {
    const rate = this.channels.get(peer)?.rate
    const min = Math.min(MIN_WINDOW, this.opts.perPeerConcurrency)
    if (rate == null) return min
    return Math.max(min, Math.min(this.opts.perPeerConcurrency, Math.ceil(rate.bytesPerMs * WINDOW_TIME / rate.chunk) + 1))
  }

  /** The peer's download channel, opened on first use. */
  private channel (peer: string, peerId: PeerId): GetChannel {
    let ch = this.channels.get(peer)
    if (ch == null || ch.closed) {
      const opened = new GetChannel(peerId, {
        open: async (signal) => await this.openStream(peerId, signal),
        buffers: this.buffers,
        chunkTimeout: this.opts.chunkTimeout,
        idle: Math.min(CHANNEL_IDLE, Math.max(1, Math.floor(this.opts.chunkTimeout / 2))),
        onClose: () => { if (this.channels.get(peer) === opened) this.channels.delete(peer) }
      })
      ch = opened
      this.channels.set(peer, ch)
      this.counters.channels++
    }
    return ch
  }

  private received (run: Run, peer: string, index: number, size: number): void {
    const swarm = run.swarm as Swarm
    if (!swarm.succeeded(peer, index)) return
    run.bytes += size
    this.progress(run)
    if (swarm.isDone()) this.finish(run)
  }

  /**
   * `unpicked`: the chunks an ANY listed that ended before the peer picked one. `index` -1: such
   * an ANY, or one that picked a chunk asked elsewhere meanwhile.
   */
  private onGetFailed (run: Run, peer: string, index: number, err: unknown, unpicked?: number[]): void {
    if (run.finished || run.swarm == null) return
    if (err instanceof RefusedError && err.code === 'SENT') {
      this.counters.sent++
      // An ANY whose chunks all went to other downloaders: they are awaited from those.
      if (unpicked != null) run.swarm.anyEnded(peer, unpicked, 'sent')
      else run.swarm.failed(peer, index, 'error')
      return
    }
    let reason: FailReason = 'error'
    if (err instanceof CorruptError) reason = 'corrupt'
    else if (err instanceof CancelledError) reason = 'cancelled'
    // An ANY refused NOT_FOUND: the peer is not the seed its bitmap said; rested after a few.
    else if (err instanceof RefusedError && err.code === 'NOT_FOUND') reason = index < 0 ? 'error' : 'missing'
    else if (err instanceof RefusedError && err.code === 'BUSY') reason = 'busy'
    if (reason === 'corrupt') this.counters.corrupt++
    else if (reason !== 'cancelled') this.counters.failed++
    const outcome = unpicked != null ? run.swarm.anyEnded(peer, unpicked, reason) : run.swarm.failed(peer, index, reason)
    this.ctx.log.debug({ content: run.id, peer, index, reason, err: String((err as Error)?.message ?? err) }, 'chunk request failed')
    if (outcome === 'dropped') {
      this.onDropped(run, peer)
    } else if (reason === 'error' && (this.ctx.node()?.getConnections(run.peerIds.get(peer) ?? peerIdFromString(peer)).length ?? 0) === 0) {
      run.swarm.removePeer(peer)
    }
  }

  /** The peer sent `maxBadChunks` corrupt chunks of the content: nothing more is taken from it for it. */
  private onDropped (run: Run, peer: string): void {
    this.ctx.log.warn({ content: run.id, peer }, 'peer sent corrupt chunks; no longer asked for this content')
    for (const ctl of run.requests.get(peer) ?? []) ctl.abort(new EdgelinkError('ABORTED', 'peer dropped'))
    run.watches.get(peer)?.stream?.abort(new EdgelinkError('ABORTED', 'peer dropped'))
    // Remembered while this exchange runs, so a restarted download does not trust it again.
    let dropped = this.dropped.get(run.id)
    if (dropped == null) this.dropped.set(run.id, dropped = new Set())
    dropped.add(peer)
    this.emit('dropped', { id: run.id, peer })
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
    for (const w of run.watches.values()) {
      const stream = w.stream
      stream?.close().catch((e: any) => { stream.abort(e) })
    }
    run.watches.clear()
    if (this.runs.get(run.id) === run) this.runs.delete(run.id)
    if (this.runs.size === 0) this.idleBuffers()
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

  // ------------------------------------------------------------------ serving

  /**
   * Answers a stream's requests in order until the asker closes its side. Requests are read as
   * they are answered, at most {@link READ_AHEAD} ahead: the chunk of the next GET is read from
   * disk while the current one is sent.
   */
  private async onStream (stream: Stream, conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString()
    if (!this.ctx.isMember(peer)) {
      // The connection gater keeps non-members out; this is the second lock.
      this.counters.refused++
      stream.abort(new EdgelinkError('NOT_MEMBER'))
      return
    }
    const dog = new Watchdog(this.opts.chunkTimeout)
    const reader = new RequestReader(stream)
    /** Every answer is sent after the one before: a chain. */
    let tail: Promise<void> = Promise.resolve()
    const unsent: Array<Promise<void>> = []
    try {
      for (let first = true; ; first = false) {
        while (unsent.length >= READ_AHEAD) await unsent.shift()
        const req = await reader.next(dog.signal)
        if (req === null) break
        dog.kick()
        if (first && req !== 'invalid' && req.op === 'WATCH' && isChunkHash(req.contentId)) {
          dog.stop()
          this.watchBack(req.contentId, peer, conn.remotePeer)
          await this.serveWatch(stream, reader, req.contentId)
          return
        }
        const valid = isRequest(req)
        const job = this.prepare(valid ? req : 'invalid', peer)
        tail = tail.then(async () => {
          const j = await job
          try {
            await this.answer(stream, conn, j, dog)
          } catch (err) {
            j.undo?.()
            throw err
          } finally {
            j.release()
          }
        }, async (err) => {
          const j = await job
          j.undo?.()
          j.release()
          throw err
        })
        const sent = tail.catch((err) => { stream.abort(err) })
        unsent.push(sent)
        // Garbage ends the stream: what follows it cannot be trusted to be framed right.
        if (!valid) break
      }
      await tail
      await stream.close({ signal: dog.signal })
    } catch (err: any) {
      stream.abort(err)
      await tail.catch(() => {})
    } finally {
      reader.stop()
      dog.stop()
    }
  }

  /**
   * Serves a WATCH: the bitmap now, then the chunks this host adds, at most one message per
   * WATCH_INTERVAL, until the watcher closes its side or the stream dies. A watcher that does not
   * read is not written to until the stream drains; what it missed meanwhile is sent then, as a
   * list or as the whole bitmap, whichever is shorter.
   */
  private async serveWatch (stream: Stream, reader: RequestReader, contentId: string): Promise<void> {
    this.counters.watches++
    const bitmap = this.ctx.source.bitmap(contentId)
    if (bitmap == null) {
      try {
        await send(stream, lengthPrefixed(ContentResponse.encode({ code: 'NOT_FOUND', bitmap: new Uint8Array(0), size: 0, have: [] })))
        await stream.close()
      } catch (err: any) {
        stream.abort(err)
      } finally {
        reader.stop()
      }
      return
    }
    const w = new Watcher(stream, () => this.ctx.source.bitmap(contentId))
    let set = this.watchers.get(contentId)
    if (set == null) this.watchers.set(contentId, set = new Set())
    set.add(w)
    try {
      w.sendBitmap(bitmap)
      // Nothing may follow a WATCH: the end of the watcher's side, or garbage, ends it.
      const next = await reader.next(w.signal)
      w.end(next === null ? undefined : new EdgelinkError('PROTOCOL_ERROR', 'a request after WATCH'))
    } catch (err: any) {
      w.end(err)
    } finally {
      reader.stop()
      set.delete(w)
      if (set.size === 0 && this.watchers.get(contentId) === set) this.watchers.delete(contentId)
    }
  }

  /** Starts working on a request: takes an upload slot and reads the chunk for a GET. Never rejects. */
  private async prepare (req: ContentRequest | 'invalid', peer: string): Promise<Job> {
    const none = (): void => {}
    if (req === 'invalid') return { code: 'PROTOCOL_ERROR', release: none }
    if (req.op === 'HAVE') {
      const bitmap = this.ctx.source.bitmap(req.contentId)
      return bitmap == null ? { code: 'NOT_FOUND', release: none } : { code: '', bitmap, release: none }
    }
    let hash: string
    let index: number | undefined
    let undo: (() => void) | undefined
    if (req.op === 'ANY') {
      const bitmap = this.ctx.source.bitmap(req.contentId)
      if (bitmap == null) return { code: 'NOT_FOUND', release: none }
      const held = req.any.filter(c => hasBit(bitmap, c.index))
      if (held.length === 0) return { code: 'NOT_FOUND', release: none }
      const pick = this.giving.pick(req.contentId, peer, held.map(c => c.index))
      if (pick < 0) return { code: 'SENT', release: none }
      const c = held[pick]
      index = c.index
      hash = Buffer.from(c.hash).toString('hex')
      undo = () => { this.giving.undo(req.contentId, c.index, peer) }
    } else {
      hash = Buffer.from(req.hash).toString('hex')
    }
    if (this.uploads >= this.opts.uploadSlots) {
      undo?.()
      this.counters.busy++
      return { code: 'BUSY', release: none }
    }
    this.uploads++
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      this.uploads--
    }
    try {
      let pooled: Uint8Array | undefined
      const bytes = await this.ctx.source.readChunk(hash, size => (pooled = this.serveBuffers.get(size)))
      if (bytes.length > MAX_CHUNK_SIZE) throw new EdgelinkError('STORE_ERROR', `chunk ${hash} is larger than any chunk`)
      return { code: '', chunk: bytes, pooled, index, release, undo }
    } catch (err: any) {
      // CHUNK_MISSING, or CHUNK_CORRUPT when the store found bit rot (it drops the chunk).
      if (!isEdgelinkError(err, 'CHUNK_MISSING')) this.ctx.log.warn({ hash, err: String(err?.message ?? err) }, 'could not read a chunk to serve')
      undo?.()
      release()
      return { code: 'NOT_FOUND', release: none }
    }
  }

  /** Sends one answer: a response header, and for a granted GET the chunk's bytes after it. */
  private async answer (stream: Stream, conn: Connection, job: Job, dog: Watchdog): Promise<void> {
    const signal = dog.signal
    if (job.chunk == null) {
      await send(stream, lengthPrefixed(ContentResponse.encode({ code: job.code, bitmap: (job.bitmap ?? new Uint8Array(0)) as Uint8Array<ArrayBuffer>, size: 0 })), signal)
      return
    }
    await this.sendChunk(stream, ContentResponse.encode({ code: '', bitmap: new Uint8Array(0), size: job.chunk.length, have: [], index: job.index ?? 0 }), job.chunk, signal, () => { dog.kick() })
    if (job.pooled != null) this.serveBuffers.release(job.pooled, stream, conn)
    this.idleBuffers()
  }

  /**
   * Buffers go back to the allocator once nothing was received or served for BUFFER_IDLE: an idle
   * host holds none, and a burst of downloads (or a benchmark's rounds) does not fault a fresh slab
   * in for each. One timer, re-armed when it fires too early.
   */
  private idleBuffers (): void {
    const clock = this.ctx.clock
    this.lastBufferUse = clock.now()
    if (this.bufferTimer != null) return
    const check = (): void => {
      const idle = clock.now() - this.lastBufferUse
      if (idle < BUFFER_IDLE || this.runs.size > 0) {
        this.bufferTimer = clock.setTimeout(check, Math.max(1, BUFFER_IDLE - idle))
        return
      }
      this.bufferTimer = undefined
      this.buffers.clear()
      this.serveBuffers.clear()
    }
    this.bufferTimer = clock.setTimeout(check, BUFFER_IDLE)
  }

  /** Bytes of chunk buffers held now, received and served (for tests and stats). */
  get bufferBytes (): number { return this.buffers.reserved + this.serveBuffers.bytes }

  /**
   * Writes a response header and the chunk's bytes after it, in pieces (WRITE_SIZE, or SLICE_SIZE
   * paid for with tokens under an upload limit), waiting for `drain` whenever the stream says so.
   */
  private async sendChunk (stream: Stream, header: Uint8Array, bytes: Uint8Array, signal: AbortSignal, onPiece?: () => void): Promise<void> {
    const head = lengthPrefixed(header)
    const piece = this.bucket == null ? WRITE_SIZE : SLICE_SIZE
    let first = true
    for (let off = 0; off < bytes.length || first; off += piece) {
      const part = bytes.subarray(off, Math.min(bytes.length, off + piece))
      if (this.bucket != null) await this.bucket.take(part.length, signal)
      // The header goes out with the first piece, in one write (a list: no copy).
      await send(stream, first ? new Uint8ArrayList(head, part) : part, signal)
      first = false
      onPiece?.()
      this.counters.servedBytes += part.length
    }
    this.counters.served++
  }
}

/** What a server sends for one request. */
interface Job {
  code: '' | Refusal
  bitmap?: Uint8Array
  chunk?: Uint8Array
  /** The serving pool's buffer `chunk` is a view of. */
  pooled?: Uint8Array
  /** ANY: which chunk. */
  index?: number
  /** Frees the upload slot the request holds (idempotent). */
  release: () => void
  /** The chunk could not be sent: an ANY's pick is not given away after all. */
  undo?: () => void
}

/** How long a chunk given away on an ANY is not given to another asker, in ms. */
const GIVEN_TTL = 30_000


/**
 * What this host, as a seed, gave to whom on ANY requests: each chunk to one asker (the same
 * asker's next ANYs, pipelined with the same list, get the next chunks), until GIVEN_TTL passed.
 * A chunk that failed to leave is given again. Whoever lacks a chunk given away and cannot get
 * it from its recipient asks for it by name after a while (the exchange's stall fallback).
 * Forgotten per content once nothing was given for GIVEN_TTL.
 */
class Giving {
  private readonly contents = new Map<string, { last: number, given: Map<number, { to: string, at: number }> }>()

  /** Which of `indices` to give `peer` (its position in the list), -1 when all went to others. */
  pick (contentId: string, peer: string, indices: number[]): number {
    const now = Date.now()
    for (const [id, c] of this.contents) if (now - c.last > GIVEN_TTL) this.contents.delete(id)
    let c = this.contents.get(contentId)
    if (c == null) this.contents.set(contentId, c = { last: now, given: new Map() })
    c.last = now
    for (let k = 0; k < indices.length; k++) {
      const g = c.given.get(indices[k])
      if (g == null || now - g.at > GIVEN_TTL) {
        c.given.set(indices[k], { to: peer, at: now })
        return k
      }
    }
    return -1
  }

  undo (contentId: string, index: number, peer: string): void {
    const c = this.contents.get(contentId)
    if (c?.given.get(index)?.to === peer) c.given.delete(index)
  }
}

// ---------------------------------------------------------------------- the download channel

interface Pending {
  /** -1 for an ANY until the peer says which of `any` it sends. */
  size: number
  any?: Map<number, number>
  onPick?: (index: number) => void
  /** When the request was written, Date.now(). */
  sent: number
  reject: (err: unknown) => void
  /** The asker gave up: its bytes are still read off the stream, and dropped. */
  dropped: boolean
  /** Where the bytes go, allocated when they start arriving. */
  out?: Uint8Array
  /** Their SHA-256 so far: each piece is hashed as it is copied, while it is in the cache. */
  hash?: Hash
  off: number
  resolve: (got: Received) => void
}

/** A chunk's bytes as received, and their SHA-256 (hex). */
interface Received { bytes: Uint8Array, digest: string }

interface ChannelInit {
  open: (signal: AbortSignal) => Promise<Stream>
  buffers: ChunkBuffers
  chunkTimeout: number
  idle: number
  onClose: () => void
}

/**
 * One stream to one peer carrying successive GETs, several outstanding, answered in order. Parses
 * the answers as bytes arrive, with no buffering beyond a response header: each chunk's bytes are
 * copied once, into the chunk. Whatever ends the stream (a reset, a timeout, garbage) fails every
 * outstanding request; a channel is not reused after that, the next request opens a new one.
 */
class GetChannel {
  private readonly init: ChannelInit
  private readonly peer: PeerId
  private readonly ctl = new AbortController()
  private stream?: Stream
  /** Requests written (or waiting for the stream to open), oldest first. */
  private readonly queue: Pending[] = []
  private readonly unsent: Uint8Array[] = []
  private readonly header: FrameReader
  /** The head of the queue is receiving its bytes. */
  private body = false
  private lastActivity = Date.now()
  private lastDone = 0
  private rateAt = 0
  private rateBytes = 0
  private rateBusy = 0
  private rateChunks = 0
  private timer?: NodeJS.Timeout
  closed = false
  /** How fast the peer sends on this channel: an average over the last chunks (undefined until one came). */
  rate?: { bytesPerMs: number, chunk: number }

  constructor (peer: PeerId, init: ChannelInit) {
    this.peer = peer
    this.init = init
    this.header = new FrameReader(MAX_HEADER_BYTES)
    init.open(this.ctl.signal).then(stream => {
      if (this.closed) {
        stream.abort(new EdgelinkError('ABORTED', 'the channel closed'))
        return
      }
      this.stream = stream
      stream.addEventListener('message', this.onMessage)
      stream.addEventListener('remoteCloseWrite', this.onEnd)
      stream.addEventListener('close', this.onStreamClose)
      for (const req of this.unsent.splice(0)) this.write(req)
    }, err => { this.abort(err) })
    this.arm()
  }

  /**
   * Asks for chunk `index` (by hash) of a content and resolves with its `size` bytes, not yet
   * verified. Rejects with RefusedError, CorruptError (wrong size announced), CancelledError, or
   * why the channel ended. On `signal` it rejects at once; the bytes are still read and dropped.
   */
  async get (contentId: string, index: number, hash: string, size: number, signal: AbortSignal): Promise<Received> {
    return await this.request(ContentRequest.encode({ op: 'GET', contentId, index, hash: Buffer.from(hash, 'hex') }), size, signal)
  }

  private async request (msg: Uint8Array, size: number, signal: AbortSignal, any?: Map<number, number>, onPick?: (index: number) => void): Promise<Received> {
    if (this.closed) throw new CancelledError('the channel closed')
    signal.throwIfAborted()
    let p!: Pending
    const done = new Promise<Received>((resolve, reject) => { p = { size, any, onPick, sent: Date.now(), resolve, reject, dropped: false, off: 0 } })
    this.queue.push(p)
    this.lastActivity = Date.now()
    const req = lengthPrefixed(msg)
    if (this.stream == null) this.unsent.push(req)
    else this.write(req)
    const onAbort = (): void => { this.drop(p, signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      return await done
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  /**
   * Asks a seed for any one of `candidates` it has not given to another downloader; `onPick` hears
   * which, before the bytes come. Rejects like {@link get}, and with RefusedError('SENT') when it
   * gave all of them away.
   */
  async getAny (contentId: string, candidates: Array<{ index: number, hash: string, size: number }>, signal: AbortSignal, onPick: (index: number) => void): Promise<Received> {
    const any = new Map(candidates.map(c => [c.index, c.size]))
    const req = ContentRequest.encode({ op: 'ANY', contentId, index: 0, hash: new Uint8Array(0), any: candidates.map(c => ({ index: c.index, hash: Buffer.from(c.hash, 'hex') })) })
    return await this.request(req, -1, signal, any, onPick)
  }

  /** Ends the channel; every outstanding request fails with `err` (CancelledError when undefined). */
  abort (err?: unknown): void {
    if (this.closed) return
    this.closed = true
    if (this.timer != null) clearTimeout(this.timer)
    this.ctl.abort(err)
    const reason = err ?? new CancelledError('the channel closed')
    for (const p of this.queue.splice(0)) if (!p.dropped) p.reject(reason)
    if (this.stream != null) {
      this.stream.removeEventListener('message', this.onMessage)
      this.stream.removeEventListener('remoteCloseWrite', this.onEnd)
      this.stream.removeEventListener('close', this.onStreamClose)
      this.stream.abort(err instanceof Error ? err : new EdgelinkError('ABORTED', 'the channel closed'))
    }
    this.init.onClose()
  }

  /** Requests are tiny and at most `perPeerConcurrency` are outstanding: the write buffer stays bounded without waiting. */
  private write (req: Uint8Array): void {
    try {
      this.stream?.send(req)
    } catch (err) {
      this.abort(err)
    }
  }

  private drop (p: Pending, reason: unknown): void {
    if (p.dropped) return
    p.dropped = true
    p.reject(reason ?? new EdgelinkError('ABORTED', 'the request was aborted'))
    // Nobody waits for anything on this stream any more: reset it rather than receive it all.
    if (this.queue.every(q => q.dropped)) this.abort()
  }

  private readonly onMessage = (evt: StreamMessageEvent): void => {
    this.lastActivity = Date.now()
    try {
      const data = evt.data
      if (data instanceof Uint8Array) this.feed(data)
      else for (const buf of data) this.feed(buf)
    } catch (err) {
      this.abort(err)
    }
  }

  private feed (buf: Uint8Array): void {
    let pos = 0
    while (pos < buf.length && !this.closed) {
      const head = this.queue[0]
      if (head == null) throw new EdgelinkError('PROTOCOL_ERROR', 'the peer sent bytes nobody asked for')
      if (!this.body) {
        pos = this.header.push(buf, pos)
        const frame = this.header.take()
        if (frame != null) this.onHeader(head, frame)
        continue
      }
      const n = Math.min(head.size - head.off, buf.length - pos)
      if (!head.dropped) {
        const piece = n === buf.length ? buf : buf.subarray(pos, pos + n)
        head.out ??= this.init.buffers.get(head.size)
        head.out.set(piece, head.off)
        ;(head.hash ??= createHash('sha256')).update(piece)
      }
      head.off += n
      pos += n
      if (head.off === head.size) this.complete(head)
    }
  }

  private onHeader (head: Pending, frame: Uint8Array): void {
    const res = decodeResponse(frame)
    if (res.code !== '') {
      this.queue.shift()
      if (!head.dropped) head.reject(new RefusedError(res.code))
      this.maybeIdle()
      return
    }
    if (head.any != null) {
      const size = head.any.get(res.index)
      if (size == null) throw new EdgelinkError('PROTOCOL_ERROR', `the peer sent chunk ${res.index}, which was not asked for`)
      head.size = size
      if (!head.dropped) head.onPick?.(res.index)
    }
    if (res.size !== head.size) {
      // The rest of the stream cannot be trusted to line up with the requests any more.
      this.queue.shift()
      if (!head.dropped) head.reject(new CorruptError(`the peer announced ${res.size} bytes for a chunk of ${head.size}`))
      this.abort()
      return
    }
    this.body = true
    if (head.size === 0) this.complete(head)
  }

  private complete (head: Pending): void {
    this.queue.shift()
    this.body = false
    // Its bytes came after the previous answer's, or after it was asked if the channel was idle:
    // that is how long the peer was busy sending it. The rate is bytes over busy time, both
    // decaying with a half-life of RATE_HALF_LIFE: a ratio of sums, so answers that arrive in a
    // burst (read from a full buffer at once) do not make the peer look faster than it is.
    const now = Date.now()
    const busy = Math.max(1, now - Math.max(head.sent, this.lastDone))
    this.lastDone = now
    const decay = 0.5 ** ((now - this.rateAt) / RATE_HALF_LIFE)
    this.rateAt = now
    this.rateBytes = this.rateBytes * decay + head.size
    this.rateBusy = this.rateBusy * decay + busy
    this.rateChunks = this.rateChunks * decay + 1
    this.rate = { bytesPerMs: this.rateBytes / this.rateBusy, chunk: Math.max(1, this.rateBytes / this.rateChunks) }
    if (!head.dropped) head.resolve({ bytes: head.out ?? new Uint8Array(0), digest: (head.hash ?? createHash('sha256')).digest('hex') })
    else if (head.out != null) this.init.buffers.put(head.out)
    this.maybeIdle()
  }

  private maybeIdle (): void {
    this.lastActivity = Date.now()
    if (this.queue.length === 0) this.arm()
  }

  /** The peer closed its side: nothing more will come. */
  private readonly onEnd = (): void => {
    if (this.queue.length > 0) this.abort(new EdgelinkError('PROTOCOL_ERROR', 'the peer ended the stream with requests outstanding'))
    else this.abort()
  }

  private readonly onStreamClose = (evt: StreamCloseEvent): void => {
    this.abort(evt.error ?? new EdgelinkError('ABORTED', 'the stream closed'))
  }

  /**
   * One timer: with requests outstanding, `chunkTimeout` of silence fails them all; with none,
   * the channel closes after `idle` (the peer's server would time it out later anyway).
   */
  private arm (): void {
    if (this.closed) return
    if (this.timer != null) clearTimeout(this.timer)
    const busy = this.queue.length > 0
    const limit = busy ? this.init.chunkTimeout : this.init.idle
    const wait = Math.max(1, this.lastActivity + limit - Date.now())
    this.timer = setTimeout(() => {
      this.timer = undefined
      const nowBusy = this.queue.length > 0
      const silent = Date.now() - this.lastActivity >= (nowBusy ? this.init.chunkTimeout : this.init.idle)
      if (!silent) { this.arm(); return }
      if (nowBusy) this.abort(new EdgelinkError('TIMEOUT', `no progress for ${this.init.chunkTimeout} ms`))
      else this.close()
    }, wait)
    this.timer.unref()
  }

  /** Closes an idle channel gracefully: our side first, the peer's server then closes its own. */
  private close (): void {
    if (this.closed) return
    this.closed = true
    if (this.timer != null) clearTimeout(this.timer)
    this.init.onClose()
    const stream = this.stream
    if (stream == null) { this.ctl.abort(); return }
    stream.close().catch((err: any) => { stream.abort(err) })
  }

  toString (): string { return `GetChannel(${this.peer.toString()})` }
}

/** A HAVE, a GET or an ANY, well formed. */
function isRequest (req: ContentRequest | 'invalid'): req is ContentRequest {
  if (req === 'invalid' || !isChunkHash(req.contentId)) return false
  if (req.op === 'GET') return req.hash.length === 32
  if (req.op === 'ANY') return req.any.length > 0 && req.any.length <= ANY_CANDIDATES && req.any.every(c => c.hash.length === 32 && c.index < MAX_CHUNKS)
  return req.op === 'HAVE'
}

/** Minimum time between two have-updates to one watcher, in ms. */
const WATCH_INTERVAL = 50

/** The serving side of one WATCH stream: collects the chunks added and sends them, coalesced. */
class Watcher {
  private readonly stream: Stream
  private readonly bitmap: () => Uint8Array | undefined
  private readonly ctl = new AbortController()
  private pending: number[] = []
  /** Too much piled up for a list: the next message carries the whole bitmap. */
  private whole = false
  private blocked = false
  private last = 0
  private timer?: NodeJS.Timeout

  constructor (stream: Stream, bitmap: () => Uint8Array | undefined) {
    this.stream = stream
    this.bitmap = bitmap
    stream.addEventListener('close', () => { this.end() })
  }

  get signal (): AbortSignal { return this.ctl.signal }

  sendBitmap (bitmap: Uint8Array): void {
    this.write(ContentResponse.encode({ code: '', bitmap: bitmap as Uint8Array<ArrayBuffer>, size: 0, have: [] }))
  }

  add (index: number): void {
    if (this.ctl.signal.aborted) return
    if (!this.whole) {
      this.pending.push(index)
      // A list costs up to 6 bytes a chunk, a bitmap 1/8: past that, send the bitmap.
      if (this.pending.length * 6 > (this.bitmap()?.length ?? 0)) {
        this.whole = true
        this.pending = []
      }
    }
    this.schedule()
  }

  end (err?: unknown): void {
    if (this.ctl.signal.aborted) return
    this.ctl.abort(err ?? new EdgelinkError('ABORTED', 'the watch ended'))
    if (this.timer != null) clearTimeout(this.timer)
    if (err != null) this.stream.abort(err instanceof Error ? err : new EdgelinkError('ABORTED', String(err)))
    else this.stream.close().catch((e: any) => { this.stream.abort(e) })
  }

  private schedule (): void {
    if (this.timer != null || this.blocked) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.flush()
    }, Math.max(0, this.last + WATCH_INTERVAL - Date.now()))
    this.timer.unref()
  }

  private flush (): void {
    if (this.ctl.signal.aborted || this.blocked) return
    if (this.whole) {
      const bitmap = this.bitmap()
      if (bitmap != null) this.sendBitmap(bitmap)
    } else if (this.pending.length > 0) {
      this.write(ContentResponse.encode({ code: '', bitmap: new Uint8Array(0), size: 0, have: this.pending }))
    }
    this.whole = false
    this.pending = []
  }

  private write (msg: Uint8Array): void {
    this.last = Date.now()
    try {
      if (this.stream.send(lengthPrefixed(msg))) return
    } catch (err) {
      this.end(err)
      return
    }
    // A watcher that does not read: nothing more until the stream drains (one message waits).
    this.blocked = true
    this.stream.addEventListener('drain', () => {
      this.blocked = false
      this.schedule()
    }, { once: true })
  }
}

/**
 * Buffers chunks are read into to be served, reused: a fresh 1 MiB buffer per chunk is external
 * memory the garbage collector chases (measured: ~50 more full collections per GiB served). A
 * buffer is only reused once nothing refers to its bytes any more. Sending hands the stream views
 * of it; they wait in the stream's write queue and in the connection's (the Noise layer under the
 * muxer), and Noise encrypts whatever it takes from its queue at once, into new memory. So a buffer
 * is free when both queues are empty (or the connection is gone); until then it is held, at most
 * `max` of them (older ones are left to the garbage collector). Keeps at most `max` free buffers.
 */
class ServeBuffers {
  private readonly max: number
  private readonly free: SizePool
  private readonly held: Array<{ buf: Uint8Array, stream: Stream, conn: Connection }> = []

  constructor (max: number) {
    this.max = max
    this.free = new SizePool(max)
  }

  get (size: number): Uint8Array {
    this.sweep()
    return this.free.get(size)
  }

  /** `buf`'s bytes were sent on `stream` of `conn`: reused once no queue holds them. */
  release (buf: Uint8Array, stream: Stream, conn: Connection): void {
    if (isFlushed(stream, conn)) { this.free.put(buf); return }
    this.held.push({ buf, stream, conn })
    if (this.held.length > this.max) this.held.shift()
  }

  private sweep (): void {
    for (let i = this.held.length - 1; i >= 0; i--) {
      const h = this.held[i]
      if (!isFlushed(h.stream, h.conn)) continue
      this.held.splice(i, 1)
      this.free.put(h.buf)
    }
  }

  /** Bytes of the buffers kept, free and held. */
  get bytes (): number {
    let n = this.free.bytes
    for (const h of this.held) n += h.buf.byteLength
    return n
  }

  /** Drops the free buffers and forgets the held ones (left to the garbage collector). */
  clear (): void {
    this.free.clear()
    this.held.length = 0
  }
}

/**
 * Whether nothing queued on `stream` or under it still refers to bytes given to `stream.send`.
 * The connection's secure channel is libp2p's `muxer.maConn` (not in its typed interface); where
 * it is not found, false: the buffer is then never reused, which is safe.
 */
function isFlushed (stream: Stream, conn: Connection): boolean {
  if (stream.writeBufferLength !== 0) return false
  const secure = (conn as unknown as { muxer?: { maConn?: { writeBufferLength?: unknown, status?: unknown } } }).muxer?.maConn
  if (secure == null || typeof secure.writeBufferLength !== 'number') return false
  return secure.writeBufferLength === 0 || secure.status === 'closed' || secure.status === 'aborted'
}

// ---------------------------------------------------------------------- serving helpers

/**
 * The requests of one inbound stream, decoded as they arrive. Bounded: a request over
 * MAX_REQUEST_BYTES ends the stream (after a PROTOCOL_ERROR answer), and so do more than
 * {@link MAX_PIPELINE} requests waiting unread.
 */
class RequestReader {
  private readonly stream: Stream
  private readonly frames = new FrameReader(MAX_REQUEST_BYTES)
  private readonly ready: Array<ContentRequest | 'invalid'> = []
  private ended = false
  private error?: unknown
  private wake?: () => void

  constructor (stream: Stream) {
    this.stream = stream
    stream.addEventListener('message', this.onMessage)
    stream.addEventListener('remoteCloseWrite', this.onEnd)
    stream.addEventListener('close', this.onClose)
  }

  /** The next request, 'invalid' for one that is not a request (the last one read), null at the end. */
  async next (signal: AbortSignal): Promise<ContentRequest | 'invalid' | null> {
    for (;;) {
      const r = this.ready.shift()
      if (r !== undefined) return r
      if (this.error != null) throw this.error
      if (this.ended) return null
      signal.throwIfAborted()
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => { reject(signal.reason) }
        signal.addEventListener('abort', onAbort, { once: true })
        this.wake = () => {
          signal.removeEventListener('abort', onAbort)
          resolve()
        }
      })
    }
  }

  stop (): void {
    this.stream.removeEventListener('message', this.onMessage)
    this.stream.removeEventListener('remoteCloseWrite', this.onEnd)
    this.stream.removeEventListener('close', this.onClose)
  }

  private notify (): void {
    const w = this.wake
    this.wake = undefined
    w?.()
  }

  private readonly onMessage = (evt: StreamMessageEvent): void => {
    if (this.ended) return
    const data = evt.data
    for (const buf of data instanceof Uint8Array ? [data] : data) {
      let pos = 0
      while (pos < buf.length && !this.ended) {
        try {
          pos = this.frames.push(buf, pos)
        } catch {
          // Longer than any request: not read, answered PROTOCOL_ERROR, and the stream ends.
          this.ready.push('invalid')
          this.ended = true
          break
        }
        const frame = this.frames.take()
        if (frame == null) continue
        let req: ContentRequest | 'invalid'
        try {
          req = ContentRequest.decode(frame)
        } catch {
          req = 'invalid'
        }
        this.ready.push(req)
        if (req === 'invalid') {
          this.ended = true
        } else if (this.ready.length > MAX_PIPELINE) {
          // A client that asks faster than it reads: it loses the stream, at once.
          const err = new EdgelinkError('PROTOCOL_ERROR', `more than ${MAX_PIPELINE} requests outstanding`)
          this.error = err
          this.ended = true
          this.ready.length = 0
          this.stream.abort(err)
          break
        }
      }
    }
    this.notify()
  }

  private readonly onEnd = (): void => {
    this.ended = true
    this.notify()
  }

  private readonly onClose = (evt: StreamCloseEvent): void => {
    this.ended = true
    if (evt.error != null) this.error ??= evt.error
    this.notify()
  }
}

/**
 * Reassembles one varint-length-prefixed frame of at most `max` bytes from pieces as they come.
 * `push` consumes what belongs to the current frame and throws PROTOCOL_ERROR when its length is
 * over `max`; `take` returns a completed frame once.
 */
class FrameReader {
  private readonly max: number
  private len = -1
  private lenValue = 0
  private lenBytes = 0
  private buf?: Uint8Array
  private off = 0
  private done?: Uint8Array

  constructor (max: number) { this.max = max }

  push (data: Uint8Array, pos: number): number {
    if (this.done != null) return pos
    while (this.len < 0 && pos < data.length) {
      const b = data[pos++]
      this.lenValue += (b & 0x7f) * 2 ** (7 * this.lenBytes)
      this.lenBytes++
      if (this.lenValue > this.max || (this.lenBytes >= 5 && (b & 0x80) !== 0)) {
        throw new EdgelinkError('PROTOCOL_ERROR', `a message over ${this.max} bytes`)
      }
      if ((b & 0x80) === 0) {
        this.len = this.lenValue
        this.buf = new Uint8Array(this.len)
        this.off = 0
      }
    }
    if (this.len < 0) return pos
    const n = Math.min(this.len - this.off, data.length - pos)
    ;(this.buf as Uint8Array).set(data.subarray(pos, pos + n), this.off)
    this.off += n
    pos += n
    if (this.off === this.len) {
      this.done = this.buf
      this.len = -1
      this.lenValue = 0
      this.lenBytes = 0
      this.buf = undefined
    }
    return pos
  }

  take (): Uint8Array | undefined {
    const f = this.done
    this.done = undefined
    return f
  }
}

/**
 * `stream.send`, then, when the stream reports a full buffer, a wait for its `drain` event
 * (rejecting on `close` or `signal`): at most about one write waits beyond the muxer's window.
 * `stream.onDrain()`, which resolves once and then forever in libp2p 3.3, is not used (FACTS.md).
 * Resolves with whether the stream took `data` without having to wait.
 */
async function send (stream: Stream, data: Uint8Array | Uint8ArrayList, signal?: AbortSignal): Promise<boolean> {
  signal?.throwIfAborted()
  if (stream.send(data)) return true
  await new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
    }
    const onDrain = (): void => { cleanup(); resolve() }
    const onClose = (evt: StreamCloseEvent): void => { cleanup(); reject(evt.error ?? new EdgelinkError('ABORTED', 'the stream closed')) }
    const onAbort = (): void => { cleanup(); reject(signal?.reason) }
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
    signal?.addEventListener('abort', onAbort)
  })
  return false
}

function lengthPrefixed (msg: Uint8Array): Uint8Array {
  const out = new Uint8Array(varintLength(msg.length) + msg.length)
  let n = msg.length
  let i = 0
  while (n >= 0x80) {
    out[i++] = (n & 0x7f) | 0x80
    n = Math.floor(n / 128)
  }
  out[i++] = n
  out.set(msg, i)
  return out
}

function varintLength (n: number): number {
  let len = 1
  while (n >= 0x80) { n = Math.floor(n / 128); len++ }
  return len
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
    if (res.code !== '' && res.code !== 'NOT_FOUND' && res.code !== 'BUSY' && res.code !== 'SENT' && !isErrorCode(res.code)) res.code = 'PROTOCOL_ERROR'
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
