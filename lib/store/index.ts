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

/**
 * LevelDB under `<dataDir>/db`: sublevels `meta` (schema version), `group` (signed roster),
 * `tokens` (hashed tokens), `election` and `docs` (signed group documents). All multi-key changes go through one atomic batch.
 */
export class Store {
  private readonly db: Level<string, any>
  private readonly meta
  private readonly group
  private readonly tokens
  private readonly election
  private readonly docs

  private constructor (db: Level<string, any>) {
    this.db = db
    this.meta = db.sublevel<string, Json>('meta', { valueEncoding: 'json' })
    this.group = db.sublevel<string, Uint8Array>('group', { valueEncoding: 'view' })
    this.tokens = db.sublevel<string, TokenRecord>('tokens', { valueEncoding: 'json' })
    this.election = db.sublevel<string, ElectionRecord>('election', { valueEncoding: 'json' })
    this.docs = db.sublevel<string, Uint8Array>('docs', { valueEncoding: 'view' })
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

  async close (): Promise<void> { await this.db.close() }
}
