import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import * as Digest from 'multiformats/hashes/digest'
import type { PrivateKey } from '@libp2p/interface'
import { EdgelinkError } from '../errors.ts'
import { SignedVote, Vote, type LeaderProof } from '../link/link.ts'
import { quorum } from './election.ts'
import { concat } from '../util.ts'
import type { RosterData } from './roster.ts'

/**
 * Evidence that a host leads a term, and the rule every member applies before it accepts a roster
 * from a new leader. A roster of a higher term is accepted only with one of:
 * - votes for (group, term, leader) signed by a strict majority of the members the receiver knows
 *   (an election, or a hand-over: the old leader's certificate is its vote for the new one);
 * - the leader's own, valid deletion of the cluster (the host where a delete runs becomes leader).
 */
const VOTE_DOMAIN = new TextEncoder().encode('edgelink/vote/v1')

const mh = (id: string): Uint8Array<ArrayBuffer> => peerIdFromString(id).toMultihash().bytes as Uint8Array<ArrayBuffer>
const idOf = (b: Uint8Array): string => peerIdFromMultihash(Digest.decode(b)).toString()

export async function signVote (key: PrivateKey, groupId: string, term: number, candidate: string, voter: string): Promise<Uint8Array> {
  const vote = Vote.encode({ groupId: Buffer.from(groupId, 'hex') as Uint8Array<ArrayBuffer>, term: BigInt(term), candidate: mh(candidate), voter: mh(voter) })
  const signature = await key.sign(concat(VOTE_DOMAIN, vote))
  return SignedVote.encode({ vote, signature: signature as Uint8Array<ArrayBuffer> })
}

/** The voters whose valid signed votes for (group, term, candidate) are in `votes`. */
export async function validVoters (votes: Uint8Array[], groupId: string, term: number, candidate: string): Promise<Set<string>> {
  const voters = new Set<string>()
  for (const bytes of votes) {
    try {
      const sv = SignedVote.decode(bytes)
      const v = Vote.decode(sv.vote)
      if (Buffer.from(v.groupId).toString('hex') !== groupId || v.term !== BigInt(term) || idOf(v.candidate) !== candidate) continue
      const voter = peerIdFromMultihash(Digest.decode(v.voter))
      if (voter.publicKey != null && await voter.publicKey.verify(concat(VOTE_DOMAIN, sv.vote), sv.signature)) voters.add(voter.toString())
    } catch {
      // A malformed vote counts for nothing.
    }
  }
  return voters
}

/**
 * Decides whether `next` (already signature-checked against `next.leader`) may replace `cur`.
 * Returns undefined to accept, else the refusal. `clusterDeleteOk` checks a cluster deletion proof.
 */
export async function checkRosterSuccession (
  cur: RosterData,
  next: RosterData,
  clusterDeleteOk: (signedDoc: Uint8Array, leader: string) => Promise<boolean>
): Promise<EdgelinkError | undefined> {
  if (next.groupId !== cur.groupId) return new EdgelinkError('NOT_MEMBER', 'a roster of another group')
  if (next.term < cur.term) return new EdgelinkError('STALE_TERM', `term ${next.term} is older than ${cur.term}`)
  if (next.term === cur.term) {
    if (next.leader !== cur.leader) return new EdgelinkError('NOT_LEADER', `term ${next.term} already has leader ${cur.leader}`)
    if (next.version <= cur.version) return new EdgelinkError('STALE_VERSION', `roster version ${next.version} is not newer than ${cur.version}`)
    return undefined
  }
  if (next.version <= cur.version) return new EdgelinkError('STALE_VERSION', 'a new term must carry a newer roster version')
  const proof: LeaderProof | undefined = next.proof
  if (proof == null) return new EdgelinkError('NOT_LEADER', `no proof that ${next.leader} leads term ${next.term}`)
  if (proof.votes.length > 0) {
    const voters = await validVoters(proof.votes, next.groupId, next.term, next.leader)
    const known = cur.members.map(m => m.id)
    const counted = known.filter(id => voters.has(id)).length
    if (counted >= quorum(known.length)) return undefined
    return new EdgelinkError('NOT_LEADER', `${counted} valid votes of ${known.length} members is not a majority`)
  }
  if (proof.clusterDelete.length > 0) {
    if (await clusterDeleteOk(proof.clusterDelete, next.leader)) return undefined
    return new EdgelinkError('NOT_LEADER', 'the cluster deletion does not make this host leader')
  }
  return new EdgelinkError('NOT_LEADER', 'empty leadership proof')
}
