import { randomBytes } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { expect } from 'chai'
import { noise } from '@chainsafe/libp2p-noise'
import { tcp } from '@libp2p/tcp'
import { byteStream, lpStream } from '@libp2p/utils'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Stream } from '@libp2p/interface'
import { ManualClock, systemClock, type Clock } from '../lib/clock.ts'
import { EdgelinkError } from '../lib/errors.ts'
import type { Logger } from '../lib/logger.ts'
import { countBits, fullBitmap, newBitmap, setBit } from '../lib/content/bitmap.ts'
import { ContentRequest, ContentResponse } from '../lib/content/content.ts'
import { CONTENT_PROTOCOL, ContentExchange, sendSlices, type ChunkSource, type ExchangeOptions, type ExchangeProgress } from '../lib/content/exchange.ts'
import { Swarm } from '../lib/content/swarm.ts'
import { TokenBucket } from '../lib/content/throttle.ts'
import { loopbackIp, rejection, sha256, waitFor } from './helpers.ts'

const KiB = 1024
const MiB = 1024 * 1024

const quiet: Logger = { debug () {}, info () {}, warn () {}, error () {}, child () { return quiet } }

/** A content: its id, distinct chunk hashes and sizes, and a way to make each chunk's bytes. */
interface TestContent { id: string, hashes: string[], sizes: number[], bytes: (i: number) => Uint8Array, totalBytes: number }

function randomContent (totalBytes: number, chunkSize: number): TestContent {
  const chunks: Uint8Array[] = []
  for (let off = 0; off < totalBytes; off += chunkSize) chunks.push(randomBytes(Math.min(chunkSize, totalBytes - off)))
  return { id: sha256(randomBytes(32)), hashes: chunks.map(sha256), sizes: chunks.map(c => c.length), bytes: i => chunks[i], totalBytes }
}

/** Chunks made on demand from their index: large content without holding it in memory. */
function generatedContent (chunks: number, chunkSize: number): TestContent {
  const seed = randomBytes(8)
  const bytes = (i: number): Uint8Array => {
    const b = Buffer.alloc(chunkSize, i & 0xff)
    seed.copy(b, 0)
    b.writeUInt32BE(i, 8)
    return b
  }
  const hashes = Array.from({ length: chunks }, (_, i) => sha256(bytes(i)))
  return { id: sha256(randomBytes(32)), hashes, sizes: hashes.map(() => chunkSize), bytes, totalBytes: chunks * chunkSize }
}

/**
 * The ChunkSource seam in memory, as the real ContentStore behaves: writeChunk verifies, bitmaps
 * follow markHave at once. `keep: false` verifies and records but drops the bytes (a sink).
 */
class MemorySource implements ChunkSource {
  readonly chunks = new Map<string, Uint8Array>()
  readonly held = new Set<string>()
  readonly contents = new Map<string, { hashes: string[], bitmap: Uint8Array }>()
  reads = 0
  private readonly keep: boolean
  private readonly generate?: (hash: string) => Uint8Array | undefined

  constructor (opts: { keep?: boolean, generate?: (hash: string) => Uint8Array | undefined } = {}) {
    this.keep = opts.keep ?? true
    this.generate = opts.generate
  }

  /** Registers a content (as accepting its manifest would); `full` also puts every chunk in. */
  add (c: TestContent, full = false): void {
    const bitmap = newBitmap(c.hashes.length)
    this.contents.set(c.id, { hashes: c.hashes, bitmap })
    if (!full) return
    for (let i = 0; i < c.hashes.length; i++) {
      if (this.generate == null) this.chunks.set(c.hashes[i], c.bytes(i))
      this.held.add(c.hashes[i])
      setBit(bitmap, i)
    }
  }

  hasChunk (hash: string): boolean { return this.held.has(hash) }

  async readChunk (hash: string): Promise<Uint8Array> {
    this.reads++
    const b = this.generate?.(hash) ?? this.chunks.get(hash)
    if (b == null) throw new EdgelinkError('CHUNK_MISSING')
    return b
  }

  async writeChunk (hash: string, bytes: Uint8Array): Promise<void> {
    if (sha256(bytes) !== hash) throw new EdgelinkError('CHUNK_CORRUPT')
    // The exchange reuses `bytes` once this settles (ChunkSource.writeChunk): keep a copy.
    if (this.keep) this.chunks.set(hash, Uint8Array.from(bytes))
    this.held.add(hash)
  }

  bitmap (contentId: string): Uint8Array | undefined { return this.contents.get(contentId)?.bitmap }

  async markHave (contentId: string, index: number): Promise<void> {
    const c = this.contents.get(contentId)
    if (c == null) throw new EdgelinkError('UNKNOWN_CONTENT')
    if (!this.held.has(c.hashes[index])) throw new EdgelinkError('CHUNK_MISSING')
    setBit(c.bitmap, index)
  }

  complete (c: TestContent): boolean { return countBits(this.bitmap(c.id) ?? new Uint8Array(0), c.hashes.length) === c.hashes.length }
}

/**
 * Reads chunks into the buffer the exchange hands it, as the real store does (ChunkSource.readChunk
 * with `into`), and remembers every distinct buffer it was handed.
 */
class IntoSource extends MemorySource {
  readonly buffers = new Set<ArrayBufferLike>()

  override async readChunk (hash: string, into?: (size: number) => Uint8Array): Promise<Uint8Array> {
    const b = await super.readChunk(hash)
    if (into == null) return b
    const out = into(b.length)
    this.buffers.add(out.buffer)
    out.set(b)
    return out.subarray(0, b.length)
  }
}

