import { join } from 'node:path'
import { Level } from 'level'
import { EdgelinkError } from '../errors.ts'

/** Bumped when the layout of the database changes; a newer layout is refused, never rewritten. */
export const SCHEMA_VERSION = 1

/** A live or recently live link token, as the leader keeps it: never the password itself. */
export interface TokenRecord {
  /** Hex token id. */
  id: string
  /** Hex HMAC key derived from the one-time password by HKDF: one-way, so the password cannot be recovered. */
  proofKey: string
  createdAt: number
  expiresAt: number
  used: boolean
  usedBy?: string
  failures: number
  burned: boolean
}

/** Leader-election metadata. Issue-2 hosts only ever write the leader's term; votes come with elections. */
export interface ElectionRecord {
  term: number
  leaderId: string
  votedFor?: { term: number, id: string }
  rosterVersion: number
}

type Json = Record<string, any>

/** A registered piece of content: its manifest exactly as signed, and who uploaded it. */
export interface ContentRecord {
  /** The manifest's canonical JSON (UTF-8 text); its SHA-256 is the content id. */
  json: string
  /** Host id of the uploader. */
  uploader: string
}

/** Refcount changes of chunks: the new count of each chunk; 0 deletes the key. */
export type ChunkRefs = Map<string, number>

/**
 * LevelDB under `<dataDir>/db`: sublevels `meta` (schema version), `group` (signed roster),
 * `tokens` (hashed tokens), `election` and `docs` (signed group documents), and `content-manifests`,
 * `content-have`, `content-refs` (the content store's metadata). All multi-key changes go through one atomic batch.
 */
export class Store {
  private readonly db: Level<string, any>
  private readonly meta
  private readonly group
  private readonly tokens
  private readonly election
  private readonly docs
  private readonly contentManifests
  private readonly contentHave
  private readonly contentRefs

  private constructor (db: Level<string, any>) {
    this.db = db
    this.meta = db.sublevel<string, Json>('meta', { valueEncoding: 'json' })
    this.group = db.sublevel<string, Uint8Array>('group', { valueEncoding: 'view' })
    this.tokens = db.sublevel<string, TokenRecord>('tokens', { valueEncoding: 'json' })
    this.election = db.sublevel<string, ElectionRecord>('election', { valueEncoding: 'json' })
    this.docs = db.sublevel<string, Uint8Array>('docs', { valueEncoding: 'view' })
    this.contentManifests = db.sublevel<string, ContentRecord>('content-manifests', { valueEncoding: 'json' })
    this.contentHave = db.sublevel<string, Uint8Array>('content-have', { valueEncoding: 'view' })
    this.contentRefs = db.sublevel<string, number>('content-refs', { valueEncoding: 'json' })
  }

  static async open (dataDir: string): Promise<Store> {
    const db = new Level<string, any>(join(dataDir, 'db'), { valueEncoding: 'json' })
    try {
      await db.open()
    } catch (err: any) {
      const busy = /lock/i.test(String(err?.cause?.message ?? err?.message))
      throw new EdgelinkError('STORE_ERROR', busy
        ? `the store in ${dataDir} is in use by another process`
        : `cannot open the store in ${dataDir}: ${err?.message}`, { cause: err })
    }
    const store = new Store(db)
    const version = (await store.meta.get('schema'))?.version
    if (version == null) {
      await store.meta.put('schema', { version: SCHEMA_VERSION })
    } else if (version > SCHEMA_VERSION) {
      await db.close()
      throw new EdgelinkError('STORE_ERROR', `the store in ${dataDir} has schema ${version}; this edgelink reads up to ${SCHEMA_VERSION}`)
    }
    return store
  }

  async getRoster (): Promise<Uint8Array | undefined> { return await this.group.get('roster') }

  async getElection (): Promise<ElectionRecord | undefined> { return await this.election.get('state') }

  /** Saves a new signed roster and the election metadata that goes with it, atomically. */
  async putRoster (signedRoster: Uint8Array, election: ElectionRecord, token?: TokenRecord): Promise<void> {
    const ops: any[] = [
      { type: 'put', sublevel: this.group, key: 'roster', value: signedRoster },
      { type: 'put', sublevel: this.election, key: 'state', value: election }
    ]
    if (token != null) ops.push({ type: 'put', sublevel: this.tokens, key: token.id, value: token })
    await this.db.batch(ops)
  }

