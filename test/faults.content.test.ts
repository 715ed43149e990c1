/**
 * Fault: a host killed with SIGKILL in the middle of a content sync, on real agent processes in
 * network namespaces whose cables are rate-shaped (tbf), so the transfer takes seconds and the
 * kill lands inside it. After the restart the host resumes from the chunks on its disk and never
 * fetches a verified chunk again, which is checked with two observables the agent cannot fudge:
 * the kernel's byte counter of the host's cable (everything it received after the restart) and
 * the inodes of its chunk files (a chunk fetched again would be written to a new file and renamed
 * over the old one). Every host ends with the content byte-identical.
 */
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { chunkFiles, sha256 } from './helpers.ts'
import { faultBedHooks, poll } from './testbed/agents.ts'

const MiB = 1024 * 1024


describe('faults: a host killed during content sync', function () {
  this.timeout(120_000)
  const beds = faultBedHooks()

  it('resumes after a restart, fetches no verified chunk again, and every host ends byte-identical', async () => {
    const SIZE = 40 * MiB
    const CHUNKS = SIZE / MiB // the default chunk size
    // 40 Mbit/s cables: one host's download takes 8 s or more, a wide window for the kill.
    const fb = await beds.create({ hosts: 3, rateMbit: 40 })
    await fb.startAll()
    await fb.formGroup(0)
    const [leader, other, victim] = fb.agents

    const file = join(fb.dir, 'bundle.tar.zst')
    const data = randomBytes(SIZE)
    await writeFile(file, data)
    const id: string = (await leader.call('POST', '/v1/edgelink/content', { path: file, kind: 'bundle' })).id

    // Kill the victim once it holds a good share, well before the end.
    const atKill = await poll(async () => {
      const c = await victim.call('GET', `/v1/edgelink/content/${id}`).catch(() => undefined)
      return c != null && c.haveChunks >= 10 ? c.haveChunks as number : undefined
    }, 60_000, 'the victim to hold 10 chunks', undefined, 100)
    await victim.kill('SIGKILL')
    expect(atKill, 'the kill landed mid-transfer').to.be.below(CHUNKS)

    const kept = await chunkFiles(victim.dataDir)
    expect(kept.size, 'verified chunks on disk after the kill').to.be.at.least(atKill).and.below(CHUNKS)
    const rx0 = (await victim.host.linkStats()).rxBytes

    await victim.start()
    const resumed = await victim.call('GET', `/v1/edgelink/content/${id}`)
    // Every chunk file on disk counts as held again, straight away.
    expect(resumed.haveChunks, 'chunks held right after the restart').to.be.at.least(kept.size)
    expect(resumed.complete).to.equal(false)

    await poll(async () => {
      const c = await victim.call('GET', `/v1/edgelink/content/${id}`).catch(() => undefined)
      return c?.complete === true
    }, 60_000, 'the victim to complete the content')
    const received = (await victim.host.linkStats()).rxBytes - rx0

    // What came over its cable after the restart: the missing chunks and little more. Fetching the
    // kept chunks again would add at least their size (10 MiB or more) on top.
    const missing = SIZE - kept.size * MiB
    const stillMissing = SIZE - resumed.haveBytes
    expect(received, 'bytes received after the restart').to.be.at.least(stillMissing)
    expect(received, 'bytes received after the restart').to.be.at.most(missing * 1.08 + 2 * MiB)
    // The chunk files from before the kill are the very same files.
    const after = await chunkFiles(victim.dataDir)
    expect(after.size).to.equal(CHUNKS)
    for (const [hash, ino] of kept) expect(after.get(hash), `chunk ${hash.slice(0, 12)} rewritten`).to.equal(ino)

    // Every host has it whole, byte-identical, exported by the operator's CLI on each.
    await poll(async () => (await other.call('GET', `/v1/edgelink/content/${id}`)).complete === true, 30_000, 'the other follower to complete')
    const want = sha256(data)
    for (const a of fb.agents) {
      const out = join(fb.dir, `out-${a.name}`)
      const ex = await a.cli('content', 'export', id.slice(0, 12), out)
      expect(ex.code, ex.stderr).to.equal(0)
      expect(sha256(await readFile(out)), a.name).to.equal(want)
    }
    console.log(`      killed at ${atKill}/${CHUNKS} chunks, ${kept.size} on disk; after the restart received ${(received / MiB).toFixed(1)} MiB for ${(missing / MiB).toFixed(1)} MiB missing`)
  })
})
