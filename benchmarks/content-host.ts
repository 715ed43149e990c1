/**
 * One process of the content benchmark (benchmarks/content.ts starts one per host, forked on
 * loopback or spawned inside a network namespace with `ip netns exec`).
 *
 *   node dist/benchmarks/content-host.js        (options as JSON in CONTENT_HOST_OPTS)
 *
 * One edgelink host (createHost, default options but `dataDir`, `listen` and `name`), plus what the
 * baselines need in the same process: a raw libp2p stream on the host's own libp2p node (same
 * connection, same Noise + Yamux), plain TCP (node `net`) and plain HTTP (node:http serving a
 * file, `fetch` downloading it).
 *
 * Talks to the parent over the IPC channel of its stdio (which `ip netns exec` passes on, as it
 * passes fds and the environment): requests `{ id, cmd, ...args }` are answered
 * `{ id, ok, result }` or `{ id, ok: false, error }`; events are sent unasked as `{ ev, ... }`.
 * Times are epoch ms from `now()` (Date.now()'s clock at µs resolution: one machine, one clock).
 * Exits on a `stop` request, on SIGTERM, and when the parent goes away.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, stat, writeFile } from 'node:fs/promises'
import http from 'node:http'
import { Session } from 'node:inspector/promises'
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks'
import net from 'node:net'
import { pipeline } from 'node:stream/promises'
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { createHost, type Host, type HostOptions } from '../lib/index.ts'
import { noiseCounters } from '../lib/noise-crypto.ts'
import { serveIpc } from './ipc.ts'

export const now = (): number => performance.timeOrigin + performance.now()

const RAW_PROTOCOL = '/edgelink-bench/raw/1.0.0'
const opts: { host: HostOptions, rawWrite?: number } = JSON.parse(process.env.CONTENT_HOST_OPTS ?? '{}')
const RAW_WRITE = opts.rawWrite ?? 1024 * 1024
/** What the raw stream's receiver hashes at a time when asked to verify: the exchange's default chunk size. */
const VERIFY_UNIT = 1024 * 1024

type Request = { id: number, cmd: string } & Record<string, any>

/**
 * Garbage collections of this process so far: how many of each kind and the main-thread pause they
 * took (what the loopback figures spend besides the protocol; concurrent marking on V8's own
 * threads shows only in the CPU time).
 */
const gc = { major: 0, minor: 0, pause_ms: 0 }
new PerformanceObserver(list => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind
    if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) gc.major++
    else if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) gc.minor++
    gc.pause_ms += e.duration
  }
}).observe({ entryTypes: ['gc'] })

function send (msg: Record<string, unknown>): void {
  if (process.connected) {
    try { process.send!(msg, undefined, {}, () => {}) } catch {}
  }
}

let stopping = false
let host: Host | undefined
const servers: net.Server[] = []

async function shutdown (code = 0): Promise<void> {
  if (stopping) return
  stopping = true
  setTimeout(() => process.exit(code), 5_000).unref()
  for (const s of servers) s.close()
  try { await host?.stop() } catch {}
  process.exit(code)
}
process.once('SIGTERM', () => { void shutdown(0) })
process.once('SIGINT', () => { void shutdown(0) })
process.once('disconnect', () => { void shutdown(0) })

/** Sends `bytes` on a libp2p stream in RAW_WRITE pieces, waiting for `drain` when the stream says so. */
async function sendRaw (s: Stream, bytes: number): Promise<void> {
  const piece = randomBytes(RAW_WRITE)
  for (let left = bytes; left > 0; left -= piece.length) {
    const part = left >= piece.length ? piece : piece.subarray(0, left)
    if (!s.send(part)) {
      await new Promise<void>((resolve, reject) => {
        const done = (): void => { s.removeEventListener('drain', onDrain); s.removeEventListener('close', onClose) }
        const onDrain = (): void => { done(); resolve() }
        const onClose = (e: StreamCloseEvent): void => { done(); reject(e.error ?? new Error('closed')) }
        s.addEventListener('drain', onDrain)
        s.addEventListener('close', onClose)
      })
    }
  }
}

/** Writes `bytes` of a TCP socket in 1 MiB writes, waiting for 'drain'. */
async function sendTcp (sock: net.Socket, bytes: number): Promise<void> {
  const piece = randomBytes(1024 * 1024)
  for (let left = bytes; left > 0; left -= piece.length) {
    const part = left >= piece.length ? piece : piece.subarray(0, left)
    if (!sock.write(part)) await new Promise(resolve => sock.once('drain', resolve))
  }
  sock.end()
}

const cpu = (): { user: number, system: number } => process.cpuUsage()

let session: Session | undefined

