import { decodeMessage, encodeMessage, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface TokenBody {
  leader: Uint8Array
  addrs: Uint8Array[]
  groupId: Uint8Array
  tokenId: Uint8Array
  expiresAt: bigint
}

export namespace TokenBody {
  let _codec: Codec<TokenBody>

  export const codec = (): Codec<TokenBody> => {
    if (_codec == null) {
      _codec = message<TokenBody>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.leader != null && obj.leader.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.leader)
        }

        if (obj.addrs != null && obj.addrs.length > 0) {
          for (const value of obj.addrs) {
            w.uint32(18)
            w.bytes(value)
          }
        }

        if ((obj.groupId != null && obj.groupId.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.groupId)
        }

        if ((obj.tokenId != null && obj.tokenId.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.tokenId)
        }

        if ((obj.expiresAt != null && obj.expiresAt !== 0n)) {
          w.uint32(40)
          w.uint64(obj.expiresAt)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          leader: uint8ArrayAlloc(0),
          addrs: [],
          groupId: uint8ArrayAlloc(0),
          tokenId: uint8ArrayAlloc(0),
          expiresAt: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.leader = reader.bytes()
              break
            }
            case 2: {
              if (opts.limits?.addrs != null && obj.addrs.length === opts.limits.addrs) {
                throw new MaxLengthError('Decode error - repeated field "addrs" had too many elements')
              }

              obj.addrs.push(reader.bytes())
              break
            }
            case 3: {
              obj.groupId = reader.bytes()
              break
            }
            case 4: {
              obj.tokenId = reader.bytes()
              break
            }
            case 5: {
              obj.expiresAt = reader.uint64()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          addrs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.leader`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              if (opts.limits?.addrs != null && obj.addrs === opts.limits.addrs) {
                throw new MaxLengthError('Streaming decode error - repeated field "addrs" had too many elements')
              }

              yield {
                field: `${prefix}.addrs[]`,
                index: obj.addrs,
                value: reader.bytes()
              }

              obj.addrs++

              break
            }
            case 3: {
              yield {
                field: `${prefix}.groupId`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.tokenId`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.expiresAt`,
                value: reader.uint64()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface TokenBodyLeaderFieldEvent {
    field: '$.leader'
    value: Uint8Array
  }

  export interface TokenBodyAddrsFieldEvent {
    field: '$.addrs[]'
    index: number
    value: Uint8Array
  }

  export interface TokenBodyGroupIdFieldEvent {
    field: '$.groupId'
    value: Uint8Array
  }

  export interface TokenBodyTokenIdFieldEvent {
    field: '$.tokenId'
    value: Uint8Array
  }

  export interface TokenBodyExpiresAtFieldEvent {
    field: '$.expiresAt'
    value: bigint
  }

  export function encode (obj: Partial<TokenBody>): Uint8Array {
    return encodeMessage(obj, TokenBody.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TokenBody>): TokenBody {
    return decodeMessage(buf, TokenBody.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TokenBody>): Generator<TokenBodyLeaderFieldEvent | TokenBodyAddrsFieldEvent | TokenBodyGroupIdFieldEvent | TokenBodyTokenIdFieldEvent | TokenBodyExpiresAtFieldEvent> {
    return streamMessage(buf, TokenBody.codec(), opts)
  }
}

export interface HostFacts {
  name: string
  hostname: string
  os: string
  arch: string
  cpus: number
  memory: bigint
  apiPort: number
  version: string
}

export namespace HostFacts {
  let _codec: Codec<HostFacts>

  export const codec = (): Codec<HostFacts> => {
    if (_codec == null) {
      _codec = message<HostFacts>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.name != null && obj.name !== '')) {
          w.uint32(10)
          w.string(obj.name)
        }

        if ((obj.hostname != null && obj.hostname !== '')) {
          w.uint32(18)
          w.string(obj.hostname)
        }

        if ((obj.os != null && obj.os !== '')) {
          w.uint32(26)
          w.string(obj.os)
        }

        if ((obj.arch != null && obj.arch !== '')) {
          w.uint32(34)
          w.string(obj.arch)
        }

        if ((obj.cpus != null && obj.cpus !== 0)) {
          w.uint32(40)
          w.uint32(obj.cpus)
        }

        if ((obj.memory != null && obj.memory !== 0n)) {
          w.uint32(48)
          w.uint64(obj.memory)
        }

        if ((obj.apiPort != null && obj.apiPort !== 0)) {
          w.uint32(56)
          w.uint32(obj.apiPort)
        }

        if ((obj.version != null && obj.version !== '')) {
          w.uint32(66)
          w.string(obj.version)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          name: '',
          hostname: '',
          os: '',
          arch: '',
          cpus: 0,
          memory: 0n,
          apiPort: 0,
          version: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.name = reader.string()
              break
            }
            case 2: {
              obj.hostname = reader.string()
              break
            }
            case 3: {
              obj.os = reader.string()
              break
            }
            case 4: {
              obj.arch = reader.string()
              break
            }
            case 5: {
              obj.cpus = reader.uint32()
              break
            }
            case 6: {
              obj.memory = reader.uint64()
              break
            }
            case 7: {
              obj.apiPort = reader.uint32()
              break
            }
            case 8: {
              obj.version = reader.string()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.name`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.hostname`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.os`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.arch`,
                value: reader.string()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.cpus`,
                value: reader.uint32()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.memory`,
                value: reader.uint64()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.apiPort`,
                value: reader.uint32()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.version`,
                value: reader.string()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface HostFactsNameFieldEvent {
    field: '$.name'
    value: string
  }

  export interface HostFactsHostnameFieldEvent {
    field: '$.hostname'
    value: string
  }

  export interface HostFactsOsFieldEvent {
    field: '$.os'
    value: string
  }

  export interface HostFactsArchFieldEvent {
    field: '$.arch'
    value: string
  }

  export interface HostFactsCpusFieldEvent {
    field: '$.cpus'
    value: number
  }

  export interface HostFactsMemoryFieldEvent {
    field: '$.memory'
    value: bigint
  }

  export interface HostFactsApiPortFieldEvent {
    field: '$.apiPort'
    value: number
  }

  export interface HostFactsVersionFieldEvent {
    field: '$.version'
    value: string
  }

  export function encode (obj: Partial<HostFacts>): Uint8Array {
    return encodeMessage(obj, HostFacts.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<HostFacts>): HostFacts {
    return decodeMessage(buf, HostFacts.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<HostFacts>): Generator<HostFactsNameFieldEvent | HostFactsHostnameFieldEvent | HostFactsOsFieldEvent | HostFactsArchFieldEvent | HostFactsCpusFieldEvent | HostFactsMemoryFieldEvent | HostFactsApiPortFieldEvent | HostFactsVersionFieldEvent> {
    return streamMessage(buf, HostFacts.codec(), opts)
  }
}

export interface Member {
  id: Uint8Array
  addrs: Uint8Array[]
  facts?: HostFacts
  joinedAt: bigint
}

export namespace Member {
  let _codec: Codec<Member>

  export const codec = (): Codec<Member> => {
    if (_codec == null) {
      _codec = message<Member>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.id != null && obj.id.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.id)
        }

        if (obj.addrs != null && obj.addrs.length > 0) {
          for (const value of obj.addrs) {
            w.uint32(18)
            w.bytes(value)
          }
        }

        if (obj.facts != null) {
          w.uint32(26)
          HostFacts.codec().encode(obj.facts, w)
        }

        if ((obj.joinedAt != null && obj.joinedAt !== 0n)) {
          w.uint32(32)
          w.uint64(obj.joinedAt)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          id: uint8ArrayAlloc(0),
          addrs: [],
          joinedAt: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.id = reader.bytes()
              break
            }
            case 2: {
              if (opts.limits?.addrs != null && obj.addrs.length === opts.limits.addrs) {
                throw new MaxLengthError('Decode error - repeated field "addrs" had too many elements')
              }

              obj.addrs.push(reader.bytes())
              break
            }
            case 3: {
              obj.facts = HostFacts.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.facts
              })
              break
            }
            case 4: {
              obj.joinedAt = reader.uint64()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          addrs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.id`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              if (opts.limits?.addrs != null && obj.addrs === opts.limits.addrs) {
                throw new MaxLengthError('Streaming decode error - repeated field "addrs" had too many elements')
              }

              yield {
                field: `${prefix}.addrs[]`,
                index: obj.addrs,
                value: reader.bytes()
              }

              obj.addrs++

              break
            }
            case 3: {
              yield * HostFacts.codec().stream(reader, reader.uint32(), `${prefix}.facts`, {
                limits: opts.limits?.facts
              })

              break
            }
            case 4: {
              yield {
                field: `${prefix}.joinedAt`,
                value: reader.uint64()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface MemberIdFieldEvent {
    field: '$.id'
    value: Uint8Array
  }

  export interface MemberAddrsFieldEvent {
    field: '$.addrs[]'
    index: number
    value: Uint8Array
  }

  export interface MemberFactsNameFieldEvent {
    field: '$.facts.name'
    value: string
  }

  export interface MemberFactsHostnameFieldEvent {
    field: '$.facts.hostname'
    value: string
  }

  export interface MemberFactsOsFieldEvent {
    field: '$.facts.os'
    value: string
  }

  export interface MemberFactsArchFieldEvent {
    field: '$.facts.arch'
    value: string
  }

  export interface MemberFactsCpusFieldEvent {
    field: '$.facts.cpus'
    value: number
  }

  export interface MemberFactsMemoryFieldEvent {
    field: '$.facts.memory'
    value: bigint
  }

  export interface MemberFactsApiPortFieldEvent {
    field: '$.facts.apiPort'
    value: number
  }

  export interface MemberFactsVersionFieldEvent {
    field: '$.facts.version'
    value: string
  }

  export interface MemberJoinedAtFieldEvent {
    field: '$.joinedAt'
    value: bigint
  }

  export function encode (obj: Partial<Member>): Uint8Array {
    return encodeMessage(obj, Member.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Member>): Member {
    return decodeMessage(buf, Member.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Member>): Generator<MemberIdFieldEvent | MemberAddrsFieldEvent | MemberFactsNameFieldEvent | MemberFactsHostnameFieldEvent | MemberFactsOsFieldEvent | MemberFactsArchFieldEvent | MemberFactsCpusFieldEvent | MemberFactsMemoryFieldEvent | MemberFactsApiPortFieldEvent | MemberFactsVersionFieldEvent | MemberJoinedAtFieldEvent> {
    return streamMessage(buf, Member.codec(), opts)
  }
}

export interface Roster {
  groupId: Uint8Array
  version: bigint
  term: bigint
  leader: Uint8Array
  members: Member[]
  removed: Uint8Array[]
  issuedAt: bigint
  proof?: LeaderProof
}

export namespace Roster {
  let _codec: Codec<Roster>

  export const codec = (): Codec<Roster> => {
    if (_codec == null) {
      _codec = message<Roster>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.groupId != null && obj.groupId.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.groupId)
        }

        if ((obj.version != null && obj.version !== 0n)) {
          w.uint32(16)
          w.uint64(obj.version)
        }

        if ((obj.term != null && obj.term !== 0n)) {
          w.uint32(24)
          w.uint64(obj.term)
        }

        if ((obj.leader != null && obj.leader.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.leader)
        }

        if (obj.members != null && obj.members.length > 0) {
          for (const value of obj.members) {
            w.uint32(42)
            Member.codec().encode(value, w)
          }
        }

        if (obj.removed != null && obj.removed.length > 0) {
          for (const value of obj.removed) {
            w.uint32(50)
            w.bytes(value)
          }
        }

        if ((obj.issuedAt != null && obj.issuedAt !== 0n)) {
          w.uint32(56)
          w.uint64(obj.issuedAt)
        }

        if (obj.proof != null) {
          w.uint32(66)
          LeaderProof.codec().encode(obj.proof, w)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          groupId: uint8ArrayAlloc(0),
          version: 0n,
          term: 0n,
          leader: uint8ArrayAlloc(0),
          members: [],
          removed: [],
          issuedAt: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.groupId = reader.bytes()
              break
            }
            case 2: {
              obj.version = reader.uint64()
              break
            }
            case 3: {
              obj.term = reader.uint64()
              break
            }
            case 4: {
              obj.leader = reader.bytes()
              break
            }
            case 5: {
              if (opts.limits?.members != null && obj.members.length === opts.limits.members) {
                throw new MaxLengthError('Decode error - repeated field "members" had too many elements')
              }

              obj.members.push(Member.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.members$
              }))
              break
            }
            case 6: {
              if (opts.limits?.removed != null && obj.removed.length === opts.limits.removed) {
                throw new MaxLengthError('Decode error - repeated field "removed" had too many elements')
              }

              obj.removed.push(reader.bytes())
              break
            }
            case 7: {
              obj.issuedAt = reader.uint64()
              break
            }
            case 8: {
              obj.proof = LeaderProof.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.proof
              })
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          members: 0,
          removed: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.groupId`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.version`,
                value: reader.uint64()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.term`,
                value: reader.uint64()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.leader`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              if (opts.limits?.members != null && obj.members === opts.limits.members) {
                throw new MaxLengthError('Streaming decode error - repeated field "members" had too many elements')
              }

              for (const evt of Member.codec().stream(reader, reader.uint32(), `${prefix}.members[]`, {
                limits: opts.limits?.members$
              })) {
                yield {
                  ...evt,
                  index: obj.members
                }
              }

              obj.members++

              break
            }
            case 6: {
              if (opts.limits?.removed != null && obj.removed === opts.limits.removed) {
                throw new MaxLengthError('Streaming decode error - repeated field "removed" had too many elements')
              }

              yield {
                field: `${prefix}.removed[]`,
                index: obj.removed,
                value: reader.bytes()
              }

              obj.removed++

              break
            }
            case 7: {
              yield {
                field: `${prefix}.issuedAt`,
                value: reader.uint64()
              }
              break
            }
            case 8: {
              yield * LeaderProof.codec().stream(reader, reader.uint32(), `${prefix}.proof`, {
                limits: opts.limits?.proof
              })

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface RosterGroupIdFieldEvent {
    field: '$.groupId'
    value: Uint8Array
  }

  export interface RosterVersionFieldEvent {
    field: '$.version'
    value: bigint
  }

  export interface RosterTermFieldEvent {
    field: '$.term'
    value: bigint
  }

  export interface RosterLeaderFieldEvent {
    field: '$.leader'
    value: Uint8Array
  }

  export interface RosterMembersIdFieldEvent {
    field: '$.members[].id'
    value: Uint8Array
    index: number
  }

  export interface RosterMembersAddrsFieldEvent {
    field: '$.members[].addrs[]'
    index: number
    value: Uint8Array
  }

  export interface RosterMembersFactsNameFieldEvent {
    field: '$.members[].facts.name'
    value: string
    index: number
  }

  export interface RosterMembersFactsHostnameFieldEvent {
    field: '$.members[].facts.hostname'
    value: string
    index: number
  }

  export interface RosterMembersFactsOsFieldEvent {
    field: '$.members[].facts.os'
    value: string
    index: number
  }

  export interface RosterMembersFactsArchFieldEvent {
    field: '$.members[].facts.arch'
    value: string
    index: number
  }

  export interface RosterMembersFactsCpusFieldEvent {
    field: '$.members[].facts.cpus'
    value: number
    index: number
  }

  export interface RosterMembersFactsMemoryFieldEvent {
    field: '$.members[].facts.memory'
    value: bigint
    index: number
  }

  export interface RosterMembersFactsApiPortFieldEvent {
    field: '$.members[].facts.apiPort'
    value: number
    index: number
  }

  export interface RosterMembersFactsVersionFieldEvent {
    field: '$.members[].facts.version'
    value: string
    index: number
  }

  export interface RosterMembersJoinedAtFieldEvent {
    field: '$.members[].joinedAt'
    value: bigint
    index: number
  }

  export interface RosterRemovedFieldEvent {
    field: '$.removed[]'
    index: number
    value: Uint8Array
  }

  export interface RosterIssuedAtFieldEvent {
    field: '$.issuedAt'
    value: bigint
  }

  export interface RosterProofVotesFieldEvent {
    field: '$.proof.votes[]'
    index: number
    value: Uint8Array
  }

  export interface RosterProofClusterDeleteFieldEvent {
    field: '$.proof.clusterDelete'
    value: Uint8Array
  }

  export function encode (obj: Partial<Roster>): Uint8Array {
    return encodeMessage(obj, Roster.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Roster>): Roster {
    return decodeMessage(buf, Roster.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Roster>): Generator<RosterGroupIdFieldEvent | RosterVersionFieldEvent | RosterTermFieldEvent | RosterLeaderFieldEvent | RosterMembersIdFieldEvent | RosterMembersAddrsFieldEvent | RosterMembersFactsNameFieldEvent | RosterMembersFactsHostnameFieldEvent | RosterMembersFactsOsFieldEvent | RosterMembersFactsArchFieldEvent | RosterMembersFactsCpusFieldEvent | RosterMembersFactsMemoryFieldEvent | RosterMembersFactsApiPortFieldEvent | RosterMembersFactsVersionFieldEvent | RosterMembersJoinedAtFieldEvent | RosterRemovedFieldEvent | RosterIssuedAtFieldEvent | RosterProofVotesFieldEvent | RosterProofClusterDeleteFieldEvent> {
    return streamMessage(buf, Roster.codec(), opts)
  }
}

export interface LeaderProof {
  votes: Uint8Array[]
  clusterDelete: Uint8Array
}

export namespace LeaderProof {
  let _codec: Codec<LeaderProof>

  export const codec = (): Codec<LeaderProof> => {
    if (_codec == null) {
      _codec = message<LeaderProof>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.votes != null && obj.votes.length > 0) {
          for (const value of obj.votes) {
            w.uint32(10)
            w.bytes(value)
          }
        }

        if ((obj.clusterDelete != null && obj.clusterDelete.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.clusterDelete)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          votes: [],
          clusterDelete: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.votes != null && obj.votes.length === opts.limits.votes) {
                throw new MaxLengthError('Decode error - repeated field "votes" had too many elements')
              }

              obj.votes.push(reader.bytes())
              break
            }
            case 2: {
              obj.clusterDelete = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          votes: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.votes != null && obj.votes === opts.limits.votes) {
                throw new MaxLengthError('Streaming decode error - repeated field "votes" had too many elements')
              }

              yield {
                field: `${prefix}.votes[]`,
                index: obj.votes,
                value: reader.bytes()
              }

              obj.votes++

              break
            }
            case 2: {
              yield {
                field: `${prefix}.clusterDelete`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface LeaderProofVotesFieldEvent {
    field: '$.votes[]'
    index: number
    value: Uint8Array
  }

  export interface LeaderProofClusterDeleteFieldEvent {
    field: '$.clusterDelete'
    value: Uint8Array
  }

  export function encode (obj: Partial<LeaderProof>): Uint8Array {
    return encodeMessage(obj, LeaderProof.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<LeaderProof>): LeaderProof {
    return decodeMessage(buf, LeaderProof.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<LeaderProof>): Generator<LeaderProofVotesFieldEvent | LeaderProofClusterDeleteFieldEvent> {
    return streamMessage(buf, LeaderProof.codec(), opts)
  }
}

export interface Vote {
  groupId: Uint8Array
  term: bigint
  candidate: Uint8Array
  voter: Uint8Array
}

export namespace Vote {
  let _codec: Codec<Vote>

  export const codec = (): Codec<Vote> => {
    if (_codec == null) {
      _codec = message<Vote>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.groupId != null && obj.groupId.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.groupId)
        }

        if ((obj.term != null && obj.term !== 0n)) {
          w.uint32(16)
          w.uint64(obj.term)
        }

        if ((obj.candidate != null && obj.candidate.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.candidate)
        }

        if ((obj.voter != null && obj.voter.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.voter)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          groupId: uint8ArrayAlloc(0),
          term: 0n,
          candidate: uint8ArrayAlloc(0),
          voter: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.groupId = reader.bytes()
              break
            }
            case 2: {
              obj.term = reader.uint64()
              break
            }
            case 3: {
              obj.candidate = reader.bytes()
              break
            }
            case 4: {
              obj.voter = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.groupId`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.term`,
                value: reader.uint64()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.candidate`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.voter`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface VoteGroupIdFieldEvent {
    field: '$.groupId'
    value: Uint8Array
  }

  export interface VoteTermFieldEvent {
    field: '$.term'
    value: bigint
  }

  export interface VoteCandidateFieldEvent {
    field: '$.candidate'
    value: Uint8Array
  }

  export interface VoteVoterFieldEvent {
    field: '$.voter'
    value: Uint8Array
  }

  export function encode (obj: Partial<Vote>): Uint8Array {
    return encodeMessage(obj, Vote.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Vote>): Vote {
    return decodeMessage(buf, Vote.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Vote>): Generator<VoteGroupIdFieldEvent | VoteTermFieldEvent | VoteCandidateFieldEvent | VoteVoterFieldEvent> {
    return streamMessage(buf, Vote.codec(), opts)
  }
}

export interface SignedVote {
  vote: Uint8Array
  signature: Uint8Array
}

export namespace SignedVote {
  let _codec: Codec<SignedVote>

  export const codec = (): Codec<SignedVote> => {
    if (_codec == null) {
      _codec = message<SignedVote>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.vote != null && obj.vote.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.vote)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.signature)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          vote: uint8ArrayAlloc(0),
          signature: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.vote = reader.bytes()
              break
            }
            case 2: {
              obj.signature = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.vote`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.signature`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface SignedVoteVoteFieldEvent {
    field: '$.vote'
    value: Uint8Array
  }

  export interface SignedVoteSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array
  }

  export function encode (obj: Partial<SignedVote>): Uint8Array {
    return encodeMessage(obj, SignedVote.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedVote>): SignedVote {
    return decodeMessage(buf, SignedVote.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedVote>): Generator<SignedVoteVoteFieldEvent | SignedVoteSignatureFieldEvent> {
    return streamMessage(buf, SignedVote.codec(), opts)
  }
}

export interface ElectionRequest {
  groupId: Uint8Array
  term: bigint
  candidate: Uint8Array
  rosterTerm: bigint
  rosterVersion: bigint
  transferFrom: Uint8Array
  transferVote: Uint8Array
  transfer: boolean
}

export namespace ElectionRequest {
  let _codec: Codec<ElectionRequest>

  export const codec = (): Codec<ElectionRequest> => {
    if (_codec == null) {
      _codec = message<ElectionRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.groupId != null && obj.groupId.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.groupId)
        }

        if ((obj.term != null && obj.term !== 0n)) {
          w.uint32(16)
          w.uint64(obj.term)
        }

        if ((obj.candidate != null && obj.candidate.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.candidate)
        }

        if ((obj.rosterTerm != null && obj.rosterTerm !== 0n)) {
          w.uint32(32)
          w.uint64(obj.rosterTerm)
        }

        if ((obj.rosterVersion != null && obj.rosterVersion !== 0n)) {
          w.uint32(40)
          w.uint64(obj.rosterVersion)
        }

        if ((obj.transferFrom != null && obj.transferFrom.byteLength > 0)) {
          w.uint32(50)
          w.bytes(obj.transferFrom)
        }

        if ((obj.transferVote != null && obj.transferVote.byteLength > 0)) {
          w.uint32(58)
          w.bytes(obj.transferVote)
        }

        if ((obj.transfer != null && obj.transfer !== false)) {
          w.uint32(64)
          w.bool(obj.transfer)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          groupId: uint8ArrayAlloc(0),
          term: 0n,
          candidate: uint8ArrayAlloc(0),
          rosterTerm: 0n,
          rosterVersion: 0n,
          transferFrom: uint8ArrayAlloc(0),
          transferVote: uint8ArrayAlloc(0),
          transfer: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.groupId = reader.bytes()
              break
            }
            case 2: {
              obj.term = reader.uint64()
              break
            }
            case 3: {
              obj.candidate = reader.bytes()
              break
            }
            case 4: {
              obj.rosterTerm = reader.uint64()
              break
            }
            case 5: {
              obj.rosterVersion = reader.uint64()
              break
            }
            case 6: {
              obj.transferFrom = reader.bytes()
              break
            }
            case 7: {
              obj.transferVote = reader.bytes()
              break
            }
            case 8: {
              obj.transfer = reader.bool()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.groupId`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.term`,
                value: reader.uint64()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.candidate`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.rosterTerm`,
                value: reader.uint64()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.rosterVersion`,
                value: reader.uint64()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.transferFrom`,
                value: reader.bytes()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.transferVote`,
                value: reader.bytes()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.transfer`,
                value: reader.bool()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ElectionRequestGroupIdFieldEvent {
    field: '$.groupId'
    value: Uint8Array
  }

  export interface ElectionRequestTermFieldEvent {
    field: '$.term'
    value: bigint
  }

  export interface ElectionRequestCandidateFieldEvent {
    field: '$.candidate'
    value: Uint8Array
  }

  export interface ElectionRequestRosterTermFieldEvent {
    field: '$.rosterTerm'
    value: bigint
  }

  export interface ElectionRequestRosterVersionFieldEvent {
    field: '$.rosterVersion'
    value: bigint
  }

  export interface ElectionRequestTransferFromFieldEvent {
    field: '$.transferFrom'
    value: Uint8Array
  }

  export interface ElectionRequestTransferVoteFieldEvent {
    field: '$.transferVote'
    value: Uint8Array
  }

  export interface ElectionRequestTransferFieldEvent {
    field: '$.transfer'
    value: boolean
  }

  export function encode (obj: Partial<ElectionRequest>): Uint8Array {
    return encodeMessage(obj, ElectionRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ElectionRequest>): ElectionRequest {
    return decodeMessage(buf, ElectionRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ElectionRequest>): Generator<ElectionRequestGroupIdFieldEvent | ElectionRequestTermFieldEvent | ElectionRequestCandidateFieldEvent | ElectionRequestRosterTermFieldEvent | ElectionRequestRosterVersionFieldEvent | ElectionRequestTransferFromFieldEvent | ElectionRequestTransferVoteFieldEvent | ElectionRequestTransferFieldEvent> {
    return streamMessage(buf, ElectionRequest.codec(), opts)
  }
}

export interface ElectionReply {
  term: bigint
  granted: boolean
  reason: string
  vote: Uint8Array
}

export namespace ElectionReply {
  let _codec: Codec<ElectionReply>

  export const codec = (): Codec<ElectionReply> => {
    if (_codec == null) {
      _codec = message<ElectionReply>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.term != null && obj.term !== 0n)) {
          w.uint32(8)
          w.uint64(obj.term)
        }

        if ((obj.granted != null && obj.granted !== false)) {
          w.uint32(16)
          w.bool(obj.granted)
        }

        if ((obj.reason != null && obj.reason !== '')) {
          w.uint32(26)
          w.string(obj.reason)
        }

        if ((obj.vote != null && obj.vote.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.vote)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          term: 0n,
          granted: false,
          reason: '',
          vote: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.term = reader.uint64()
              break
            }
            case 2: {
              obj.granted = reader.bool()
              break
            }
            case 3: {
              obj.reason = reader.string()
              break
            }
            case 4: {
              obj.vote = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.term`,
                value: reader.uint64()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.granted`,
                value: reader.bool()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.reason`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.vote`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ElectionReplyTermFieldEvent {
    field: '$.term'
    value: bigint
  }

  export interface ElectionReplyGrantedFieldEvent {
    field: '$.granted'
    value: boolean
  }

  export interface ElectionReplyReasonFieldEvent {
    field: '$.reason'
    value: string
  }

  export interface ElectionReplyVoteFieldEvent {
    field: '$.vote'
    value: Uint8Array
  }

  export function encode (obj: Partial<ElectionReply>): Uint8Array {
    return encodeMessage(obj, ElectionReply.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ElectionReply>): ElectionReply {
    return decodeMessage(buf, ElectionReply.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ElectionReply>): Generator<ElectionReplyTermFieldEvent | ElectionReplyGrantedFieldEvent | ElectionReplyReasonFieldEvent | ElectionReplyVoteFieldEvent> {
    return streamMessage(buf, ElectionReply.codec(), opts)
  }
}

export interface SignedRoster {
  roster: Uint8Array
  signature: Uint8Array
}

export namespace SignedRoster {
  let _codec: Codec<SignedRoster>

  export const codec = (): Codec<SignedRoster> => {
    if (_codec == null) {
      _codec = message<SignedRoster>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.roster != null && obj.roster.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.roster)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.signature)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          roster: uint8ArrayAlloc(0),
          signature: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.roster = reader.bytes()
              break
            }
            case 2: {
              obj.signature = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.roster`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.signature`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface SignedRosterRosterFieldEvent {
    field: '$.roster'
    value: Uint8Array
  }

  export interface SignedRosterSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array
  }

  export function encode (obj: Partial<SignedRoster>): Uint8Array {
    return encodeMessage(obj, SignedRoster.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedRoster>): SignedRoster {
    return decodeMessage(buf, SignedRoster.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedRoster>): Generator<SignedRosterRosterFieldEvent | SignedRosterSignatureFieldEvent> {
    return streamMessage(buf, SignedRoster.codec(), opts)
  }
}

export interface JoinRequest {
  tokenId: Uint8Array
  proof: Uint8Array
  facts?: HostFacts
  addrs: Uint8Array[]
  linked: boolean
  inCluster: boolean
}

export namespace JoinRequest {
  let _codec: Codec<JoinRequest>

  export const codec = (): Codec<JoinRequest> => {
    if (_codec == null) {
      _codec = message<JoinRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.tokenId != null && obj.tokenId.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.tokenId)
        }

        if ((obj.proof != null && obj.proof.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.proof)
        }

        if (obj.facts != null) {
          w.uint32(26)
          HostFacts.codec().encode(obj.facts, w)
        }

        if (obj.addrs != null && obj.addrs.length > 0) {
          for (const value of obj.addrs) {
            w.uint32(34)
            w.bytes(value)
          }
        }

        if ((obj.linked != null && obj.linked !== false)) {
          w.uint32(40)
          w.bool(obj.linked)
        }

        if ((obj.inCluster != null && obj.inCluster !== false)) {
          w.uint32(48)
          w.bool(obj.inCluster)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          tokenId: uint8ArrayAlloc(0),
          proof: uint8ArrayAlloc(0),
          addrs: [],
          linked: false,
          inCluster: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.tokenId = reader.bytes()
              break
            }
            case 2: {
              obj.proof = reader.bytes()
              break
            }
            case 3: {
              obj.facts = HostFacts.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.facts
              })
              break
            }
            case 4: {
              if (opts.limits?.addrs != null && obj.addrs.length === opts.limits.addrs) {
                throw new MaxLengthError('Decode error - repeated field "addrs" had too many elements')
              }

              obj.addrs.push(reader.bytes())
              break
            }
            case 5: {
              obj.linked = reader.bool()
              break
            }
            case 6: {
              obj.inCluster = reader.bool()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          addrs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.tokenId`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.proof`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield * HostFacts.codec().stream(reader, reader.uint32(), `${prefix}.facts`, {
                limits: opts.limits?.facts
              })

              break
            }
            case 4: {
              if (opts.limits?.addrs != null && obj.addrs === opts.limits.addrs) {
                throw new MaxLengthError('Streaming decode error - repeated field "addrs" had too many elements')
              }

              yield {
                field: `${prefix}.addrs[]`,
                index: obj.addrs,
                value: reader.bytes()
              }

              obj.addrs++

              break
            }
            case 5: {
              yield {
                field: `${prefix}.linked`,
                value: reader.bool()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.inCluster`,
                value: reader.bool()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface JoinRequestTokenIdFieldEvent {
    field: '$.tokenId'
    value: Uint8Array
  }

  export interface JoinRequestProofFieldEvent {
    field: '$.proof'
    value: Uint8Array
  }

  export interface JoinRequestFactsNameFieldEvent {
    field: '$.facts.name'
    value: string
  }

  export interface JoinRequestFactsHostnameFieldEvent {
    field: '$.facts.hostname'
    value: string
  }

  export interface JoinRequestFactsOsFieldEvent {
    field: '$.facts.os'
    value: string
  }

  export interface JoinRequestFactsArchFieldEvent {
    field: '$.facts.arch'
    value: string
  }

  export interface JoinRequestFactsCpusFieldEvent {
    field: '$.facts.cpus'
    value: number
  }

  export interface JoinRequestFactsMemoryFieldEvent {
    field: '$.facts.memory'
    value: bigint
  }

  export interface JoinRequestFactsApiPortFieldEvent {
    field: '$.facts.apiPort'
    value: number
  }

  export interface JoinRequestFactsVersionFieldEvent {
    field: '$.facts.version'
    value: string
  }

  export interface JoinRequestAddrsFieldEvent {
    field: '$.addrs[]'
    index: number
    value: Uint8Array
  }

  export interface JoinRequestLinkedFieldEvent {
    field: '$.linked'
    value: boolean
  }

  export interface JoinRequestInClusterFieldEvent {
    field: '$.inCluster'
    value: boolean
  }

  export function encode (obj: Partial<JoinRequest>): Uint8Array {
    return encodeMessage(obj, JoinRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<JoinRequest>): JoinRequest {
    return decodeMessage(buf, JoinRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<JoinRequest>): Generator<JoinRequestTokenIdFieldEvent | JoinRequestProofFieldEvent | JoinRequestFactsNameFieldEvent | JoinRequestFactsHostnameFieldEvent | JoinRequestFactsOsFieldEvent | JoinRequestFactsArchFieldEvent | JoinRequestFactsCpusFieldEvent | JoinRequestFactsMemoryFieldEvent | JoinRequestFactsApiPortFieldEvent | JoinRequestFactsVersionFieldEvent | JoinRequestAddrsFieldEvent | JoinRequestLinkedFieldEvent | JoinRequestInClusterFieldEvent> {
    return streamMessage(buf, JoinRequest.codec(), opts)
  }
}

export interface JoinResponse {
  code: string
  message: string
  roster?: SignedRoster
}

export namespace JoinResponse {
  let _codec: Codec<JoinResponse>

  export const codec = (): Codec<JoinResponse> => {
    if (_codec == null) {
      _codec = message<JoinResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.code != null && obj.code !== '')) {
          w.uint32(10)
          w.string(obj.code)
        }

        if ((obj.message != null && obj.message !== '')) {
          w.uint32(18)
          w.string(obj.message)
        }

        if (obj.roster != null) {
          w.uint32(26)
          SignedRoster.codec().encode(obj.roster, w)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          code: '',
          message: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.code = reader.string()
              break
            }
            case 2: {
              obj.message = reader.string()
              break
            }
            case 3: {
              obj.roster = SignedRoster.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.roster
              })
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.code`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.message`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield * SignedRoster.codec().stream(reader, reader.uint32(), `${prefix}.roster`, {
                limits: opts.limits?.roster
              })

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface JoinResponseCodeFieldEvent {
    field: '$.code'
    value: string
  }

  export interface JoinResponseMessageFieldEvent {
    field: '$.message'
    value: string
  }

  export interface JoinResponseRosterRosterFieldEvent {
    field: '$.roster.roster'
    value: Uint8Array
  }

  export interface JoinResponseRosterSignatureFieldEvent {
    field: '$.roster.signature'
    value: Uint8Array
  }

  export function encode (obj: Partial<JoinResponse>): Uint8Array {
    return encodeMessage(obj, JoinResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<JoinResponse>): JoinResponse {
    return decodeMessage(buf, JoinResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<JoinResponse>): Generator<JoinResponseCodeFieldEvent | JoinResponseMessageFieldEvent | JoinResponseRosterRosterFieldEvent | JoinResponseRosterSignatureFieldEvent> {
    return streamMessage(buf, JoinResponse.codec(), opts)
  }
}

export interface LeaveRequest {
  groupId: Uint8Array
}

export namespace LeaveRequest {
  let _codec: Codec<LeaveRequest>

  export const codec = (): Codec<LeaveRequest> => {
    if (_codec == null) {
      _codec = message<LeaveRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.groupId != null && obj.groupId.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.groupId)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          groupId: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.groupId = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.groupId`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface LeaveRequestGroupIdFieldEvent {
    field: '$.groupId'
    value: Uint8Array
  }

  export function encode (obj: Partial<LeaveRequest>): Uint8Array {
    return encodeMessage(obj, LeaveRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<LeaveRequest>): LeaveRequest {
    return decodeMessage(buf, LeaveRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<LeaveRequest>): Generator<LeaveRequestGroupIdFieldEvent> {
    return streamMessage(buf, LeaveRequest.codec(), opts)
  }
}

export interface LeaveResponse {
  code: string
  message: string
}

export namespace LeaveResponse {
  let _codec: Codec<LeaveResponse>

  export const codec = (): Codec<LeaveResponse> => {
    if (_codec == null) {
      _codec = message<LeaveResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.code != null && obj.code !== '')) {
          w.uint32(10)
          w.string(obj.code)
        }

        if ((obj.message != null && obj.message !== '')) {
          w.uint32(18)
          w.string(obj.message)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          code: '',
          message: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.code = reader.string()
              break
            }
            case 2: {
              obj.message = reader.string()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.code`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.message`,
                value: reader.string()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface LeaveResponseCodeFieldEvent {
    field: '$.code'
    value: string
  }

  export interface LeaveResponseMessageFieldEvent {
    field: '$.message'
    value: string
  }

  export function encode (obj: Partial<LeaveResponse>): Uint8Array {
    return encodeMessage(obj, LeaveResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<LeaveResponse>): LeaveResponse {
    return decodeMessage(buf, LeaveResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<LeaveResponse>): Generator<LeaveResponseCodeFieldEvent | LeaveResponseMessageFieldEvent> {
    return streamMessage(buf, LeaveResponse.codec(), opts)
  }
}

export interface AdmitRequest {
  member?: Member
}

export namespace AdmitRequest {
  let _codec: Codec<AdmitRequest>

  export const codec = (): Codec<AdmitRequest> => {
    if (_codec == null) {
      _codec = message<AdmitRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.member != null) {
          w.uint32(10)
          Member.codec().encode(obj.member, w)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {}

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.member = Member.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.member
              })
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield * Member.codec().stream(reader, reader.uint32(), `${prefix}.member`, {
                limits: opts.limits?.member
              })

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface AdmitRequestMemberIdFieldEvent {
    field: '$.member.id'
    value: Uint8Array
  }

  export interface AdmitRequestMemberAddrsFieldEvent {
    field: '$.member.addrs[]'
    index: number
    value: Uint8Array
  }

  export interface AdmitRequestMemberFactsNameFieldEvent {
    field: '$.member.facts.name'
    value: string
  }

  export interface AdmitRequestMemberFactsHostnameFieldEvent {
    field: '$.member.facts.hostname'
    value: string
  }

  export interface AdmitRequestMemberFactsOsFieldEvent {
    field: '$.member.facts.os'
    value: string
  }

  export interface AdmitRequestMemberFactsArchFieldEvent {
    field: '$.member.facts.arch'
    value: string
  }

  export interface AdmitRequestMemberFactsCpusFieldEvent {
    field: '$.member.facts.cpus'
    value: number
  }

  export interface AdmitRequestMemberFactsMemoryFieldEvent {
    field: '$.member.facts.memory'
    value: bigint
  }

  export interface AdmitRequestMemberFactsApiPortFieldEvent {
    field: '$.member.facts.apiPort'
    value: number
  }

  export interface AdmitRequestMemberFactsVersionFieldEvent {
    field: '$.member.facts.version'
    value: string
  }

  export interface AdmitRequestMemberJoinedAtFieldEvent {
    field: '$.member.joinedAt'
    value: bigint
  }

  export function encode (obj: Partial<AdmitRequest>): Uint8Array {
    return encodeMessage(obj, AdmitRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AdmitRequest>): AdmitRequest {
    return decodeMessage(buf, AdmitRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AdmitRequest>): Generator<AdmitRequestMemberIdFieldEvent | AdmitRequestMemberAddrsFieldEvent | AdmitRequestMemberFactsNameFieldEvent | AdmitRequestMemberFactsHostnameFieldEvent | AdmitRequestMemberFactsOsFieldEvent | AdmitRequestMemberFactsArchFieldEvent | AdmitRequestMemberFactsCpusFieldEvent | AdmitRequestMemberFactsMemoryFieldEvent | AdmitRequestMemberFactsApiPortFieldEvent | AdmitRequestMemberFactsVersionFieldEvent | AdmitRequestMemberJoinedAtFieldEvent> {
    return streamMessage(buf, AdmitRequest.codec(), opts)
  }
}

export interface AdmitResponse {
  code: string
  message: string
  roster?: SignedRoster
}

export namespace AdmitResponse {
  let _codec: Codec<AdmitResponse>

  export const codec = (): Codec<AdmitResponse> => {
    if (_codec == null) {
      _codec = message<AdmitResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.code != null && obj.code !== '')) {
          w.uint32(10)
          w.string(obj.code)
        }

        if ((obj.message != null && obj.message !== '')) {
          w.uint32(18)
          w.string(obj.message)
        }

        if (obj.roster != null) {
          w.uint32(26)
          SignedRoster.codec().encode(obj.roster, w)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          code: '',
          message: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.code = reader.string()
              break
            }
            case 2: {
              obj.message = reader.string()
              break
            }
            case 3: {
              obj.roster = SignedRoster.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.roster
              })
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.code`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.message`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield * SignedRoster.codec().stream(reader, reader.uint32(), `${prefix}.roster`, {
                limits: opts.limits?.roster
              })

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface AdmitResponseCodeFieldEvent {
    field: '$.code'
    value: string
  }

  export interface AdmitResponseMessageFieldEvent {
    field: '$.message'
    value: string
  }

  export interface AdmitResponseRosterRosterFieldEvent {
    field: '$.roster.roster'
    value: Uint8Array
  }

  export interface AdmitResponseRosterSignatureFieldEvent {
    field: '$.roster.signature'
    value: Uint8Array
  }

  export function encode (obj: Partial<AdmitResponse>): Uint8Array {
    return encodeMessage(obj, AdmitResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AdmitResponse>): AdmitResponse {
    return decodeMessage(buf, AdmitResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AdmitResponse>): Generator<AdmitResponseCodeFieldEvent | AdmitResponseMessageFieldEvent | AdmitResponseRosterRosterFieldEvent | AdmitResponseRosterSignatureFieldEvent> {
    return streamMessage(buf, AdmitResponse.codec(), opts)
  }
}
