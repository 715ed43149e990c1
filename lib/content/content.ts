import { decodeMessage, encodeMessage, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface ContentRequest {
  op: string
  contentId: string
  index: number
  hash: Uint8Array
  any: Chunk[]
}

export namespace ContentRequest {
  let _codec: Codec<ContentRequest>

  export const codec = (): Codec<ContentRequest> => {
    if (_codec == null) {
      _codec = message<ContentRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.op != null && obj.op !== '')) {
          w.uint32(10)
          w.string(obj.op)
        }

        if ((obj.contentId != null && obj.contentId !== '')) {
          w.uint32(18)
          w.string(obj.contentId)
        }

        if ((obj.index != null && obj.index !== 0)) {
          w.uint32(24)
          w.uint32(obj.index)
        }

        if ((obj.hash != null && obj.hash.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.hash)
        }

        if (obj.any != null && obj.any.length > 0) {
          for (const value of obj.any) {
            w.uint32(42)
            Chunk.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          op: '',
          contentId: '',
          index: 0,
          hash: uint8ArrayAlloc(0),
          any: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.op = reader.string()
              break
            }
            case 2: {
              obj.contentId = reader.string()
              break
            }
            case 3: {
              obj.index = reader.uint32()
              break
            }
            case 4: {
              obj.hash = reader.bytes()
              break
            }
            case 5: {
              if (opts.limits?.any != null && obj.any.length === opts.limits.any) {
                throw new MaxLengthError('Decode error - repeated field "any" had too many elements')
              }

              obj.any.push(Chunk.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.any$
              }))
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
          any: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.op`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.contentId`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.index`,
                value: reader.uint32()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.hash`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              if (opts.limits?.any != null && obj.any === opts.limits.any) {
                throw new MaxLengthError('Streaming decode error - repeated field "any" had too many elements')
              }

              for (const evt of Chunk.codec().stream(reader, reader.uint32(), `${prefix}.any[]`, {
                limits: opts.limits?.any$
              })) {
                yield {
                  ...evt,
                  index: obj.any
                }
              }

              obj.any++

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

  export interface ContentRequestOpFieldEvent {
    field: '$.op'
    value: string
  }

  export interface ContentRequestContentIdFieldEvent {
    field: '$.contentId'
    value: string
  }

  export interface ContentRequestIndexFieldEvent {
    field: '$.index'
    value: number
  }

  export interface ContentRequestHashFieldEvent {
    field: '$.hash'
    value: Uint8Array
  }

  export interface ContentRequestAnyIndexFieldEvent {
    field: '$.any[].index'
    value: number
    index: number
  }

  export interface ContentRequestAnyHashFieldEvent {
    field: '$.any[].hash'
    value: Uint8Array
    index: number
  }

  export function encode (obj: Partial<ContentRequest>): Uint8Array {
    return encodeMessage(obj, ContentRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ContentRequest>): ContentRequest {
    return decodeMessage(buf, ContentRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ContentRequest>): Generator<ContentRequestOpFieldEvent | ContentRequestContentIdFieldEvent | ContentRequestIndexFieldEvent | ContentRequestHashFieldEvent | ContentRequestAnyIndexFieldEvent | ContentRequestAnyHashFieldEvent> {
    return streamMessage(buf, ContentRequest.codec(), opts)
  }
}

export interface Chunk {
  index: number
  hash: Uint8Array
}

export namespace Chunk {
  let _codec: Codec<Chunk>

  export const codec = (): Codec<Chunk> => {
    if (_codec == null) {
      _codec = message<Chunk>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.index != null && obj.index !== 0)) {
          w.uint32(8)
          w.uint32(obj.index)
        }

        if ((obj.hash != null && obj.hash.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.hash)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          index: 0,
          hash: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.index = reader.uint32()
              break
            }
            case 2: {
              obj.hash = reader.bytes()
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
                field: `${prefix}.index`,
                value: reader.uint32()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.hash`,
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

  export interface ChunkIndexFieldEvent {
    field: '$.index'
    value: number
  }

  export interface ChunkHashFieldEvent {
    field: '$.hash'
    value: Uint8Array
  }

  export function encode (obj: Partial<Chunk>): Uint8Array {
    return encodeMessage(obj, Chunk.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Chunk>): Chunk {
    return decodeMessage(buf, Chunk.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Chunk>): Generator<ChunkIndexFieldEvent | ChunkHashFieldEvent> {
    return streamMessage(buf, Chunk.codec(), opts)
  }
}

export interface ContentResponse {
  code: string
  bitmap: Uint8Array
  size: number
  have: number[]
  index: number
}

export namespace ContentResponse {
  let _codec: Codec<ContentResponse>

  export const codec = (): Codec<ContentResponse> => {
    if (_codec == null) {
      _codec = message<ContentResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.code != null && obj.code !== '')) {
          w.uint32(10)
          w.string(obj.code)
        }

        if ((obj.bitmap != null && obj.bitmap.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.bitmap)
        }

        if ((obj.size != null && obj.size !== 0)) {
          w.uint32(24)
          w.uint32(obj.size)
        }

        if (obj.have != null && obj.have.length > 0) {
          for (const value of obj.have) {
            w.uint32(32)
            w.uint32(value)
          }
        }

        if ((obj.index != null && obj.index !== 0)) {
          w.uint32(40)
          w.uint32(obj.index)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          code: '',
          bitmap: uint8ArrayAlloc(0),
          size: 0,
          have: [],
          index: 0
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
              obj.bitmap = reader.bytes()
              break
            }
            case 3: {
              obj.size = reader.uint32()
              break
            }
            case 4: {
              if (opts.limits?.have != null && obj.have.length === opts.limits.have) {
                throw new MaxLengthError('Decode error - repeated field "have" had too many elements')
              }

              obj.have.push(reader.uint32())
              break
            }
            case 5: {
              obj.index = reader.uint32()
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
              yield {
                field: `${prefix}.code`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.bitmap`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.size`,
                value: reader.uint32()
              }
              break
            }
            case 4: {
              if (opts.limits?.have != null && obj.have === opts.limits.have) {
                throw new MaxLengthError('Streaming decode error - repeated field "have" had too many elements')
              }

              yield {
                field: `${prefix}.have[]`,
                index: obj.have,
                value: reader.uint32()
              }

              obj.have++

              break
            }
            case 5: {
              yield {
                field: `${prefix}.index`,
                value: reader.uint32()
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

  export interface ContentResponseCodeFieldEvent {
    field: '$.code'
    value: string
  }

  export interface ContentResponseBitmapFieldEvent {
    field: '$.bitmap'
    value: Uint8Array
  }

  export interface ContentResponseSizeFieldEvent {
    field: '$.size'
    value: number
  }

  export interface ContentResponseHaveFieldEvent {
    field: '$.have[]'
    index: number
    value: number
  }

  export interface ContentResponseIndexFieldEvent {
    field: '$.index'
    value: number
  }

  export function encode (obj: Partial<ContentResponse>): Uint8Array {
    return encodeMessage(obj, ContentResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ContentResponse>): ContentResponse {
    return decodeMessage(buf, ContentResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ContentResponse>): Generator<ContentResponseCodeFieldEvent | ContentResponseBitmapFieldEvent | ContentResponseSizeFieldEvent | ContentResponseHaveFieldEvent | ContentResponseIndexFieldEvent> {
    return streamMessage(buf, ContentResponse.codec(), opts)
  }
}
