/**
 * The local content store: chunk files on disk, manifests, have-bitmaps and chunk refcounts in
 * LevelDB. No networking: the exchange writes what it fetched with {@link ContentStore.writeChunk}
 * and {@link ContentStore.markHave}; the group layer registers manifests with
 * {@link ContentStore.addManifest} when their documents are accepted.
 *
 * On disk, under `dataDir`:
 * ```
 * chunks/ab/ab12…ef     one file per distinct chunk, named by its SHA-256 (never a LevelDB value)
 * chunks/ab/.tmp-…      a chunk being written; removed at open if a crash left it
 * ```
 *
 * Invariants: a chunk file is only ever renamed into place after its bytes were hashed, written
 * and fsynced, so a file under its hash name always holds those bytes. A bitmap bit is only set
 * for a chunk file that exists, and at open every bitmap is rebuilt from the files present, so a
 * crash can neither leave a wrong chunk in place nor make a bitmap claim a missing one.
 */
import { createHash, randomBytes, webcrypto } from 'node:crypto'
import * as nodeFs from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { statSync, type Stats } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { systemClock, type Clock, type ClockTimer } from '../clock.ts'
import { EdgelinkError, isEdgelinkError } from '../errors.ts'
import type { ChunkRefs, Store } from '../store/index.ts'
import { throwIfAborted, Mutex } from '../util.ts'
import { clearBit, hasBit, newBitmap, setBit } from './bitmap.ts'
import { directView, isDirectUnsupported, O_DIRECT_CREATE } from './direct.ts'
import { chunkTable, contentIdOf, decodeManifest, encodeManifest, isChunkHash, MAX_CHUNKS, MAX_FILES, parseManifest, pathProblem } from './manifest.ts'
import { DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, type ContentInfo, type ContentKind, type Manifest, type ManifestFile } from './types.ts'

/** The file-system calls the store makes; inject a wrapper to simulate a full or failing disk. */
export type ContentFs = Pick<typeof nodeFs, 'open' | 'rename' | 'rm' | 'mkdir' | 'readdir' | 'stat' | 'lstat'>

/** Media type given to imported OCI image layouts (the layout itself has none). */
export const OCI_LAYOUT_MEDIA_TYPE = 'application/vnd.oci.image.layout.v1'
/** Media type given to imported single files. */
export const FILE_MEDIA_TYPE = 'application/octet-stream'

export interface ContentStoreOptions {
  /**
   * Chunk size of imported content. Bigger chunks mean fewer hashes and files, smaller ones finer
   * swarming and less re-fetching after a corrupt chunk.
   * @default DEFAULT_CHUNK_SIZE (1 MiB)
   */
  chunkSize?: number
  /** @default node:fs/promises */
  fs?: ContentFs
  /** Gives `createdAt` of imported manifests and runs the bitmap flush timer. @default systemClock */
  clock?: Clock
  /**
   * Have-bits are persisted in batches: at most this long after a {@link ContentStore.markHave}…
   * @default 250
   */
  flushIntervalMs?: number
  /**
   * …or as soon as this many bits are pending. A crash loses at most these bits, and they come
   * back at the next open because bitmaps are rebuilt from the chunk files present.
   * @default 256
   */
  flushEvery?: number
  /**
   * Write chunks that arrive in page-aligned buffers (the exchange's) with O_DIRECT, past the
   * page cache: no copy into the kernel and no gigabytes of images crowding out what the host
   * caches. A file system that refuses it (EINVAL) is written through the cache from then on.
   * @default true
   */
  directIo?: boolean
}

export interface ImportOptions {
  /** @default 'oci-layout' for an OCI image layout, 'file' for a file */
  kind?: ContentKind
  /** @default the base name of the path */
  name?: string
  /** @default OCI_LAYOUT_MEDIA_TYPE or FILE_MEDIA_TYPE */
  mediaType?: string
  signal?: AbortSignal
  onProgress?: (p: ImportProgress) => void
}

export interface ImportProgress { bytes: number, totalBytes: number, files: number, totalFiles: number }

export interface ImportResult {
  manifest: Manifest
  /** The manifest's canonical JSON: what the `content` document carries. */
  json: Uint8Array
  /** The content id: SHA-256 of `json`. */
  id: string
}

export interface ExportOptions {
  signal?: AbortSignal
  /** Replace an existing file (single-file content only). @default false */
  overwrite?: boolean
}

/** What the store holds about one registered piece of content. */
interface Entry {
  id: string
  manifest: Manifest
  json: Uint8Array
  uploader: string
  hashes: string[]
  sizes: number[]
  totalBytes: number
  bits: Uint8Array
  have: number
  haveBytes: number
  dirty: boolean
}

const TMP_PREFIX = '.tmp-'
const STAT_CONCURRENCY = 32
/** Chunk hashes remembered as verified (64 GiB of 1 MiB chunks, a few MB of memory). */
const MAX_VERIFIED = 65_536
/**
 * Chunk writes an import keeps in flight. Each ends in an fsync (~5 ms for 1 MiB on a virtual
 * disk): one at a time caps an import near 90 MB/s; a few overlapping ones let the disk batch them.
 * Memory: (WRITE_WINDOW + 1) × chunkSize.
 */
const WRITE_WINDOW = 4

