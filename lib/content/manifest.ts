/**
 * Manifests: the list of files and chunks that make up one piece of content, and its canonical
 * JSON, whose SHA-256 is the content id. The decoder is total and bounded: any JSON in gives a
 * {@link Manifest} or an {@link EdgelinkError}, never a crash, and never more work than the limits
 * below allow.
 */
import { createHash } from 'node:crypto'
import { EdgelinkError, type ErrorCode } from '../errors.ts'
import { CONTENT_KINDS, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, type ContentKind, type Manifest, type ManifestFile } from './types.ts'

export const MAX_NAME_LENGTH = 256
export const MAX_MEDIA_TYPE_LENGTH = 256
export const MAX_FILES = 100_000
/** Chunks over all files: 1 TiB at the default chunk size, 16 TiB at the largest. */
export const MAX_CHUNKS = 1_000_000
export const MAX_PATH_LENGTH = 4096
/** Bytes of manifest JSON {@link decodeManifest} reads: a million chunk hashes are ~67 MB. */
export const MAX_MANIFEST_BYTES = 128 * 1024 * 1024
/** Highest mode a manifest may carry: permission bits only, no setuid, setgid or sticky. */
export const MAX_MODE = 0o777

const HASH_RE = /^[0-9a-f]{64}$/

export function isChunkHash (v: unknown): v is string { return typeof v === 'string' && HASH_RE.test(v) }

/** Why a path is not safe inside content, or undefined when it is. */
export function pathProblem (p: string): string | undefined {
  if (p.length === 0) return 'is empty'
  if (p.length > MAX_PATH_LENGTH) return `is longer than ${MAX_PATH_LENGTH} characters`
  if (p.includes('\\')) return 'contains a backslash'
  if (p.includes('\0')) return 'contains a NUL'
  if (p.startsWith('/')) return 'is absolute'
  for (const seg of p.split('/')) {
    if (seg === '') return 'has an empty segment'
    if (seg === '.' || seg === '..') return `has a "${seg}" segment`
  }
  return undefined
}

/**
 * Checks any value (parsed JSON) against every rule of a manifest and returns a fresh copy.
 * `code` is the error code to throw: `PROTOCOL_ERROR` for what came from a peer (the default),
 * `INVALID_ARGUMENT` for what came from a caller.
 */
export function parseManifest (v: unknown, code: Extract<ErrorCode, 'PROTOCOL_ERROR' | 'INVALID_ARGUMENT'> = 'PROTOCOL_ERROR'): Manifest {
  const fail = (why: string): never => { throw new EdgelinkError(code, `invalid manifest: ${why}`) }
  if (!isObject(v)) return fail('not an object')
  if (v.version !== 1) fail(`version ${describe(v.version)} is not supported (only 1)`)
  const kind = v.kind
  if (typeof kind !== 'string' || !(CONTENT_KINDS as readonly string[]).includes(kind)) fail(`kind ${describe(kind)} is not one of ${CONTENT_KINDS.join(', ')}`)
  const name = v.name
  if (typeof name !== 'string' || name.length > MAX_NAME_LENGTH) fail(`name must be a string of at most ${MAX_NAME_LENGTH} characters`)
  const mediaType = v.mediaType
  if (typeof mediaType !== 'string' || mediaType.length > MAX_MEDIA_TYPE_LENGTH) fail(`mediaType must be a string of at most ${MAX_MEDIA_TYPE_LENGTH} characters`)
  const chunkSize = v.chunkSize
  if (!Number.isInteger(chunkSize) || (chunkSize as number) < MIN_CHUNK_SIZE || (chunkSize as number) > MAX_CHUNK_SIZE) fail(`chunkSize must be an integer in [${MIN_CHUNK_SIZE}, ${MAX_CHUNK_SIZE}]`)
  const cs = chunkSize as number
  const size = v.size
  if (!isSize(size)) fail('size must be a non-negative safe integer')
  const createdAt = v.createdAt
  if (!isSize(createdAt)) fail('createdAt must be a non-negative safe integer')
  const files = v.files
  if (!Array.isArray(files)) return fail('files must be an array')
  if (files.length > MAX_FILES) fail(`more than ${MAX_FILES} files`)

  const out: ManifestFile[] = []
  const paths = new Set<string>()
  const dirs = new Set<string>()
  // The same hash must always stand for the same number of bytes, so a chunk's size is well defined.
  const chunkBytes = new Map<string, number>()
  let totalChunks = 0
  let total = 0
  for (let f = 0; f < files.length; f++) {
    const file: unknown = files[f]
    const at = `files[${f}]`
    if (!isObject(file)) return fail(`${at} is not an object`)
    const path = file.path
    if (typeof path !== 'string') return fail(`${at}.path is not a string`)
    const problem = pathProblem(path)
    if (problem != null) fail(`${at}.path ${JSON.stringify(path.slice(0, 100))} ${problem}`)
    if (paths.has(path)) fail(`${at}.path ${JSON.stringify(path.slice(0, 100))} appears twice`)
    if (dirs.has(path)) fail(`${at}.path ${JSON.stringify(path.slice(0, 100))} is also a directory of another file`)
    for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
      const dir = path.slice(0, i)
      if (paths.has(dir)) fail(`${at}.path ${JSON.stringify(path.slice(0, 100))} is inside another file`)
      dirs.add(dir)
    }
    paths.add(path)
    const fsize = file.size
    if (!isSize(fsize)) return fail(`${at}.size must be a non-negative safe integer`)
    const mode = file.mode
    if (!Number.isInteger(mode) || (mode as number) < 0 || (mode as number) > MAX_MODE) fail(`${at}.mode must be an integer in [0, 0o${MAX_MODE.toString(8)}]`)
    const chunks = file.chunks
    if (!Array.isArray(chunks)) return fail(`${at}.chunks is not an array`)
    const expected = Math.ceil(fsize / cs)
    if (totalChunks + expected > MAX_CHUNKS) fail(`more than ${MAX_CHUNKS} chunks`)
    if (chunks.length !== expected) fail(`${at} has ${chunks.length} chunks; a file of ${fsize} bytes in chunks of ${cs} has ${expected}`)
    totalChunks += expected
    for (let j = 0; j < chunks.length; j++) {
      const h: unknown = chunks[j]
      if (!isChunkHash(h)) return fail(`${at}.chunks[${j}] is not a lowercase 64-digit hex SHA-256`)
      const bytes = j < expected - 1 ? cs : fsize - (expected - 1) * cs
      const seen = chunkBytes.get(h)
      if (seen == null) chunkBytes.set(h, bytes)
      else if (seen !== bytes) fail(`chunk ${h} appears with ${seen} and with ${bytes} bytes`)
    }
    total += fsize
    if (total > Number.MAX_SAFE_INTEGER) fail('the files\' sizes add up to more than a safe integer')
    out.push({ path, size: fsize, mode: mode as number, chunks: chunks.slice() as string[] })
  }
  if (total !== size) fail(`size ${size} is not the sum of the files' sizes (${total})`)
  return { version: 1, kind: kind as ContentKind, name: name as string, mediaType: mediaType as string, size: size as number, chunkSize: cs, files: out, createdAt: createdAt as number }
}

