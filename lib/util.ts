import { EdgelinkError } from './errors.ts'
import type { Clock } from './clock.ts'

/** Runs async sections one at a time, in call order. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve()

  run<T> (fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn)
    this.tail = result.catch(() => {})
    return result
  }
}

/** A sliding-window counter per key, on an injectable clock: at most `limit` hits per `windowMs`. */
export class WindowLimiter {
  private readonly hits = new Map<string, number[]>()
  private readonly limit: number
  private readonly windowMs: number
  private readonly clock: Clock

  constructor (limit: number, windowMs: number, clock: Clock) {
    this.limit = limit
    this.windowMs = windowMs
    this.clock = clock
  }

  /** Records a hit and says whether it is within the limit. */
  take (key: string): boolean {
    const now = this.clock.now()
    const recent = (this.hits.get(key) ?? []).filter(t => now - t < this.windowMs)
    if (recent.length >= this.limit) {
      this.hits.set(key, recent)
      return false
    }
    recent.push(now)
    this.hits.set(key, recent)
    if (this.hits.size > 4096) {
      for (const [k, v] of this.hits) if (v.every(t => now - t >= this.windowMs)) this.hits.delete(k)
    }
    return true
  }
}

export function throwIfAborted (signal?: AbortSignal): void {
  if (signal?.aborted === true) throw new EdgelinkError('ABORTED', 'the operation was aborted', { cause: signal.reason })
}

/** A signal that fires on `signal` or after `ms` of real time (network timeouts are wall-clock). */
export function withTimeout (ms: number, signal?: AbortSignal): AbortSignal {
  const t = AbortSignal.timeout(ms)
  return signal == null ? t : AbortSignal.any([signal, t])
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

export function concat (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}
