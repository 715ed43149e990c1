import { expect } from 'chai'
import { randomBytes, createHash } from 'node:crypto'
import { readFile, writeFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { rejection, tempDir, Testbed, waitFor } from './helpers.ts'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

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
      expect(sha(await readFile(out))).to.equal(sha(data))
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
    await leader.removeContent(info.id)
    await waitFor(() => f1.listContent().length === 0 && leader.listContent().length === 0, 10_000, 'removed everywhere')
    const chunkDirs = await readdir(join(f1.options.dataDir, 'chunks')).catch(() => [])
    let files = 0
    for (const d of chunkDirs) files += (await readdir(join(f1.options.dataDir, 'chunks', d))).length
    expect(files).to.equal(0)
  })
})
