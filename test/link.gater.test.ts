import { expect } from 'chai'
import { noise } from '@chainsafe/libp2p-noise'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { lpStream, pbStream } from '@libp2p/utils'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Multiaddr } from '@multiformats/multiaddr'
import { signRoster } from '../lib/group/roster.ts'
import { JoinRequest, JoinResponse, LeaveRequest, LeaveResponse } from '../lib/link/link.ts'
import { JOIN_PROTOCOL, LEAVE_PROTOCOL, ROSTER_PROTOCOL } from '../lib/link/protocol.ts'
import { computeProof, decodeToken, proofKey } from '../lib/link/token.ts'
import { loopbackIp, rejection, Testbed, waitFor } from './helpers.ts'

/** A plain libp2p node on the same stack: what an outsider on the network can run. */
async function outsider (): Promise<Libp2p> {
  return await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: [`/ip4/${loopbackIp()}/tcp/0`] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
}

/** Sends one join request from `node` and returns the leader's answer. */
async function join (node: Libp2p, leader: Multiaddr, req: Partial<JoinRequest>): Promise<JoinResponse> {
  const stream = await node.dialProtocol(leader, JOIN_PROTOCOL)
  const pb = pbStream(stream)
  await pb.write({ tokenId: new Uint8Array(16), proof: new Uint8Array(32), addrs: [], linked: false, inCluster: false, ...req } as JoinRequest, JoinRequest)
  const res = await pb.read(JoinResponse)
  await stream.close().catch(() => {})
  return res
}