const handlers: Record<string, (req: Request) => Promise<unknown>> = {
  /** CPU profile of this process from `profStart` to `profStop` (written to `path`): where a phase's time goes. */
  profStart: async () => {
    session = new Session()
    session.connect()
    await session.post('Profiler.enable')
    await session.post('Profiler.start')
    return true
  },
  profStop: async (req) => {
    if (session == null) return false
    const { profile } = await session.post('Profiler.stop')
    await writeFile(req.path, JSON.stringify(profile))
    session.disconnect()
    session = undefined
    return true
  },
  info: async () => ({ id: host!.id, addrs: host!.multiaddrs.map(a => a.toString()), pid: process.pid }),
  token: async () => (await host!.generateLinkToken({ fresh: true })).token,
  link: async (req) => {
    const s = await host!.link(req.token)
    return { status: s.status, errorCode: s.errorCode, errorMessage: s.errorMessage }
  },
  healthy: async (req) => host!.hosts().length === req.n && host!.hosts().every(r => r.health === 'Healthy'),
  /** Writes a file of `mib` MiB whose 1 MiB blocks all differ (so every chunk is distinct). */
  makeFile: async (req) => {
    const block = randomBytes(1024 * 1024)
    const fh = await open(req.path, 'w')
    try {
      for (let i = 0; i < req.mib; i++) {
        block.writeUInt32BE(i, 0)
        block.writeUInt32BE(req.seed >>> 0, 4)
        await fh.write(block, 0, block.length, i * block.length)
      }
    } finally {
      await fh.close()
    }
    return true
  },
  add: async (req) => {
    const t0 = now()
    const info = await host!.addContent(req.path, { kind: 'file' })
    return { id: info.id, t0, t1: now() }
  },
  complete: async (req) => host!.listContent().some(c => c.id === req.contentId && c.complete),
  /**
   * With `on`, this host's content store keeps received chunks in no file: its own `writeChunk`
   * still refuses a chunk whose digest is not its hash, but the file step (`writeFile`) only
   * records the chunk as verified, so it counts as held and its content completes. What the sync
   * costs without its storage (a private method: this is a benchmark). `on: false` restores it.
   */
  discardChunkWrites: async (req) => {
    const cs = (host as any).content?.cs
    if (cs == null) throw new Error('this host has no content store open')
    if (req.on !== true) delete cs.writeFile
    else cs.writeFile = async (hash: string): Promise<boolean> => { cs.noteVerified(hash); return true }
    return true
  },
  /** The exchange's counters (a private field: this is a benchmark), CPU and memory. */
  counters: async () => {
    const ex = (host as any).content?.exchange
    const m = process.memoryUsage()
    return { exchange: ex != null ? { ...ex.counters } : undefined, cpu: cpu(), gc: { ...gc }, noise: { ...noiseCounters }, rss: m.rss, arrayBuffers: m.arrayBuffers }
  },
  /** Debug: yamux windows of this host's streams. */
  streams: async () => host!.libp2p.getConnections().flatMap(c => c.streams.map((s: any) => ({ peer: c.remotePeer.toString().slice(-4), proto: s.protocol, dir: s.direction, recvWindow: s.recvWindow, sendCap: s.sendWindowCapacity, rtt: s.getRTT?.() }))),
  /** Serves RAW_PROTOCOL on the host's own node: the asker writes 8 bytes (a length), gets that many bytes. */
  rawServe: async () => {
    await host!.libp2p.handle(RAW_PROTOCOL, (s: Stream) => {
      let got = Buffer.alloc(0)
      const onMessage = (e: StreamMessageEvent): void => {
        got = Buffer.concat([got, e.data instanceof Uint8Array ? e.data : e.data.subarray()])
        if (got.length < 8) return
        s.removeEventListener('message', onMessage)
        const n = Number(got.readBigUInt64BE(0))
        sendRaw(s, n).then(async () => { await s.close() }).catch((err) => { s.abort(err) })
      }
      s.addEventListener('message', onMessage)
    }, { runOnLimitedConnection: false })
    return true
  },
  /** Asks `peer` for `bytes` over RAW_PROTOCOL on the existing connection; the time from the request to the last byte. */
  rawFetch: async (req) => {
    const peer = peerIdFromString(req.peer)
    const s = await host!.libp2p.dialProtocol(peer, RAW_PROTOCOL)
    const t0 = now()
    const c0 = cpu()
    let got = 0
    const done = new Promise<void>((resolve, reject) => {
      // With `verify`, every MiB is hashed with SHA-256 as it comes, as the exchange verifies each
      // chunk: the cost of verification alone, with nothing stored and no protocol.
      let hash = req.verify === true ? createHash('sha256') : undefined
      s.addEventListener('message', (e: StreamMessageEvent) => {
        if (hash != null) {
          for (const buf of e.data instanceof Uint8Array ? [e.data] : e.data) {
            for (let pos = 0; pos < buf.byteLength;) {
              const n = Math.min(buf.byteLength - pos, VERIFY_UNIT - (got % VERIFY_UNIT))
              hash.update(buf.subarray(pos, pos + n))
              pos += n
              got += n
              if (got % VERIFY_UNIT === 0) { hash.digest(); hash = createHash('sha256') }
            }
          }
        } else {
          got += e.data.byteLength
        }
      })
      s.addEventListener('remoteCloseWrite', () => { resolve() })
      s.addEventListener('close', (e: StreamCloseEvent) => { if (e.error != null) reject(e.error); else resolve() })
    })
    const len = Buffer.alloc(8)
    len.writeBigUInt64BE(BigInt(req.bytes))
    s.send(len)
    await done
    const t1 = now()
    await s.close().catch(() => {})
    if (got !== req.bytes) throw new Error(`raw stream ended after ${got} of ${req.bytes as number} bytes`)
    return { t0, t1, bytes: got, cpu0: c0, cpu1: cpu() }
  },
  /** A TCP server on `ip` that sends each client the number of bytes it asks for (8-byte length). */
  tcpServe: async (req) => {
    const srv = net.createServer(sock => {
      let got = Buffer.alloc(0)
      sock.on('error', () => {})
      const onData = (b: Buffer): void => {
        got = Buffer.concat([got, b])
        if (got.length < 8) return
        sock.off('data', onData)
        void sendTcp(sock, Number(got.readBigUInt64BE(0)))
      }
      sock.on('data', onData)
    })
    servers.push(srv)
    await new Promise<void>((resolve, reject) => { srv.once('error', reject); srv.listen(0, req.ip as string, () => { resolve() }) })
    return { port: (srv.address() as net.AddressInfo).port }
  },
  /** An HTTP server on `ip` serving the file at `path` as GET /content (what anyone would put up to hand a file out). */
  httpServe: async (req) => {
    const path = req.path as string
    const { size } = await stat(path)
    const srv = http.createServer((rq, rs) => {
      if (rq.method !== 'GET' || rq.url !== '/content') { rs.writeHead(404).end(); return }
      rs.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size })
      pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), rs).catch(() => { rs.destroy() })
    })
    servers.push(srv)
    await new Promise<void>((resolve, reject) => { srv.once('error', reject); srv.listen(0, req.ip as string, () => { resolve() }) })
    return { url: `http://${req.ip as string}:${(srv.address() as net.AddressInfo).port}/content` }
  },
  /** Downloads `url` with fetch, counting the body's bytes as they come; the time from the request to the last byte. */
  httpFetch: async (req) => {
    const t0 = now()
    const c0 = cpu()
    const res = await fetch(req.url as string)
    if (!res.ok || res.body == null) throw new Error(`GET ${req.url as string}: HTTP ${res.status}`)
    let got = 0
    for await (const chunk of res.body) got += chunk.byteLength
    const t1 = now()
    if (got !== req.bytes) throw new Error(`HTTP body ended after ${got} of ${req.bytes as number} bytes`)
    return { t0, t1, bytes: got, cpu0: c0, cpu1: cpu() }
  },
  tcpFetch: async (req) => {
    const t0 = now()
    const c0 = cpu()
    const got = await new Promise<number>((resolve, reject) => {
      let n = 0
      const sock = net.connect({ host: req.ip, port: req.port, ...(req.from != null ? { localAddress: req.from } : {}) }, () => {
        const len = Buffer.alloc(8)
        len.writeBigUInt64BE(BigInt(req.bytes))
        sock.write(len)
      })
      sock.on('data', (b: Buffer) => { n += b.length })
      sock.on('end', () => { resolve(n) })
      sock.on('error', reject)
    })
    const t1 = now()
    if (got !== req.bytes) throw new Error(`TCP stream ended after ${got} of ${req.bytes as number} bytes`)
    return { t0, t1, bytes: got, cpu0: c0, cpu1: cpu() }
  }
}

try {
  host = await createHost(opts.host)
  host.on('content:complete', info => { send({ ev: 'complete', id: info.id, t: now() }) })
  // Connections that end during a run are worth knowing about (a closed connection fails every request on it).
  host.libp2p.addEventListener('connection:close', (e: any) => { send({ ev: 'connclose', peer: e.detail.remotePeer.toString(), t: now(), status: e.detail.status, rtt: e.detail.rtt }) })
} catch (err: any) {
  send({ ev: 'fatal', error: String(err?.stack ?? err) })
  process.exit(1)
}

serveIpc(handlers, send, shutdown)

send({ ev: 'ready', pid: process.pid })
