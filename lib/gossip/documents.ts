import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { TopicValidatorResult, type GossipSub, type Message } from '@libp2p/gossipsub'
import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import * as Digest from 'multiformats/hashes/digest'
import type { Connection, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import type { Clock, ClockTimer } from '../clock.ts'
import { EdgelinkError, isEdgelinkError } from '../errors.ts'
import type { Logger } from '../logger.ts'
import type { Store } from '../store/index.ts'
import { concat, withTimeout } from '../util.ts'
import { Document, SignedDocument, SyncRequest, SyncResponse } from './gossip.ts'

export const SYNC_PROTOCOL = '/edgelink/sync/1.0.0'
const DOC_DOMAIN = new TextEncoder().encode('edgelink/doc/v1')
/** Bodies above this travel by reference on gossip (its messages top out near 4 MiB). */
export const INLINE_BODY_MAX = 256 * 1024
/** Largest document body accepted at all. */
export const MAX_BODY = 16 * 1024 * 1024
/** Most documents one digest may list. */
const MAX_DOCS = 4096
const MAX_SYNC_MESSAGE = MAX_BODY + 64 * 1024

export type DocKind = 'settings' | 'cluster' | 'content'

/** A document as held by this host. */
export interface DocRecord<T = unknown> {
  kind: DocKind
  id: string
  version: number
  term: number
  author: string
  writtenAt: number
  deleted: boolean
  bodyHash: string
  body: T
  /** The SignedDocument with its body, as stored and synced. */
  signed: Uint8Array
}

export interface DocumentContext {
  readonly id: string
  readonly key: PrivateKey
  readonly clock: Clock
  readonly log: Logger
  node(): Libp2p | undefined
  pubsub(): GossipSub | undefined
  store(): Store
  groupId(): string | undefined
  isMember(id: string): boolean
  /** The authority rules: undefined when `author` may write in `term`, else the refusal. */
  authorize(doc: { kind: DocKind, author: string, term: number }): EdgelinkError | undefined
  /** Shape check of a body (for content: that it hashes to `id`); throws INVALID_ARGUMENT. */
  parseBody(kind: DocKind, body: unknown, deleted: boolean, id: string): unknown
  /** The roster as the anti-entropy exchange needs it. */
  rosterInfo(): { term: number, version: number, bytes?: Uint8Array }
  /** A roster received during anti-entropy. */
  receiveRoster(bytes: Uint8Array): Promise<void>
}

export function docsTopic (groupId: string): string { return `/edgelink/${groupId}/docs/1` }
const keyOf = (kind: string, id: string): string => `${kind}/${id}`

/**
 * Replicated, versioned documents signed by their authors. Updates travel on gossip; because
 * gossip loses messages for hosts that were down or cut off, peers also run anti-entropy: on every
 * new connection and every `syncInterval` they exchange digests and pull what they miss.
 */
export class DocumentService extends EventEmitter<{ doc: [DocRecord] }> {
  private readonly ctx: DocumentContext
  private readonly syncInterval: number
  private readonly docs = new Map<string, DocRecord>()
  private topic?: string
  private timer?: ClockTimer
  private running = false
  /**
   * The tail of the document writes, which run one after another (see `persist`). Gossipsub
   * forwards a message only once its validator returns, so a document from gossip is applied and
   * forwarded first and written after: each hop does not wait for the disk. Losing such a write (a
   * crash, a full disk) loses nothing: the document is pulled again from any peer by anti-entropy.
   * `stop()` waits for them.
   */
  private writes: Promise<void> = Promise.resolve()
  readonly counters = { published: 0, accepted: 0, rejected: 0, synced: 0, writeErrors: 0 }
  /**
   * The same traffic by document kind, for `Host.stats()`: published by this host, accepted from
   * gossip, pulled by anti-entropy, and gossip messages rejected (`unknown`: undecodable or not from a member).
   */
  readonly byKind = { published: {} as Record<string, number>, received: {} as Record<string, number>, synced: {} as Record<string, number>, rejected: {} as Record<string, number> }

  constructor (ctx: DocumentContext, syncInterval: number) {
    super()
    this.ctx = ctx
    this.syncInterval = syncInterval
  }

  async start (): Promise<void> {
    for (const [, bytes] of await this.ctx.store().listDocs()) {
      try {
        const rec = await this.open(bytes)
        this.docs.set(keyOf(rec.kind, rec.id), rec)
      } catch (err: any) {
        this.ctx.log.warn({ err: String(err?.message ?? err) }, 'stored document unreadable; it will be synced again')
      }
    }
    this.running = true
    const node = this.ctx.node()
    await node?.handle(SYNC_PROTOCOL, (s, c) => { void this.onSync(s, c) }, { maxInboundStreams: 16, maxOutboundStreams: 16 })
    this.ctx.pubsub()?.addEventListener('message', this.onMessage)
    this.groupChanged()
    this.scheduleSync()
  }

  /** Stops syncing and listening; resolves once every accepted document is written. */
  async stop (): Promise<void> {
    this.running = false
    this.ctx.pubsub()?.removeEventListener('message', this.onMessage)
    if (this.timer != null) this.ctx.clock.clearTimeout(this.timer)
    await this.writes
  }

  /** Call when the group changed: (re)subscribes; forgets documents of a group this host left. */
  groupChanged (): void {
    const pubsub = this.ctx.pubsub()
    const groupId = this.ctx.groupId()
    const topic = groupId == null ? undefined : docsTopic(groupId)
    if (groupId == null) this.docs.clear()
    if (pubsub == null || topic === this.topic) return
    if (this.topic != null) {
      pubsub.unsubscribe(this.topic)
      pubsub.topicValidators.delete(this.topic)
    }
    this.topic = topic
    if (topic != null) {
      pubsub.topicValidators.set(topic, this.validate)
      pubsub.subscribe(topic)
    }
  }

  get<T> (kind: DocKind, id: string): DocRecord<T> | undefined {
    return this.docs.get(keyOf(kind, id)) as DocRecord<T> | undefined
  }

  all (): DocRecord[] { return [...this.docs.values()] }

  /**
   * Writes a new version of a document as this host: checks the authority rules and the body,
   * signs, stores, then broadcasts. `term` is the roster term this host holds.
   */
  async write (kind: DocKind, id: string, body: unknown, opts: { term: number, deleted?: boolean }): Promise<DocRecord> {
    const deleted = opts.deleted === true
    const parsed = this.ctx.parseBody(kind, body, deleted, id)
    const refusal = this.ctx.authorize({ kind, author: this.ctx.id, term: opts.term })
    if (refusal != null) throw refusal
    const json = Buffer.from(JSON.stringify(parsed))
    if (json.length > MAX_BODY) throw new EdgelinkError('TOO_LARGE', `a document may hold at most ${MAX_BODY} bytes`)
    const prev = this.docs.get(keyOf(kind, id))
    const doc: Document = {
      kind,
      id,
      version: BigInt((prev?.version ?? 0) + 1),
      term: BigInt(opts.term),
      author: peerIdFromString(this.ctx.id).toMultihash().bytes as Uint8Array<ArrayBuffer>,
      writtenAt: BigInt(this.ctx.clock.now()),
      bodyHash: sha256(json) as Uint8Array<ArrayBuffer>,
      bodySize: BigInt(json.length),
      deleted
    }
    const docBytes = Document.encode(doc)
    const signature = await this.ctx.key.sign(concat(DOC_DOMAIN, docBytes))
    const signed = SignedDocument.encode({ doc: docBytes, signature: signature as Uint8Array<ArrayBuffer>, body: json as Uint8Array<ArrayBuffer> })
    const rec = await this.open(signed)
    await this.apply(rec)
    await this.publish(rec)
    return rec
  }

  /**
   * Re-signs every document held from an older term as this host in `term` (same body, next
   * version): what a new leader does so that members that missed a document of an earlier
   * leader can accept it, and so that what a deposed leader wrote in its old term loses.
   */
  async reissue (term: number): Promise<number> {
    let n = 0
    for (const rec of [...this.docs.values()]) {
      if (rec.term >= term) continue
      await this.write(rec.kind, rec.id, rec.deleted ? {} : rec.body, { term, deleted: rec.deleted })
      n++
    }
    return n
  }

  /**
   * Decodes and verifies a signed document (total and bounded). `body` may be supplied separately
   * when the document came by reference.
   */
  async open (bytes: Uint8Array, body?: Uint8Array): Promise<DocRecord> {
    let signed: SignedDocument
    let doc: Document
    let author: PeerId
    try {
      if (bytes.length > MAX_SYNC_MESSAGE) throw new Error('too large')
      signed = SignedDocument.decode(bytes)
      doc = Document.decode(signed.doc)
      author = peerIdFromMultihash(Digest.decode(doc.author))
    } catch (err: any) {
      throw new EdgelinkError('PROTOCOL_ERROR', `malformed document: ${err?.message ?? err}`)
    }
    if (doc.kind !== 'settings' && doc.kind !== 'cluster' && doc.kind !== 'content') throw new EdgelinkError('PROTOCOL_ERROR', `unknown document kind "${doc.kind.slice(0, 32)}"`)
    if (doc.id.length === 0 || doc.id.length > 128) throw new EdgelinkError('PROTOCOL_ERROR', 'bad document id')
    const ok = author.publicKey != null && await author.publicKey.verify(concat(DOC_DOMAIN, signed.doc), signed.signature)
    if (!ok) throw new EdgelinkError('BAD_SIGNATURE', 'the document signature is not valid')
    const json = body ?? signed.body
    if (json.length === 0 && doc.bodySize > 0n) throw new EdgelinkError('PROTOCOL_ERROR', 'document body missing')
    if (json.length > MAX_BODY || BigInt(json.length) !== doc.bodySize || !sha256(json).equals(Buffer.from(doc.bodyHash))) {
      throw new EdgelinkError('PROTOCOL_ERROR', 'the document body does not match its hash')
    }
    let parsed: unknown
    try {
      parsed = this.ctx.parseBody(doc.kind, JSON.parse(Buffer.from(json).toString('utf8')), doc.deleted, doc.id)
    } catch (err: any) {
      throw new EdgelinkError('PROTOCOL_ERROR', `invalid document body: ${err?.message ?? err}`)
    }
    const num = (v: bigint): number => {
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new EdgelinkError('PROTOCOL_ERROR', 'number out of range')
      return Number(v)
    }
    return {
      kind: doc.kind,
      id: doc.id,
      version: num(doc.version),
      term: num(doc.term),
      author: author.toString(),
      writtenAt: num(doc.writtenAt),
      deleted: doc.deleted,
      bodyHash: Buffer.from(doc.bodyHash).toString('hex'),
      body: parsed,
      signed: SignedDocument.encode({ doc: signed.doc, signature: signed.signature, body: json as Uint8Array<ArrayBuffer> })
    }
  }

  /**
   * Applies a verified document from the group if it is newer than the one held and its author may
   * write it; throws STALE_VERSION or the authority refusal otherwise. With `writeFirst` (this
   * host's own writes, anti-entropy) it is on disk before it is applied; otherwise (gossip) it is
   * written right after.
   */
  async accept (rec: DocRecord, writeFirst = true): Promise<void> {
    const cur = this.docs.get(keyOf(rec.kind, rec.id))
    if (cur != null && !newer(rec, cur)) throw new EdgelinkError('STALE_VERSION', `version ${rec.version} is not newer than ${cur.version}`)
    const refusal = this.ctx.authorize(rec)
    if (refusal != null) throw refusal
    await this.apply(rec, writeFirst)
  }

  private async apply (rec: DocRecord, writeFirst = true): Promise<void> {
    const k = keyOf(rec.kind, rec.id)
    if (writeFirst) await this.persist(k, rec.signed)
    else {
      // A newer version applied meanwhile has its own write queued after this one: skip this one.
      this.persist(k, rec.signed, () => this.docs.get(k) === rec).catch((err: any) => {
        this.counters.writeErrors++
        this.ctx.log.warn({ doc: k, err: String(err?.message ?? err) }, 'accepted document not written; anti-entropy pulls it again after a restart')
      })
    }
    this.docs.set(k, rec)
    this.counters.accepted++
    this.emit('doc', rec)
  }

  /**
   * Writes a document to LevelDB after every write queued before it (all go through this queue,
   * so an older version never lands after a newer one); `still` can skip it when its turn comes.
   */
  private async persist (k: string, signed: Uint8Array, still?: () => boolean): Promise<void> {
    const store = this.ctx.store()
    const p = this.writes.then(async () => { if (still == null || still()) await store.putDoc(k, signed) })
    this.writes = p.catch(() => {})
    await p
  }

  private async publish (rec: DocRecord): Promise<void> {
    const pubsub = this.ctx.pubsub()
    if (pubsub == null || this.topic == null) return
    const s = SignedDocument.decode(rec.signed)
    // Large bodies are not gossiped: receivers pull them from whoever announced the document.
    const wire = s.body.length > INLINE_BODY_MAX ? SignedDocument.encode({ doc: s.doc, signature: s.signature, body: new Uint8Array(0) }) : rec.signed
    try {
      await pubsub.publish(this.topic, wire)
      this.counters.published++
      bump(this.byKind.published, rec.kind)
    } catch (err: any) {
      // Nobody subscribed yet: anti-entropy delivers it when members connect.
      this.ctx.log.debug({ err: String(err?.message ?? err) }, 'document publish failed')
    }
  }

  private readonly validate = async (from: PeerId, msg: Message): Promise<TopicValidatorResult> => {
    // Stopping: its writes are drained and the store is about to close; take nothing more.
    if (!this.running) return TopicValidatorResult.Ignore
    // The author is checked by the document's own signature (open): gossip carries no other.
    if (!this.ctx.isMember(from.toString())) {
      this.counters.rejected++
      bump(this.byKind.rejected, 'unknown')
      return TopicValidatorResult.Reject
    }
    let kind = 'unknown'
    try {
      const s = SignedDocument.decode(msg.data)
      const doc = Document.decode(s.doc)
      if (doc.kind === 'settings' || doc.kind === 'cluster' || doc.kind === 'content') kind = doc.kind // never a label from the wire
      const body = s.body.length === 0 ? await this.fetchBody(from, doc.bodyHash) : undefined
      const rec = await this.open(msg.data, body)
      await this.accept(rec, false)
      bump(this.byKind.received, kind)
      return TopicValidatorResult.Accept
    } catch (err) {
      if (isEdgelinkError(err, 'STALE_VERSION')) return TopicValidatorResult.Ignore
      this.counters.rejected++
      bump(this.byKind.rejected, kind)
      this.ctx.log.info({ from: from.toString(), err: String((err as Error)?.message ?? err) }, 'document rejected')
      return TopicValidatorResult.Reject
    }
  }

  // Accepted documents were applied by the validator; nothing left to do on delivery.
  private readonly onMessage = (): void => {}

  // ------------------------------------------------------------ anti-entropy

  private digest (): SyncRequest['have'] {
    return [...this.docs.values()].map(d => ({ key: keyOf(d.kind, d.id), version: BigInt(d.version), bodyHash: Buffer.from(d.bodyHash, 'hex') as Uint8Array<ArrayBuffer> }))
  }

  /** Pulls from `peer` every document it has newer than ours (and a newer roster). */
  async syncWith (peer: PeerId): Promise<number> {
    const node = this.ctx.node()
    if (node == null || !this.running) return 0
    const signal = withTimeout(30_000)
    const stream = await node.dialProtocol(peer, SYNC_PROTOCOL, { signal })
    const lp = lpStream(stream, { maxDataLength: MAX_SYNC_MESSAGE })
    let pulled = 0
    try {
      const roster = this.ctx.rosterInfo()
      await lp.write(SyncRequest.encode({ have: this.digest(), wantBody: new Uint8Array(0), rosterTerm: BigInt(roster.term), rosterVersion: BigInt(roster.version) }), { signal })
      const res = SyncResponse.decode(await lp.read({ signal }), { limits: { docs: MAX_DOCS, have: MAX_DOCS } })
      if (res.roster.length > 0) await this.ctx.receiveRoster(res.roster)
      // Settle the cluster before settings: authority over settings depends on it.
      const docs = res.docs.slice().sort((a, b) => (kindOrder(a) - kindOrder(b)))
      for (const d of docs) {
        try {
          const rec = await this.open(SignedDocument.encode(d))
          await this.accept(rec)
          pulled++
          bump(this.byKind.synced, rec.kind)
        } catch (err) {
          if (!isEdgelinkError(err, 'STALE_VERSION')) this.ctx.log.info({ peer: peer.toString(), err: String((err as Error).message) }, 'synced document rejected')
        }
      }
      await stream.close({ signal }).catch(() => {})
      this.counters.synced += pulled
      // The answerer may lack what we have: it pulls in turn (it learns that from our digest).
      return pulled
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }

  private async fetchBody (peer: PeerId, hash: Uint8Array): Promise<Uint8Array> {
    const node = this.ctx.node()
    if (node == null) throw new EdgelinkError('NOT_STARTED')
    const signal = withTimeout(30_000)
    const stream = await node.dialProtocol(peer, SYNC_PROTOCOL, { signal })
    const lp = lpStream(stream, { maxDataLength: MAX_SYNC_MESSAGE })
    await lp.write(SyncRequest.encode({ have: [], wantBody: hash as Uint8Array<ArrayBuffer>, rosterTerm: 0n, rosterVersion: 0n }), { signal })
    const res = SyncResponse.decode(await lp.read({ signal }), { limits: { docs: 0, have: 0 } })
    await stream.close({ signal }).catch(() => {})
    return res.body
  }

  private async onSync (stream: Stream, conn: Connection): Promise<void> {
    const signal = withTimeout(30_000)
    const peer = conn.remotePeer
    try {
      if (!this.ctx.isMember(peer.toString())) throw new EdgelinkError('NOT_MEMBER')
      const lp = lpStream(stream, { maxDataLength: 1024 * 1024 })
      const req = SyncRequest.decode(await lp.read({ signal }), { limits: { have: MAX_DOCS } })
      const out = lpStream(stream, { maxDataLength: MAX_SYNC_MESSAGE })
      if (req.wantBody.length > 0) {
        const hex = Buffer.from(req.wantBody).toString('hex')
        const rec = [...this.docs.values()].find(d => d.bodyHash === hex)
        await out.write(SyncResponse.encode({ docs: [], have: [], body: rec == null ? new Uint8Array(0) : SignedDocument.decode(rec.signed).body, roster: new Uint8Array(0) }), { signal })
        await stream.close({ signal }).catch(() => {})
        return
      }
      const theirs = new Map(req.have.map(e => [e.key, e]))
      const send: SignedDocument[] = []
      let theyHaveNewer = false
      for (const d of this.docs.values()) {
        const t = theirs.get(keyOf(d.kind, d.id))
        if (t == null || BigInt(d.version) !== t.version || Buffer.from(t.bodyHash).toString('hex') !== d.bodyHash) send.push(SignedDocument.decode(d.signed))
      }
      for (const e of req.have) {
        const mine = this.docs.get(e.key)
        if (mine == null || e.version > BigInt(mine.version)) theyHaveNewer = true
      }
      const roster = this.ctx.rosterInfo()
      const rosterNewer = roster.bytes != null && (BigInt(roster.term) > req.rosterTerm || (BigInt(roster.term) === req.rosterTerm && BigInt(roster.version) > req.rosterVersion))
      await out.write(SyncResponse.encode({ docs: send, have: this.digest(), body: new Uint8Array(0), roster: rosterNewer ? roster.bytes as Uint8Array<ArrayBuffer> : new Uint8Array(0) }), { signal })
      await stream.close({ signal }).catch(() => {})
      if (theyHaveNewer) this.syncWith(peer).catch(() => {})
    } catch (err: any) {
      stream.abort(err)
    }
  }

  /** Called by the host on every new connection to a member. */
  connected (peer: PeerId): void {
    if (!this.running) return
    this.syncWith(peer).catch((err: any) => { this.ctx.log.debug({ err: String(err?.message ?? err) }, 'sync failed') })
  }

  private scheduleSync (): void {
    this.timer = this.ctx.clock.setTimeout(() => {
      if (!this.running) return
      const node = this.ctx.node()
      const peers = (node?.getPeers() ?? []).filter(p => this.ctx.isMember(p.toString()))
      if (peers.length > 0) {
        const peer = peers[Math.floor(Math.random() * peers.length)]
        this.syncWith(peer).catch(() => {})
      }
      this.scheduleSync()
    }, this.syncInterval)
  }
}

/**
 * Total order of versions of one document: term first (a document of a newer term supersedes
 * anything written in an older one, also by a deposed leader that kept writing), then version,
 * then author id to break a tie between writers.
 */
function newer (a: DocRecord, b: DocRecord): boolean {
  if (a.term !== b.term) return a.term > b.term
  if (a.version !== b.version) return a.version > b.version
  return a.bodyHash !== b.bodyHash && a.author > b.author
}

function kindOrder (d: SignedDocument): number {
  try { return Document.decode(d.doc).kind === 'cluster' ? 0 : 1 } catch { return 2 }
}

function bump (counts: Record<string, number>, key: string): void { counts[key] = (counts[key] ?? 0) + 1 }

function sha256 (b: Uint8Array): Buffer { return createHash('sha256').update(b).digest() }
