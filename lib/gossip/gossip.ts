import { decodeMessage, encodeMessage, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface HostStatus {
  seq: bigint
  sentAt: bigint
  name: string
  addrs: Uint8Array[]
  version: string
  health: string
  failing: string[]
  contentSyncStatus: string
  syncPercent: number
  hostname: string
  os: string
  arch: string
  cpus: number
  memory: bigint
  freeDisk: bigint
  apiPort: number
  rosterVersion: bigint
  term: bigint
  role: string
  nodeRole: string
  status: string
  load: bigint
}

export namespace HostStatus {
  let _codec: Codec<HostStatus>

  export const codec = (): Codec<HostStatus> => {
    if (_codec == null) {
      _codec = message<HostStatus>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.seq != null && obj.seq !== 0n)) {
          w.uint32(8)
          w.uint64(obj.seq)
        }

        if ((obj.sentAt != null && obj.sentAt !== 0n)) {
          w.uint32(16)
          w.uint64(obj.sentAt)
        }

        if ((obj.name != null && obj.name !== '')) {
          w.uint32(26)
          w.string(obj.name)
        }

        if (obj.addrs != null && obj.addrs.length > 0) {
          for (const value of obj.addrs) {
            w.uint32(34)
            w.bytes(value)
          }
        }

        if ((obj.version != null && obj.version !== '')) {
          w.uint32(42)
          w.string(obj.version)
        }

        if ((obj.health != null && obj.health !== '')) {
          w.uint32(50)
          w.string(obj.health)
        }

        if (obj.failing != null && obj.failing.length > 0) {
          for (const value of obj.failing) {
            w.uint32(58)
            w.string(value)
          }
        }

        if ((obj.contentSyncStatus != null && obj.contentSyncStatus !== '')) {
          w.uint32(66)
          w.string(obj.contentSyncStatus)
        }

        if ((obj.syncPercent != null && obj.syncPercent !== 0)) {
          w.uint32(72)
          w.uint32(obj.syncPercent)
        }

        if ((obj.hostname != null && obj.hostname !== '')) {
          w.uint32(82)
          w.string(obj.hostname)
        }

        if ((obj.os != null && obj.os !== '')) {
          w.uint32(90)
          w.string(obj.os)
        }

        if ((obj.arch != null && obj.arch !== '')) {
          w.uint32(98)
          w.string(obj.arch)
        }

        if ((obj.cpus != null && obj.cpus !== 0)) {
          w.uint32(104)
          w.uint32(obj.cpus)
        }

        if ((obj.memory != null && obj.memory !== 0n)) {
          w.uint32(112)
          w.uint64(obj.memory)
        }

        if ((obj.freeDisk != null && obj.freeDisk !== 0n)) {
          w.uint32(120)
          w.uint64(obj.freeDisk)
        }

        if ((obj.apiPort != null && obj.apiPort !== 0)) {
          w.uint32(128)
          w.uint32(obj.apiPort)
        }

        if ((obj.rosterVersion != null && obj.rosterVersion !== 0n)) {
          w.uint32(136)
          w.uint64(obj.rosterVersion)
        }

        if ((obj.term != null && obj.term !== 0n)) {
          w.uint32(144)
          w.uint64(obj.term)
        }

        if ((obj.role != null && obj.role !== '')) {
          w.uint32(154)
          w.string(obj.role)
        }

        if ((obj.nodeRole != null && obj.nodeRole !== '')) {
          w.uint32(162)
          w.string(obj.nodeRole)
        }

        if ((obj.status != null && obj.status !== '')) {
          w.uint32(170)
          w.string(obj.status)
        }

        if ((obj.load != null && obj.load !== 0n)) {
          w.uint32(176)
          w.uint64(obj.load)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          seq: 0n,
          sentAt: 0n,
          name: '',
          addrs: [],
          version: '',
          health: '',
          failing: [],
          contentSyncStatus: '',
          syncPercent: 0,
          hostname: '',
          os: '',
          arch: '',
          cpus: 0,
          memory: 0n,
          freeDisk: 0n,
          apiPort: 0,
          rosterVersion: 0n,
          term: 0n,
          role: '',
          nodeRole: '',
          status: '',
          load: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.seq = reader.uint64()
              break
            }
            case 2: {
              obj.sentAt = reader.uint64()
              break
            }
            case 3: {
              obj.name = reader.string()
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
              obj.version = reader.string()
              break
            }
            case 6: {
              obj.health = reader.string()
              break
            }
            case 7: {
              if (opts.limits?.failing != null && obj.failing.length === opts.limits.failing) {
                throw new MaxLengthError('Decode error - repeated field "failing" had too many elements')
              }

              obj.failing.push(reader.string())
              break
            }
            case 8: {
              obj.contentSyncStatus = reader.string()
              break
            }
            case 9: {
              obj.syncPercent = reader.uint32()
              break
            }
            case 10: {
              obj.hostname = reader.string()
              break
            }
            case 11: {
              obj.os = reader.string()
              break
            }
            case 12: {
              obj.arch = reader.string()
              break
            }
            case 13: {
              obj.cpus = reader.uint32()
              break
            }
            case 14: {
              obj.memory = reader.uint64()
              break
            }
            case 15: {
              obj.freeDisk = reader.uint64()
              break
            }
            case 16: {
              obj.apiPort = reader.uint32()
              break
            }
            case 17: {
              obj.rosterVersion = reader.uint64()
              break
            }
            case 18: {
              obj.term = reader.uint64()
              break
            }
            case 19: {
              obj.role = reader.string()
              break
            }
            case 20: {
              obj.nodeRole = reader.string()
              break
            }
            case 21: {
              obj.status = reader.string()
              break
            }
            case 22: {
              obj.load = reader.uint64()
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
          addrs: 0,
          failing: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.seq`,
                value: reader.uint64()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.sentAt`,
                value: reader.uint64()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.name`,
                value: reader.string()
              }
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
                field: `${prefix}.version`,
                value: reader.string()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.health`,
                value: reader.string()
              }
              break
            }
            case 7: {
              if (opts.limits?.failing != null && obj.failing === opts.limits.failing) {
                throw new MaxLengthError('Streaming decode error - repeated field "failing" had too many elements')
              }

              yield {
                field: `${prefix}.failing[]`,
                index: obj.failing,
                value: reader.string()
              }

              obj.failing++

              break
            }
            case 8: {
              yield {
                field: `${prefix}.contentSyncStatus`,
                value: reader.string()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.syncPercent`,
                value: reader.uint32()
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.hostname`,
                value: reader.string()
              }
              break
            }
            case 11: {
              yield {
                field: `${prefix}.os`,
                value: reader.string()
              }
              break
            }
            case 12: {
              yield {
                field: `${prefix}.arch`,
                value: reader.string()
              }
              break
            }
            case 13: {
              yield {
                field: `${prefix}.cpus`,
                value: reader.uint32()
              }
              break
            }
            case 14: {
              yield {
                field: `${prefix}.memory`,
                value: reader.uint64()
              }
              break
            }
            case 15: {
              yield {
                field: `${prefix}.freeDisk`,
                value: reader.uint64()
              }
              break
            }
            case 16: {
              yield {
                field: `${prefix}.apiPort`,
                value: reader.uint32()
              }
              break
            }
            case 17: {
              yield {
                field: `${prefix}.rosterVersion`,
                value: reader.uint64()
              }
              break
            }
            case 18: {
              yield {
                field: `${prefix}.term`,
                value: reader.uint64()
              }
              break
            }
            case 19: {
              yield {
                field: `${prefix}.role`,
                value: reader.string()
              }
              break
            }
            case 20: {
              yield {
                field: `${prefix}.nodeRole`,
                value: reader.string()
              }
              break
            }
            case 21: {
              yield {
                field: `${prefix}.status`,
                value: reader.string()
              }
              break
            }
            case 22: {
              yield {
                field: `${prefix}.load`,
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

  export interface HostStatusSeqFieldEvent {
    field: '$.seq'
    value: bigint
  }

  export interface HostStatusSentAtFieldEvent {
    field: '$.sentAt'
    value: bigint
  }

  export interface HostStatusNameFieldEvent {
    field: '$.name'
    value: string
  }

  export interface HostStatusAddrsFieldEvent {
    field: '$.addrs[]'
    index: number
    value: Uint8Array
  }

  export interface HostStatusVersionFieldEvent {
    field: '$.version'
    value: string
  }

  export interface HostStatusHealthFieldEvent {
    field: '$.health'
    value: string
  }

  export interface HostStatusFailingFieldEvent {
    field: '$.failing[]'
    index: number
    value: string
  }

  export interface HostStatusContentSyncStatusFieldEvent {
    field: '$.contentSyncStatus'
    value: string
  }

  export interface HostStatusSyncPercentFieldEvent {
    field: '$.syncPercent'
    value: number
  }

  export interface HostStatusHostnameFieldEvent {
    field: '$.hostname'
    value: string
  }

  export interface HostStatusOsFieldEvent {
    field: '$.os'
    value: string
  }

  export interface HostStatusArchFieldEvent {
    field: '$.arch'
    value: string
  }

  export interface HostStatusCpusFieldEvent {
    field: '$.cpus'
    value: number
  }

  export interface HostStatusMemoryFieldEvent {
    field: '$.memory'
    value: bigint
  }

  export interface HostStatusFreeDiskFieldEvent {
    field: '$.freeDisk'
    value: bigint
  }

  export interface HostStatusApiPortFieldEvent {
    field: '$.apiPort'
    value: number
  }

  export interface HostStatusRosterVersionFieldEvent {
    field: '$.rosterVersion'
    value: bigint
  }

  export interface HostStatusTermFieldEvent {
    field: '$.term'
    value: bigint
  }

  export interface HostStatusRoleFieldEvent {
    field: '$.role'
    value: string
  }

  export interface HostStatusNodeRoleFieldEvent {
    field: '$.nodeRole'
    value: string
  }

  export interface HostStatusStatusFieldEvent {
    field: '$.status'
    value: string
  }

  export interface HostStatusLoadFieldEvent {
    field: '$.load'
    value: bigint
  }

  export function encode (obj: Partial<HostStatus>): Uint8Array {
    return encodeMessage(obj, HostStatus.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<HostStatus>): HostStatus {
    return decodeMessage(buf, HostStatus.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<HostStatus>): Generator<HostStatusSeqFieldEvent | HostStatusSentAtFieldEvent | HostStatusNameFieldEvent | HostStatusAddrsFieldEvent | HostStatusVersionFieldEvent | HostStatusHealthFieldEvent | HostStatusFailingFieldEvent | HostStatusContentSyncStatusFieldEvent | HostStatusSyncPercentFieldEvent | HostStatusHostnameFieldEvent | HostStatusOsFieldEvent | HostStatusArchFieldEvent | HostStatusCpusFieldEvent | HostStatusMemoryFieldEvent | HostStatusFreeDiskFieldEvent | HostStatusApiPortFieldEvent | HostStatusRosterVersionFieldEvent | HostStatusTermFieldEvent | HostStatusRoleFieldEvent | HostStatusNodeRoleFieldEvent | HostStatusStatusFieldEvent | HostStatusLoadFieldEvent> {
    return streamMessage(buf, HostStatus.codec(), opts)
  }
}

export interface SignedStatus {
  author: Uint8Array
  status: Uint8Array
  signature: Uint8Array
}

export namespace SignedStatus {
  let _codec: Codec<SignedStatus>

  export const codec = (): Codec<SignedStatus> => {
    if (_codec == null) {
      _codec = message<SignedStatus>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.author != null && obj.author.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.author)
        }

        if ((obj.status != null && obj.status.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.status)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.signature)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          author: uint8ArrayAlloc(0),
          status: uint8ArrayAlloc(0),
          signature: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.author = reader.bytes()
              break
            }
            case 2: {
              obj.status = reader.bytes()
              break
            }
            case 3: {
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
                field: `${prefix}.author`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.status`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
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

  export interface SignedStatusAuthorFieldEvent {
    field: '$.author'
    value: Uint8Array
  }

  export interface SignedStatusStatusFieldEvent {
    field: '$.status'
    value: Uint8Array
  }

  export interface SignedStatusSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array
  }

  export function encode (obj: Partial<SignedStatus>): Uint8Array {
    return encodeMessage(obj, SignedStatus.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedStatus>): SignedStatus {
    return decodeMessage(buf, SignedStatus.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedStatus>): Generator<SignedStatusAuthorFieldEvent | SignedStatusStatusFieldEvent | SignedStatusSignatureFieldEvent> {
    return streamMessage(buf, SignedStatus.codec(), opts)
  }
}

export interface Document {
  kind: string
  id: string
  version: bigint
  term: bigint
  author: Uint8Array
  writtenAt: bigint
  bodyHash: Uint8Array
  bodySize: bigint
  deleted: boolean
}

export namespace Document {
  let _codec: Codec<Document>

  export const codec = (): Codec<Document> => {
    if (_codec == null) {
      _codec = message<Document>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.kind != null && obj.kind !== '')) {
          w.uint32(10)
          w.string(obj.kind)
        }

        if ((obj.id != null && obj.id !== '')) {
          w.uint32(18)
          w.string(obj.id)
        }

        if ((obj.version != null && obj.version !== 0n)) {
          w.uint32(24)
          w.uint64(obj.version)
        }

        if ((obj.term != null && obj.term !== 0n)) {
          w.uint32(32)
          w.uint64(obj.term)
        }

        if ((obj.author != null && obj.author.byteLength > 0)) {
          w.uint32(42)
          w.bytes(obj.author)
        }

        if ((obj.writtenAt != null && obj.writtenAt !== 0n)) {
          w.uint32(48)
          w.uint64(obj.writtenAt)
        }

        if ((obj.bodyHash != null && obj.bodyHash.byteLength > 0)) {
          w.uint32(58)
          w.bytes(obj.bodyHash)
        }

        if ((obj.bodySize != null && obj.bodySize !== 0n)) {
          w.uint32(64)
          w.uint64(obj.bodySize)
        }

        if ((obj.deleted != null && obj.deleted !== false)) {
          w.uint32(72)
          w.bool(obj.deleted)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          kind: '',
          id: '',
          version: 0n,
          term: 0n,
          author: uint8ArrayAlloc(0),
          writtenAt: 0n,
          bodyHash: uint8ArrayAlloc(0),
          bodySize: 0n,
          deleted: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.kind = reader.string()
              break
            }
            case 2: {
              obj.id = reader.string()
              break
            }
            case 3: {
              obj.version = reader.uint64()
              break
            }
            case 4: {
              obj.term = reader.uint64()
              break
            }
            case 5: {
              obj.author = reader.bytes()
              break
            }
            case 6: {
              obj.writtenAt = reader.uint64()
              break
            }
            case 7: {
              obj.bodyHash = reader.bytes()
              break
            }
            case 8: {
              obj.bodySize = reader.uint64()
              break
            }
            case 9: {
              obj.deleted = reader.bool()
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
                field: `${prefix}.kind`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.id`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.version`,
                value: reader.uint64()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.term`,
                value: reader.uint64()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.author`,
                value: reader.bytes()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.writtenAt`,
                value: reader.uint64()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.bodyHash`,
                value: reader.bytes()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.bodySize`,
                value: reader.uint64()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.deleted`,
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

  export interface DocumentKindFieldEvent {
    field: '$.kind'
    value: string
  }

  export interface DocumentIdFieldEvent {
    field: '$.id'
    value: string
  }

  export interface DocumentVersionFieldEvent {
    field: '$.version'
    value: bigint
  }

  export interface DocumentTermFieldEvent {
    field: '$.term'
    value: bigint
  }

  export interface DocumentAuthorFieldEvent {
    field: '$.author'
    value: Uint8Array
  }

  export interface DocumentWrittenAtFieldEvent {
    field: '$.writtenAt'
    value: bigint
  }

  export interface DocumentBodyHashFieldEvent {
    field: '$.bodyHash'
    value: Uint8Array
  }

  export interface DocumentBodySizeFieldEvent {
    field: '$.bodySize'
    value: bigint
  }

  export interface DocumentDeletedFieldEvent {
    field: '$.deleted'
    value: boolean
  }

  export function encode (obj: Partial<Document>): Uint8Array {
    return encodeMessage(obj, Document.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Document>): Document {
    return decodeMessage(buf, Document.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Document>): Generator<DocumentKindFieldEvent | DocumentIdFieldEvent | DocumentVersionFieldEvent | DocumentTermFieldEvent | DocumentAuthorFieldEvent | DocumentWrittenAtFieldEvent | DocumentBodyHashFieldEvent | DocumentBodySizeFieldEvent | DocumentDeletedFieldEvent> {
    return streamMessage(buf, Document.codec(), opts)
  }
}

export interface SignedDocument {
  doc: Uint8Array
  signature: Uint8Array
  body: Uint8Array
}

export namespace SignedDocument {
  let _codec: Codec<SignedDocument>

  export const codec = (): Codec<SignedDocument> => {
    if (_codec == null) {
      _codec = message<SignedDocument>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.doc != null && obj.doc.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.doc)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.signature)
        }

        if ((obj.body != null && obj.body.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.body)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          doc: uint8ArrayAlloc(0),
          signature: uint8ArrayAlloc(0),
          body: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.doc = reader.bytes()
              break
            }
            case 2: {
              obj.signature = reader.bytes()
              break
            }
            case 3: {
              obj.body = reader.bytes()
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
                field: `${prefix}.doc`,
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
            case 3: {
              yield {
                field: `${prefix}.body`,
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

  export interface SignedDocumentDocFieldEvent {
    field: '$.doc'
    value: Uint8Array
  }

  export interface SignedDocumentSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array
  }

  export interface SignedDocumentBodyFieldEvent {
    field: '$.body'
    value: Uint8Array
  }

  export function encode (obj: Partial<SignedDocument>): Uint8Array {
    return encodeMessage(obj, SignedDocument.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedDocument>): SignedDocument {
    return decodeMessage(buf, SignedDocument.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedDocument>): Generator<SignedDocumentDocFieldEvent | SignedDocumentSignatureFieldEvent | SignedDocumentBodyFieldEvent> {
    return streamMessage(buf, SignedDocument.codec(), opts)
  }
}

export interface DigestEntry {
  key: string
  version: bigint
  bodyHash: Uint8Array
}

export namespace DigestEntry {
  let _codec: Codec<DigestEntry>

  export const codec = (): Codec<DigestEntry> => {
    if (_codec == null) {
      _codec = message<DigestEntry>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.key != null && obj.key !== '')) {
          w.uint32(10)
          w.string(obj.key)
        }

        if ((obj.version != null && obj.version !== 0n)) {
          w.uint32(16)
          w.uint64(obj.version)
        }

        if ((obj.bodyHash != null && obj.bodyHash.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.bodyHash)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          key: '',
          version: 0n,
          bodyHash: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.key = reader.string()
              break
            }
            case 2: {
              obj.version = reader.uint64()
              break
            }
            case 3: {
              obj.bodyHash = reader.bytes()
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
                field: `${prefix}.key`,
                value: reader.string()
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
                field: `${prefix}.bodyHash`,
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

  export interface DigestEntryKeyFieldEvent {
    field: '$.key'
    value: string
  }

  export interface DigestEntryVersionFieldEvent {
    field: '$.version'
    value: bigint
  }

  export interface DigestEntryBodyHashFieldEvent {
    field: '$.bodyHash'
    value: Uint8Array
  }

  export function encode (obj: Partial<DigestEntry>): Uint8Array {
    return encodeMessage(obj, DigestEntry.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<DigestEntry>): DigestEntry {
    return decodeMessage(buf, DigestEntry.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<DigestEntry>): Generator<DigestEntryKeyFieldEvent | DigestEntryVersionFieldEvent | DigestEntryBodyHashFieldEvent> {
    return streamMessage(buf, DigestEntry.codec(), opts)
  }
}

export interface SyncRequest {
  have: DigestEntry[]
  wantBody: Uint8Array
  rosterTerm: bigint
  rosterVersion: bigint
}

export namespace SyncRequest {
  let _codec: Codec<SyncRequest>

  export const codec = (): Codec<SyncRequest> => {
    if (_codec == null) {
      _codec = message<SyncRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.have != null && obj.have.length > 0) {
          for (const value of obj.have) {
            w.uint32(10)
            DigestEntry.codec().encode(value, w)
          }
        }

        if ((obj.wantBody != null && obj.wantBody.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.wantBody)
        }

        if ((obj.rosterTerm != null && obj.rosterTerm !== 0n)) {
          w.uint32(24)
          w.uint64(obj.rosterTerm)
        }

        if ((obj.rosterVersion != null && obj.rosterVersion !== 0n)) {
          w.uint32(32)
          w.uint64(obj.rosterVersion)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          have: [],
          wantBody: uint8ArrayAlloc(0),
          rosterTerm: 0n,
          rosterVersion: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.have != null && obj.have.length === opts.limits.have) {
                throw new MaxLengthError('Decode error - repeated field "have" had too many elements')
              }

              obj.have.push(DigestEntry.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.have$
              }))
              break
            }
            case 2: {
              obj.wantBody = reader.bytes()
              break
            }
            case 3: {
              obj.rosterTerm = reader.uint64()
              break
            }
            case 4: {
              obj.rosterVersion = reader.uint64()
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
          have: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.have != null && obj.have === opts.limits.have) {
                throw new MaxLengthError('Streaming decode error - repeated field "have" had too many elements')
              }

              for (const evt of DigestEntry.codec().stream(reader, reader.uint32(), `${prefix}.have[]`, {
                limits: opts.limits?.have$
              })) {
                yield {
                  ...evt,
                  index: obj.have
                }
              }

              obj.have++

              break
            }
            case 2: {
              yield {
                field: `${prefix}.wantBody`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.rosterTerm`,
                value: reader.uint64()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.rosterVersion`,
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

  export interface SyncRequestHaveKeyFieldEvent {
    field: '$.have[].key'
    value: string
    index: number
  }

  export interface SyncRequestHaveVersionFieldEvent {
    field: '$.have[].version'
    value: bigint
    index: number
  }

  export interface SyncRequestHaveBodyHashFieldEvent {
    field: '$.have[].bodyHash'
    value: Uint8Array
    index: number
  }

  export interface SyncRequestWantBodyFieldEvent {
    field: '$.wantBody'
    value: Uint8Array
  }

  export interface SyncRequestRosterTermFieldEvent {
    field: '$.rosterTerm'
    value: bigint
  }

  export interface SyncRequestRosterVersionFieldEvent {
    field: '$.rosterVersion'
    value: bigint
  }

  export function encode (obj: Partial<SyncRequest>): Uint8Array {
    return encodeMessage(obj, SyncRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SyncRequest>): SyncRequest {
    return decodeMessage(buf, SyncRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SyncRequest>): Generator<SyncRequestHaveKeyFieldEvent | SyncRequestHaveVersionFieldEvent | SyncRequestHaveBodyHashFieldEvent | SyncRequestWantBodyFieldEvent | SyncRequestRosterTermFieldEvent | SyncRequestRosterVersionFieldEvent> {
    return streamMessage(buf, SyncRequest.codec(), opts)
  }
}

export interface SyncResponse {
  docs: SignedDocument[]
  have: DigestEntry[]
  body: Uint8Array
  roster: Uint8Array
}

export namespace SyncResponse {
  let _codec: Codec<SyncResponse>

  export const codec = (): Codec<SyncResponse> => {
    if (_codec == null) {
      _codec = message<SyncResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.docs != null && obj.docs.length > 0) {
          for (const value of obj.docs) {
            w.uint32(10)
            SignedDocument.codec().encode(value, w)
          }
        }

        if (obj.have != null && obj.have.length > 0) {
          for (const value of obj.have) {
            w.uint32(18)
            DigestEntry.codec().encode(value, w)
          }
        }

        if ((obj.body != null && obj.body.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.body)
        }

        if ((obj.roster != null && obj.roster.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.roster)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          docs: [],
          have: [],
          body: uint8ArrayAlloc(0),
          roster: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.docs != null && obj.docs.length === opts.limits.docs) {
                throw new MaxLengthError('Decode error - repeated field "docs" had too many elements')
              }

              obj.docs.push(SignedDocument.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.docs$
              }))
              break
            }
            case 2: {
              if (opts.limits?.have != null && obj.have.length === opts.limits.have) {
                throw new MaxLengthError('Decode error - repeated field "have" had too many elements')
              }

              obj.have.push(DigestEntry.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.have$
              }))
              break
            }
            case 3: {
              obj.body = reader.bytes()
              break
            }
            case 4: {
              obj.roster = reader.bytes()
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
          docs: 0,
          have: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.docs != null && obj.docs === opts.limits.docs) {
                throw new MaxLengthError('Streaming decode error - repeated field "docs" had too many elements')
              }

              for (const evt of SignedDocument.codec().stream(reader, reader.uint32(), `${prefix}.docs[]`, {
                limits: opts.limits?.docs$
              })) {
                yield {
                  ...evt,
                  index: obj.docs
                }
              }

              obj.docs++

              break
            }
            case 2: {
              if (opts.limits?.have != null && obj.have === opts.limits.have) {
                throw new MaxLengthError('Streaming decode error - repeated field "have" had too many elements')
              }

              for (const evt of DigestEntry.codec().stream(reader, reader.uint32(), `${prefix}.have[]`, {
                limits: opts.limits?.have$
              })) {
                yield {
                  ...evt,
                  index: obj.have
                }
              }

              obj.have++

              break
            }
            case 3: {
              yield {
                field: `${prefix}.body`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.roster`,
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

  export interface SyncResponseDocsDocFieldEvent {
    field: '$.docs[].doc'
    value: Uint8Array
    index: number
  }

  export interface SyncResponseDocsSignatureFieldEvent {
    field: '$.docs[].signature'
    value: Uint8Array
    index: number
  }

  export interface SyncResponseDocsBodyFieldEvent {
    field: '$.docs[].body'
    value: Uint8Array
    index: number
  }

  export interface SyncResponseHaveKeyFieldEvent {
    field: '$.have[].key'
    value: string
    index: number
  }

  export interface SyncResponseHaveVersionFieldEvent {
    field: '$.have[].version'
    value: bigint
    index: number
  }

  export interface SyncResponseHaveBodyHashFieldEvent {
    field: '$.have[].bodyHash'
    value: Uint8Array
    index: number
  }

  export interface SyncResponseBodyFieldEvent {
    field: '$.body'
    value: Uint8Array
  }

  export interface SyncResponseRosterFieldEvent {
    field: '$.roster'
    value: Uint8Array
  }

  export function encode (obj: Partial<SyncResponse>): Uint8Array {
    return encodeMessage(obj, SyncResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SyncResponse>): SyncResponse {
    return decodeMessage(buf, SyncResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SyncResponse>): Generator<SyncResponseDocsDocFieldEvent | SyncResponseDocsSignatureFieldEvent | SyncResponseDocsBodyFieldEvent | SyncResponseHaveKeyFieldEvent | SyncResponseHaveVersionFieldEvent | SyncResponseHaveBodyHashFieldEvent | SyncResponseBodyFieldEvent | SyncResponseRosterFieldEvent> {
    return streamMessage(buf, SyncResponse.codec(), opts)
  }
}
