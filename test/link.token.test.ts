import { expect } from 'chai'
import fc from 'fast-check'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { isEdgelinkError } from '../lib/errors.ts'
import { computeProof, decodeToken, encodeToken, MAX_TOKEN_LENGTH, newId, newOtp, proofKey, TOKEN_PREFIX, verifyProof, type LinkTokenBody } from '../lib/link/token.ts'

const TOKEN_ERRORS = ['TOKEN_CORRUPT', 'TOKEN_TAMPERED', 'TOKEN_VERSION']

async function body (): Promise<LinkTokenBody> {
  const leader = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  return {
    leader,
    addrs: [multiaddr('/ip4/198.18.0.10/tcp/7400'), multiaddr('/ip6/::1/tcp/7400')],
    groupId: newId(),
    tokenId: newId(),
    expiresAt: 1_800_000_000_000
  }
}

function codeOf (fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    if (isEdgelinkError(err)) return err.code
    throw err
  }
  return 'OK'
}

describe('link token codec', () => {
  it('round-trips every field and keeps the address unreadable', async () => {
    const b = await body()
    const otp = newOtp()
    const text = encodeToken(b, otp)
    expect(text.startsWith(TOKEN_PREFIX)).to.equal(true)
    expect(text).to.match(/^[A-Za-z0-9_-]+$/)
    const { body: out, otp: otp2 } = decodeToken(text)
    expect(out.leader.equals(b.leader)).to.equal(true)
    expect(out.addrs.map(String)).to.deep.equal(b.addrs.map(String))
    expect(Buffer.from(out.groupId).equals(Buffer.from(b.groupId))).to.equal(true)
    expect(Buffer.from(out.tokenId).equals(Buffer.from(b.tokenId))).to.equal(true)
    expect(out.expiresAt).to.equal(b.expiresAt)
    expect(Buffer.from(otp2).equals(otp)).to.equal(true)
    // The sealed body hides the leader's address and id from a casual reader.
    const raw = Buffer.from(text.slice(TOKEN_PREFIX.length), 'base64url')
    expect(raw.includes(Buffer.from(b.addrs[0].bytes))).to.equal(false)
    expect(raw.includes(Buffer.from(b.leader.toMultihash().bytes))).to.equal(false)
  })

  it('tolerates line wraps and spaces from copy-paste', async () => {
    const text = encodeToken(await body(), newOtp())
    const wrapped = `  ${text.slice(0, 40)}\n${text.slice(40, 90)} \r\n${text.slice(90)}\n`
    expect(codeOf(() => decodeToken(wrapped))).to.equal('OK')
  })

  it('reports every single flipped character as a typed error, never a wrong token', async () => {
    const text = encodeToken(await body(), newOtp())
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    for (let i = 0; i < text.length; i++) {
      const other = alphabet[(alphabet.indexOf(text[i]) + 1 + (i % 7)) % alphabet.length]
      const typo = text.slice(0, i) + (other === text[i] ? 'A' : other) + text.slice(i + 1)
      if (typo === text) continue
      expect(TOKEN_ERRORS, `character ${i}`).to.include(codeOf(() => decodeToken(typo)))
    }
  })

  it('reports every flipped byte of the binary token as corrupt (checksum)', async () => {
    const text = encodeToken(await body(), newOtp())
    const raw = Buffer.from(text.slice(3), 'base64url')
    for (let i = 0; i < raw.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const bad = Buffer.from(raw)
        bad[i] ^= bit
        expect(codeOf(() => decodeToken(TOKEN_PREFIX + bad.toString('base64url'))), `byte ${i}`).to.equal('TOKEN_CORRUPT')
      }
    }
  })

  it('detects a deliberate change that also fixes the checksum (AEAD)', async () => {
    const { crc32 } = await import('node:zlib')
    const text = encodeToken(await body(), newOtp())
    const raw = Buffer.from(text.slice(3), 'base64url')
    // Flip one byte in the sealed part and the OTP part, recompute the CRC each time.
    for (const i of [0, 5, 16, 20, 28, 40, raw.length - 10]) {
      const bad = Buffer.from(raw)
      bad[i] ^= 0x55
      const bytes = bad.subarray(0, bad.length - 4)
      bad.writeUInt32BE(crc32(bytes, crc32(TOKEN_PREFIX)), bad.length - 4)
      expect(codeOf(() => decodeToken(TOKEN_PREFIX + bad.toString('base64url'))), `byte ${i}`).to.equal('TOKEN_TAMPERED')
    }
  })

  it('reports every truncation as corrupt', async () => {
    const text = encodeToken(await body(), newOtp())
    for (let n = 0; n < text.length; n++) {
      expect(TOKEN_ERRORS, `length ${n}`).to.include(codeOf(() => decodeToken(text.slice(0, n))))
      expect(codeOf(() => decodeToken(text.slice(0, n)))).to.equal('TOKEN_CORRUPT')
    }
  })

  it('names an unsupported version and rejects oversized input without work', () => {
    expect(codeOf(() => decodeToken('EL2abcdef'))).to.equal('TOKEN_VERSION')
    expect(codeOf(() => decodeToken('x'.repeat(MAX_TOKEN_LENGTH + 1)))).to.equal('TOKEN_CORRUPT')
    expect(codeOf(() => decodeToken('EL1' + 'A'.repeat(10_000_000)))).to.equal('TOKEN_CORRUPT')
    expect(codeOf(() => decodeToken(''))).to.equal('TOKEN_CORRUPT')
    expect(codeOf(() => decodeToken(42 as any))).to.equal('TOKEN_CORRUPT')
  })

  it('property: any string yields a token or a typed error, never a crash', () => {
    fc.assert(fc.property(fc.oneof(
      fc.string({ maxLength: 400 }),
      fc.string({ unit: 'binary', maxLength: 400 }),
      fc.base64String({ maxLength: 400 }).map(s => TOKEN_PREFIX + s.replace(/\+/g, '-').replace(/\//g, '_').replace(/=/g, '')),
      fc.uint8Array({ maxLength: 300 }).map(b => TOKEN_PREFIX + Buffer.from(b).toString('base64url'))
    ), (s) => {
      const code = codeOf(() => decodeToken(s))
      expect(['OK', ...TOKEN_ERRORS]).to.include(code)
    }), { numRuns: 3000 })
  })

  it('property: mutations of a valid token never decode to a different token', async () => {
    const b = await body()
    const otp = newOtp()
    const text = encodeToken(b, otp)
    fc.assert(fc.property(fc.nat({ max: text.length - 1 }), fc.nat({ max: 63 }), (pos, c) => {
      const ch = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[c]
      const mutated = text.slice(0, pos) + ch + text.slice(pos + 1)
      const code = codeOf(() => decodeToken(mutated))
      if (mutated === text) expect(code).to.equal('OK')
      else expect(TOKEN_ERRORS).to.include(code)
    }), { numRuns: 2000 })
  })

  it('binds the proof to the token id and both peer ids', async () => {
    const b = await body()
    const otp = newOtp()
    const key = proofKey(otp)
    const follower = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const proof = computeProof(key, b.tokenId, b.leader, follower)
    expect(verifyProof(key, proof, b.tokenId, b.leader, follower)).to.equal(true)
    expect(verifyProof(key, proof, b.tokenId, b.leader, other)).to.equal(false)
    expect(verifyProof(key, proof, b.tokenId, other, follower)).to.equal(false)
    expect(verifyProof(key, proof, newId(), b.leader, follower)).to.equal(false)
    expect(verifyProof(proofKey(newOtp()), proof, b.tokenId, b.leader, follower)).to.equal(false)
    expect(verifyProof(key, proof.subarray(0, 31), b.tokenId, b.leader, follower)).to.equal(false)
    // The stored key is not the password.
    expect(Buffer.from(key).equals(otp)).to.equal(false)
  })
})
