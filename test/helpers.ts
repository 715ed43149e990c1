import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import type { GossipSub } from '@libp2p/gossipsub'
import { peerIdFromString } from '@libp2p/peer-id'
import { createHost, type Host, type HostOptions } from '../lib/index.ts'
import { docsTopic } from '../lib/gossip/documents.ts'
import { Document, SignedDocument } from '../lib/gossip/gossip.ts'
import { concat } from '../lib/util.ts'
import { PRESETS } from '../lib/options.ts'
import { Store } from '../lib/store/index.ts'
import { ContentStore, type ContentStoreOptions } from '../lib/content/store.ts'

let nextIp = 10

/** SHA-256 of `bytes`, hex. */
export function sha256 (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** A small seeded PRNG (mulberry32): the same sequence for the same seed everywhere, so a randomised run replays from its seed. */
export function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A fresh loopback IP (127.0.1.10, 127.0.1.11, …) so every test host has an address of its own. */
export function loopbackIp (): string {
  const n = nextIp++
  return `127.0.${1 + Math.floor(n / 250)}.${(n % 250) + 2}`
}

export async function tempDir (prefix = 'edgelink-test-'): Promise<string> {
  return await mkdtemp(join(tmpdir(), prefix))
}

export interface TestHosts {
  hosts: Host[]
  /** Stops every host and removes their data dirs. Safe to call twice. */
  teardown(): Promise<void>
}

/** Tracks hosts and dirs made by a test so one teardown removes them all. */
export class Testbed {
  readonly hosts: Host[] = []
  readonly dirs: string[] = []

  /** A started host on its own loopback IP and an OS-chosen port, with the `test` preset. */
  async host (options: Partial<HostOptions> = {}): Promise<Host> {
    const dataDir = options.dataDir ?? await tempDir()
    if (options.dataDir == null) this.dirs.push(dataDir)
    const h = await createHost({ ...PRESETS.test, listen: [`${loopbackIp()}:0`], ...options, dataDir })
    this.hosts.push(h)
    return h
  }

  /** A leader and `n - 1` followers, all linked. */
  async group (n: number, options: Partial<HostOptions> = {}): Promise<Host[]> {
    const leader = await this.host(options)
    const followers = await Promise.all(Array.from({ length: n - 1 }, async () => await this.host(options)))
    for (const f of followers) {
      const { token } = await leader.generateLinkToken()
      await f.link(token)
    }
    const all = [leader, ...followers]
    await waitFor(() => all.every(h => h.hosts().length === n && h.hosts().every(r => r.health === 'Healthy')), 10_000)
    return all
  }

  async teardown (): Promise<void> {
    await Promise.allSettled(this.hosts.splice(0).map(async h => { await h.stop() }))
    await Promise.allSettled(this.dirs.splice(0).map(async d => { await rm(d, { recursive: true, force: true }) }))
  }
}

/** Polls `fn` every 20 ms until it is true, or throws after `ms` with `what` in the message. */
export async function waitFor (fn: () => boolean | Promise<boolean>, ms = 5_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms
  for (;;) {
    if (await fn()) return
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** Runs `fn` and returns the error it throws (fails the test if it does not throw). */
export async function rejection (fn: () => Promise<unknown>): Promise<any> {
  try {
    await fn()
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection, got a result')
}

/**
 * Signs a group document as `author` would, skipping every local check: what a crafted or
 * misbehaving peer can send. `author.key` defaults to a host's private key.
 */
export async function craftDocument (author: { id: string }, kind: string, id: string, body: unknown, version: number, term: number, opts: { breakSignature?: boolean, bodyOverride?: Uint8Array } = {}): Promise<Uint8Array> {
  const json = Buffer.from(JSON.stringify(body))
  const doc = Document.encode({
    kind, id, version: BigInt(version), term: BigInt(term),
    author: peerIdFromString(author.id).toMultihash().bytes as any,
    writtenAt: BigInt(Date.now()), bodyHash: createHash('sha256').update(json).digest() as any, bodySize: BigInt(json.length), deleted: false
  })
  const key = (author as any).key
  const sig = await key.sign(concat(new TextEncoder().encode('edgelink/doc/v1'), doc))
  if (opts.breakSignature === true) sig[5] ^= 1
  return SignedDocument.encode({ doc, signature: sig, body: (opts.bodyOverride ?? json) as any })
}

/** Publishes raw bytes on the group's document topic from `host`. */
export async function gossip (host: Host, bytes: Uint8Array): Promise<void> {
  const pubsub = host.libp2p.services.pubsub as GossipSub
  await pubsub.publish(docsTopic(host.groupId!), bytes).catch(() => {})
}

/** Chunk files of a data dir (`chunks/<2 hex>/<sha256>`) → inode, without the temp files of unfinished writes. */
export async function chunkFiles (dataDir: string): Promise<Map<string, number>> {
  const files = new Map<string, number>()
  const root = join(dataDir, 'chunks')
  for (const prefix of await readdir(root).catch(() => [])) {
    for (const name of await readdir(join(root, prefix)).catch(() => [])) {
      if (/^[0-9a-f]{64}$/.test(name)) files.set(name, (await stat(join(root, prefix, name))).ino)
    }
  }
  return files
}

/**
 * Per test (call `setup` in beforeEach, `teardown` in afterEach): a temp dir `root` with a LevelDB
 * `store` under it, and the content stores opened on it, all closed and removed afterwards.
 */
export class ContentStores {
  root = ''
  store!: Store
  private readonly prefix: string
  private readonly opened: ContentStore[] = []

  constructor (prefix: string) { this.prefix = prefix }

  async setup (): Promise<void> {
    this.root = await mkdtemp(join(tmpdir(), this.prefix))
    this.store = await Store.open(join(this.root, 'state'))
  }

  /** A content store in `dir`, closed at teardown. */
  async open (dir: string, options: ContentStoreOptions = {}): Promise<ContentStore> {
    return this.track(await ContentStore.open(dir, this.store, options))
  }

  /** Closes `cs` at teardown too. */
  track (cs: ContentStore): ContentStore {
    this.opened.push(cs)
    return cs
  }

  async teardown (): Promise<void> {
    for (const cs of this.opened.splice(0)) await cs.close().catch(() => {})
    await this.store.close()
    await rm(this.root, { recursive: true, force: true })
  }
}