  /** Forgets the group: roster, election state, tokens and documents. Used when this host is unlinked. */
  async clearGroup (): Promise<void> {
    const ops: any[] = [
      { type: 'del', sublevel: this.group, key: 'roster' },
      { type: 'del', sublevel: this.election, key: 'state' }
    ]
    for await (const key of this.tokens.keys()) ops.push({ type: 'del', sublevel: this.tokens, key })
    for await (const key of this.docs.keys()) ops.push({ type: 'del', sublevel: this.docs, key })
    await this.db.batch(ops)
  }

  async putToken (token: TokenRecord): Promise<void> { await this.tokens.put(token.id, token) }

  async deleteTokens (ids: string[]): Promise<void> {
    await this.tokens.batch(ids.map(key => ({ type: 'del' as const, key })))
  }

  async listTokens (): Promise<TokenRecord[]> {
    const out: TokenRecord[] = []
    for await (const value of this.tokens.values()) out.push(value)
    return out
  }

  async putElection (election: ElectionRecord): Promise<void> { await this.election.put('state', election) }

  /** Signed group documents (settings, cluster definitions), keyed `kind/id`. */
  async getDoc (key: string): Promise<Uint8Array | undefined> { return await this.docs.get(key) }

  async putDoc (key: string, signed: Uint8Array): Promise<void> { await this.docs.put(key, signed) }

  async listDocs (): Promise<Array<[string, Uint8Array]>> {
    const out: Array<[string, Uint8Array]> = []
    for await (const entry of this.docs.iterator()) out.push(entry)
    return out
  }

  // Content (see lib/content/store.ts). Sublevels `content-manifests` (id → manifest JSON and
  // uploader), `content-have` (id → have-bitmap) and `content-refs` (chunk hash → how many
  // registered manifests use it). Chunk bytes are files, never values here.

  async getContent (id: string): Promise<ContentRecord | undefined> { return await this.contentManifests.get(id) }

  async listContent (): Promise<Array<[string, ContentRecord]>> {
    const out: Array<[string, ContentRecord]> = []
    for await (const entry of this.contentManifests.iterator()) out.push(entry)
    return out
  }

  async getHave (id: string): Promise<Uint8Array | undefined> { return await this.contentHave.get(id) }

  /** Saves several have-bitmaps in one atomic batch. */
  async putHaves (bitmaps: Array<[string, Uint8Array]>): Promise<void> {
    if (bitmaps.length === 0) return
    await this.contentHave.batch(bitmaps.map(([key, value]) => ({ type: 'put' as const, key, value })))
  }

  /** Reference counts of the given chunks (0 when unknown), in order. */
  async getChunkRefs (hashes: string[]): Promise<number[]> {
    const out: number[] = []
    // getMany in slices: one call per million keys would hold every value at once twice over.
    for (let i = 0; i < hashes.length; i += 10_000) {
      const values = await this.contentRefs.getMany(hashes.slice(i, i + 10_000))
      for (const v of values) out.push(typeof v === 'number' ? v : 0)
    }
    return out
  }

  /** Registers content atomically: its record, its initial bitmap and the new refcounts of its chunks. */
  async putContent (id: string, record: ContentRecord, bitmap: Uint8Array, refs: ChunkRefs): Promise<void> {
    const ops: any[] = [
      { type: 'put', sublevel: this.contentManifests, key: id, value: record },
      { type: 'put', sublevel: this.contentHave, key: id, value: bitmap }
    ]
    pushRefs(ops, this.contentRefs, refs)
    await this.db.batch(ops)
  }

  /** Forgets content atomically: its record, its bitmap, and the new refcounts of its chunks. */
  async deleteContent (id: string, refs: ChunkRefs): Promise<void> {
    const ops: any[] = [
      { type: 'del', sublevel: this.contentManifests, key: id },
      { type: 'del', sublevel: this.contentHave, key: id }
    ]
    pushRefs(ops, this.contentRefs, refs)
    await this.db.batch(ops)
  }

  async close (): Promise<void> { await this.db.close() }
}

function pushRefs (ops: any[], sublevel: unknown, refs: ChunkRefs): void {
  for (const [key, n] of refs) {
    ops.push(n > 0 ? { type: 'put', sublevel, key, value: n } : { type: 'del', sublevel, key })
  }
}
