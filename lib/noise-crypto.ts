/**
 * The Noise transport's ciphers: @chainsafe/libp2p-noise's own (`defaultCrypto`: Node's
 * ChaCha20-Poly1305 for messages of 1200 bytes and more, WebAssembly below that), with the session
 * key turned into a `KeyObject` once instead of on every message.
 *
 * Node validates a raw key on every `createCipheriv` / `createDecipheriv` (~10 µs on these
 * machines, two thirds of a cipher's set-up); a connection carries a message per Yamux frame each
 * way, tens of thousands per GiB, so the key is converted once per session key and kept in a
 * WeakMap keyed by the key's own bytes object (Noise keeps one per direction for the session).
 * The bytes on the wire are unchanged: this is an implementation of the same cipher.
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'

type Seal = ICryptoInterface['chaCha20Poly1305Encrypt']
type Open = ICryptoInterface['chaCha20Poly1305Decrypt']

const CHACHA_POLY1305 = 'chacha20-poly1305'
const TAG_LENGTH = 16
/** Below this, the WebAssembly cipher beats Node's (its set-up dominates); the library's own threshold. */
const NODE_MIN_BYTES = 1200

/** Messages sealed and opened with Node's cipher since start, and their plaintext bytes: the mean message size on the wire. */
export const noiseCounters = { sealed: 0, sealedBytes: 0, opened: 0, openedBytes: 0 }

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
  if (plaintext.byteLength < NODE_MIN_BYTES) return defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
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

const open: Open = (ciphertext, nonce, ad, k, dst) => {
  if (ciphertext.byteLength < NODE_MIN_BYTES) return defaultCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
  const length = ciphertext.byteLength - TAG_LENGTH
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
