import { EventEmitter } from 'node:events'
import type { Libp2p } from 'libp2p'
import type { Clock } from '../clock.ts'
import { EdgelinkError, isEdgelinkError } from '../errors.ts'
import type { DocRecord, DocumentService } from '../gossip/documents.ts'
import type { Logger } from '../logger.ts'
import type { Store } from '../store/index.ts'
import { ContentExchange, type ChunkSource, type ExchangeOptions } from './exchange.ts'
import { contentIdOf, encodeManifest, parseManifest } from './manifest.ts'
import { ContentStore } from './store.ts'
import type { ContentInfo, ContentKind, ContentProgress, Manifest } from './types.ts'

export interface ContentContext {
  readonly id: string
  readonly dataDir: string
  readonly clock: Clock
  readonly log: Logger
  node(): Libp2p | undefined
  isMember(id: string): boolean
  store(): Store
  docs(): DocumentService
  /** The roster term this host holds (documents are written in it). */
  term(): number
  /** Undefined when this host may upload now, else the refusal (leader / control plane rule). */
  mayUpload(): EdgelinkError | undefined
}

export interface ContentEvents {
  'content:progress': [ContentProgress]
  'content:complete': [ContentInfo]
  'content:added': [ContentInfo]
  'content:removed': [{ id: string, name: string }]
}

/**
 * Content on this host: the local store, the swarm exchange and the group documents that announce
 * manifests. Uploading writes the chunks locally and then a `content` document (id = content id,
 * body = manifest) signed by the uploader; every host that accepts the document fetches the
 * chunks it lacks from every member that has them.
 */
export class ContentService extends EventEmitter<ContentEvents> {
  private readonly ctx: ContentContext
  private readonly exchangeOptions: ExchangeOptions
  private readonly chunkSize?: number
  private cs?: ContentStore
  private exchange?: ContentExchange
  private readonly downloads = new Map<string, AbortController>()

  constructor (ctx: ContentContext, options: ExchangeOptions & { chunkSize?: number } = {}) {
    super()
    this.ctx = ctx
    const { chunkSize, ...exchangeOptions } = options
    this.exchangeOptions = exchangeOptions
    if (chunkSize != null) this.chunkSize = chunkSize
  }

  async start (): Promise<void> {
    this.cs = await ContentStore.open(this.ctx.dataDir, this.ctx.store(), this.chunkSize != null ? { chunkSize: this.chunkSize } : {})
    this.exchange = new ContentExchange({
      node: () => this.ctx.node(),
      isMember: (id) => this.ctx.isMember(id),
      source: chunkSource(this.cs),
      clock: this.ctx.clock,
      log: this.ctx.log
    }, this.exchangeOptions)
    this.exchange.on('progress', (p) => {
      const name = this.cs?.has(p.id) === true ? this.cs.get(p.id).manifest.name : ''
      this.emit('content:progress', { ...p, name })
    })
    await this.exchange.start()
    // Resume: every announced, incomplete content continues from its bitmap.
    for (const rec of this.ctx.docs().all()) this.onDocument(rec)
  }

  async stop (): Promise<void> {
    for (const ctl of this.downloads.values()) ctl.abort()
    this.downloads.clear()
    await this.exchange?.stop()
    await this.cs?.close()
  }

  /** Validates a `content` document body: a manifest whose canonical JSON hashes to the document id. */
  static parseDocument (id: string, body: unknown, deleted: boolean): unknown {
    if (deleted) return {}
    const m = parseManifest(body)
    if (contentIdOf(encodeManifest(m)) !== id) throw new EdgelinkError('PROTOCOL_ERROR', 'the manifest does not hash to the content id')
    return m
  }

  /** Imports a file or an OCI layout and announces it to the group. */
  async add (path: string, opts: { kind?: ContentKind, name?: string, signal?: AbortSignal, onProgress?: (p: { bytes: number, totalBytes: number }) => void } = {}): Promise<ContentInfo> {
    const refusal = this.ctx.mayUpload()
    if (refusal != null) throw refusal
    const cs = this.store()
    const imported = await cs.importPath(path, { ...(opts.kind != null ? { kind: opts.kind } : {}), ...(opts.name != null ? { name: opts.name } : {}), ...(opts.signal != null ? { signal: opts.signal } : {}), ...(opts.onProgress != null ? { onProgress: opts.onProgress } : {}) })
    try {
      await cs.addManifest(imported.id, imported.manifest, this.ctx.id)
      const existing = this.ctx.docs().get('content', imported.id)
      if (existing == null || existing.deleted) await this.ctx.docs().write('content', imported.id, imported.manifest, { term: this.ctx.term() })
    } catch (err) {
      if (this.ctx.docs().get('content', imported.id) == null) {
        await cs.removeManifest(imported.id).catch(() => {})
        await cs.discardImport(imported.id)
      }
      throw err
    }
    return cs.info(imported.id)
  }