describe('members-only mesh: gater and join protocol against crafted peers', function () {
  this.timeout(60_000)
  const bed = new Testbed()
  const outsiders: Libp2p[] = []
  afterEach(async () => {
    await Promise.allSettled(outsiders.splice(0).map(async n => { await n.stop() }))
    await bed.teardown()
  })
  const plain = async (): Promise<Libp2p> => { const n = await outsider(); outsiders.push(n); return n }

  it('a non-member dialling a follower is refused', async () => {
    const [, f1] = await bed.group(2)
    const evil = await plain()
    await rejection(async () => {
      const s = await evil.dialProtocol(f1.multiaddrs[0], ROSTER_PROTOCOL)
      await lpStream(s).read()
    })
    await waitFor(() => f1.libp2p.getConnections(evil.peerId).length === 0 && evil.getConnections(f1.peerId).length === 0, 5_000, 'connection gone')
  })

  it('a non-member dialling the leader with no live token is refused', async () => {
    const [leader] = await bed.group(2)
    await leader.stopTokenGeneration()
    const evil = await plain()
    await rejection(async () => { await join(evil, leader.multiaddrs[0], {}) })
    await waitFor(() => leader.libp2p.getConnections(evil.peerId).length === 0, 5_000, 'connection gone')
  })

  it('a guest reaches only the join protocol, and only for a bounded time', async () => {
    const leader = await bed.host({ guestTimeout: 800 })
    await leader.generateLinkToken()
    const evil = await plain()
    const res = await join(evil, leader.multiaddrs[0], {})
    expect(res.code).to.equal('TOKEN_UNKNOWN')
    // Roster and leave protocols refuse a non-member.
    await rejection(async () => {
      const s = await evil.dialProtocol(leader.multiaddrs[0], ROSTER_PROTOCOL)
      await lpStream(s).write(new Uint8Array(10))
      await lpStream(s).read()
    })
    const leave = await evil.dialProtocol(leader.multiaddrs[0], LEAVE_PROTOCOL)
    const pb = pbStream(leave)
    await pb.write({ groupId: Buffer.from(leader.groupId!, 'hex') }, LeaveRequest)
    expect((await pb.read(LeaveResponse)).code).to.equal('NOT_MEMBER')
    // After guestTimeout the leader hangs up.
    await waitFor(() => leader.libp2p.getConnections(evil.peerId).length === 0, 5_000, 'guest closed')
    expect(leader.hosts()).to.have.length(1)
  })

  it('a guest that joined frees its guest slot at once: more joins than maxGuests within guestTimeout all succeed', async () => {
    const leader = await bed.host({ maxGuests: 2, guestTimeout: 60_000 })
    const followers = [await bed.host(), await bed.host(), await bed.host(), await bed.host()]
    for (const f of followers) {
      const { token } = await leader.generateLinkToken({ fresh: true })
      expect((await f.link(token)).status).to.equal('Completed')
    }
    expect(leader.hosts()).to.have.length(5)
  })

  it('five bad proofs burn the token; the real follower then hears TOKEN_BURNED', async () => {
    const leader = await bed.host()
    const follower = await bed.host()
    const { token } = await leader.generateLinkToken()
    const { body } = decodeToken(token)
    const evil = await plain()
    const codes: string[] = []
    for (let i = 0; i < 5; i++) {
      codes.push((await join(evil, leader.multiaddrs[0], { tokenId: body.tokenId as any, proof: new Uint8Array(32).fill(i) as any })).code)
    }
    expect(codes).to.deep.equal(['BAD_PROOF', 'BAD_PROOF', 'BAD_PROOF', 'BAD_PROOF', 'TOKEN_BURNED'])
    const err = await rejection(async () => await follower.link(token))
    expect(err.code).to.equal('TOKEN_BURNED')
    expect(leader.hosts()).to.have.length(1)
    // The leader issued a new current token in its place.
    expect((await leader.generateLinkToken()).token).to.not.equal(token)
  })

  it('a proof made for another peer id is refused (proofs are bound to both Noise ids)', async () => {
    const leader = await bed.host()
    const follower = await bed.host()
    const { token } = await leader.generateLinkToken()
    const { body, otp } = decodeToken(token)
    const evil = await plain()
    // A proof captured from the real follower is useless from any other peer.
    const stolen = computeProof(proofKey(otp), body.tokenId, body.leader, follower.peerId)
    const res = await join(evil, leader.multiaddrs[0], { tokenId: body.tokenId as any, proof: stolen as any })
    expect(res.code).to.equal('BAD_PROOF')
    await follower.link(token)
  })

  it('the leader refuses a joiner that says it is linked or in a cluster, without using the token', async () => {
    const leader = await bed.host()
    const { token } = await leader.generateLinkToken()
    const { body, otp } = decodeToken(token)
    const evil = await plain()
    const proof = computeProof(proofKey(otp), body.tokenId, body.leader, evil.peerId) as any
    expect((await join(evil, leader.multiaddrs[0], { tokenId: body.tokenId as any, proof, linked: true })).code).to.equal('ALREADY_LINKED')
    expect((await join(evil, leader.multiaddrs[0], { tokenId: body.tokenId as any, proof, inCluster: true })).code).to.equal('IN_CLUSTER')
    const ok = await join(evil, leader.multiaddrs[0], { tokenId: body.tokenId as any, proof })
    expect(ok.code).to.equal('')
    expect(leader.hosts().map(r => r.id)).to.include(evil.peerId.toString())
    // A joiner whose answer was lost retries with the same token and gets the roster again.
    const retry = await join(evil, leader.multiaddrs[0], { tokenId: body.tokenId as any, proof })
    expect(retry.code).to.equal('')
    expect(retry.roster).to.not.equal(undefined)
    expect(leader.hosts().filter(r => r.id === evil.peerId.toString())).to.have.length(1)
    // Anyone else with that token is still refused.
    const other = await plain()
    const theirs = computeProof(proofKey(otp), body.tokenId, body.leader, other.peerId) as any
    expect((await join(other, leader.multiaddrs[0], { tokenId: body.tokenId as any, proof: theirs })).code).to.equal('TOKEN_USED')
  })

  it('join attempts are rate-limited per address', async () => {
    const leader = await bed.host({ joinRateLimit: 3 })
    await leader.generateLinkToken()
    const evil = await plain()
    const codes: string[] = []
    for (let i = 0; i < 4; i++) codes.push((await join(evil, leader.multiaddrs[0], {})).code)
    expect(codes).to.deep.equal(['TOKEN_UNKNOWN', 'TOKEN_UNKNOWN', 'TOKEN_UNKNOWN', 'RATE_LIMITED'])
  })

  it('malformed join bytes abort the stream and leave the leader working', async () => {
    const leader = await bed.host()
    const follower = await bed.host()
    const { token } = await leader.generateLinkToken()
    const evil = await plain()
    const s = await evil.dialProtocol(leader.multiaddrs[0], JOIN_PROTOCOL)
    s.send(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]))
    await rejection(async () => { await lpStream(s).read() })
    await follower.link(token)
    expect(leader.hosts()).to.have.length(2)
  })

  it('members reject rosters that are forged, badly signed or replayed', async () => {
    const [leader, f1, f2] = await bed.group(3)
    const before = f2.rosterData()!
    // f1 (a member, not the leader) signs a roster that drops f2 and makes itself leader.
    const forged = await signRoster((f1 as any).key, { ...before, version: before.version + 10, leader: f1.id, members: before.members.filter(m => m.id !== f2.id) })
    const push = async (from: Libp2p, bytes: Uint8Array): Promise<void> => {
      const s = await from.dialProtocol(f2.multiaddrs[0], ROSTER_PROTOCOL)
      await lpStream(s).write(bytes)
      await s.close().catch(() => {})
    }
    await push(f1.libp2p, forged.bytes)
    // A roster claiming the real leader but with a broken signature.
    const real = await signRoster((leader as any).key, { ...before, version: before.version + 10, members: before.members.filter(m => m.id !== f2.id) })
    const broken = Uint8Array.from(real.bytes)
    broken[broken.length - 3] ^= 0x01
    await push(f1.libp2p, broken)
    // An older genuine roster replayed.
    const old = await signRoster((leader as any).key, { ...before, version: 1, members: before.members.filter(m => m.id !== f2.id) })
    await push(f1.libp2p, old.bytes)
    await new Promise(resolve => setTimeout(resolve, 300))
    expect(f2.isLinked()).to.equal(true)
    expect(f2.rosterData()!.version).to.equal(before.version)
    expect(f2.rosterData()!.leader).to.equal(leader.id)
    expect(f2.hosts()).to.have.length(3)
  })
})