/** Serves wrong bytes for every chunk it claims to hold. */
class LyingSource extends MemorySource {
  override async readChunk (hash: string): Promise<Uint8Array> {
    const b = await super.readChunk(hash)
    return randomBytes(b.length)
  }
}

interface Peer { node: Libp2p, source: MemorySource, exchange: ContentExchange, id: string }

async function newNode (): Promise<Libp2p> {
  return await createLibp2p({
    addresses: { listen: [`/ip4/${loopbackIp()}/tcp/0`] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { inboundConnectionThreshold: 200, maxIncomingPendingConnections: 200 }
  })
}

describe('content exchange', function () {
  this.timeout(60_000)
  const peers: Peer[] = []
  const nodes: Libp2p[] = []

  async function peer (source: MemorySource = new MemorySource(), options: ExchangeOptions = {}, isMember: (id: string) => boolean = () => true, clock: Clock = systemClock): Promise<Peer> {
    const node = await newNode()
    nodes.push(node)
    const exchange = new ContentExchange({ node: () => node, isMember, source, clock, log: quiet }, options)
    await exchange.start()
    const p = { node, source, exchange, id: node.peerId.toString() }
    peers.push(p)
    return p
  }

  /** Connects every pair and waits until both ends of every connection see it. */
  async function connectAll (...ps: Peer[]): Promise<void> {
    for (let i = 0; i < ps.length; i++) {
      for (let j = i + 1; j < ps.length; j++) await ps[i].node.dial(ps[j].node.getMultiaddrs()[0])
    }
    await waitFor(() => ps.every(p => p.node.getPeers().length >= ps.length - 1), 5_000, 'connections')
  }

  /** A peer holding `c` (a seed) and a peer that knows of it but holds nothing, connected. */
  async function seedAndFetcher (c: TestContent, srcOptions: ExchangeOptions = {}, dstOptions: ExchangeOptions = {}): Promise<{ src: Peer, dst: Peer }> {
    const src = await peer(undefined, srcOptions)
    src.source.add(c, true)
    const dst = await peer(undefined, dstOptions)
    dst.source.add(c)
    await connectAll(src, dst)
    return { src, dst }
  }

  afterEach(async () => {
    await Promise.allSettled(peers.splice(0).map(async p => { await p.exchange.stop() }))
    await Promise.allSettled(nodes.splice(0).map(async n => { await n.stop() }))
  })

  describe('swarm scheduler (pure)', () => {
    const all = fullBitmap
    const only = (n: number, idx: number[]): Uint8Array => { const b = newBitmap(n); for (const i of idx) setBit(b, i); return b }
    const free = (total: number, per: number): { total: number, peer: () => number } => ({ total, peer: () => per })

    it('a full bitmap sets every bit and none past them', () => {
      expect([...fullBitmap(10)]).to.deep.equal([0xff, 0xc0])
      expect([...fullBitmap(16)]).to.deep.equal([0xff, 0xff])
      expect([...fullBitmap(1)]).to.deep.equal([0x80])
      expect(countBits(fullBitmap(13), 16)).to.equal(13)
    })

    it('asks for the rarest chunks first, each of a holder, within the per-peer and total limits', () => {
      const s = new Swarm(8, only(8, [0]), { maxBadChunks: 2 })
      s.setBitmap('a', all(8))
      s.setBitmap('b', only(8, [5, 6]))
      s.setBitmap('c', only(8, [6]))
      // 7 missing chunks; 1–4 and 7 have one holder (a), 5 two, 6 three.
      const got = s.assign(free(16, 2))
      expect(got).to.have.length(4)
      const byPeer = (p: string): number[] => got.filter(g => g.peer === p).map(g => g.index)
      expect(byPeer('a')).to.have.length(2)
      expect(byPeer('a').every(i => [1, 2, 3, 4, 7].includes(i))).to.equal(true)
      expect(byPeer('b')).to.deep.equal([5])
      expect(byPeer('c')).to.deep.equal([6]) // b is busier: the holder with more free slots gets it
      expect(s.inflight).to.equal(4)
      const more = s.assign(free(1, 2))
      expect(more).to.have.length(1)
    })

    it('breaks ties at random: two downloaders start at different chunks', () => {
      const n = 64
      const first = (seed: number): number[] => {
        let x = seed
        const s = new Swarm(n, undefined, { maxBadChunks: 2, random: () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) })
        s.setBitmap('leader', all(n))
        return s.assign(free(4, 4)).map(a => a.index)
      }
      expect(first(1)).to.not.deep.equal(first(2))
    })

    it('drops a peer after maxBadChunks corrupt chunks and never asks it for a chunk it corrupted', () => {
      const s = new Swarm(4, undefined, { maxBadChunks: 2 })
      s.setBitmap('bad', all(4))
      const [a] = s.assign(free(1, 1))
      expect(s.failed('bad', a.index, 'corrupt')).to.equal(undefined)
      const [b] = s.assign(free(1, 1))
      expect(b.index).to.not.equal(a.index)
      expect(s.failed('bad', b.index, 'corrupt')).to.equal('dropped')
      expect(s.assign(free(4, 4))).to.deep.equal([])
      s.setBitmap('bad', all(4)) // a dropped peer's bitmaps are ignored
      expect(s.assign(free(4, 4))).to.deep.equal([])
      s.setBitmap('good', all(4))
      expect(s.assign(free(4, 4))).to.have.length(4)
    })

    it('NOT_FOUND clears the bit, errors rest the peer until its next bitmap, success finishes', () => {
      const s = new Swarm(2, undefined, { maxBadChunks: 2, maxErrors: 2 })
      s.setBitmap('p', all(2))
      let got = s.assign(free(1, 1))
      s.failed('p', got[0].index, 'missing')
      got = s.assign(free(4, 4))
      expect(got).to.have.length(1)
      expect(s.failed('p', got[0].index, 'error')).to.equal(undefined)
      got = s.assign(free(4, 4))
      expect(s.failed('p', got[0].index, 'error')).to.equal('resting')
      expect(s.assign(free(4, 4))).to.deep.equal([])
      s.setBitmap('p', all(2))
      got = s.assign(free(4, 4))
      expect(got).to.have.length(2)
      for (const g of got) s.succeeded('p', g.index)
      expect(s.isDone()).to.equal(true)
    })

    it('asks a seed ANY for chunks only seeds hold; a SENT answer makes it wait for the peers, the end asks by name', () => {
      const s = new Swarm(40, undefined, { maxBadChunks: 2, anyFromSeeds: true })
      s.setBitmap('seed', all(40))
      s.setBitmap('other', only(40, [0]))
      const got = s.assign(free(16, 2))
      // Chunk 0 comes from the downloader that has it, by name; the rest only the seed holds.
      expect(got.filter(a => a.peer === 'other')).to.deep.equal([{ peer: 'other', index: 0 }])
      const anys = got.filter(a => a.peer === 'seed')
      expect(anys).to.have.length(2)
      for (const a of anys) {
        expect(a.index).to.equal(-1)
        expect(a.any).to.have.length(16) // ANY_CANDIDATES, never 0 (other's chunk) nor a chunk in flight
        expect(a.any).to.not.include(0)
      }
      // The seed picks one; it is in flight from then on and listed no more.
      expect(s.picked(anys[0].any![3])).to.equal(true)
      expect(s.inflight).to.equal(2)
      // The other ANY: the seed gave all of them away; they are awaited from peers.
      s.anyEnded('seed', anys[1].any!, 'sent')
      const next = s.assign(free(16, 2))
      expect(next.every(a => a.peer === 'seed' && a.any != null)).to.equal(true)
      for (const a of next) for (const i of a.any!) expect(anys[1].any).to.not.include(i)
      // The end: nothing left that nobody was given; seeds get asked by name for what is awaited.
      const e = new Swarm(4, undefined, { maxBadChunks: 2, anyFromSeeds: true })
      e.setBitmap('seed', all(4))
      const [a] = e.assign(free(1, 1))
      e.anyEnded('seed', a.any!, 'sent')
      const byName = e.assign(free(4, 4))
      expect(byName.map(x => x.index).sort()).to.deep.equal([0, 1, 2, 3])
    })

    it('a peer that completes while this host downloads is not a seed: asked by name, not ANY', () => {
      const s = new Swarm(8, undefined, { maxBadChunks: 2, anyFromSeeds: true })
      s.setBitmap('seed', all(8))
      s.setBitmap('late', only(8, [1]))
      s.addHave('late', [0, 2, 3, 4, 5, 6, 7])
      expect(s.isSeed('seed')).to.equal(true)
      expect(s.isSeed('late')).to.equal(false)
      const got = s.assign(free(16, 8))
      expect(got.filter(a => a.peer === 'late').map(a => a.index).sort()).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7])
      expect(got.filter(a => a.peer === 'seed')).to.deep.equal([])
    })

    it('a token bucket paces takes at its rate on the injected clock', async () => {
      const clock = new ManualClock(0)
      const bucket = new TokenBucket(1000, 500, clock)
      await bucket.take(500) // the burst
      let done = false
      const p = bucket.take(1000).then(() => { done = true })
      await new Promise(resolve => setImmediate(resolve))
      clock.advance(999)
      await new Promise(resolve => setImmediate(resolve))
      expect(done).to.equal(false)
      clock.advance(1)
      await p
      expect(done).to.equal(true)
    })
  })

  it('serving reuses its read buffers once the connection has encrypted their bytes, under backpressure', async () => {
    // 1 MiB chunks over a 256 KiB stream window: every send waits for the stream to drain.
    const c = randomContent(48 * MiB, MiB)
    const src = await peer(new IntoSource())
    src.source.add(c, true)
    const dst = await peer(new MemorySource({ keep: false }))
    dst.source.add(c)
    await connectAll(src, dst)
    await dst.exchange.fetch(c.id, c.hashes, c.sizes)
    expect(dst.source.complete(c)).to.equal(true)
    expect(dst.exchange.counters.corrupt, 'every chunk arrived intact').to.equal(0)
    expect(src.exchange.counters.served).to.equal(48)
    // One being sent, one read ahead, a few held until Noise took their bytes: not one per chunk.
    expect((src.source as IntoSource).buffers.size).to.be.at.most(8)
  })

  it('frees its chunk buffers 10 s after the last transfer, not before', async () => {
    const clock = new ManualClock()
    const c = randomContent(8 * MiB, MiB)
    const src = await peer(new IntoSource(), {}, () => true, clock)
    src.source.add(c, true)
    const dst = await peer(new MemorySource({ keep: false }), {}, () => true, clock)
    dst.source.add(c)
    await connectAll(src, dst)
    await dst.exchange.fetch(c.id, c.hashes, c.sizes)
    expect(dst.exchange.bufferBytes, 'receiving side').to.be.greaterThan(0)
    expect(src.exchange.bufferBytes, 'serving side').to.be.greaterThan(0)
    clock.advance(9_000)
    expect(dst.exchange.bufferBytes).to.be.greaterThan(0)
    expect(src.exchange.bufferBytes).to.be.greaterThan(0)
    clock.advance(2_000)
    expect(dst.exchange.bufferBytes).to.equal(0)
    expect(src.exchange.bufferBytes).to.equal(0)
  })

  it('one source, one fetcher: every chunk arrives verified, progress is monotonic', async () => {
    const c = randomContent(4 * MiB + 1234, 64 * KiB)
    const { src, dst } = await seedAndFetcher(c)
    const events: ExchangeProgress[] = []
    dst.exchange.on('progress', p => events.push(p))
    let completed = 0
    dst.exchange.on('complete', ({ id }) => { if (id === c.id) completed++ })
    const t0 = Date.now()
    await dst.exchange.fetch(c.id, c.hashes, c.sizes)
    const secs = (Date.now() - t0) / 1000
    expect(dst.source.complete(c)).to.equal(true)
    for (let i = 0; i < c.hashes.length; i++) expect(sha256(dst.source.chunks.get(c.hashes[i]) as Uint8Array)).to.equal(c.hashes[i])
    expect(completed).to.equal(1)
    expect(dst.exchange.counters.requested).to.equal(c.hashes.length)
    expect(src.exchange.counters.served).to.equal(c.hashes.length)
    expect(events.length).to.be.greaterThan(c.hashes.length / 2)
    for (let i = 1; i < events.length; i++) {
      expect(events[i].bytes).to.be.at.least(events[i - 1].bytes)
      expect(events[i].chunks).to.be.at.least(events[i - 1].chunks)
    }
    const last = events[events.length - 1]
    expect(last).to.include({ bytes: c.totalBytes, totalBytes: c.totalBytes, chunks: c.hashes.length, totalChunks: c.hashes.length, eta: 0 })
    // The rate is the transfer's: within a factor of a few of bytes over wall time.
    const mid = events[Math.floor(events.length / 2)]
    const average = c.totalBytes / secs
    expect(last.rate).to.be.within(average / 4, average * 4)
    expect(mid.eta).to.be.at.least(0)
    expect(mid.peers).to.equal(1)
  })

  it('swarm: 1 source and 3 fetchers, the fetchers serve each other', async () => {
    const c = randomContent(8 * MiB, 128 * KiB)
    // A leader with a thin uplink: what swarming is for.
    const src = await peer(new MemorySource(), { uploadRate: 8 * MiB, bitmapRefresh: 100 })
    src.source.add(c, true)
    const fetchers = [await peer(undefined, { bitmapRefresh: 100 }), await peer(undefined, { bitmapRefresh: 100 }), await peer(undefined, { bitmapRefresh: 100 })]
    for (const f of fetchers) f.source.add(c)
    await connectAll(src, ...fetchers)
    await Promise.all(fetchers.map(async f => { await f.exchange.fetch(c.id, c.hashes, c.sizes) }))
    for (const f of fetchers) expect(f.source.complete(c)).to.equal(true)
    const fromSource = src.exchange.counters.servedBytes
    const amongFetchers = fetchers.reduce((a, f) => a + f.exchange.counters.servedBytes, 0)
    expect(fromSource + amongFetchers).to.be.at.least(3 * c.totalBytes)
    // Without swarming the source would send 3 × the content; it hands each chunk out about once
    // (ANY), the end aside (chunks the fetchers still relay, asked of it by name when it is idle).
    expect(fromSource).to.be.below(1.5 * c.totalBytes)
    expect(amongFetchers).to.be.above(c.totalBytes)
    for (const f of fetchers) expect(f.exchange.counters.served).to.be.greaterThan(0)
  })

  it('a presumed seed (the uploader) is asked at once, without a WATCH; a wrong presumption falls back to bitmaps', async () => {
    const c = randomContent(2 * MiB, 128 * KiB)
    const src = await peer()
    src.source.add(c, true)
    const empty = await peer()
    const dst = await peer(undefined, { bitmapRefresh: 100 })
    dst.source.add(c)
    await connectAll(src, empty, dst)
    await dst.exchange.fetch(c.id, c.hashes, c.sizes, { seeds: [src.id] })
    expect(dst.source.complete(c)).to.equal(true)
    // The seed was asked for chunks straight away: it never had to answer for its bitmap.
    expect(src.exchange.counters.watches).to.equal(0)
    expect(src.exchange.counters.served).to.equal(c.hashes.length)
    expect(empty.exchange.counters.watches).to.equal(1)

    // Presumed wrongly: `empty` holds nothing. Its NOT_FOUND sends the fetcher to the bitmaps,
    // and the content comes from the peer that has it.
    const c2 = randomContent(2 * MiB, 128 * KiB)
    src.source.add(c2, true)
    dst.source.add(c2)
    const failed = dst.exchange.counters.failed
    await dst.exchange.fetch(c2.id, c2.hashes, c2.sizes, { seeds: [empty.id] })
    expect(dst.source.complete(c2)).to.equal(true)
    expect(dst.exchange.counters.failed).to.be.greaterThan(failed)
    expect(empty.exchange.counters.served).to.equal(0)
    expect(src.exchange.counters.served).to.equal(c.hashes.length + c2.hashes.length)
  })

  it('a peer that did not know the content when asked is watched back as soon as it watches us', async () => {
    const c = randomContent(8 * MiB, 128 * KiB)
    const src = await peer(new MemorySource(), { uploadRate: 2 * MiB })
    src.source.add(c, true)
    // Refreshes a minute apart: only the watch-back can tell `a` what `b` holds within the test.
    const a = await peer(undefined, { bitmapRefresh: 60_000 })
    const b = await peer(undefined, { bitmapRefresh: 60_000 })
    a.source.add(c)
    await connectAll(src, a, b)
    const fetchA = a.exchange.fetch(c.id, c.hashes, c.sizes)
    // `a` asked `b` at its start and heard NOT_FOUND: `b` has not registered the content yet.
    await waitFor(() => a.exchange.counters.received > 0, 10_000, 'a under way')
    b.source.add(c)
    await Promise.all([fetchA, b.exchange.fetch(c.id, c.hashes, c.sizes)])
    expect(a.source.complete(c) && b.source.complete(c)).to.equal(true)
    // `a` fetched from `b`: it learned `b`'s chunks long before its next refresh.
    expect(b.exchange.counters.servedBytes).to.be.above(0)
  })

  it('a peer sending corrupt chunks is dropped after maxBadChunks; the honest peer completes the content', async () => {
    const c = randomContent(2 * MiB, 64 * KiB)
    const honest = await peer()
    honest.source.add(c, true)
    const liar = await peer(new LyingSource())
    liar.source.add(c, true)
    const dst = await peer(undefined, { maxBadChunks: 2, perPeerConcurrency: 4 })
    dst.source.add(c)
    await connectAll(honest, liar, dst)
    const dropped: string[] = []
    dst.exchange.on('dropped', ({ peer }) => dropped.push(peer))
    await dst.exchange.fetch(c.id, c.hashes, c.sizes)
    expect(dst.source.complete(c)).to.equal(true)
    for (const h of c.hashes) expect(sha256(dst.source.chunks.get(h) as Uint8Array)).to.equal(h)
    expect(dropped).to.deep.equal([liar.id])
    expect(dst.exchange.counters.corrupt).to.be.within(2, 4)
    // Only requests sent before it was dropped: the window of 4, and one more each time a corrupt
    // chunk's bytes were in (a request leaves the window when its bytes arrive, before they are
    // verified). Not asked again once dropped.
    expect(liar.source.reads).to.be.at.most(4 + dst.exchange.counters.corrupt)
    expect(honest.exchange.counters.served).to.be.at.least(c.hashes.length - 2)
  })

  it('a peer that vanishes mid-transfer: the fetch completes from the others', async () => {
    const c = randomContent(4 * MiB, 64 * KiB)
    const a = await peer(undefined, { uploadRate: 3 * MiB })
    const b = await peer(undefined, { uploadRate: 3 * MiB })
    a.source.add(c, true)
    b.source.add(c, true)
    const dst = await peer(undefined, { bitmapRefresh: 100, chunkTimeout: 2_000 })
    dst.source.add(c)
    await connectAll(a, b, dst)
    const vanish: { stopped?: Promise<void>, servedBefore?: number } = {}
    dst.exchange.on('progress', p => {
      if (vanish.stopped != null || p.chunks < c.hashes.length / 4) return
      vanish.servedBefore = b.exchange.counters.served
      vanish.stopped = Promise.resolve(b.node.stop())
    })
    await dst.exchange.fetch(c.id, c.hashes, c.sizes)
    await vanish.stopped
    expect(vanish.servedBefore).to.be.greaterThan(0) // b was in use when it vanished
    expect(dst.source.complete(c)).to.equal(true)
    expect(a.exchange.counters.served).to.be.greaterThan(b.exchange.counters.served)
  })

  it('resumes: after an abort halfway, the second run asks only for the missing chunks', async () => {
    const c = randomContent(4 * MiB, 64 * KiB)
    const { dst } = await seedAndFetcher(c, { uploadRate: 4 * MiB })
    const ctl = new AbortController()
    dst.exchange.on('progress', p => { if (p.chunks >= c.hashes.length / 2) ctl.abort() })
    const err = await rejection(async () => { await dst.exchange.fetch(c.id, c.hashes, c.sizes, { signal: ctl.signal }) })
    expect(err.code).to.equal('ABORTED')
    await new Promise(resolve => setTimeout(resolve, 100)) // let a chunk being stored land
    const held = countBits(dst.source.bitmap(c.id) as Uint8Array, c.hashes.length)
    expect(held).to.be.within(c.hashes.length / 2, c.hashes.length - 1)
    dst.exchange.removeAllListeners('progress')
    const before = dst.exchange.counters.requested
    await dst.exchange.fetch(c.id, c.hashes, c.sizes)
    expect(dst.exchange.counters.requested - before).to.equal(c.hashes.length - held)
    expect(dst.source.complete(c)).to.equal(true)
  })

  it('ending a download aborts the requests it has in flight: their stream is reset at once, not drained', async () => {
    // At 128 KiB/s a 64 KiB chunk takes 500 ms, and an idle channel would stay open 5 s: only
    // aborting the requests outstanding ends the stream within the 300 ms waited here.
    const c = randomContent(2 * MiB, 64 * KiB)
    const { src, dst } = await seedAndFetcher(c, { uploadRate: 128 * KiB })
    const channels = (): number => dst.node.getConnections(src.node.peerId)
      .flatMap(conn => conn.streams).filter(s => s.protocol === CONTENT_PROTOCOL && s.direction === 'outbound').length
    const ctl = new AbortController()
    dst.exchange.on('progress', p => { if (p.chunks >= 1) ctl.abort() })
    expect((await rejection(async () => { await dst.exchange.fetch(c.id, c.hashes, c.sizes, { signal: ctl.signal }) })).code).to.equal('ABORTED')
    await waitFor(() => channels() === 0, 300, 'the download stream to end')
  })

  it('waits while no peer holds a missing chunk; a member that connects later joins; cancel() stops a download', async () => {
    const c = randomContent(512 * KiB, 64 * KiB)
    const dst = await peer()
    dst.source.add(c)
    const waiting = dst.exchange.fetch(c.id, c.hashes, c.sizes)
    await new Promise(resolve => setTimeout(resolve, 300))
    expect(dst.exchange.downloads()).to.deep.equal([c.id])
    const src = await peer()
    src.source.add(c, true)
    await connectAll(src, dst)
    await waiting
    expect(dst.source.complete(c)).to.equal(true)

    const other = randomContent(128 * KiB, 64 * KiB)
    dst.source.add(other)
    const p = dst.exchange.fetch(other.id, other.hashes, other.sizes)
    await new Promise(resolve => setTimeout(resolve, 50))
    dst.exchange.cancel(other.id)
    expect((await rejection(async () => { await p })).code).to.equal('ABORTED')
    expect(dst.exchange.downloads()).to.deep.equal([])
  })

  it('chunks already held for other content are not transferred', async () => {
    const a = randomContent(256 * KiB, 64 * KiB)
    const dst = await peer()
    dst.source.add(a, true)
    // Same chunks, another content id: e.g. a layer shared by two images.
    const b: TestContent = { ...a, id: sha256(randomBytes(32)) }
    dst.source.add(b)
    await dst.exchange.fetch(b.id, b.hashes, b.sizes)
    expect(dst.source.complete(b)).to.equal(true)
    expect(dst.exchange.counters.requested).to.equal(0)
  })

  it('a BUSY peer is rested, then asked again after its next bitmap', async () => {
    const c = randomContent(1 * MiB, 64 * KiB)
    const { src, dst } = await seedAndFetcher(c, { uploadSlots: 1 }, { bitmapRefresh: 50, perPeerConcurrency: 4 })
    await dst.exchange.fetch(c.id, c.hashes, c.sizes)
    expect(dst.source.complete(c)).to.equal(true)
    expect(src.exchange.counters.busy).to.be.greaterThan(0)
  })

  it('rejects malformed input both ways: oversized bitmaps, garbage requests, bad arguments', async () => {
    const c = randomContent(256 * KiB, 64 * KiB) // 4 chunks: a bitmap of 1 byte
    const dst = await peer()
    const fake = await newNode()
    nodes.push(fake)
    await fake.handle(CONTENT_PROTOCOL, async (s: Stream) => {
      const lp = lpStream(s)
      await lp.read()
      await lp.write(ContentResponse.encode({ code: '', bitmap: new Uint8Array(1024), size: 0 }))
      await s.close()
    })
    await fake.dial(dst.node.getMultiaddrs()[0])
    await waitFor(() => dst.node.getPeers().length === 1, 5_000, 'connection')
    const err = await rejection(async () => await dst.exchange.askHave(fake.peerId, c.id, c.hashes.length))
    expect(err.code).to.equal('PROTOCOL_ERROR')

    // Garbage to the real handler gets a PROTOCOL_ERROR answer, and the server keeps serving.
    const s = await fake.dialProtocol(dst.node.peerId, CONTENT_PROTOCOL)
    const lp = lpStream(s)
    await lp.write(randomBytes(100))
    const res = ContentResponse.decode(await lp.read())
    expect(res.code).to.equal('PROTOCOL_ERROR')
    const s2 = await fake.dialProtocol(dst.node.peerId, CONTENT_PROTOCOL)
    const lp2 = lpStream(s2)
    await lp2.write(randomBytes(10_000)) // longer than any request: not even read
    expect(ContentResponse.decode(await lp2.read()).code).to.equal('PROTOCOL_ERROR')

    dst.source.add(c)
    expect((await rejection(async () => { await dst.exchange.fetch('nope', c.hashes, c.sizes) })).code).to.equal('INVALID_ARGUMENT')
    expect((await rejection(async () => { await dst.exchange.fetch(c.id, c.hashes, c.sizes.slice(1)) })).code).to.equal('INVALID_ARGUMENT')
    expect((await rejection(async () => { await dst.exchange.fetch(c.id, c.hashes, c.sizes.map(() => 17 * MiB)) })).code).to.equal('INVALID_ARGUMENT')
  })

  it('one stream per peer carries every GET of a download, answered in order, bytes unframed', async () => {
    const c = randomContent(3 * MiB, 64 * KiB)
    const { src, dst } = await seedAndFetcher(c)
    await dst.exchange.fetch(c.id, c.hashes, c.sizes)
    expect(dst.source.complete(c)).to.equal(true)
    expect(dst.exchange.counters.channels).to.equal(1)
    expect(src.exchange.counters.served).to.equal(c.hashes.length)

    // The wire: three GETs written at once on one stream, then the answers in order.
    const raw = await newNode()
    nodes.push(raw)
    await raw.dial(src.node.getMultiaddrs()[0])
    const s = await raw.dialProtocol(src.node.peerId, CONTENT_PROTOCOL)
    const bs = byteStream(s)
    const wanted = [5, 0, 17]
    for (const i of wanted) s.send(lengthPrefixed(ContentRequest.encode({ op: 'GET', contentId: c.id, index: i, hash: Buffer.from(c.hashes[i], 'hex') })))
    for (const i of wanted) {
      const res = ContentResponse.decode(await readLp(bs))
      expect(res).to.include({ code: '', size: c.sizes[i] })
      const body = (await bs.read({ bytes: res.size })).subarray()
      expect(sha256(body)).to.equal(c.hashes[i])
    }
    // A request that is not one ends the stream after its PROTOCOL_ERROR answer.
    s.send(lengthPrefixed(randomBytes(40)))
    expect(ContentResponse.decode(await readLp(bs)).code).to.equal('PROTOCOL_ERROR')
    expect(await bs.read()).to.equal(null)
  })

  it('ANY: a seed gives each chunk to one asker; SENT once all listed went to others', async () => {
    const c = randomContent(256 * KiB, 64 * KiB) // 4 chunks
    const src = await peer()
    src.source.add(c, true)
    const askers = [await newNode(), await newNode()]
    nodes.push(...askers)
    const any = c.hashes.map((h, index) => ({ index, hash: Buffer.from(h, 'hex') }))
    const picks: number[] = []
    for (const a of askers) {
      await a.dial(src.node.getMultiaddrs()[0])
      const s = await a.dialProtocol(src.node.peerId, CONTENT_PROTOCOL)
      const bs = byteStream(s)
      // Two ANYs with the same list, pipelined: two different chunks.
      for (let k = 0; k < 2; k++) s.send(lengthPrefixed(ContentRequest.encode({ op: 'ANY', contentId: c.id, any })))
      for (let k = 0; k < 2; k++) {
        const res = ContentResponse.decode(await readLp(bs))
        expect(res.code).to.equal('')
        expect(sha256((await bs.read({ bytes: res.size })).subarray())).to.equal(c.hashes[res.index])
        picks.push(res.index)
      }
      if (a === askers[1]) {
        s.send(lengthPrefixed(ContentRequest.encode({ op: 'ANY', contentId: c.id, any })))
        expect(ContentResponse.decode(await readLp(bs)).code).to.equal('SENT')
      }
      await s.close()
    }
    expect([...picks].sort()).to.deep.equal([0, 1, 2, 3])
  })

  it('WATCH: the bitmap at once, then each chunk the peer stores', async () => {
    const c = randomContent(512 * KiB, 64 * KiB) // 8 chunks
    const src = await peer()
    src.source.add(c, true)
    const mid = await peer(undefined, { uploadRate: 512 * KiB })
    mid.source.add(c)
    const watcher = await newNode()
    nodes.push(watcher)
    await connectAll(src, mid)
    await watcher.dial(mid.node.getMultiaddrs()[0])
    const s = await watcher.dialProtocol(mid.node.peerId, CONTENT_PROTOCOL)
    const bs = byteStream(s)
    s.send(lengthPrefixed(ContentRequest.encode({ op: 'WATCH', contentId: c.id })))
    const first = ContentResponse.decode(await readLp(bs))
    expect(first.code).to.equal('')
    expect(countBits(first.bitmap, 8)).to.equal(0)
    const fetching = mid.exchange.fetch(c.id, c.hashes, c.sizes)
    const seen = new Set<number>()
    while (seen.size < 8) {
      const res = ContentResponse.decode(await readLp(bs))
      if (res.bitmap.length > 0) for (let i = 0; i < 8; i++) { if (countBits(res.bitmap.subarray(i >> 3, (i >> 3) + 1), 8) > 0 && hasBitAt(res.bitmap, i)) seen.add(i) }
      for (const i of res.have) seen.add(i)
    }
    await fetching
    await s.close()
    expect([...seen].sort((a, b) => a - b)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7])
  })

  it('bounded: a client with more than 64 requests unread loses its stream', async () => {
    const c = randomContent(64 * KiB, 64 * KiB)
    const src = await peer(undefined, { uploadRate: 64 * KiB })
    src.source.add(c, true)
    const raw = await newNode()
    nodes.push(raw)
    await raw.dial(src.node.getMultiaddrs()[0])
    const s = await raw.dialProtocol(src.node.peerId, CONTENT_PROTOCOL)
    const closed = new Promise(resolve => { s.addEventListener('close', resolve) })
    const req = lengthPrefixed(ContentRequest.encode({ op: 'GET', contentId: c.id, index: 0, hash: Buffer.from(c.hashes[0], 'hex') }))
    // Nothing is read here: the answers pile up at the server, the requests behind them.
    for (let k = 0; k < 200; k++) s.send(req)
    await Promise.race([closed, new Promise((_resolve, reject) => setTimeout(() => { reject(new Error('the stream stayed open')) }, 10_000))])
    expect(s.status).to.not.equal('open')
  })

  it('refuses a non-member: its stream is aborted and nothing is served', async () => {
    const c = randomContent(256 * KiB, 64 * KiB)
    const outsiderId = { id: '' }
    const src = await peer(undefined, {}, id => id !== outsiderId.id)
    src.source.add(c, true)
    const stranger = await peer()
    outsiderId.id = stranger.id
    stranger.source.add(c)
    await connectAll(src, stranger)
    const err = await rejection(async () => await stranger.exchange.askHave(src.node.peerId, c.id, c.hashes.length))
    expect(err).to.be.an('error')
    const ctl = new AbortController()
    setTimeout(() => { ctl.abort() }, 500)
    expect((await rejection(async () => { await stranger.exchange.fetch(c.id, c.hashes, c.sizes, { signal: ctl.signal }) })).code).to.equal('ABORTED')
    expect(src.exchange.counters.refused).to.be.at.least(2)
    expect(src.exchange.counters.served).to.equal(0)
    expect(countBits(stranger.source.bitmap(c.id) as Uint8Array, c.hashes.length)).to.equal(0)
  })

  it('honours the upload rate limit (measured rate / limit near 1)', async () => {
    const rate = 2 * MiB
    const c = randomContent(3 * MiB, 256 * KiB)
    const { dst } = await seedAndFetcher(c, { uploadRate: rate })
    const t0 = Date.now()
    await dst.exchange.fetch(c.id, c.hashes, c.sizes)
    const measured = c.totalBytes / ((Date.now() - t0) / 1000)
    // The burst (rate / 4) leaves at once, so the ratio sits a little above 1 by design.
    expect(measured / rate).to.be.within(0.5, 1.5)
  })

  it('backpressure: a 64 MiB single-peer transfer grows RSS far less than 64 MiB', async () => {
    const c = generatedContent(64, MiB)
    const index = new Map(c.hashes.map((h, i) => [h, i]))
    const src = await peer(new MemorySource({ generate: h => { const i = index.get(h); return i == null ? undefined : c.bytes(i) } }))
    src.source.add(c, true)
    const dst = await peer(new MemorySource({ keep: false }))
    dst.source.add(c)
    await connectAll(src, dst)
    const gc = exposeGc()
    gc()
    const base = process.memoryUsage().rss
    let peak = base
    // Left to itself V8 collects the ~3 × 64 MiB of handled chunk buffers lazily, so a full
    // collection runs whenever 8 MiB of buffers piled up: what stays is what is retained, the
    // thing backpressure bounds.
    let retained = 0
    const sampler = setInterval(() => {
      let m = process.memoryUsage()
      if (m.arrayBuffers > 8 * MiB) {
        gc()
        m = process.memoryUsage()
      }
      peak = Math.max(peak, m.rss)
      retained = Math.max(retained, m.arrayBuffers)
    }, 10)
    try {
      await dst.exchange.fetch(c.id, c.hashes, c.sizes)
    } finally {
      clearInterval(sampler)
    }
    peak = Math.max(peak, process.memoryUsage().rss)
    expect(dst.source.complete(c)).to.equal(true)
    expect(peak - base, `RSS grew by ${((peak - base) / MiB).toFixed(1)} MiB`).to.be.below(32 * MiB)
    // Buffers alive at once: the chunks in flight (4 × 1 MiB at each end), their frames, and < 8 MiB
    // of garbage not collected yet.
    expect(retained, `${(retained / MiB).toFixed(1)} MiB of buffers retained`).to.be.below(32 * MiB)
  })

  it('backpressure: a sender facing a paused reader queues at most about one slice', async () => {
    const a = await newNode()
    const b = await newNode()
    nodes.push(a, b)
    let received = 0
    let reader: Stream | undefined
    await b.handle('/test/sink/1', (s: Stream) => {
      reader = s
      s.pause() // a reader that does not read: yamux stops granting window
      s.addEventListener('message', e => { received += e.data.byteLength })
    })
    const stream = await a.dialProtocol(b.getMultiaddrs()[0], '/test/sink/1')
    const lp = lpStream(stream)
    const total = 64 * MiB
    const slice = 256 * KiB
    let maxQueued = 0
    let sent = 0
    const pieces = function * (): Generator<Uint8Array> { for (let off = 0; off < total; off += slice) yield Buffer.alloc(slice, off & 0xff) }
    const sending = sendSlices(lp, pieces(), { onSent: n => { sent += n; maxQueued = Math.max(maxQueued, stream.writeBufferLength) } })
    await waitFor(() => reader != null, 5_000, 'the reader')
    await new Promise(resolve => setTimeout(resolve, 300))
    // Stalled: the sender waits for `drain` instead of buffering the remaining ~64 MiB.
    expect(sent).to.be.below(4 * MiB)
    reader?.resume()
    await sending
    await stream.close()
    await waitFor(() => received >= total, 10_000, 'all bytes')
    expect(maxQueued).to.be.at.most(2 * slice)
  })
})

/** `global.gc`, exposed at run time, so RSS samples measure what is retained rather than garbage. */
function exposeGc (): () => void {
  const g = (globalThis as { gc?: () => void }).gc
  if (g != null) return g
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

function lengthPrefixed (msg: Uint8Array): Uint8Array {
  const head: number[] = []
  let n = msg.length
  while (n >= 0x80) { head.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  head.push(n)
  return Buffer.concat([Buffer.from(head), msg])
}

/** One varint-length-prefixed message from a byte stream. */
async function readLp (bs: ReturnType<typeof byteStream>): Promise<Uint8Array> {
  let len = 0
  for (let shift = 0; ; shift += 7) {
    const b = (await bs.read({ bytes: 1 })).subarray()[0]
    len += (b & 0x7f) * 2 ** shift
    if ((b & 0x80) === 0) break
  }
  return len === 0 ? new Uint8Array(0) : (await bs.read({ bytes: len })).subarray()
}

function hasBitAt (bitmap: Uint8Array, i: number): boolean { return ((bitmap[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0 }