export class ContentStore {
  readonly dataDir: string
  readonly chunkSize: number
  private readonly chunksDir: string
  private readonly store: Store
  private readonly fs: ContentFs
  private readonly clock: Clock
  private readonly flushIntervalMs: number
  private readonly flushEvery: number
  private readonly entries = new Map<string, Entry>()
  /** Serialises registration, removal, flushes and garbage collection: everything that reads then writes refcounts. */
  private readonly lock = new Mutex()
  /** Chunks written by imports whose manifests are not registered yet: never deleted while pinned. */
  private readonly pins = new Map<string, number>()
  private readonly importPins = new Map<string, string[]>()
  /** Chunk files being deleted: a write of the same chunk waits for the deletion first. */
  private readonly deleting = new Map<string, Promise<void>>()
  /** Chunk writes under way, by hash: a deletion of the chunk waits for them first. */
  private readonly writing = new Map<string, Set<Promise<boolean>>>()
  private readonly madeDirs = new Set<string>()
  /**
   * Chunks whose file this process wrote from verified bytes or has read back and verified: a
   * `verify: 'once'` read skips hashing them again. Bounded (cleared when full).
   */
  private readonly verified = new Set<string>()
  private pendingBits = 0
  private flushTimer?: ClockTimer
  private closed = false
  /** Whether chunks in aligned buffers are written with O_DIRECT (off once the file system refused it). */
  private direct: boolean

