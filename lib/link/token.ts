import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { peerIdFromMultihash } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import * as Digest from 'multiformats/hashes/digest'
import type { PeerId } from '@libp2p/interface'
import { EdgelinkError } from '../errors.ts'
import { TokenBody } from './link.ts'

/**
 * A link token is one line: `EL1` followed by base64url of
 *
 *     otp (16) | nonce (12) | ChaCha20-Poly1305(sealKey, nonce, TokenBody, aad = "EL1") + tag (16) | crc32 (4)
 *
 * The CRC covers everything before it (prefix included), so a mistyped or truncated token is
 * reported as corrupt before any cryptography runs; the AEAD under a key derived from the OTP hides
 * the leader's address and detects any deliberate change that also fixed the CRC.
 */
export const TOKEN_PREFIX = 'EL1'
export const OTP_BYTES = 16
export const ID_BYTES = 16
const NONCE_BYTES = 12
const TAG_BYTES = 16
const CRC_BYTES = 4
/** Longest token text accepted (after whitespace is removed); bounds all decoding work. */
export const MAX_TOKEN_LENGTH = 2048
/** Most leader addresses a token may carry. */
export const MAX_TOKEN_ADDRS = 16
const MIN_BYTES = OTP_BYTES + NONCE_BYTES + TAG_BYTES + CRC_BYTES

const SEAL_INFO = 'edgelink/token/v1/seal'
const PROOF_INFO = 'edgelink/token/v1/proof'
const PROOF_DOMAIN = 'edgelink/join/v1'

/** What a token says, once opened. */
export interface LinkTokenBody {
  leader: PeerId
  addrs: Multiaddr[]
  groupId: Uint8Array
  tokenId: Uint8Array
  expiresAt: number
}

export interface DecodedToken {
  body: LinkTokenBody
  otp: Uint8Array
}

function hkdf (otp: Uint8Array, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', otp, 'edgelink', info, 32))
}

/** The key that seals the token body. */
export function sealKey (otp: Uint8Array): Buffer { return hkdf(otp, SEAL_INFO) }

/**
 * The key the follower proves knowledge of. The leader stores only this (HKDF is one-way), never
 * the password.
 */
export function proofKey (otp: Uint8Array): Buffer { return hkdf(otp, PROOF_INFO) }

/**
 * HMAC over a transcript that binds the token to both Noise-authenticated peer ids, so a proof
 * captured on one connection is worthless on any other.
 */
export function computeProof (key: Uint8Array, tokenId: Uint8Array, leader: PeerId, follower: PeerId): Buffer {
  const h = createHmac('sha256', key)
  for (const part of [Buffer.from(PROOF_DOMAIN), tokenId, leader.toMultihash().bytes, follower.toMultihash().bytes]) {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(part.length)
    h.update(len).update(part)
  }
  return h.digest()
}

/** Constant-time check of a proof. */
export function verifyProof (key: Uint8Array, proof: Uint8Array, tokenId: Uint8Array, leader: PeerId, follower: PeerId): boolean {
  const expected = computeProof(key, tokenId, leader, follower)
  return proof.length === expected.length && timingSafeEqual(expected, proof)
}

export function newOtp (): Buffer { return randomBytes(OTP_BYTES) }
export function newId (): Buffer { return randomBytes(ID_BYTES) }

export function encodeToken (body: LinkTokenBody, otp: Uint8Array): string {
  if (otp.length !== OTP_BYTES) throw new EdgelinkError('INVALID_ARGUMENT', `otp must be ${OTP_BYTES} bytes`)
  const plain = TokenBody.encode({
    leader: body.leader.toMultihash().bytes as Uint8Array<ArrayBuffer>,
    addrs: body.addrs.map(a => a.bytes as Uint8Array<ArrayBuffer>),
    groupId: body.groupId as Uint8Array<ArrayBuffer>,
    tokenId: body.tokenId as Uint8Array<ArrayBuffer>,
    expiresAt: BigInt(body.expiresAt)
  })
  const nonce = randomBytes(NONCE_BYTES)
  const cipher = createCipheriv('chacha20-poly1305', sealKey(otp), nonce, { authTagLength: TAG_BYTES })
  cipher.setAAD(Buffer.from(TOKEN_PREFIX), { plaintextLength: plain.length })
  const sealed = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()])
  const bytes = Buffer.concat([otp, nonce, sealed])
  const crc = Buffer.alloc(CRC_BYTES)
  crc.writeUInt32BE(crc32(bytes, crc32(TOKEN_PREFIX)))
  const text = TOKEN_PREFIX + Buffer.concat([bytes, crc]).toString('base64url')
  if (text.length > MAX_TOKEN_LENGTH) throw new EdgelinkError('INVALID_ARGUMENT', 'too many addresses for one token')
  return text
}

