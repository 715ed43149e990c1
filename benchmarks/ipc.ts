/**
 * The request/response channel between a benchmark and the host processes it forks
 * (benchmarks/group-host.ts, benchmarks/content-host.ts): requests `{ id, cmd, ...params }`
 * answered `{ id, ok, result }` or `{ id, ok: false, error }`; events `{ ev, ... }` sent unasked.
 */
import type { ChildProcess } from 'node:child_process'

export type Event = Record<string, any> & { ev: string }

/** The parent's side: one forked host process. */
export class IpcChild {
  readonly proc: ChildProcess
  readonly label: string
  readonly exited: Promise<number | null>
  id = ''
  addrs: string[] = []
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: any) => void, reject: (e: Error) => void }>()
  private readonly listeners: Array<(e: Event) => void> = []
  private readonly errTail: string[] = []

  /** `procs`: the run's set of live processes, so that a failing run can kill them all. */
  constructor (proc: ChildProcess, label: string, procs: Set<ChildProcess>) {
    this.proc = proc
    this.label = label
    procs.add(proc)
    this.exited = new Promise(resolve => proc.once('exit', code => {
      procs.delete(proc)
      for (const p of this.pending.values()) p.reject(new Error(`${label} exited (${String(code)}): ${this.stderr()}`))
      this.pending.clear()
      resolve(code)
    }))
    proc.stderr?.setEncoding('utf8').on('data', (d: string) => { this.errTail.push(d); if (this.errTail.length > 20) this.errTail.shift() })
    proc.stdout?.resume()
    proc.on('message', (m: any) => {
      if (m?.ev != null) { for (const l of this.listeners) l(m); return }
      const p = this.pending.get(m?.id)
      if (p == null) return
      this.pending.delete(m.id)
      if (m.ok === true) p.resolve(m.result)
      else p.reject(new Error(`${label}: ${String(m.error)}`))
    })
  }

  get pid (): number { return this.proc.pid! }
  get alive (): boolean { return this.proc.exitCode == null && this.proc.signalCode == null }
  stderr (): string { return this.errTail.join('').trim().split('\n').slice(-5).join(' | ') }
  on (fn: (e: Event) => void): void { this.listeners.push(fn) }

  /** Waits for the child's `ready` event (SIGKILL after `timeout`); with `info`, reads its id and addresses. */
  async ready (timeout: number, info = true): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { this.proc.kill('SIGKILL'); reject(new Error(`${this.label} not ready after ${timeout} ms: ${this.stderr()}`)) }, timeout)
      this.on(e => {
        if (e.ev === 'ready') { clearTimeout(timer); resolve() }
        if (e.ev === 'fatal') { clearTimeout(timer); reject(new Error(`${this.label}: ${String(e.error)}`)) }
      })
      void this.exited.then(code => { clearTimeout(timer); reject(new Error(`${this.label} exited (${String(code)}) before ready: ${this.stderr()}`)) })
    })
    if (info) {
      const i = await this.call('info')
      this.id = i.id
      this.addrs = i.addrs
    }
    return this
  }

  async call (cmd: string, params: Record<string, unknown> = {}, timeout = 30_000): Promise<any> {
    if (!this.alive) throw new Error(`${this.label} is not running: ${this.stderr()}`)
    const id = this.nextId++
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.pending.delete(id); reject(new Error(`${this.label}: ${cmd} timed out after ${timeout} ms`)) }, timeout)
      this.pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v) },
        reject: (e) => { clearTimeout(timer); reject(e) }
      })
      this.proc.send({ id, cmd, ...params })
    })
  }

  /** Asks the child to stop cleanly; SIGKILL after 5 s. */
  async stop (): Promise<void> {
    if (!this.alive) return
    try { this.proc.send({ id: 0, cmd: 'stop' }) } catch {}
    const killer = setTimeout(() => { this.proc.kill('SIGKILL') }, 5_000)
    await this.exited
    clearTimeout(killer)
  }
}

type Handlers = Record<string, (req: any) => Promise<unknown>>

/** The child's side: answers the parent's requests with `handlers`; `stop` calls `shutdown`. */
export function serveIpc (handlers: Handlers, send: (msg: Record<string, unknown>) => void, shutdown: (code: number) => unknown): void {
  process.on('message', (req: { id: number, cmd: string } & Record<string, any>) => {
    if (req?.cmd === 'stop') {
      send({ id: req.id, ok: true, result: true })
      void shutdown(0)
      return
    }
    const fn = handlers[req?.cmd]
    if (fn == null) { send({ id: req?.id, ok: false, error: `unknown command ${String(req?.cmd)}` }); return }
    fn(req).then(
      result => { send({ id: req.id, ok: true, result }) },
      (err: any) => { send({ id: req.id, ok: false, error: String(err?.code ?? '') + ' ' + String(err?.message ?? err) }) }
    )
  })
}