  private constructor (dataDir: string, store: Store, options: ContentStoreOptions) {
    const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE
    if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
      throw new EdgelinkError('INVALID_ARGUMENT', `chunkSize must be an integer in [${MIN_CHUNK_SIZE}, ${MAX_CHUNK_SIZE}]`)
    }
    this.dataDir = dataDir
    this.chunkSize = chunkSize
    this.chunksDir = join(dataDir, 'chunks')
    this.store = store
    this.fs = options.fs ?? nodeFs
    this.clock = options.clock ?? systemClock
    this.flushIntervalMs = options.flushIntervalMs ?? 250
    this.flushEvery = options.flushEvery ?? 256
    this.direct = (options.directIo ?? true) && O_DIRECT_CREATE !== 0
  }

  /**
   * Opens the store: removes temp files a crash left in `chunks/`, loads every registered manifest
   * and rebuilds its bitmap from the chunk files present (one directory listing per chunk prefix,
   * not one stat per chunk).
   */
  static async open (dataDir: string, store: Store, options: ContentStoreOptions = {}): Promise<ContentStore> {
    const cs = new ContentStore(dataDir, store, options)
    try {
      await cs.fs.mkdir(cs.chunksDir, { recursive: true })
    } catch (err) {
      throw fsError(err, `cannot create ${cs.chunksDir}`)
    }
    const present = await cs.scan(true)
    const changed: Array<[string, Uint8Array]> = []
    for (const [id, record] of await store.listContent()) {
      let manifest: Manifest
      try {
        manifest = decodeManifest(new TextEncoder().encode(record.json))
      } catch (err) {
        throw new EdgelinkError('STORE_ERROR', `the stored manifest of content ${id} is corrupt`, { cause: err })
      }
      const entry = cs.newEntry(id, manifest, record.uploader)
      for (let i = 0; i < entry.hashes.length; i++) if (present.has(entry.hashes[i])) cs.setHave(entry, i)
      const stored = await store.getHave(id)
      if (stored == null || !Buffer.from(stored).equals(entry.bits)) changed.push([id, entry.bits.slice()])
      cs.entries.set(id, entry)
    }
    await store.putHaves(changed)
    return cs
  }

  // --- chunks ---------------------------------------------------------------------------

  /** Where chunk `hash` lives. */
  chunkPath (hash: string): string { return join(this.chunksDir, hash.slice(0, 2), hash) }

  /**
   * Stores a chunk after checking that its SHA-256 is `hash`; on a mismatch throws `CHUNK_CORRUPT`
   * and writes nothing. Returns whether the chunk was new (false when it was already held).
   *
   * `digest` is for a caller that hashed exactly these bytes itself, as the exchange does while
   * they arrive (then they are not hashed twice); a `digest` other than `hash` is refused the
   * same way. Bytes in a page-aligned buffer (see `direct.ts`) are written with O_DIRECT.
   *
   * The file is written under a temp name, flushed to the disk (fdatasync), then renamed. The
   * rename is not flushed: after a power cut a received chunk may be missing, never wrong, and
   * the bitmap, rebuilt from the files present at open, asks for it again.
   */
  async writeChunk (hash: string, bytes: Uint8Array, digest?: string): Promise<boolean> {
    assertHash(hash)
    // Hashed on libuv's thread pool (WebCrypto's digest is an async job), not on the event loop
    // that also decrypts and serves: ~0.8 ms per MiB the network side keeps.
    const actual = digest ?? await sha256Async(bytes)
    if (actual !== hash) throw new EdgelinkError('CHUNK_CORRUPT', `chunk ${hash} does not match its hash (got ${actual})`)
    return await this.storeVerified(hash, bytes, { syncDir: false })
  }

  /**
   * Reads a chunk. With `verify` (the default) its hash is checked; a corrupt file is deleted, its
   * bits cleared, and `CHUNK_CORRUPT` thrown, so it is fetched again. With `verify: 'once'` the
   * check is skipped for a chunk this process wrote from verified bytes or already verified (the
   * serving path: the receiver verifies every chunk anyway, so this only catches bit rot early).
   * With `into`, the bytes are read into the buffer it returns for the file's size (at least that
   * long; a view of the first `size` bytes is returned) instead of a new one.
   */
  async readChunk (hash: string, options: { verify?: boolean | 'once', into?: (size: number) => Uint8Array } = {}): Promise<Uint8Array> {
    assertHash(hash)
    let bytes: Uint8Array
    try {
      const fh = await this.fs.open(this.chunkPath(hash), 'r')
      try {
        const { size } = await fh.stat()
        if (size > MAX_CHUNK_SIZE) throw new EdgelinkError('STORE_ERROR', `chunk file ${hash} is ${size} bytes, more than any chunk`)
        if (options.into == null) {
          bytes = await fh.readFile()
        } else {
          const buf = options.into(size)
          if (buf.byteLength < size) throw new EdgelinkError('INVALID_ARGUMENT', `a ${buf.byteLength}-byte buffer cannot hold chunk ${hash} (${size} bytes)`)
          bytes = buf.subarray(0, size)
          await readFully(fh, bytes, 0, this.chunkPath(hash))
        }
      } finally {
        await fh.close()
      }
    } catch (err: any) {
      if (err?.code === 'ENOENT') throw new EdgelinkError('CHUNK_MISSING', `chunk ${hash} is not in the local store`)
      throw fsError(err, `cannot read chunk ${hash}`)
    }
    const verify = options.verify ?? true
    if (verify === false || (verify === 'once' && this.verified.has(hash))) return bytes
    // Checked off the event loop, like writeChunk.
    if (await sha256Async(bytes) !== hash) {
      await this.dropCorrupt(hash)
      throw new EdgelinkError('CHUNK_CORRUPT', `chunk ${hash} on disk does not match its hash; it was removed`)
    }
    this.noteVerified(hash)
    return bytes
  }

  private noteVerified (hash: string): void {
    if (this.verified.size >= MAX_VERIFIED) this.verified.clear()
    this.verified.add(hash)
  }

  async hasChunk (hash: string): Promise<boolean> {
    assertHash(hash)
    return await this.exists(this.chunkPath(hash))
  }

  // --- import ---------------------------------------------------------------------------

  /**
   * Chunks a regular file or an OCI image layout directory into the store and returns its
   * manifest. The manifest is not registered (see {@link addManifest}); its chunks are kept, pinned
   * against removal, until it is, or until {@link discardImport}. Files are streamed a chunk at a
   * time, never read whole. On failure or abort, the chunks this import created are deleted again.
   */
  async importPath (path: string, options: ImportOptions = {}): Promise<ImportResult> {
    this.assertOpen()
    const { signal } = options
    throwIfAborted(signal)
    const st = await this.statOrThrow(path)
    let sources: Source[]
    let kind: ContentKind
    let mediaType: string
    if (st.isFile()) {
      if (options.kind === 'oci-layout') throw new EdgelinkError('INVALID_ARGUMENT', `${path} is a file, not an OCI image layout`)
      sources = [{ abs: path, path: basename(path), size: st.size, mode: st.mode & 0o777 }]
      kind = options.kind ?? 'file'
      mediaType = options.mediaType ?? FILE_MEDIA_TYPE
    } else if (st.isDirectory()) {
      sources = await this.layoutSources(path).catch(err => { throw fsError(err, `cannot read ${path}`) })
      kind = options.kind ?? 'oci-layout'
      mediaType = options.mediaType ?? OCI_LAYOUT_MEDIA_TYPE
    } else {
      throw new EdgelinkError('INVALID_ARGUMENT', `${path} is neither a regular file nor a directory`)
    }
    const cs = this.chunkSize
    const totalChunks = sources.reduce((n, s) => n + Math.ceil(s.size / cs), 0)
    if (sources.length > MAX_FILES) throw new EdgelinkError('INVALID_ARGUMENT', `${path} has ${sources.length} files; content may have at most ${MAX_FILES}`)
    if (totalChunks > MAX_CHUNKS) throw new EdgelinkError('INVALID_ARGUMENT', `${path} needs ${totalChunks} chunks of ${cs} bytes; content may have at most ${MAX_CHUNKS} (use a bigger chunk size)`)

    const totalBytes = sources.reduce((n, s) => n + s.size, 0)
    const progress = { bytes: 0, totalBytes, files: 0, totalFiles: sources.length }
    const job: ImportJob = { pinned: [], created: new Set(), seen: new Set() }
    const files: ManifestFile[] = []
    try {
      options.onProgress?.({ ...progress })
      for (const src of sources) {
        const chunks = await this.importFile(src, job, progress, options)
        files.push({ path: src.path, size: src.size, mode: src.mode, chunks })
        progress.files++
        options.onProgress?.({ ...progress })
      }
      const manifest = parseManifest({
        version: 1, kind, name: options.name ?? basename(path), mediaType, size: totalBytes, chunkSize: cs, files, createdAt: this.clock.now()
      }, 'INVALID_ARGUMENT')
      const json = encodeManifest(manifest)
      const id = contentIdOf(json)
      this.importPins.set(id, [...(this.importPins.get(id) ?? []), ...job.pinned])
      return { manifest, json, id }
    } catch (err) {
      await this.lock.run(async () => {
        this.unpin(job.pinned)
        await this.deleteUnreferenced([...job.created])
      }).catch(() => {}) // what is left is unreferenced, and gc() removes it
      throw err
    }
  }

  /** Forgets an import that will never be registered: unpins its chunks and deletes those no manifest uses. */
  async discardImport (id: string): Promise<void> {
    await this.lock.run(async () => {
      const pinned = this.importPins.get(id)
      if (pinned == null) return
      this.importPins.delete(id)
      this.unpin(pinned)
      if (!this.entries.has(id)) await this.deleteUnreferenced([...new Set(pinned)])
    })
  }

  // --- manifests ------------------------------------------------------------------------

  /**
   * Registers content: records the manifest, counts one reference on each of its distinct chunks,
   * and starts its bitmap from the chunks already held. `id` must be the id of the manifest's
   * canonical JSON. Idempotent: returns false when the content was already registered.
   */
  async addManifest (id: string, manifest: Manifest, uploader: string): Promise<boolean> {
    this.assertOpen()
    const m = parseManifest(manifest, 'INVALID_ARGUMENT')
    const json = encodeManifest(m)
    if (contentIdOf(json) !== id) throw new EdgelinkError('INVALID_ARGUMENT', `content id ${String(id).slice(0, 80)} is not the id of this manifest`)
    if (typeof uploader !== 'string') throw new EdgelinkError('INVALID_ARGUMENT', 'uploader must be a string')
    return await this.lock.run(async () => {
      const added = !this.entries.has(id)
      if (added) {
        const entry = this.newEntry(id, m, uploader)
        const held = await mapLimit(entry.hashes, STAT_CONCURRENCY, async h => await this.exists(this.chunkPath(h)))
        for (let i = 0; i < held.length; i++) if (held[i]) this.setHave(entry, i)
        const refs = await this.store.getChunkRefs(entry.hashes)
        const next: ChunkRefs = new Map()
        for (let i = 0; i < entry.hashes.length; i++) next.set(entry.hashes[i], refs[i] + 1)
        await this.store.putContent(id, { json: new TextDecoder().decode(json), uploader }, entry.bits.slice(), next)
        this.entries.set(id, entry)
      }
      // Registered: the refcounts protect the chunks of its import from now on.
      const pinned = this.importPins.get(id)
      if (pinned != null) {
        this.importPins.delete(id)
        this.unpin(pinned)
      }
      return added
    })
  }

  /**
   * Forgets content: drops one reference from each of its distinct chunks and deletes the chunk
   * files no manifest uses any more. Returns false when the content was not registered.
   */
  async removeManifest (id: string): Promise<boolean> {
    this.assertOpen()
    return await this.lock.run(async () => {
      const entry = this.entries.get(id)
      if (entry == null) return false
      const refs = await this.store.getChunkRefs(entry.hashes)
      const next: ChunkRefs = new Map()
      const freed: string[] = []
      for (let i = 0; i < entry.hashes.length; i++) {
        const n = Math.max(0, refs[i] - 1)
        next.set(entry.hashes[i], n)
        if (n === 0) freed.push(entry.hashes[i])
      }
      await this.store.deleteContent(id, next)
      // A crash from here on leaves unreferenced chunk files, which gc() removes; never a dangling
      // reference. The content stays listed until its files are gone: "removed" means removed.
      try {
        await this.deleteFiles(freed)
      } finally {
        this.entries.delete(id)
      }
      return true
    })
  }

  /** Deletes chunk files that no registered manifest uses and no import has pinned. Returns how many. */
  async gc (): Promise<number> {
    this.assertOpen()
    return await this.lock.run(async () => {
      const present = [...await this.scan(false)]
      const refs = await this.store.getChunkRefs(present)
      const free = present.filter((h, i) => refs[i] === 0)
      return await this.deleteFiles(free)
    })
  }

  // --- have-bitmaps ---------------------------------------------------------------------

  /**
   * Records that this host holds chunk `index` of `uniqueChunks(manifest)`, after checking that its
   * file exists (write it with {@link writeChunk} first). Returns true when this completed the
   * content. Persisted in batches (see `flushEvery`).
   */
  async markHave (id: string, index: number): Promise<boolean> {
    this.assertOpen()
    const entry = this.entry(id)
    if (!Number.isInteger(index) || index < 0 || index >= entry.hashes.length) {
      throw new EdgelinkError('INVALID_ARGUMENT', `chunk index ${index} is out of range for content ${id} (${entry.hashes.length} chunks)`)
    }
    if (hasBit(entry.bits, index)) return false
    const hash = entry.hashes[index]
    // A chunk this process wrote or verified is there (deleting one forgets it): no stat needed.
    if (!this.verified.has(hash) && !await this.exists(this.chunkPath(hash))) throw new EdgelinkError('CHUNK_MISSING', `chunk ${hash} of content ${id} is not on disk`)
    // Removed or re-registered while we looked: the bit would land in a bitmap nobody reads.
    if (this.entries.get(id) !== entry || hasBit(entry.bits, index)) return false
    this.setHave(entry, index)
    entry.dirty = true
    this.pendingBits++
    if (this.pendingBits >= this.flushEvery) {
      await this.flush()
    } else if (this.flushTimer == null) {
      this.flushTimer = this.clock.setTimeout(() => {
        this.flushTimer = undefined
        this.flush().catch(() => {})
      }, this.flushIntervalMs)
    }
    return entry.have === entry.hashes.length
  }

  /** Persists pending have-bits now. */
  async flush (): Promise<void> {
    if (this.flushTimer != null) {
      this.clock.clearTimeout(this.flushTimer)
      this.flushTimer = undefined
    }
    await this.lock.run(async () => {
      const dirty = [...this.entries.values()].filter(e => e.dirty)
      this.pendingBits = 0
      for (const e of dirty) e.dirty = false
      try {
        await this.store.putHaves(dirty.map(e => [e.id, e.bits.slice()]))
      } catch (err) {
        for (const e of dirty) e.dirty = true
        throw err
      }
    })
  }

  /** A copy of the have-bitmap of `id` (MSB-first, see bitmap.ts). */
  bitmap (id: string): Uint8Array { return this.entry(id).bits.slice() }

  /** Indexes (into `uniqueChunks(manifest)`) of the chunks this host still lacks, in order. */
  missing (id: string): number[] {
    const e = this.entry(id)
    const out: number[] = []
    for (let i = 0; i < e.hashes.length; i++) if (!hasBit(e.bits, i)) out.push(i)
    return out
  }

  /** Hashes and sizes of the distinct chunks of `id`, in bitmap order. Do not modify. */
  chunks (id: string): { readonly hashes: readonly string[], readonly sizes: readonly number[] } {
    const e = this.entry(id)
    return { hashes: e.hashes, sizes: e.sizes }
  }

  has (id: string): boolean { return this.entries.has(id) }

  /** The manifest of `id`, its canonical JSON, and its uploader. */
  get (id: string): { manifest: Manifest, json: Uint8Array, uploader: string } {
    const e = this.entry(id)
    return { manifest: e.manifest, json: e.json, uploader: e.uploader }
  }

  info (id: string): ContentInfo { return toInfo(this.entry(id)) }

  list (): ContentInfo[] { return [...this.entries.values()].map(toInfo) }

  // --- export ---------------------------------------------------------------------------

  /**
   * Writes content back byte for byte. Single-file content goes to the file `dest`, or to
   * `dest/<file name>` when `dest` is a directory; anything else (an OCI layout) becomes the
   * directory `dest`, which must not exist or be empty. Everything is written next to its final
   * place under a temp name and renamed at the end, so a failed export leaves nothing behind.
   * Returns the path written.
   */
  async export (id: string, dest: string, options: ExportOptions = {}): Promise<string> {
    this.assertOpen()
    const { signal } = options
    throwIfAborted(signal)
    const e = this.entry(id)
    if (e.have < e.hashes.length) {
      throw new EdgelinkError('NOT_COMPLETE', `content ${id} is not complete here: ${e.have} of ${e.hashes.length} chunks`)
    }
    const m = e.manifest
    const destStat = await this.statOrUndefined(dest)
    if (m.kind !== 'oci-layout' && m.files.length === 1) {
      const file = m.files[0]
      const target = destStat?.isDirectory() === true ? join(dest, basename(file.path)) : dest
      const targetStat = target === dest ? destStat : await this.statOrUndefined(target)
      if (targetStat != null && (options.overwrite !== true || !targetStat.isFile())) {
        throw new EdgelinkError('FILE_EXISTS', `${target} already exists`)
      }
      const tmp = tempSibling(target)
      try {
        await this.exportFile(e, file, tmp, signal)
        await this.fs.rename(tmp, target)
      } catch (err) {
        await this.fs.rm(tmp, { force: true }).catch(() => {})
        throw exportError(err, target)
      }
      await this.syncDir(dirname(target))
      return target
    }
    if (destStat != null) {
      if (!destStat.isDirectory()) throw new EdgelinkError('FILE_EXISTS', `${dest} exists and is not a directory`)
      if ((await this.fs.readdir(dest)).length > 0) throw new EdgelinkError('FILE_EXISTS', `${dest} is not empty`)
    }
    const tmp = tempSibling(dest)
    try {
      await this.fs.mkdir(tmp, { mode: 0o755 })
      for (const file of m.files) {
        const parts = file.path.split('/')
        if (parts.length > 1) await this.fs.mkdir(join(tmp, ...parts.slice(0, -1)), { recursive: true, mode: 0o755 })
        await this.exportFile(e, file, join(tmp, ...parts), signal)
      }
      // Renaming onto an empty directory replaces it (rename(2)); onto a new name creates it.
      await this.fs.rename(tmp, dest)
    } catch (err) {
      await this.fs.rm(tmp, { recursive: true, force: true }).catch(() => {})
      throw exportError(err, dest)
    }
    await this.syncDir(dirname(dest))
    return dest
  }

  /** Persists pending bits and stops the flush timer. Does not close the LevelDB store (the caller owns it). Idempotent. */
  async close (): Promise<void> {
    if (this.closed) return
    await this.flush()
    this.closed = true
  }

  // --- internals ------------------------------------------------------------------------

  private assertOpen (): void {
    if (this.closed) throw new EdgelinkError('NOT_STARTED', 'the content store is closed')
  }

  private entry (id: string): Entry {
    const e = this.entries.get(id)
    if (e == null) throw new EdgelinkError('UNKNOWN_CONTENT', `no content ${String(id).slice(0, 80)} on this host`)
    return e
  }

  private newEntry (id: string, manifest: Manifest, uploader: string): Entry {
    const t = chunkTable(manifest)
    return {
      id, manifest, json: encodeManifest(manifest), uploader, hashes: t.hashes, sizes: t.sizes, totalBytes: t.totalBytes,
      bits: newBitmap(t.hashes.length), have: 0, haveBytes: 0, dirty: false
    }
  }

  private setHave (e: Entry, i: number): void {
    if (hasBit(e.bits, i)) return
    setBit(e.bits, i)
    e.have++
    e.haveBytes += e.sizes[i]
  }

  /** Lists chunk files (one readdir per prefix directory); with `clean`, removes temp files too. */
  private async scan (clean: boolean): Promise<Set<string>> {
    const present = new Set<string>()
    let prefixes: string[]
    try {
      prefixes = await this.fs.readdir(this.chunksDir)
    } catch (err) {
      throw fsError(err, `cannot list ${this.chunksDir}`)
    }
    for (const prefix of prefixes) {
      if (!/^[0-9a-f]{2}$/.test(prefix)) continue
      const dir = join(this.chunksDir, prefix)
      let names: string[]
      try {
        names = await this.fs.readdir(dir)
      } catch (err: any) {
        if (err?.code === 'ENOTDIR') continue
        throw fsError(err, `cannot list ${dir}`)
      }
      for (const name of names) {
        if (name.startsWith(TMP_PREFIX)) {
          if (clean) await this.fs.rm(join(dir, name), { force: true, recursive: true })
        } else if (isChunkHash(name) && name.startsWith(prefix)) {
          present.add(name)
        }
      }
    }
    return present
  }

  /**
   * Writes already verified bytes: temp file (O_DIRECT when `bytes` allow it), flushed to disk,
   * renamed; then, with `syncDir`, the directory flushed too, so the new name survives a power cut
   * (imports: the uploader may hold the only copy).
   */
  private async storeVerified (hash: string, bytes: Uint8Array, options: { syncDir: boolean }): Promise<boolean> {
    // A deletion of the same chunk waits for this write to land, then deletes it (deleteFiles).
    const p = this.writeFile(hash, bytes, options)
    const writes = this.writing.get(hash) ?? new Set()
    this.writing.set(hash, writes.add(p))
    try {
      return await p
    } finally {
      writes.delete(p)
      if (writes.size === 0 && this.writing.get(hash) === writes) this.writing.delete(hash)
    }
  }

  private async writeFile (hash: string, bytes: Uint8Array, options: { syncDir: boolean }): Promise<boolean> {
    const deleting = this.deleting.get(hash)
    if (deleting != null) await deleting
    const final = this.chunkPath(hash)
    if (await this.exists(final)) return false
    const dir = dirname(final)
    const tmp = join(dir, `${TMP_PREFIX}${hash.slice(0, 16)}-${randomBytes(6).toString('hex')}`)
    let fh: FileHandle | undefined
    try {
      if (!this.madeDirs.has(dir)) {
        await this.fs.mkdir(dir, { recursive: true })
        this.madeDirs.add(dir)
      }
      const view = this.direct ? directView(bytes) : undefined
      let written = false
      if (view != null) {
        try {
          fh = await this.fs.open(tmp, O_DIRECT_CREATE, 0o644)
          const { bytesWritten } = await fh.write(view, 0, view.length, 0)
          // A short direct write leaves an unaligned rest that O_DIRECT cannot write: the disk is full.
          if (bytesWritten !== view.length) throw Object.assign(new Error(`short write (${bytesWritten} of ${view.length} bytes)`), { code: 'ENOSPC' })
          if (view.length !== bytes.length) await fh.truncate(bytes.length)
          await fh.datasync()
          written = true
        } catch (err) {
          if (!isDirectUnsupported(err)) throw err
          // This file system does not do O_DIRECT (or not with these sizes): the page cache from now on.
          this.direct = false
          await fh?.close().catch(() => {})
          fh = undefined
          await this.fs.rm(tmp, { force: true })
        }
      }
      if (!written) {
        fh = await this.fs.open(tmp, 'wx', 0o644)
        await writeAll(fh, bytes)
        await fh.sync()
      }
      await fh?.close()
      fh = undefined
      await this.fs.rename(tmp, final)
      this.noteVerified(hash)
    } catch (err) {
      await fh?.close().catch(() => {})
      await this.fs.rm(tmp, { force: true }).catch(() => {})
      throw fsError(err, `cannot write chunk ${hash} under ${this.chunksDir}`)
    }
    if (options.syncDir) await this.syncDir(dir)
    return true
  }

  private async dropCorrupt (hash: string): Promise<void> {
    this.verified.delete(hash)
    await this.fs.rm(this.chunkPath(hash), { force: true }).catch(() => {})
    for (const e of this.entries.values()) {
      const i = e.hashes.indexOf(hash)
      if (i === -1 || !hasBit(e.bits, i)) continue
      clearBit(e.bits, i)
      e.have--
      e.haveBytes -= e.sizes[i]
      e.dirty = true
    }
    await this.flush().catch(() => {})
  }

  private unpin (hashes: string[]): void {
    for (const h of hashes) {
      const n = (this.pins.get(h) ?? 0) - 1
      if (n > 0) this.pins.set(h, n)
      else this.pins.delete(h)
    }
  }

  /** Call under the lock: deletes those of `hashes` that no manifest references. */
  private async deleteUnreferenced (hashes: string[]): Promise<void> {
    const refs = await this.store.getChunkRefs(hashes)
    await this.deleteFiles(hashes.filter((_, i) => refs[i] === 0))
  }

  /** Call under the lock: deletes chunk files, skipping pinned ones. */
  private async deleteFiles (hashes: string[]): Promise<number> {
    let n = 0
    for (const hash of hashes) {
      if (this.pins.has(hash)) continue
      // A write of it under way (a download that had it in flight) would put it back after the rm.
      const writes = this.writing.get(hash)
      if (writes != null) await Promise.allSettled(writes)
      this.verified.delete(hash)
      const p = this.fs.rm(this.chunkPath(hash), { force: true })
      this.deleting.set(hash, p)
      try {
        await p
        n++
      } catch (err) {
        throw fsError(err, `cannot delete chunk ${hash}`)
      } finally {
        this.deleting.delete(hash)
      }
    }
    return n
  }

  /**
   * Streams one file into chunks. Up to {@link WRITE_WINDOW} chunk writes are in flight while the
   * next chunk is read and hashed, so their fsyncs overlap.
   */
  private async importFile (src: Source, job: ImportJob, progress: ImportProgress, options: ImportOptions): Promise<string[]> {
    const cs = this.chunkSize
    const n = Math.ceil(src.size / cs)
    const chunks: string[] = []
    const whole = digestOf(src.path)
    const inflight = new Set<Promise<void>>()
    let failure: { err: unknown } | undefined
    const done = (len: number): void => {
      progress.bytes += len
      options.onProgress?.({ ...progress })
    }
    let fh: FileHandle | undefined
    try {
      fh = await this.fs.open(src.abs, 'r')
      for (let j = 0; j < n; j++) {
        if (failure != null) throw failure.err
        throwIfAborted(options.signal)
        const len = j < n - 1 ? cs : src.size - j * cs
        const buf = Buffer.allocUnsafeSlow(len)
        await readFully(fh, buf, j * cs, src.abs)
        const hash = sha256(buf)
        whole?.hash.update(buf)
        chunks.push(hash)
        if (job.seen.has(hash)) {
          done(len)
          continue
        }
        job.seen.add(hash)
        // Pin before looking: a removal running now must not delete a chunk we are about to rely on.
        this.pins.set(hash, (this.pins.get(hash) ?? 0) + 1)
        job.pinned.push(hash)
        const write: Promise<void> = this.storeVerified(hash, buf, { syncDir: true }).then(isNew => {
          if (isNew) job.created.add(hash)
          done(len)
        }, err => { failure ??= { err } }).finally(() => inflight.delete(write))
        inflight.add(write)
        while (inflight.size >= WRITE_WINDOW) await Promise.race(inflight)
      }
      await Promise.all(inflight)
      if (failure != null) throw failure.err
      const extra = await fh.read(Buffer.alloc(1), 0, 1, src.size)
      if (extra.bytesRead > 0) throw new EdgelinkError('INVALID_ARGUMENT', `${src.abs} grew while it was being imported`)
    } catch (err) {
      await Promise.all(inflight)
      if (isEdgelinkError(err)) throw err
      throw fsError(err, `cannot import ${src.abs}`)
    } finally {
      await fh?.close().catch(() => {})
    }
    if (whole != null && whole.hash.digest('hex') !== whole.hex) {
      throw new EdgelinkError('INVALID_ARGUMENT', `${src.abs} does not match its digest ${whole.alg}:${whole.hex}`)
    }
    return chunks
  }

  /** The files of an OCI image layout: oci-layout, index.json, then every blob, sorted by path. */
  private async layoutSources (dir: string): Promise<Source[]> {
    const out: Source[] = []
    const add = async (rel: string, required: boolean): Promise<void> => {
      const abs = join(dir, ...rel.split('/'))
      const st = await this.lstatOrUndefined(abs)
      if (st == null && !required) return
      if (st == null || !st.isFile()) {
        throw new EdgelinkError('INVALID_ARGUMENT', `${dir} is not an OCI image layout: ${rel} is missing or not a regular file (only single files and OCI image layouts can be imported)`)
      }
      out.push({ abs, path: rel, size: st.size, mode: st.mode & 0o777 })
    }
    await add('oci-layout', true)
    await add('index.json', true)
    const blobs = join(dir, 'blobs')
    const bst = await this.lstatOrUndefined(blobs)
    if (bst == null) return out
    if (!bst.isDirectory()) throw new EdgelinkError('INVALID_ARGUMENT', `${blobs} is not a directory`)
    const blobPaths: string[] = []
    for (const alg of (await this.fs.readdir(blobs)).sort()) {
      const algDir = join(blobs, alg)
      if ((await this.lstatOrUndefined(algDir))?.isDirectory() !== true) throw new EdgelinkError('INVALID_ARGUMENT', `${algDir} is not a directory`)
      for (const name of (await this.fs.readdir(algDir)).sort()) {
        const rel = `blobs/${alg}/${name}`
        const problem = pathProblem(rel)
        if (problem != null) throw new EdgelinkError('INVALID_ARGUMENT', `${rel} ${problem}`)
        blobPaths.push(rel)
      }
    }
    for (const rel of blobPaths) await add(rel, true)
    return out
  }

  private async exportFile (e: Entry, file: ManifestFile, path: string, signal?: AbortSignal): Promise<void> {
    const fh = await this.fs.open(path, 'wx', file.mode)
    try {
      let pos = 0
      for (const hash of file.chunks) {
        throwIfAborted(signal)
        const bytes = await this.readChunk(hash)
        await writeAll(fh, bytes, pos)
        pos += bytes.length
      }
      if (pos !== file.size) throw new EdgelinkError('STORE_ERROR', `${file.path} of content ${e.id} came out ${pos} bytes long, not ${file.size}`)
      await fh.chmod(file.mode) // the umask applied at open
      await fh.sync()
    } finally {
      await fh.close().catch(() => {})
    }
  }

  private async exists (path: string): Promise<boolean> {
    if (this.fs === nodeFs) {
      // A plain lookup: the usual answer, "not here yet" (twice per received chunk), costs a
      // fs/promises stat an Error with a stack trace, ~40 µs of CPU; this takes ~4 µs.
      try {
        return statSync(path, { throwIfNoEntry: false }) != null
      } catch (err: any) {
        if (err?.code === 'ENOTDIR') return false
        throw fsError(err, `cannot stat ${path}`)
      }
    }
    return (await this.statOrUndefined(path)) != null
  }

  private async statOrUndefined (path: string): Promise<Stats | undefined> {
    try {
      return await this.fs.stat(path)
    } catch (err: any) {
      if (err?.code === 'ENOENT' || err?.code === 'ENOTDIR') return undefined
      throw fsError(err, `cannot stat ${path}`)
    }
  }

  private async lstatOrUndefined (path: string): Promise<Stats | undefined> {
    try {
      return await this.fs.lstat(path)
    } catch (err: any) {
      if (err?.code === 'ENOENT' || err?.code === 'ENOTDIR') return undefined
      throw fsError(err, `cannot stat ${path}`)
    }
  }

  private async statOrThrow (path: string): Promise<Stats> {
    const st = await this.statOrUndefined(path)
    if (st == null) throw new EdgelinkError('INVALID_ARGUMENT', `${path} does not exist`)
    return st
  }

  /** Makes a rename or new entry in `dir` durable. Some file systems cannot fsync a directory: then best effort. */
  private async syncDir (dir: string): Promise<void> {
    let fh: FileHandle | undefined
    try {
      fh = await this.fs.open(dir, 'r')
      await fh.sync()
    } catch {
    } finally {
      await fh?.close().catch(() => {})
    }
  }
}

