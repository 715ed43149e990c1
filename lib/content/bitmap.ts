/**
 * Have-bitmaps: bit `i` says whether a host holds (verified) chunk `i` of `uniqueChunks(manifest)`.
 * Bits are MSB-first within each byte, as in BitTorrent: bit 0 is `0x80` of byte 0. Trailing bits
 * past the chunk count are always 0, so two bitmaps of the same content compare byte by byte.
 */

export function bitmapLength (bits: number): number { return Math.ceil(bits / 8) }

export function newBitmap (bits: number): Uint8Array { return new Uint8Array(bitmapLength(bits)) }

/** A bitmap with all of its `bits` set (the trailing bits past them 0). */
export function fullBitmap (bits: number): Uint8Array {
  const b = newBitmap(bits).fill(0xff)
  if ((bits & 7) !== 0) b[b.length - 1] = (0xff << (8 - (bits & 7))) & 0xff
  return b
}

export function hasBit (bitmap: Uint8Array, i: number): boolean {
  return ((bitmap[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0
}

export function setBit (bitmap: Uint8Array, i: number): void { bitmap[i >> 3] |= 0x80 >> (i & 7) }

export function clearBit (bitmap: Uint8Array, i: number): void { bitmap[i >> 3] &= ~(0x80 >> (i & 7)) }

/** How many of the first `bits` bits are set. */
export function countBits (bitmap: Uint8Array, bits: number): number {
  let n = 0
  for (let i = 0; i < bits; i++) if (hasBit(bitmap, i)) n++
  return n
}
