/**
 * The Noise transport's ciphers: @chainsafe/libp2p-noise's own (`defaultCrypto`: Node's
 * ChaCha20-Poly1305 for messages of 1200 bytes and more, WebAssembly below that), changed in two
 * ways: the session key becomes a `KeyObject` once instead of on every message, and every message,
 * small ones too, goes through Node's cipher.
 *
 * Node validates a raw key on every `createCipheriv` / `createDecipheriv` (~10 µs on these
 * machines, two thirds of a cipher's set-up); a connection carries a message per Yamux frame each
 * way, tens of thousands per GiB, so the key is converted once per session key and kept in a
 * WeakMap keyed by the key's own bytes object (Noise keeps one per direction for the session).
 * The bytes on the wire are unchanged: this is an implementation of the same cipher.
 *
 * Small messages (gossip, Yamux window updates) went to a WebAssembly ChaCha20-Poly1305 because
 * Node's cipher, validating the key each time, took ~15 µs to set up. With the key object it takes
 * 5 µs for 100 bytes against WebAssembly's 2 µs here, a few microseconds per small message; the
 * WebAssembly module and the V8 compilers it needs cost an idle host several megabytes of
 * resident memory (see scripts/bundle.mjs, which defers loading it until something uses it).
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto'
import { noise, type ICryptoInterface, type NoiseInit } from '@chainsafe/libp2p-noise'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'

type Seal = ICryptoInterface['chaCha20Poly1305Encrypt']
type Open = ICryptoInterface['chaCha20Poly1305Decrypt']

const CHACHA_POLY1305 = 'chacha20-poly1305'
/** Largest Noise transport message, tag included (the Noise spec's 65535). */
const NOISE_MSG_MAX = 65535
const TAG_LENGTH = 16

/**
 * Messages sealed and opened since start, and their plaintext bytes (the mean message size on the
 * wire); `openedInPieces`: messages {@link meshNoise}'s connections decrypted
 * from several socket reads without copying them into one buffer first.
 */
export const noiseCounters = { sealed: 0, sealedBytes: 0, opened: 0, openedBytes: 0, openedInPieces: 0 }

const keys = new WeakMap<Uint8Array, KeyObject>()

function keyObject (k: Uint8Array): KeyObject {
  let key = keys.get(k)
  if (key == null) {
    key = createSecretKey(k)
    keys.set(k, key)
  }
  return key
}

const seal: Seal = (plaintext, nonce, ad, k) => {
  noiseCounters.sealed++
  noiseCounters.sealedBytes += plaintext.byteLength
  const cipher = createCipheriv(CHACHA_POLY1305, keyObject(k), nonce, { authTagLength: TAG_LENGTH })
  cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
  // A list, not one copied buffer: Noise appends it to its own list. (Lists of either major
  // version of uint8arraylist recognise each other by a shared symbol; the types do not.)
  const sealed = new Uint8ArrayList()
  if (plaintext instanceof Uint8Array) sealed.append(cipher.update(plaintext))
  else for (const buf of plaintext) sealed.append(cipher.update(buf))
  cipher.final()
  sealed.append(cipher.getAuthTag())
  return sealed as unknown as ReturnType<Seal>
}

const open: Open = (ciphertext, nonce, ad, k) => {
  const length = ciphertext.byteLength - TAG_LENGTH
  if (length < 0) throw new Error('Invalid chacha20poly1305 decryption: shorter than its tag')
  noiseCounters.opened++
  noiseCounters.openedBytes += length
  const decipher = createDecipheriv(CHACHA_POLY1305, keyObject(k), nonce, { authTagLength: TAG_LENGTH })
  decipher.setAAD(ad, { plaintextLength: length })
  decipher.setAuthTag(ciphertext.subarray(length))
  if (ciphertext instanceof Uint8Array) {
    const opened = decipher.update(ciphertext.subarray(0, length))
    decipher.final()
    return opened
  }
  const opened = new Uint8ArrayList()
  for (const buf of ciphertext.sublist(0, length)) opened.append(decipher.update(buf))
  decipher.final()
  return opened as unknown as ReturnType<Open>
}