/** What one import holds: the chunks it pinned and created, and the hashes it has seen. */
interface ImportJob {
  pinned: string[]
  created: Set<string>
  seen: Set<string>
}

interface Source {
  /** Where to read it. */
  abs: string
  /** Its path inside the content. */
  path: string
  size: number
  mode: number
}

function toInfo (e: Entry): ContentInfo {
  return {
    id: e.id,
    manifest: e.manifest,
    uploader: e.uploader,
    totalChunks: e.hashes.length,
    haveChunks: e.have,
    haveBytes: e.haveBytes,
    totalBytes: e.totalBytes,
    complete: e.have === e.hashes.length
  }
}

function sha256 (bytes: Uint8Array): string { return createHash('sha256').update(bytes).digest('hex') }

/** SHA-256 off the event loop: small inputs are hashed in place (a thread hop costs more). */
async function sha256Async (bytes: Uint8Array): Promise<string> {
  if (bytes.length < 64 * 1024) return sha256(bytes)
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)).toString('hex')
}

function assertHash (hash: string): void {
  if (!isChunkHash(hash)) throw new EdgelinkError('INVALID_ARGUMENT', 'a chunk hash is a lowercase 64-digit hex SHA-256')
}

/** For an OCI blob (`blobs/sha256/<hex>`, `blobs/sha512/<hex>`), the digest its bytes must have. */
function digestOf (path: string): { alg: string, hex: string, hash: ReturnType<typeof createHash> } | undefined {
  const m = /^blobs\/(sha256|sha512)\/([0-9a-f]+)$/.exec(path)
  if (m == null) return undefined
  if (m[2].length !== (m[1] === 'sha256' ? 64 : 128)) return undefined
  return { alg: m[1], hex: m[2], hash: createHash(m[1]) }
}

