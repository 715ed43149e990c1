import { expect } from 'chai'
import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import * as fsp from 'node:fs/promises'
import { join } from 'node:path'
import { isEdgelinkError } from '../lib/errors.ts'
import { ALIGN, alignedMemory, ChunkBuffers, directView, type MemoryFactory } from '../lib/content/direct.ts'
import { ContentStore, type ContentFs, type ContentStoreOptions } from '../lib/content/store.ts'
import { ContentStores, sha256 } from './helpers.ts'

const KiB = 1024
const MiB = 1024 * 1024

async function codeOf (fn: () => unknown): Promise<string> {
  try {
    await fn()
  } catch (err) {
    if (isEdgelinkError(err)) return err.code
    throw err
  }
  return 'OK'
}

/** Fills a buffer from `get` with random bytes and returns it with their hash. */
function chunkIn (buffers: ChunkBuffers, size: number): { bytes: Uint8Array, hash: string } {
  const bytes = buffers.get(size)
  bytes.set(randomBytes(size))
  return { bytes, hash: sha256(bytes) }
}

describe('direct I/O for received chunks', function () {
  this.timeout(30_000)

  describe('chunk buffers', () => {
    it('hands out page-aligned slots of one slab and reuses a slot once it is back', () => {
      const buffers = new ChunkBuffers(4)
      const a = buffers.get(MiB)
      const b = buffers.get(MiB - 100)
      expect(a.byteLength).to.equal(MiB)
      expect(b.byteLength).to.equal(MiB - 100)
      for (const x of [a, b]) {
        expect(x.byteOffset % ALIGN).to.equal(0)
        expect(directView(x), 'writable with O_DIRECT').to.not.equal(undefined)
      }
      expect(a.buffer).to.equal(b.buffer)
      expect(a.byteOffset).to.not.equal(b.byteOffset)
      buffers.put(a)
      const c = buffers.get(MiB)
      expect(c.buffer).to.equal(a.buffer)
      expect(c.byteOffset).to.equal(a.byteOffset)
    })

    it('gives plain buffers when the slab is full, and keeps those for reuse', () => {
      const buffers = new ChunkBuffers(2)
      const slotted = [buffers.get(MiB), buffers.get(MiB)]
      const plain = buffers.get(MiB)
      expect(plain.buffer).to.not.equal(slotted[0].buffer)
      expect(directView(plain), 'a malloc buffer is not aligned').to.equal(undefined)
      buffers.put(plain)
      expect(buffers.get(MiB)).to.equal(plain)
    })

    it('starts a bigger slab for a bigger chunk and lets the old one go once its slots are back', () => {
      const buffers = new ChunkBuffers(2)
      const small = buffers.get(64 * KiB)
      const first = buffers.reserved
      const big = buffers.get(3 * MiB)
      expect(big.buffer).to.not.equal(small.buffer)
      expect(big.byteOffset % ALIGN).to.equal(0)
      expect(buffers.reserved, 'the old slab stays while a slot is out').to.equal(first + big.buffer.byteLength)
      buffers.put(small)
      expect(buffers.reserved).to.equal(big.buffer.byteLength)
      // Smaller chunks fit the bigger slots.
      expect(buffers.get(100 * KiB).buffer).to.equal(big.buffer)
    })

    it('clear drops an idle slab but not one a chunk is still in', () => {
      const buffers = new ChunkBuffers(2)
      const x = buffers.get(MiB)
      buffers.clear()
      expect(buffers.reserved).to.be.greaterThan(0)
      buffers.put(x)
      buffers.clear()
      expect(buffers.reserved).to.equal(0)
      expect(buffers.get(MiB).byteOffset % ALIGN).to.equal(0)
    })

    it('falls back to plain buffers for good when a slab cannot be made', () => {
      let calls = 0
      const failing: MemoryFactory = () => { calls++; throw new RangeError('WebAssembly.Memory(): could not allocate memory') }
      const buffers = new ChunkBuffers(4, { memory: failing })
      const a = buffers.get(MiB)
      const b = buffers.get(MiB)
      expect(a.byteLength).to.equal(MiB)
      expect(directView(a)).to.equal(undefined)
      expect(b).to.not.equal(a)
      expect(calls).to.equal(1)
    })

    it('gives chunks over the slot limit plain buffers', () => {
      const buffers = new ChunkBuffers(2, { maxSlotSize: MiB })
      expect(directView(buffers.get(MiB + 1))).to.equal(undefined)
      expect(directView(buffers.get(MiB))).to.not.equal(undefined)
    })
  })

  describe('directView', () => {
    it('pads to the alignment with zeros and refuses what O_DIRECT cannot write', () => {
      const buf = new Uint8Array(alignedMemory(1).buffer)
      buf.fill(7)
      const v = directView(buf.subarray(0, 100)) as Uint8Array
      expect(v.byteLength).to.equal(ALIGN)
      expect(v.byteOffset).to.equal(0)
      expect([...v.subarray(0, 100)].every(x => x === 7)).to.equal(true)
      expect([...v.subarray(100)].every(x => x === 0), 'padding zeroed').to.equal(true)
      expect(directView(buf.subarray(ALIGN, 2 * ALIGN))).to.have.property('byteLength', ALIGN)
      expect(directView(buf.subarray(8, 108)), 'unaligned offset').to.equal(undefined)
      expect(directView(buf.subarray(0, 0)), 'empty').to.equal(undefined)
      expect(directView(Buffer.alloc(ALIGN)), 'not a WebAssembly memory').to.equal(undefined)
    })
  })

  describe('the store', () => {
    const stores = new ContentStores('edgelink-direct-')

    /** A ContentFs that records the flags of every open of a temp file, and may fail some. */
    function recordingFs (fail?: (flags: unknown) => NodeJS.ErrnoException | undefined): { fs: ContentFs, opens: unknown[] } {
      const opens: unknown[] = []
      const fs = {
        ...fsp,
        open: async (path: string, flags?: string | number, mode?: number) => {
          if (String(path).includes('.tmp-')) {
            opens.push(flags)
            const err = fail?.(flags)
            if (err != null) throw err
          }
          return await fsp.open(path, flags, mode)
        }
      } as unknown as ContentFs
      return { fs, opens }
    }

    async function contentStore (options: ContentStoreOptions = {}): Promise<ContentStore> {
      return await stores.open(join(stores.root, 'data'), options)
    }

    const isDirect = (flags: unknown): boolean => typeof flags === 'number' && (flags & constants.O_DIRECT) !== 0

    beforeEach(async () => { await stores.setup() })
    afterEach(async () => { await stores.teardown() })

    it('writes a chunk in an aligned buffer with O_DIRECT, cut to its exact size', async () => {
      const { fs, opens } = recordingFs()
      const cs = await contentStore({ fs })
      const buffers = new ChunkBuffers(2)
      // Not a multiple of the block size: written padded, then truncated.
      const { bytes, hash } = chunkIn(buffers, MiB + 123)
      expect(await cs.writeChunk(hash, bytes, hash)).to.equal(true)
      expect(opens).to.have.length(1)
      expect(isDirect(opens[0])).to.equal(true)
      const onDisk = await fsp.readFile(cs.chunkPath(hash))
      expect(onDisk.length).to.equal(MiB + 123)
      expect(sha256(onDisk)).to.equal(hash)
      expect(await cs.readChunk(hash)).to.deep.equal(onDisk)
      // A plain buffer goes through the page cache.
      const plain = randomBytes(1000)
      await cs.writeChunk(sha256(plain), plain)
      expect(isDirect(opens[1])).to.equal(false)
      expect(await fsp.readFile(cs.chunkPath(sha256(plain)))).to.deep.equal(plain)
    })

    it('writes through the page cache from then on when the file system refuses O_DIRECT', async () => {
      const einval = (): NodeJS.ErrnoException => Object.assign(new Error('EINVAL: invalid argument, open'), { code: 'EINVAL' })
      const { fs, opens } = recordingFs(flags => isDirect(flags) ? einval() : undefined)
      const cs = await contentStore({ fs })
      const buffers = new ChunkBuffers(4)
      const a = chunkIn(buffers, 64 * KiB)
      const b = chunkIn(buffers, 64 * KiB)
      await cs.writeChunk(a.hash, a.bytes, a.hash)
      await cs.writeChunk(b.hash, b.bytes, b.hash)
      expect(opens.map(isDirect)).to.deep.equal([true, false, false])
      for (const c of [a, b]) expect(sha256(await fsp.readFile(cs.chunkPath(c.hash)))).to.equal(c.hash)
      expect((await fsp.readdir(join(cs.dataDir, 'chunks'), { recursive: true })).filter(n => String(n).includes('.tmp-'))).to.deep.equal([])
    })

    it('never uses O_DIRECT with directIo: false', async () => {
      const { fs, opens } = recordingFs()
      const cs = await contentStore({ fs, directIo: false })
      const { bytes, hash } = chunkIn(new ChunkBuffers(2), 64 * KiB)
      await cs.writeChunk(hash, bytes, hash)
      expect(opens.map(isDirect)).to.deep.equal([false])
    })

    it('reports a full disk during a direct write as DISK_FULL, leaves no temp file, and keeps O_DIRECT', async () => {
      let full = true
      const enospc = (): NodeJS.ErrnoException => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
      const { fs, opens } = recordingFs(flags => isDirect(flags) && full ? enospc() : undefined)
      const cs = await contentStore({ fs })
      const buffers = new ChunkBuffers(2)
      const c = chunkIn(buffers, 64 * KiB)
      expect(await codeOf(() => cs.writeChunk(c.hash, c.bytes, c.hash))).to.equal('DISK_FULL')
      expect(await cs.hasChunk(c.hash)).to.equal(false)
      expect((await fsp.readdir(join(cs.dataDir, 'chunks'), { recursive: true })).filter(n => String(n).includes('.tmp-'))).to.deep.equal([])
      full = false
      await cs.writeChunk(c.hash, c.bytes, c.hash)
      expect(opens.map(isDirect)).to.deep.equal([true, true])
      expect(await cs.hasChunk(c.hash)).to.equal(true)
    })

    it('refuses a chunk whose digest is not its hash, and writes nothing', async () => {
      const cs = await contentStore()
      const { bytes, hash } = chunkIn(new ChunkBuffers(2), 64 * KiB)
      const other = sha256(randomBytes(8))
      expect(await codeOf(() => cs.writeChunk(hash, bytes, other))).to.equal('CHUNK_CORRUPT')
      expect(await cs.hasChunk(hash)).to.equal(false)
      // Without a digest the store hashes the bytes itself.
      bytes[0] ^= 1
      expect(await codeOf(() => cs.writeChunk(hash, bytes))).to.equal('CHUNK_CORRUPT')
    })
  })
})
