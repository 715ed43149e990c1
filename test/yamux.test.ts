import { expect } from 'chai'
import { createHash, randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import type { Stream } from '@libp2p/interface'
import { createLibp2p, type Libp2p } from 'libp2p'
import { meshNoise } from '../lib/noise-crypto.ts'
import { capFrames, deferWindowUpdates, MAX_FRAME_DATA, meshYamux } from '../lib/yamux.ts'
import { loopbackIp } from './helpers.ts'

const PROTOCOL = '/edgelink-test/frames/1.0.0'
const BYTES = 6 * 1024 * 1024

interface Received { sizes: number[], hash: string }

/** Reads `stream` to its end, noting every message's size: each is one Yamux data frame. */
async function readAll (stream: Stream, bytes: number): Promise<Received> {
  const sizes: number[] = []
  const hash = createHash('sha256')
  let total = 0
  await new Promise<void>((resolve, reject) => {
    stream.addEventListener('message', (evt) => {
      sizes.push(evt.data.byteLength)
      total += evt.data.byteLength
      hash.update(evt.data.subarray())
      if (total === bytes) resolve()
    })
    stream.addEventListener('close', (evt) => { if (evt.error != null) reject(evt.error) })
  })
  return { sizes, hash: hash.digest('hex') }
}

/** Writes `data` in 1 MiB writes, waiting for drain as asked. */
async function writeAll (stream: Stream, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length; off += 1 << 20) {
    if (!stream.send(data.subarray(off, off + (1 << 20)))) await stream.onDrain()
  }
}

