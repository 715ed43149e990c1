/**
 * Progress of imports and downloads on stderr: bars (cli-progress) when stderr is a terminal, a
 * plain line every {@link PIPE_INTERVAL} otherwise, so logs and CI output stay readable.
 */
import cliProgress from 'cli-progress'
import { bytes as human, duration } from './output.ts'

/** How often a pipe gets a line per item that moved. */
export const PIPE_INTERVAL = 3_000

export interface ProgressUpdate {
  label: string
  bytes: number
  total: number
  /** Bytes per second as the agent measured it; without it, the average since the first update. */
  rate?: number
  /** Seconds left, -1 when unknown; without it, computed from the rate. */
  eta?: number
}

interface Item extends ProgressUpdate {
  firstAt: number
  firstBytes: number
  printed: number
  printedAt: number
  bar?: cliProgress.SingleBar
}

export interface ProgressOutput {
  err: (s: string) => void
  /** stderr is a terminal: draw bars on `stream` instead of printing lines. */
  errIsTTY?: boolean
  stream?: NodeJS.WritableStream
}

export class ProgressView {
  private readonly out: ProgressOutput
  private readonly items = new Map<string, Item>()
  private multi?: cliProgress.MultiBar
  private readonly now: () => number
  private stopped = false

  constructor (out: ProgressOutput, now: () => number = Date.now) {
    this.out = out
    this.now = now
  }

  update (key: string, u: ProgressUpdate): void {
    if (this.stopped) return
    const t = this.now()
    let item = this.items.get(key)
    if (item == null) {
      item = { ...u, firstAt: t, firstBytes: u.bytes, printed: -1, printedAt: 0 }
      this.items.set(key, item)
    } else {
      // A poll carries no rate: keep the agent's last one.
      Object.assign(item, { label: u.label, bytes: u.bytes, total: u.total }, u.rate != null ? { rate: u.rate, eta: u.eta } : {})
    }
    if (this.out.errIsTTY === true) this.draw(item)
    else if (item.bytes !== item.printed && (t - item.printedAt >= PIPE_INTERVAL || item.bytes >= item.total)) this.line(item, t)
  }

  /** Removes the bars (a terminal keeps their last frame) and prints nothing more. Idempotent. */
  stop (): void {
    if (this.stopped) return
    this.stopped = true
    this.multi?.stop()
  }

  private draw (item: Item): void {
    const payload = this.payload(item)
    if (item.bar == null) {
      this.multi ??= new cliProgress.MultiBar({
        stream: this.out.stream ?? process.stderr,
        format: ' {label} |{bar}| {percentage}% | {have} / {size} | {speed} | ETA {left}',
        barsize: 30,
        hideCursor: false,
        clearOnComplete: false,
        autopadding: true,
        fps: 5
      }, cliProgress.Presets.shades_classic)
      item.bar = this.multi.create(Math.max(1, item.total), item.bytes, payload)
      return
    }
    item.bar.setTotal(Math.max(1, item.total))
    item.bar.update(item.bytes, payload)
  }

  private line (item: Item, t: number): void {
    item.printed = item.bytes
    item.printedAt = t
    const p = this.payload(item)
    const pct = item.total === 0 ? 100 : Math.floor(item.bytes * 100 / item.total)
    this.out.err(`${item.label}: ${p.have} / ${p.size} (${pct}%), ${p.speed}, ETA ${p.left}\n`)
  }

  private payload (item: Item): { label: string, have: string, size: string, speed: string, left: string } {
    const elapsed = (this.now() - item.firstAt) / 1000
    const rate = item.rate ?? (elapsed > 0 ? (item.bytes - item.firstBytes) / elapsed : 0)
    const eta = item.bytes >= item.total ? 0 : item.eta != null && item.rate != null ? item.eta : rate > 0 ? Math.ceil((item.total - item.bytes) / rate) : -1
    // Before a second sample there is no rate to show, only a made-up 0.
    const speed = item.rate != null || elapsed > 0 ? `${human(rate)}/s` : '- B/s'
    return { label: item.label, have: human(item.bytes), size: human(item.total), speed, left: eta < 0 ? '?' : duration(eta) }
  }
}
