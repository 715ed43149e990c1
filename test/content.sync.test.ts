import { expect } from 'chai'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { contentIdOf, encodeManifest } from '../lib/content/manifest.ts'
import type { Manifest } from '../lib/content/types.ts'
import { craftDocument, gossip, rejection, sha256, tempDir, Testbed, waitFor } from './helpers.ts'


describe('content sync across a group (real libp2p over loopback)', function () {
  this.timeout(60_000)
  const bed = new Testbed()
  afterEach(async () => { await bed.teardown() })

  it('content the leader uploads reaches every host and exports byte-identical', async () => {
    const hosts = await bed.group(3)
    const [leader, f1, f2] = hosts
    const dir = await tempDir()
    bed.dirs.push(dir)
    const data = randomBytes(5 * 1024 * 1024 + 123)
    await writeFile(join(dir, 'bundle.tar.zst'), data)
    const progress: number[] = []
    f1.on('content:progress', p => progress.push(p.bytes))
    const info = await leader.addContent(join(dir, 'bundle.tar.zst'), { kind: 'bundle' })
    expect(info.complete).to.equal(true)
    expect(info.manifest.kind).to.equal('bundle')
    await waitFor(() => [f1, f2].every(h => h.listContent().some(c => c.id === info.id && c.complete)), 20_000, 'content everywhere')
    for (const h of [f1, f2]) {
      const out = join(dir, `out-${h.id.slice(-4)}`)
      await h.exportContent(info.id, out)
      expect(sha256(await readFile(out))).to.equal(sha256(data))
    }
    expect(progress.length).to.be.greaterThan(0)
    await waitFor(() => hosts.every(h => h.hosts().every(r => r.contentSyncStatus === 'Synced')), 5_000, 'Synced everywhere')
  })

  it('only the leader (no cluster) may upload; removal frees chunks everywhere', async () => {
    const [leader, f1] = await bed.group(2)
    const dir = await tempDir()
    bed.dirs.push(dir)
    await writeFile(join(dir, 'a.bin'), randomBytes(300_000))
    expect((await rejection(async () => await f1.addContent(join(dir, 'a.bin')))).code).to.equal('NOT_LEADER')
    const info = await leader.addContent(join(dir, 'a.bin'))
    await waitFor(() => f1.listContent().some(c => c.id === info.id && c.complete), 10_000, 'synced')
    expect((await rejection(async () => await f1.removeContent(info.id))).code).to.equal('NOT_LEADER')
    // content:removed comes once the store has deleted the files; the list drops the content as
    // soon as its removal is accepted, while the files may still be going.
    const removed = new Set<string>()
    for (const h of [leader, f1]) h.on('content:removed', () => { removed.add(h.id) })
    await leader.removeContent(info.id)
    await waitFor(() => removed.size === 2, 10_000, 'removed everywhere')
    expect(f1.listContent()).to.deep.equal([])
    expect(leader.listContent()).to.deep.equal([])
    const chunkDirs = await readdir(join(f1.options.dataDir, 'chunks')).catch(() => [])
    let files = 0
    for (const d of chunkDirs) files += (await readdir(join(f1.options.dataDir, 'chunks', d))).length
    expect(files).to.equal(0)
  })

  it('receivers reject bad manifests: wrong uploader, bad signature, truncated, oversized, mismatched id', async () => {
    const [leader, f1, f2] = await bed.group(3)
    const manifest: Manifest = {
      version: 1, kind: 'file', name: 'x.bin', mediaType: 'application/octet-stream', size: 10, chunkSize: 1024 * 1024,
      files: [{ path: 'x.bin', size: 10, mode: 0o644, chunks: ['a'.repeat(64)] }], createdAt: 1
    }
    const id = contentIdOf(encodeManifest(manifest))
    // A follower may not upload before a cluster exists.
    await gossip(f1, await craftDocument(f1, 'content', id, manifest, 1, 1))
    // The leader as author, but the signature broken.
    await gossip(f1, await craftDocument(leader, 'content', id, manifest, 1, 1, { breakSignature: true }))
    // A genuine leader signature over a manifest whose body was cut short in transit.
    const full = Buffer.from(JSON.stringify(manifest))
    await gossip(f1, await craftDocument(leader, 'content', id, manifest, 1, 1, { bodyOverride: full.subarray(0, full.length - 5) }))
    // A manifest that does not hash to its id.
    await gossip(f1, await craftDocument(leader, 'content', 'b'.repeat(64), manifest, 1, 1))
    // An oversized manifest: more chunks than its size allows.
    const fat = { ...manifest, files: [{ ...manifest.files[0], chunks: Array.from({ length: 5000 }, () => 'c'.repeat(64)) }] }
    await gossip(f1, await craftDocument(leader, 'content', contentIdOf(encodeManifest(fat as any)), fat, 1, 1))
    // A stranger's key entirely.
    const k = await generateKeyPair('Ed25519')
    const stranger = { id: peerIdFromPrivateKey(k).toString(), key: k }
    await gossip(f1, await craftDocument(stranger, 'content', id, manifest, 1, 1))
    await new Promise(resolve => setTimeout(resolve, 600))
    for (const h of [leader, f1, f2]) expect(h.listContent()).to.deep.equal([])
    expect((leader as any).docs.counters.rejected).to.be.at.least(5)
  })
})