/**
 * The canonical JSON of a manifest: fixed key order, no spaces, nothing but the known keys. The
 * same manifest always gives the same bytes, so the same content id.
 */
export function encodeManifest (m: Manifest): Uint8Array {
  const files = m.files.map(f => ({ path: f.path, size: f.size, mode: f.mode, chunks: f.chunks }))
  const canonical = { version: m.version, kind: m.kind, name: m.name, mediaType: m.mediaType, size: m.size, chunkSize: m.chunkSize, createdAt: m.createdAt, files }
  return new TextEncoder().encode(JSON.stringify(canonical))
}

/**
 * Decodes manifest JSON bytes (as carried in a `content` document). Refuses JSON that is not the
 * canonical encoding of the manifest it holds, so one manifest has exactly one id.
 */
export function decodeManifest (json: Uint8Array, code: Extract<ErrorCode, 'PROTOCOL_ERROR' | 'INVALID_ARGUMENT'> = 'PROTOCOL_ERROR'): Manifest {
  if (json.length > MAX_MANIFEST_BYTES) throw new EdgelinkError(code, `invalid manifest: more than ${MAX_MANIFEST_BYTES} bytes`)
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json))
  } catch {
    throw new EdgelinkError(code, 'invalid manifest: not UTF-8 JSON')
  }
  const m = parseManifest(value, code)
  if (!Buffer.from(encodeManifest(m)).equals(Buffer.from(json.buffer, json.byteOffset, json.length))) {
    throw new EdgelinkError(code, 'invalid manifest: not in canonical form (key order, spacing or unknown keys)')
  }
  return m
}

/** The content id of manifest JSON: its SHA-256, lowercase hex. */
export function contentIdOf (json: Uint8Array): string {
  return createHash('sha256').update(json).digest('hex')
}

/** The distinct chunks of a manifest in order of first use, and the size of each. */
export interface ChunkTable {
  /** The index space of have-bitmaps: bit `i` is `hashes[i]`. */
  hashes: string[]
  sizes: number[]
  /** Sum of `sizes`: less than `manifest.size` when chunks repeat. */
  totalBytes: number
}

export function chunkTable (m: Manifest): ChunkTable {
  const seen = new Set<string>()
  const hashes: string[] = []
  const sizes: number[] = []
  let totalBytes = 0
  for (const f of m.files) {
    for (let j = 0; j < f.chunks.length; j++) {
      const h = f.chunks[j]
      if (seen.has(h)) continue
      seen.add(h)
      const bytes = fileChunkSize(m, f, j)
      hashes.push(h)
      sizes.push(bytes)
      totalBytes += bytes
    }
  }
  return { hashes, sizes, totalBytes }
}

/** Ordered, de-duplicated chunk hashes: the index space of have-bitmaps. */
export function uniqueChunks (m: Manifest): string[] { return chunkTable(m).hashes }

/** Size in bytes of chunk `index` of `uniqueChunks(m)`. O(chunks): use {@link chunkTable} in loops. */
export function chunkSizeOf (m: Manifest, index: number): number {
  const size = chunkTable(m).sizes[index]
  if (size == null) throw new EdgelinkError('INVALID_ARGUMENT', `chunk index ${index} is out of range`)
  return size
}

/** Size in bytes of chunk `j` of one file: `chunkSize` for all but the last. */
export function fileChunkSize (m: Manifest, f: ManifestFile, j: number): number {
  return j < f.chunks.length - 1 ? m.chunkSize : f.size - (f.chunks.length - 1) * m.chunkSize
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isSize (v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0
}

function describe (v: unknown): string {
  try {
    const s = JSON.stringify(v) ?? String(v)
    return s.length > 40 ? `${s.slice(0, 40)}…` : s
  } catch {
    return typeof v
  }
}
