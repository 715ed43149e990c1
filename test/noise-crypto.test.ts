import { expect } from 'chai'
import { randomBytes } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { Uint8ArrayList } from 'uint8arraylist'
import { decryptMessages, meshNoise, noiseCounters, noiseCrypto, type NoiseMessageStream } from '../lib/noise-crypto.ts'
import { loopbackIp } from './helpers.ts'

/** Every size class: small (the library's own cipher takes its WebAssembly path below 1200), both sides of that threshold, a full Noise message. */
const SIZES = [0, 1, 100, 1199, 1200, 1201, 4096, 65519]

function nonce (n: number): Uint8Array {
  const b = new Uint8Array(12)
  new DataView(b.buffer).setUint32(4, n, true)
  return b
}

function bytesOf (x: Uint8Array | { subarray: () => Uint8Array }): Uint8Array {
  return x instanceof Uint8Array ? x : x.subarray()
}

/** The same bytes as a list of several pieces, as Yamux hands them to Noise. */
function asList (b: Uint8Array): Uint8ArrayList {
  const list = new Uint8ArrayList()
  const cuts = [0, Math.floor(b.length / 3), Math.floor(b.length / 2), b.length]
  for (let i = 1; i < cuts.length; i++) list.append(b.subarray(cuts[i - 1], cuts[i]))
  return list
}

