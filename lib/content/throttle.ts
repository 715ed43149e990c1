import type { Clock } from '../clock.ts'
import { EdgelinkError } from '../errors.ts'

/**
 * A token bucket on an injectable clock: `rate` bytes per second on average, at most `burst` bytes
 * at once after a pause. Takers are served in call order, so one upload cannot starve the others;
 * a take larger than the bucket goes into debt and waits it off before its bytes leave.
 */
export class TokenBucket {
  private readonly rate: number
  private readonly burst: number
  private readonly clock: Clock
  private tokens: number
  private last: number
  private tail: Promise<void> = Promise.resolve()

  constructor (rate: number, burst: number, clock: Clock) {
    if (!(rate > 0) || !(burst > 0)) throw new EdgelinkError('INVALID_ARGUMENT', 'rate and burst must be positive')
    this.rate = rate
    this.burst = burst
    this.clock = clock
    this.tokens = burst
    this.last = clock.now()
  }

  /** Resolves when `n` more bytes may be sent; rejects with ABORTED on `signal` (refunding them). */
  async take (n: number, signal?: AbortSignal): Promise<void> {
    const turn = this.tail.then(async () => { await this.wait(n, signal) })
    this.tail = turn.catch(() => {})
    await turn
  }

  private async wait (n: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted === true) throw new EdgelinkError('ABORTED', 'the transfer was aborted', { cause: signal.reason })
    const now = this.clock.now()
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.rate / 1000)
    this.last = now
    this.tokens -= n
    if (this.tokens >= 0) return
    try {
      await sleep(this.clock, Math.ceil(-this.tokens * 1000 / this.rate), signal)
    } catch (err) {
      this.tokens += n
      throw err
    }
  }
}

/** Waits `ms` on `clock`; rejects with ABORTED on `signal`. */
export async function sleep (clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clock.clearTimeout(timer)
      reject(new EdgelinkError('ABORTED', 'the wait was aborted', { cause: signal?.reason }))
    }
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    if (signal?.aborted === true) onAbort()
    else signal?.addEventListener('abort', onAbort, { once: true })
  })
}