function tempSibling (path: string): string {
  return join(dirname(path), `.${basename(path)}.edgelink-${randomBytes(6).toString('hex')}`)
}

async function writeAll (fh: FileHandle, bytes: Uint8Array, position = 0): Promise<void> {
  let off = 0
  while (off < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, off, bytes.length - off, position + off)
    off += bytesWritten
  }
}

async function readFully (fh: FileHandle, buf: Uint8Array, position: number, path: string): Promise<void> {
  let off = 0
  while (off < buf.length) {
    const { bytesRead } = await fh.read(buf, off, buf.length - off, position + off)
    if (bytesRead === 0) throw new EdgelinkError('INVALID_ARGUMENT', `${path} shrank while it was being read`)
    off += bytesRead
  }
}

async function mapLimit<T, R> (items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i])
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

/** Maps a file-system error to an EdgelinkError: a full disk or quota to DISK_FULL, anything else to STORE_ERROR. */
function fsError (err: unknown, what: string): EdgelinkError {
  if (isEdgelinkError(err)) return err
  const code = (err as any)?.code
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new EdgelinkError('DISK_FULL', `${what}: no space left on the device${code === 'EDQUOT' ? ' (disk quota exceeded)' : ''}; free some space or remove content`, { cause: err })
  }
  return new EdgelinkError('STORE_ERROR', `${what}: ${(err as any)?.message ?? String(err)}`, { cause: err })
}

function exportError (err: unknown, dest: string): EdgelinkError {
  const code = (err as any)?.code
  if (code === 'ENOENT' || code === 'ENOTDIR') return new EdgelinkError('INVALID_ARGUMENT', `cannot export to ${dest}: its parent directory does not exist`, { cause: err })
  return fsError(err, `cannot export to ${dest}`)
}
