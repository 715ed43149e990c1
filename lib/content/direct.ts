/**
 * Direct I/O for received chunks: page-aligned buffers the exchange receives chunks into, and the
 * rules for writing them with `O_DIRECT`.
 *
 * Why: a chunk written through the page cache costs a copy into freshly allocated kernel pages per
 * byte; on a virtual machine whose free memory is handed back to the host, each such page is a
 * fault on the host as well (measured here: 0.7 s of kernel CPU per 256 MiB, against 0.1 s with
 * `O_DIRECT` from a reused buffer). A content store also has no use for gigabytes of images in the
 * page cache. `O_DIRECT` needs the buffer's address, the file offset and the length aligned to the
 * device's logical block size; Node's own buffers come from malloc and are not aligned, but a
 * WebAssembly memory starts on a page boundary, so slots carved from one at multiples of
 * {@link ALIGN} are aligned too.
 */
import { constants } from 'node:fs'

/** Alignment of slots and of direct writes: a page, a multiple of every logical block size in use. */
export const ALIGN = 4096
const WASM_PAGE = 65536

/**
 * `open(2)` flags of a direct write: a new file, write-only, bypassing the page cache. 0 where the
 * platform has no `O_DIRECT` (then direct writes are never attempted).
 */
export const O_DIRECT_CREATE = constants.O_DIRECT == null ? 0 : constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT

/** The WebAssembly API this module uses (the project's `lib` setting declares no DOM or wasm types). */
interface WasmMemory { readonly buffer: ArrayBuffer }
/** Makes a memory of `pages` 64 KiB pages; throws when it cannot. */
export type MemoryFactory = (pages: number) => WasmMemory

/** Buffers of WebAssembly memories made here: the only ones known to start on a page boundary. */
const ALIGNED = new WeakSet<ArrayBuffer>()

/** A fixed-size WebAssembly memory, registered as aligned. */
export const alignedMemory: MemoryFactory = pages => {
  const { WebAssembly: wasm } = globalThis as unknown as { WebAssembly?: { Memory: new (d: { initial: number, maximum: number }) => WasmMemory } }
  if (wasm == null) throw new Error('no WebAssembly in this runtime')
  const m = new wasm.Memory({ initial: pages, maximum: pages })
  ALIGNED.add(m.buffer)
  return m
}

/** `size` rounded up to a multiple of {@link ALIGN}. */
export function alignUp (size: number): number { return Math.ceil(size / ALIGN) * ALIGN }

/**
 * Fixed-size, page-aligned slots of one memory. The memory is reserved at once (address space
 * only: a slot's pages are backed when first written) and never grows, so views stay valid.
 */
class Slab {
  readonly slotSize: number
  readonly buffer: ArrayBuffer
  readonly slots: number
  private next = 0
  private readonly free: number[] = []

  constructor (slotSize: number, slots: number, memory: MemoryFactory) {
    this.slotSize = slotSize
    this.slots = slots
    this.buffer = memory(Math.ceil(slotSize * slots / WASM_PAGE)).buffer
  }

  get (size: number): Uint8Array | undefined {
    let slot = this.free.pop()
    if (slot == null) {
      if (this.next >= this.slots) return undefined
      slot = this.next++
    }
    return new Uint8Array(this.buffer, slot * this.slotSize, size)
  }

  put (b: Uint8Array): void { this.free.push(Math.floor(b.byteOffset / this.slotSize)) }

  get idle (): boolean { return this.free.length === this.next }
}

/**
 * Plain (heap-allocated, unaligned) buffers kept for reuse by size: at most `max` of them. A fresh
 * 1 MiB buffer per chunk is external memory the garbage collector has to chase.
 */
export class SizePool {
  private readonly max: number
  private readonly free = new Map<number, Uint8Array[]>()
  private count = 0

  constructor (max: number) { this.max = max }

  /** A kept buffer of exactly `size` bytes, or a new one. */
  get (size: number): Uint8Array {
    const b = this.free.get(size)?.pop()
    if (b == null) return Buffer.allocUnsafeSlow(size)
    this.count--
    return b
  }

  /** Keeps `b` for a later {@link get}, unless `max` are kept already. */
  put (b: Uint8Array): void {
    if (this.count >= this.max || b.byteLength === 0) return
    let list = this.free.get(b.byteLength)
    if (list == null) this.free.set(b.byteLength, list = [])
    list.push(b)
    this.count++
  }