export const noiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt: seal,
  chaCha20Poly1305Decrypt: open
}

/** The parts of @chainsafe/libp2p-noise's transport message stream that {@link meshNoise} touches. */
export interface NoiseMessageStream {
  handshake: { decrypt: (ciphertext: Uint8Array | Uint8ArrayList, dst?: Uint8Array) => Uint8Array | Uint8ArrayList }
  decrypt: (chunk: Uint8Array | Uint8ArrayList) => Uint8ArrayList
  metrics?: { decryptedPackets: { increment: () => void }, decryptErrors: { increment: () => void } }
}

function isNoiseMessageStream (x: unknown): x is NoiseMessageStream {
  const s = x as Partial<NoiseMessageStream> | undefined
  return typeof s?.decrypt === 'function' && typeof s.handshake?.decrypt === 'function'
}

/**
 * Decrypts the Noise messages of `chunk` (the decoder hands over one whole message at a time,
 * usually in the pieces the socket read it in). The library's own method first copies a message
 * that is in pieces into one buffer, as the output buffer of an in-place decryption; Node's cipher
 * (see `open`) never writes there, so that was a copy and a
 * 64 KiB allocation per message for nothing. Here the output buffer is only offered when it is a
 * view of bytes already contiguous; messages in pieces are decrypted piece by piece.
 */
export function decryptMessages (this: NoiseMessageStream, chunk: Uint8Array | Uint8ArrayList): Uint8ArrayList {
  const output = new Uint8ArrayList()
  for (let i = 0; i < chunk.byteLength; i += NOISE_MSG_MAX) {
    const end = Math.min(i + NOISE_MSG_MAX, chunk.byteLength)
    if (end - TAG_LENGTH < i) throw new Error('Invalid chunk')
    let encrypted: Uint8Array | Uint8ArrayList
    let dst: Uint8Array | undefined
    if (chunk instanceof Uint8Array) {
      encrypted = chunk.subarray(i, end)
      dst = chunk.subarray(i, end - TAG_LENGTH)
    } else {
      encrypted = chunk.sublist(i, end)
      if (isMultiPart(encrypted)) noiseCounters.openedInPieces++
    }
    try {
      output.append(this.handshake.decrypt(encrypted, dst))
      this.metrics?.decryptedPackets.increment()
    } catch (err) {
      this.metrics?.decryptErrors.increment()
      throw err
    }
  }
  return output
}

function isMultiPart (list: Uint8ArrayList): boolean {
  let parts = 0
  for (const _ of list) if (++parts > 1) return true
  return false
}

/** Gives a secured connection's message stream {@link decryptMessages}; leaves one of another shape (another library version) as it is. */
function withMessageDecrypt<T extends { connection: unknown }> (secured: T): T {
  if (isNoiseMessageStream(secured.connection)) secured.connection.decrypt = decryptMessages
  return secured
}

/**
 * The mesh's connection encrypter: @chainsafe/libp2p-noise with {@link noiseCrypto}, whose
 * connections decrypt messages that arrive in pieces without first copying them into one buffer
 * (see {@link decryptMessages}). Same protocol, same bytes on the wire.
 */
export function meshNoise (init: Omit<NoiseInit, 'crypto'> = {}): ReturnType<typeof noise> {
  const factory = noise({ ...init, crypto: noiseCrypto })
  return (components) => {
    const encrypter = factory(components)
    const inbound = encrypter.secureInbound.bind(encrypter)
    const outbound = encrypter.secureOutbound.bind(encrypter)
    encrypter.secureInbound = (async (...args: Parameters<typeof inbound>) => withMessageDecrypt(await inbound(...args))) as typeof encrypter.secureInbound
    encrypter.secureOutbound = (async (...args: Parameters<typeof outbound>) => withMessageDecrypt(await outbound(...args))) as typeof encrypter.secureOutbound
    return encrypter
  }
}