  /** Every content announced to the group, with how much of it this host holds. */
  list (): ContentInfo[] {
    const cs = this.store()
    return this.ctx.docs().all()
      .filter(d => d.kind === 'content' && !d.deleted && cs.has(d.id))
      .map(d => ({ ...cs.info(d.id), uploader: d.author }))
  }

  info (id: string): ContentInfo {
    const rec = this.resolve(id)
    return { ...this.store().info(rec.id), uploader: rec.author }
  }

  /** Writes a complete content back byte-identically (a file, or an OCI layout directory). */
  async export (id: string, dest: string, opts: { signal?: AbortSignal, overwrite?: boolean } = {}): Promise<string> {
    const rec = this.resolve(id)
    return await this.store().export(rec.id, dest, opts)
  }

  /** Removes content from the group (same authority as uploading); every host frees its chunks. */
  async remove (id: string): Promise<void> {
    const refusal = this.ctx.mayUpload()
    if (refusal != null) throw refusal
    const rec = this.resolve(id)
    await this.ctx.docs().write('content', rec.id, {}, { term: this.ctx.term(), deleted: true })
  }

  /** The chunk exchange's totals since start (see `ContentExchange.counters`); undefined before start. */
  get counters (): Readonly<ContentExchange['counters']> | undefined { return this.exchange?.counters }

  /** `Synced` when every announced content is complete here, with the byte percentage. */
  syncStatus (): { status: 'Synced' | 'Not Synced', percent: number } {
    let have = 0
    let total = 0
    for (const c of this.list()) {
      have += c.haveBytes
      total += c.totalBytes
    }
    const percent = total === 0 ? 100 : Math.floor((have / total) * 100)
    return { status: have === total ? 'Synced' : 'Not Synced', percent }
  }

  /** Reacts to an accepted `content` document: register and fetch, or remove. */
  onDocument (rec: DocRecord): void {
    if (rec.kind !== 'content' || this.cs == null) return
    if (rec.deleted) {
      this.downloads.get(rec.id)?.abort()
      this.downloads.delete(rec.id)
      const name = this.cs.has(rec.id) ? this.cs.get(rec.id).manifest.name : ''
      this.cs.removeManifest(rec.id).then(removed => {
        if (removed) this.emit('content:removed', { id: rec.id, name })
      }, err => { this.ctx.log.warn({ err: String(err) }, 'could not remove content') })
      return
    }
    void this.register(rec.id, rec.body as Manifest, rec.author)
  }

  private async register (id: string, manifest: Manifest, uploader: string): Promise<void> {
    const cs = this.store()
    try {
      if (await cs.addManifest(id, manifest, uploader)) this.emit('content:added', { ...cs.info(id), uploader })
      this.fetch(id)
    } catch (err) {
      this.ctx.log.warn({ id, err: String((err as Error)?.message ?? err) }, 'could not register content')
    }
  }

  private fetch (id: string): void {
    const cs = this.store()
    if (this.downloads.has(id) || !cs.has(id)) return
    if (cs.info(id).complete) return
    const ctl = new AbortController()
    this.downloads.set(id, ctl)
    const { hashes, sizes } = cs.chunks(id)
    // The uploader made the content: it is asked at once, before its bitmap comes.
    this.exchange!.fetch(id, [...hashes], [...sizes], { signal: ctl.signal, seeds: [cs.get(id).uploader] }).then(() => {
      if (cs.has(id) && cs.info(id).complete) this.emit('content:complete', cs.info(id))
    }, (err) => {
      if (!isEdgelinkError(err, 'ABORTED')) this.ctx.log.warn({ id, err: String(err?.message ?? err) }, 'content download stopped')
    }).finally(() => {
      if (this.downloads.get(id) === ctl) this.downloads.delete(id)
    })
  }

  /** Accepts a full id or a unique prefix. */
  private resolve (id: string): DocRecord {
    const docs = this.ctx.docs().all().filter(d => d.kind === 'content' && !d.deleted)
    const hits = docs.filter(d => d.id === id || (id.length >= 6 && d.id.startsWith(id)))
    if (hits.length === 1) return hits[0]
    if (hits.length > 1) throw new EdgelinkError('INVALID_ARGUMENT', `content id ${id} is ambiguous`)
    throw new EdgelinkError('UNKNOWN_CONTENT', `no content ${id} in this group`)
  }

  private store (): ContentStore {
    if (this.cs == null) throw new EdgelinkError('NOT_STARTED')
    return this.cs
  }
}

/** The store as the exchange sees it. */
function chunkSource (cs: ContentStore): ChunkSource {
  return {
    hasChunk: (hash) => cs.hasChunk(hash),
    // Serving: the receiver verifies every chunk; bit rot is checked once per chunk and process.
    readChunk: async (hash, into) => await cs.readChunk(hash, { verify: 'once', into }),
    writeChunk: async (hash, bytes, digest) => { await cs.writeChunk(hash, bytes, digest) },
    bitmap: (id) => cs.has(id) ? cs.bitmap(id) : undefined,
    markHave: async (id, index) => { await cs.markHave(id, index) }
  }
}