describe('Noise ciphers (KeyObject per session key)', () => {
  const k = randomBytes(32)
  const ad = randomBytes(32)

  it('seals what the library\'s own cipher opens, and opens what it seals, at every size, from bytes and from lists', () => {
    for (const size of SIZES) {
      const plain = randomBytes(size)
      for (const input of [plain, asList(plain)]) {
        const ours = bytesOf(noiseCrypto.chaCha20Poly1305Encrypt(input as any, nonce(size), ad, k))
        const theirs = bytesOf(defaultCrypto.chaCha20Poly1305Encrypt(plain, nonce(size), ad, k))
        expect(Buffer.from(ours).equals(Buffer.from(theirs)), `sealed ${size} bytes`).to.equal(true)
        expect(ours.length).to.equal(size + 16)
        const opened = bytesOf(defaultCrypto.chaCha20Poly1305Decrypt(ours, nonce(size), ad, k))
        expect(Buffer.from(opened).equals(plain), `theirs opens ours, ${size} bytes`).to.equal(true)
        for (const sealed of [theirs, asList(theirs)]) {
          const back = bytesOf(noiseCrypto.chaCha20Poly1305Decrypt(sealed as any, nonce(size), ad, k))
          expect(Buffer.from(back).equals(plain), `ours opens theirs, ${size} bytes`).to.equal(true)
        }
      }
    }
  })

  it('counts every message it seals and opens, small ones included, and refuses one shorter than its tag', () => {
    const before = { ...noiseCounters }
    const sealed = bytesOf(noiseCrypto.chaCha20Poly1305Encrypt(randomBytes(100), nonce(7), ad, k))
    noiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce(7), ad, k)
    expect(noiseCounters.sealed - before.sealed).to.equal(1)
    expect(noiseCounters.sealedBytes - before.sealedBytes).to.equal(100)
    expect(noiseCounters.opened - before.opened).to.equal(1)
    expect(() => noiseCrypto.chaCha20Poly1305Decrypt(sealed.subarray(0, 15), nonce(7), ad, k)).to.throw(/shorter than its tag/)
  })

  it('refuses a flipped bit, a wrong nonce, other associated data and another key', () => {
    const plain = randomBytes(8000)
    const sealed = Buffer.from(bytesOf(noiseCrypto.chaCha20Poly1305Encrypt(plain, nonce(1), ad, k)))
    const flipped = Buffer.from(sealed)
    flipped[100] ^= 1
    const tag = Buffer.from(sealed)
    tag[tag.length - 1] ^= 1
    expect(() => noiseCrypto.chaCha20Poly1305Decrypt(flipped, nonce(1), ad, k)).to.throw()
    expect(() => noiseCrypto.chaCha20Poly1305Decrypt(tag, nonce(1), ad, k)).to.throw()
    expect(() => noiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce(2), ad, k)).to.throw()
    expect(() => noiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce(1), randomBytes(32), k)).to.throw()
    // A second key gets its own KeyObject: the first one's cached object is not reused for it.
    const k2 = randomBytes(32)
    expect(() => noiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce(1), ad, k2)).to.throw()
    const sealed2 = noiseCrypto.chaCha20Poly1305Encrypt(plain, nonce(1), ad, k2)
    expect(Buffer.from(bytesOf(sealed2)).equals(sealed)).to.equal(false)
    expect(Buffer.from(bytesOf(noiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce(1), ad, k))).equals(plain)).to.equal(true)
  })

  it('talks to a libp2p node on the library\'s default ciphers over real TCP, both ways, and counts what it opens', async function () {
    this.timeout(30_000)
    const ECHO = '/edgelink-test/echo/1.0.0'
    const make = async (ours: boolean): Promise<Libp2p> => await createLibp2p({
      privateKey: await generateKeyPair('Ed25519'),
      addresses: { listen: [`/ip4/${loopbackIp()}/tcp/0`] },
      transports: [tcp()],
      connectionEncrypters: [ours ? meshNoise() : noise()],
      streamMuxers: [yamux()]
    })
    const plainNode = await make(false)
    const ourNode = await make(true)
    try {
      await plainNode.handle(ECHO, (stream) => {
        void (async () => {
          const lp = lpStream(stream, { maxDataLength: 4 << 20 })
          for (let i = 0; i < SIZES.length + 1; i++) await lp.write(await lp.read())
          await stream.close()
        })().catch(err => { stream.abort(err) })
      })
      const before = { ...noiseCounters }
      const stream = await ourNode.dialProtocol(plainNode.getMultiaddrs()[0], ECHO)
      const lp = lpStream(stream, { maxDataLength: 4 << 20 })
      let sent = 0
      for (const size of [...SIZES, 2_000_000]) {
        const msg = randomBytes(size)
        sent += size
        await lp.write(msg)
        const echoed = await lp.read()
        expect(Buffer.from(echoed.subarray()).equals(msg), `echo of ${size} bytes`).to.equal(true)
      }
      await stream.close()
      // Every message went through Node's cipher with the cached key, both ways.
      expect(noiseCounters.sealed - before.sealed).to.be.greaterThan(5)
      expect(noiseCounters.openedBytes - before.openedBytes).to.be.within(2_000_000, sent + 10_000)
      // The connection decrypts through decryptMessages, and 2 MB of 64 KiB messages read from a
      // socket in its own pieces arrive split: those were decrypted piece by piece, not copied first.
      expect(noiseCounters.opened - before.opened).to.be.greaterThan(30)
      expect(noiseCounters.openedInPieces - before.openedInPieces).to.be.greaterThan(0)
    } finally {
      await Promise.all([plainNode.stop(), ourNode.stop()])
    }
  })

  it('decrypts a message that arrives in pieces piece by piece, into a list, and refuses a tampered one', () => {
    const k = randomBytes(32)
    const ad = new Uint8Array(0)
    let n = 0
    const offered: Array<Uint8Array | undefined> = []
    const stream = {
      handshake: {
        decrypt: (ciphertext: Uint8Array | Uint8ArrayList, dst?: Uint8Array) => {
          offered.push(dst)
          return noiseCrypto.chaCha20Poly1305Decrypt(ciphertext as any, nonce(n++), ad, k, dst)
        }
      }
    } as unknown as NoiseMessageStream
    const plain = randomBytes(65519)
    const sealed = Buffer.from(bytesOf(noiseCrypto.chaCha20Poly1305Encrypt(plain, nonce(0), ad, k)))
    // In three pieces, as a socket delivers it: no output buffer is offered (it would be a copy).
    const pieces = new Uint8ArrayList(sealed.subarray(0, 1000), sealed.subarray(1000, 40_000), sealed.subarray(40_000))
    const out = decryptMessages.call(stream, pieces)
    expect(Buffer.from(out.subarray()).equals(plain)).to.equal(true)
    expect(offered[0]).to.equal(undefined)
    // Contiguous: a view of the message itself is offered, as the library does.
    const again = Buffer.from(bytesOf(noiseCrypto.chaCha20Poly1305Encrypt(plain, nonce(1), ad, k)))
    expect(Buffer.from(decryptMessages.call(stream, again).subarray()).equals(plain)).to.equal(true)
    expect(offered[1]?.buffer).to.equal(again.buffer)
    // A flipped bit in the middle piece: refused.
    const bad = Buffer.from(bytesOf(noiseCrypto.chaCha20Poly1305Encrypt(plain, nonce(2), ad, k)))
    bad[20_000] ^= 1
    expect(() => decryptMessages.call(stream, new Uint8ArrayList(bad.subarray(0, 10), bad.subarray(10)))).to.throw()
    // Shorter than a tag: refused before any decryption.
    expect(() => decryptMessages.call(stream, new Uint8Array(10))).to.throw(/Invalid chunk/)
  })
})
