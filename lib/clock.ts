/**
 * All time in edgelink goes through a {@link Clock}, so token expiry, retries and timeouts can be
 * tested by moving a {@link ManualClock} instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
  setTimeout(fn: () => void, ms: number): ClockTimer
  clearTimeout(timer: ClockTimer): void
}

export interface ClockTimer { readonly id: unknown }

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms)
    t.unref()
    return { id: t }
  },
  clearTimeout: (timer) => { clearTimeout(timer.id as NodeJS.Timeout) }
}

interface ManualTimer { id: number, at: number, fn: () => void }

/** A clock that moves only when told to; timers fire in order during {@link ManualClock.advance}. */
export class ManualClock implements Clock {
  private time: number
  private seq = 0
  private timers: ManualTimer[] = []

  constructor (start = Date.now()) { this.time = start }

  now (): number { return this.time }

  setTimeout (fn: () => void, ms: number): ClockTimer {
    const timer = { id: ++this.seq, at: this.time + Math.max(0, ms), fn }
    this.timers.push(timer)
    return { id: timer.id }
  }

  clearTimeout (timer: ClockTimer): void {
    this.timers = this.timers.filter(t => t.id !== timer.id)
  }

  /** Moves time forward by `ms`, firing every timer that falls due, earliest first. */
  advance (ms: number): void {
    const end = this.time + ms
    for (;;) {
      const due = this.timers.filter(t => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0]
      if (due == null) break
      this.timers = this.timers.filter(t => t !== due)
      this.time = Math.max(this.time, due.at)
      due.fn()
    }
    this.time = end
  }
}
