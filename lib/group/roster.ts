import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import * as Digest from 'multiformats/hashes/digest'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { EdgelinkError } from '../errors.ts'
import { concat } from '../util.ts'
import { Roster, SignedRoster, type HostFacts, type LeaderProof } from '../link/link.ts'

/** Bounds of every roster decoder. A group larger than this is refused rather than half-read. */
export const MAX_MEMBERS = 1024
export const MAX_MEMBER_ADDRS = 16
export const MAX_ROSTER_BYTES = 1024 * 1024
const ROSTER_DOMAIN = new TextEncoder().encode('edgelink/roster/v1')

export type Facts = HostFacts

export interface MemberInfo {
  /** Peer id (the host id). */
  id: string
  /** Multiaddrs other members dial, as strings. */
  addrs: string[]
  facts: Facts
  joinedAt: number
}

/** The group's membership as the leader last signed it. */
export interface RosterData {
  /** Hex. */
  groupId: string
  version: number
  term: number
  /** Peer id of the leader that signed this version. */
  leader: string
  members: MemberInfo[]
  /** Recently unlinked peer ids, newest last. */
  removed: string[]
  issuedAt: number
  /** Why `leader` leads `term`; absent for the founding term and plain version bumps. */
  proof?: LeaderProof
}

export interface SignedRosterData {
  roster: RosterData
  /** The encoded SignedRoster, as stored and sent. */
  bytes: Uint8Array
}

const mh = (id: string): Uint8Array<ArrayBuffer> => peerIdFromString(id).toMultihash().bytes as Uint8Array<ArrayBuffer>
const idOf = (bytes: Uint8Array): string => peerIdFromMultihash(Digest.decode(bytes)).toString()

function toWire (r: RosterData): Roster {
  return {
    groupId: Buffer.from(r.groupId, 'hex') as Uint8Array<ArrayBuffer>,
    version: BigInt(r.version),
    term: BigInt(r.term),
    leader: mh(r.leader),
    members: r.members.map(m => ({
      id: mh(m.id),
      addrs: m.addrs.map(a => multiaddr(a).bytes as Uint8Array<ArrayBuffer>),
      facts: m.facts,
      joinedAt: BigInt(m.joinedAt)
    })),
    removed: r.removed.map(mh),
    issuedAt: BigInt(r.issuedAt),
    ...(r.proof != null ? { proof: r.proof } : {})
  }
}

function fromWire (w: Roster): RosterData {
  const num = (v: bigint, what: string): number => {
    const n = Number(v)
    if (!Number.isSafeInteger(n)) throw new Error(`${what} out of range`)
    return n
  }
  if (w.groupId.length !== 16) throw new Error('bad group id')
  return {
    groupId: Buffer.from(w.groupId).toString('hex'),
    version: num(w.version, 'version'),
    term: num(w.term, 'term'),
    leader: idOf(w.leader),
    members: w.members.map(m => ({
      id: idOf(m.id),
      addrs: m.addrs.map(a => multiaddr(a).toString()),
      facts: sanitizeFacts(m.facts),
      joinedAt: num(m.joinedAt, 'joinedAt')
    })),
    removed: w.removed.map(idOf),
    issuedAt: num(w.issuedAt, 'issuedAt'),
    ...(w.proof != null ? { proof: w.proof } : {})
  }
}

/** Bounds the free-text facts a host reports about itself. */
export function sanitizeFacts (f: HostFacts | undefined): Facts {
  return {
    name: String(f?.name ?? '').slice(0, 256),
    hostname: String(f?.hostname ?? '').slice(0, 256),
    os: String(f?.os ?? '').slice(0, 256),
    arch: String(f?.arch ?? '').slice(0, 64),
    cpus: f?.cpus ?? 0,
    memory: f?.memory ?? 0n,
    apiPort: (f?.apiPort ?? 0) & 0xffff,
    version: String(f?.version ?? '').slice(0, 64)
  }
}

/** Encodes and signs a roster with the leader's key. */
export async function signRoster (key: PrivateKey, roster: RosterData): Promise<SignedRosterData> {
  const body = Roster.encode(toWire(roster))
  const signature = await key.sign(concat(ROSTER_DOMAIN, body))
  return { roster, bytes: SignedRoster.encode({ roster: body, signature: signature as Uint8Array<ArrayBuffer> }) }
}

/**
 * Decodes a signed roster and checks that `roster.leader` signed it, unless `skip` says the
 * decoded roster is not wanted (then resolves undefined without verifying). Total and bounded: any bytes
 * yield a roster or an {@link EdgelinkError} with code PROTOCOL_ERROR.
 */
export async function openRoster (bytes: Uint8Array): Promise<SignedRosterData>
export async function openRoster (bytes: Uint8Array, skip: (r: RosterData) => boolean): Promise<SignedRosterData | undefined>
export async function openRoster (bytes: Uint8Array, skip?: (r: RosterData) => boolean): Promise<SignedRosterData | undefined> {
  if (bytes.length > MAX_ROSTER_BYTES) throw new EdgelinkError('PROTOCOL_ERROR', 'roster too large')
  let roster: RosterData
  let signed: SignedRoster
  let leader: PeerId
  try {
    signed = SignedRoster.decode(bytes)
    const wire = Roster.decode(signed.roster, {
      limits: { members: MAX_MEMBERS, removed: MAX_MEMBERS, members$: { addrs: MAX_MEMBER_ADDRS }, proof: { votes: MAX_MEMBERS } } as any
    })
    roster = fromWire(wire)
    leader = peerIdFromString(roster.leader)
  } catch (err: any) {
    throw new EdgelinkError('PROTOCOL_ERROR', `malformed roster: ${err?.message ?? err}`, { cause: err })
  }
  // Most pushes repeat a version the receiver holds: decide that before the costly signature check.
  if (skip?.(roster) === true) return undefined
  const ok = leader.publicKey != null && await leader.publicKey.verify(concat(ROSTER_DOMAIN, signed.roster), signed.signature)
  if (!ok) throw new EdgelinkError('PROTOCOL_ERROR', 'the roster signature is not valid')
  return { roster, bytes }
}