  /** Bytes of the buffers kept. */
  get bytes (): number {
    let n = 0
    for (const list of this.free.values()) for (const b of list) n += b.byteLength
    return n
  }

  clear (): void {
    this.free.clear()
    this.count = 0
  }
}

/**
 * Buffers for received chunks, reused: once warm, receiving a chunk allocates nothing (a fresh
 * buffer per chunk is external memory the garbage collector has to chase). Chunks of up to
 * `maxSlotSize` get page-aligned slots of one slab with room for `max` chunks, its slot size the
 * power of two (64 KiB at least) that fits the largest chunk asked for; a larger chunk starts a new
 * slab and the old one goes once its slots are back. A full slab, a larger chunk, or a runtime
 * that cannot make a slab gets plain buffers, and those are written through the page cache.
 * {@link clear} drops whatever no chunk uses (the exchange calls it when no download runs), so an
 * idle host keeps none of it.
 */
export class ChunkBuffers {
  private readonly max: number
  private readonly maxSlotSize: number
  private readonly memory: MemoryFactory
  private slab?: Slab
  private readonly retired = new Set<Slab>()
  private readonly plain: SizePool
  /** Set after a slab could not be made: plain buffers from then on. */
  private noSlabs = false

  constructor (max: number, options: { maxSlotSize?: number, memory?: MemoryFactory } = {}) {
    this.max = max
    this.maxSlotSize = options.maxSlotSize ?? 16 * 1024 * 1024
    this.memory = options.memory ?? alignedMemory
    this.plain = new SizePool(max)
  }

  /** A buffer of exactly `size` bytes; aligned when it could be. */
  get (size: number): Uint8Array {
    if (size > 0 && size <= this.maxSlotSize && !this.noSlabs) {
      if (this.slab == null || this.slab.slotSize < size) {
        const slotSize = Math.max(WASM_PAGE, 2 ** Math.ceil(Math.log2(size)))
        try {
          const slab = new Slab(slotSize, this.max, this.memory)
          if (this.slab != null && !this.slab.idle) this.retired.add(this.slab)
          this.slab = slab
        } catch {
          // No WebAssembly, or no address space left for its reservation (ulimit -v).
          this.noSlabs = true
        }
      }
      const b = this.slab?.get(size)
      if (b != null) return b
    }
    return this.plain.get(size)
  }

  /** Gives a buffer from {@link get} back. */
  put (b: Uint8Array): void {
    if (this.slab?.buffer === b.buffer) { this.slab.put(b); return }
    for (const slab of this.retired) {
      if (slab.buffer !== b.buffer) continue
      slab.put(b)
      if (slab.idle) this.retired.delete(slab)
      return
    }
    if (!ALIGNED.has(b.buffer as ArrayBuffer)) this.plain.put(b)
  }

  /** Drops the slab if no buffer of it is out, and the spare plain buffers. */
  clear (): void {
    if (this.slab?.idle === true) this.slab = undefined
    this.plain.clear()
  }

  /** Bytes of slab address space reserved (for tests and stats). */
  get reserved (): number {
    let n = this.slab?.buffer.byteLength ?? 0
    for (const s of this.retired) n += s.buffer.byteLength
    return n
  }
}

/**
 * The view a direct write of `bytes` writes: `bytes` padded to {@link ALIGN} (the file is then
 * truncated to `bytes.length`), or undefined when `bytes` cannot be written directly: not at an
 * aligned offset of a WebAssembly memory's buffer, empty, or without room for the padding.
 */
export function directView (bytes: Uint8Array): Uint8Array | undefined {
  if (O_DIRECT_CREATE === 0 || bytes.byteLength === 0 || bytes.byteOffset % ALIGN !== 0) return undefined
  const buffer = bytes.buffer
  if (!(buffer instanceof ArrayBuffer) || !ALIGNED.has(buffer)) return undefined
  const padded = alignUp(bytes.byteLength)
  if (bytes.byteOffset + padded > buffer.byteLength) return undefined
  const view = new Uint8Array(buffer, bytes.byteOffset, padded)
  // The padding is cut off again; zeroed anyway, so no stale bytes reach the disk.
  if (padded > bytes.byteLength) view.fill(0, bytes.byteLength)
  return view
}

/**
 * Whether a failed direct open or write means this file system does not do `O_DIRECT` (EINVAL,
 * ENOTSUP, EOPNOTSUPP): the store then writes through the page cache from then on.
 */
export function isDirectUnsupported (err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return code === 'EINVAL' || code === 'ENOTSUP' || code === 'EOPNOTSUPP'
}