describe('mesh Yamux (frames capped at one Noise message)', function () {
  this.timeout(60_000)
  const nodes: Libp2p[] = []

  async function node (muxer: 'mesh' | 'stock'): Promise<Libp2p> {
    const n = await createLibp2p({
      privateKey: await generateKeyPair('Ed25519'),
      addresses: { listen: [`/ip4/${loopbackIp()}/tcp/0`] },
      transports: [tcp()],
      connectionEncrypters: [meshNoise()],
      streamMuxers: [muxer === 'mesh' ? meshYamux() : yamux()]
    })
    nodes.push(n)
    return n
  }

  afterEach(async () => { await Promise.all(nodes.splice(0).map(async n => { await n.stop() })) })

  /**
   * `sender` opens a stream to `receiver` and writes 6 MiB; the receiver answers with 6 MiB of its
   * own on the same (inbound, for it) stream. Checks both arrived intact and returns the sizes of
   * the messages (frames) each side received.
   */
  async function exchange (sender: Libp2p, receiver: Libp2p): Promise<{ there: number[], back: number[] }> {
    const there = randomBytes(BYTES)
    const back = randomBytes(BYTES)
    let gotThere: Promise<Received> | undefined
    await receiver.handle(PROTOCOL, async (stream) => {
      gotThere = readAll(stream, BYTES)
      await gotThere
      await writeAll(stream, back)
      await stream.close()
    })
    const stream = await sender.dialProtocol(receiver.getMultiaddrs()[0], PROTOCOL)
    const gotBack = readAll(stream, BYTES)
    await writeAll(stream, there)
    const r = { there: await gotThere!, back: await gotBack }
    await stream.close()
    const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
    expect(r.there.hash, 'bytes sent to the receiver').to.equal(sha(there))
    expect(r.back.hash, 'bytes sent back').to.equal(sha(back))
    return { there: r.there.sizes, back: r.back.sizes }
  }

  it('sends no data frame larger than one Noise message, on streams it opens and on streams opened to it', async () => {
    const [a, b] = await Promise.all([node('mesh'), node('mesh')])
    const r = await exchange(a, b)
    // Outbound (a's) and inbound (b's) streams alike: every frame fits one Noise message.
    expect(Math.max(...r.there)).to.be.at.most(MAX_FRAME_DATA)
    expect(Math.max(...r.back)).to.be.at.most(MAX_FRAME_DATA)
    // ...and they are full frames, not dribbles: 6 MiB in about 6 MiB / MAX_FRAME_DATA frames.
    expect(r.there.length).to.be.at.most(Math.ceil(BYTES / MAX_FRAME_DATA) + 16)
  })

  it('where stock @libp2p/yamux sends frames as large as the window (what the cap is for)', async () => {
    const [a, b] = await Promise.all([node('stock'), node('stock')])
    // The initial window alone is 256 KiB, sent as one frame.
    expect(Math.max(...(await exchange(a, b)).there)).to.be.greaterThan(4 * MAX_FRAME_DATA)
  })

  it('talks to a peer on stock Yamux both ways, its own frames capped', async () => {
    const [ours, stock] = await Promise.all([node('mesh'), node('stock')])
    expect(Math.max(...(await exchange(ours, stock)).there)).to.be.at.most(MAX_FRAME_DATA)
    expect(Math.max(...(await exchange(stock, ours)).back)).to.be.at.most(MAX_FRAME_DATA)
  })

  it('returns the receive window once per half window, not once per frame', async () => {
    const [a, b] = await Promise.all([node('mesh'), node('mesh')])
    let updates = 0
    let frames = 0
    const data = randomBytes(BYTES)
    const got = new Promise<string>((resolve, reject) => {
      void b.handle(PROTOCOL, (stream) => {
        // The receiving YamuxStream's own frames: count the WINDOW_UPDATEs (type 1) it sends.
        const s = stream as unknown as { sendFrame: (h: { type: number }, d?: unknown) => unknown }
        const send = s.sendFrame
        s.sendFrame = (h, d) => { if (h.type === 1) updates++; return send(h, d) }
        const hash = createHash('sha256')
        let n = 0
        stream.addEventListener('message', (evt) => {
          frames++
          n += evt.data.byteLength
          hash.update(evt.data.subarray())
          if (n === BYTES) resolve(hash.digest('hex'))
        })
        stream.addEventListener('close', (evt) => { if (evt.error != null) reject(evt.error) })
      })
    })
    const stream = await a.dialProtocol(b.getMultiaddrs()[0], PROTOCOL)
    await writeAll(stream, data)
    expect(await got).to.equal(createHash('sha256').update(data).digest('hex'))
    // ~96 capped frames; stock Yamux would answer each with an update. The first window is
    // 256 KiB, so at most one update per 128 KiB: 48 for 6 MiB, fewer as the window grows.
    expect(frames).to.be.at.least(Math.floor(BYTES / MAX_FRAME_DATA))
    expect(updates).to.be.at.least(1)
    expect(updates).to.be.at.most(BYTES / (128 * 1024))
    await stream.close()
  })

  it('deferWindowUpdates holds an update until half the window is used, and never holds a SYN/ACK or a paused stream\'s', () => {
    const calls: number[] = []
    // A stand-in with the fields the wrapper reads; the stock method records what it was asked.
    const s = deferWindowUpdates({
      state: 3, // Established
      recvWindow: 1000,
      recvWindowCapacity: 1000,
      sendWindowUpdate (this: { recvWindowCapacity: number, recvWindow: number }) { calls.push(this.recvWindow - this.recvWindowCapacity); this.recvWindowCapacity = this.recvWindow }
    })
    s.recvWindowCapacity = 501 // 499 used
    s.sendWindowUpdate()
    expect(calls).to.deep.equal([])
    s.recvWindowCapacity = 500 // half used
    s.sendWindowUpdate()
    expect(calls).to.deep.equal([500])
    s.recvWindowCapacity = 0 // a sender that used it all is answered
    s.sendWindowUpdate()
    expect(calls).to.deep.equal([500, 1000])
    for (const state of [0, 2, 5]) { // Init and SYNReceived owe a SYN/ACK; Paused is the stock method's to handle
      s.state = state
      s.recvWindowCapacity = 990
      s.sendWindowUpdate()
    }
    expect(calls).to.deep.equal([500, 1000, 10, 10, 10])
    expect(() => deferWindowUpdates({ maxMessageSize: 1 })).to.throw(/window updates cannot be deferred/)
  })

  it('capFrames keeps the smaller of the cap and what the window allows', () => {
    const s = capFrames({ maxMessageSize: 10 }, 100)
    expect(s.maxMessageSize).to.equal(10)
    s.maxMessageSize = 1_000_000
    expect(s.maxMessageSize).to.equal(100)
    s.maxMessageSize = 0
    expect(s.maxMessageSize).to.equal(0)
    expect(capFrames({ maxMessageSize: 1 << 20 }).maxMessageSize).to.equal(MAX_FRAME_DATA)
  })
})