/**
 * Opens a token. Total: any string yields a {@link DecodedToken} or throws an
 * {@link EdgelinkError} with code TOKEN_CORRUPT, TOKEN_TAMPERED or TOKEN_VERSION.
 */
export function decodeToken (input: string): DecodedToken {
  if (typeof input !== 'string') throw new EdgelinkError('TOKEN_CORRUPT', 'the token must be text')
  // Terminals and chat tools wrap long lines and add spaces; none of those are token characters.
  const text = input.length > MAX_TOKEN_LENGTH * 2 ? input : input.replace(/\s+/g, '')
  if (text.length > MAX_TOKEN_LENGTH) throw new EdgelinkError('TOKEN_CORRUPT', `the token is longer than ${MAX_TOKEN_LENGTH} characters`)
  if (!text.startsWith(TOKEN_PREFIX)) {
    if (/^EL[0-9]+/.test(text)) throw new EdgelinkError('TOKEN_VERSION', `the token format ${text.match(/^EL[0-9]+/)![0]} is not supported by this version (it reads ${TOKEN_PREFIX})`)
    throw new EdgelinkError('TOKEN_CORRUPT', `a link token starts with ${TOKEN_PREFIX}`)
  }
  const b64 = text.slice(TOKEN_PREFIX.length)
  if (!/^[A-Za-z0-9_-]*$/.test(b64)) throw new EdgelinkError('TOKEN_CORRUPT', 'the token contains characters a token never has')
  const raw = Buffer.from(b64, 'base64url')
  if (raw.length < MIN_BYTES || raw.toString('base64url') !== b64) throw new EdgelinkError('TOKEN_CORRUPT', 'the token is incomplete (it may have been cut short)')
  const bytes = raw.subarray(0, raw.length - CRC_BYTES)
  if (raw.readUInt32BE(raw.length - CRC_BYTES) !== crc32(bytes, crc32(TOKEN_PREFIX))) {
    throw new EdgelinkError('TOKEN_CORRUPT', 'the token checksum does not match: it was mistyped or cut short')
  }
  const otp = bytes.subarray(0, OTP_BYTES)
  const nonce = bytes.subarray(OTP_BYTES, OTP_BYTES + NONCE_BYTES)
  const sealed = bytes.subarray(OTP_BYTES + NONCE_BYTES)
  let plain: Buffer
  try {
    const decipher = createDecipheriv('chacha20-poly1305', sealKey(otp), nonce, { authTagLength: TAG_BYTES })
    decipher.setAAD(Buffer.from(TOKEN_PREFIX), { plaintextLength: sealed.length - TAG_BYTES })
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
    plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()])
  } catch (err) {
    throw new EdgelinkError('TOKEN_TAMPERED', 'the token does not authenticate: it was altered', { cause: err })
  }
  // From here the bytes were sealed by whoever knew the OTP; still validate everything.
  let msg: TokenBody
  try {
    msg = TokenBody.decode(plain, { limits: { addrs: MAX_TOKEN_ADDRS } })
  } catch (err) {
    throw new EdgelinkError('TOKEN_TAMPERED', 'the token body is malformed', { cause: err })
  }
  try {
    const leader = peerIdFromMultihash(Digest.decode(msg.leader))
    const addrs = msg.addrs.map(a => multiaddr(a))
    if (addrs.length === 0) throw new Error('no leader address')
    if (msg.groupId.length !== ID_BYTES || msg.tokenId.length !== ID_BYTES) throw new Error('bad id length')
    const expiresAt = Number(msg.expiresAt)
    if (!Number.isSafeInteger(expiresAt)) throw new Error('bad expiry')
    return { otp: Buffer.from(otp), body: { leader, addrs, groupId: msg.groupId, tokenId: msg.tokenId, expiresAt } }
  } catch (err: any) {
    throw new EdgelinkError('TOKEN_TAMPERED', `the token body is invalid: ${err?.message ?? err}`, { cause: err })
  }
}
