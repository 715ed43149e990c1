/**
 * One process of the group benchmark (benchmarks/group.ts forks one per host, like real machines,
 * or one per few hosts with --hosts-per-process).
 *
 *   node dist/benchmarks/group-host.js host|raw|bare   (options as JSON in GROUP_HOST_OPTS)
 *
 * - `host`: the edgelink hosts (createHost) listed in `hosts`, each on its own exact loopback IP;
 *           requests name one by its index `h`, its events carry `h`.
 * - `raw`:  a plain libp2p node with edgelink's stack (TCP + Noise + Yamux, identify, ping, the same
 *           gossipsub options) and no edgelink: the propagation and memory baseline.
 * - `bare`: Node doing nothing: the memory floor of the same binary.
 *
 * Talks to the parent over IPC: requests `{ id, cmd, ...args }` are answered `{ id, ok, result }`
 * or `{ id, ok: false, error }`; events are sent unasked as `{ ev, ... }`. Times are epoch ms from
 * `now()` below (the Date.now() clock with µs resolution, valid across processes on one machine).
 * Exits cleanly on a `stop` request, on SIGTERM, and when the parent goes away.
 */
import crypto from 'node:crypto'
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks'
import { getHeapSpaceStatistics } from 'node:v8'
// Types only here: modules are imported inside each mode, so `bare` loads nothing but Node itself.
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { Libp2p } from 'libp2p'
import type { Host, HostOptions } from '../lib/index.ts'
import { serveIpc } from './ipc.ts'

/** Epoch ms with sub-ms resolution: Date.now()'s clock, read through the monotonic timer. */
export const now = (): number => performance.timeOrigin + performance.now()

type Request = { id: number, cmd: string } & Record<string, any>
type Handlers = Record<string, (req: Request) => Promise<unknown>>

// Counts signature verifications (libp2p's Ed25519 verify is one `crypto.verify` call): at idle
// they are the gossipsub messages this host checks, duplicates included.
let verifies = 0
const verify = crypto.verify
crypto.verify = ((...a: any[]) => { verifies++; return (verify as any)(...a) }) as typeof crypto.verify

const mode = process.argv[2] ?? 'host'
const opts: Record<string, any> = JSON.parse(process.env.GROUP_HOST_OPTS ?? '{}')

// Real machines dial from their own address. On one machine the kernel gives every outgoing
// loopback connection the source 127.0.0.1, so each host would see all the hosts that dialed it
// as one IP, and gossipsub's IP-colocation penalty (weight -5 per surplus² above 10 peers per IP;
// graylist at -80) makes it ignore all of them from 15 such peers on. So each host dials from its
// own IP (`dialFrom`, a TCP localAddress), as on separate machines; the parent leaves it out for
// --shared-source-ip.

function sendRaw (msg: Record<string, unknown>): void {
  if (process.connected) {
    // With a callback, a channel closed meanwhile is reported there instead of as an 'error' event.
    try { process.send!(msg, undefined, {}, () => {}) } catch {}
  }
}

let stopping = false
let stopFn: () => Promise<void> = async () => {}

async function shutdown (code = 0): Promise<void> {
  if (stopping) return
  stopping = true
  // Bounded: a wedged stop must not leave the process behind.
  setTimeout(() => process.exit(code), 5_000).unref()
  try { await stopFn() } catch {}
  process.exit(code)
}
process.once('SIGTERM', () => { void shutdown(0) })
process.once('SIGINT', () => { void shutdown(0) })
process.once('disconnect', () => { void shutdown(0) })

function memory (): Record<string, unknown> {
  const m = process.memoryUsage()
  // Where the V8 heap's size goes: the young generation (new_space) is sized by allocation rate.
  const spaces = Object.fromEntries(getHeapSpaceStatistics().map(s => [s.space_name, { size: s.space_size, used: s.space_used_size }]))
  return { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, spaces }
}

/**
 * How late this process's event loop ran, sampled every 10 ms: what every host in the process
 * waits before it can handle anything. `reset` starts a new window.
 */
const loopDelay = monitorEventLoopDelay({ resolution: 10 })
loopDelay.enable()
/** The longest garbage-collection pause in the same window, in ms. */
let gcMax = 0
new PerformanceObserver(list => {
  for (const e of list.getEntries()) gcMax = Math.max(gcMax, e.duration)
}).observe({ entryTypes: ['gc'] })
function eventLoop (req: Request): Record<string, number> {
  const out = { p99_ms: loopDelay.percentile(99) / 1e6, max_ms: loopDelay.max / 1e6, gc_max_ms: gcMax }
  if (req.reset === true) {
    loopDelay.reset()
    gcMax = 0
  }
  return out
}

// ---------------------------------------------------------------- edgelink host

/**
 * One edgelink host of this process: its handlers. Its events carry `h`, its index here (a
 * process may run several hosts: --hosts-per-process).
 */
async function runHost (hostOpts: HostOptions, index: number, perProcess: number): Promise<Handlers> {
  const { createHost } = await import('../lib/index.ts')
  const h: Host = await createHost(hostOpts)
  const baseName = h.options.name
  const send = (msg: Record<string, unknown>): void => { sendRaw({ ...msg, h: index }) }

  h.on('settings', s => {
    const seq = s.values.seq
    if (seq != null) send({ ev: 'settings', seq: Number(seq), t: now() })
  })
  h.on('host:health', row => { send({ ev: 'health', id: row.id, health: row.health, t: now(), lastSeen: row.lastSeen }) })
  // Status arrival has no public event ('host:health' fires only when health changes), so listen on
  // the status service itself and report a member's status only when its published name changed.
  const lastName = new Map<string, string>()
  const status = (h as any).status as { on: (ev: 'status', fn: (id: string, st: { name: string, sentAt: bigint }) => void) => void, publishSoon: () => void }
  status.on('status', (id, st) => {
    if (lastName.get(id) === st.name) return
    lastName.set(id, st.name)
    const mark = /#(\d+)$/.exec(st.name)
    if (mark != null) send({ ev: 'status', from: id, seq: Number(mark[1]), t: now(), sentAt: Number(st.sentAt) })
  })

  return {
    stop: async () => { await h.stop() },
    info: async () => ({ id: h.id, addrs: h.multiaddrs.map(a => a.toString()), pid: process.pid }),
    token: async () => (await h.generateLinkToken({ fresh: true })).token,
    link: async (req) => {
      const s = await h.link(req.token)
      return { status: s.status, errorCode: s.errorCode, errorMessage: s.errorMessage }
    },
    rows: async () => h.hosts().map(r => ({ id: r.id, health: r.health, lastSeen: r.lastSeen })),
    updateSettings: async (req) => {
      const t0 = now()
      await h.updateSettings([`values.seq=${req.seq}`])
      return { t0, t1: now() }
    },
    settings: async () => h.settings(),
    // A real status change, published at once: the name in this host's status (and so in every
    // other host's row for it, `config.name`). `publishSoon()` is what any change calls.
    statusChange: async (req) => {
      h.options.name = `${baseName}#${req.seq}`
      const t0 = now()
      status.publishSoon()
      return { t0 }
    },
    memory: async () => memory(),
    connections: async () => h.libp2p.getConnections().length,
    // Signature checks are counted per process: each host's share.
    counters: async () => ({ verifies: verifies / perProcess, statusAccepted: (h as any).status.counters.received as number, connections: h.libp2p.getConnections().length }),
    // Why a row is not Healthy: connections, gossipsub topic peers and mesh, status counters.
    diag: async () => {
      const ps = h.libp2p.services.pubsub as GossipSub
      const rows = h.hosts()
      const conns = h.libp2p.getConnections()
      return {
        connections: conns.length,
        connectedPeers: new Set(conns.map(c => c.remotePeer.toString())).size,
        unhealthy: rows.filter(r => r.health !== 'Healthy').map(r => ({ id: r.id.slice(-6), health: r.health, lastSeen: Math.round(Date.now() - r.lastSeen) })),
        topics: ps.getTopics().map(t => ({ topic: t.split('/').slice(-2).join('/'), subscribers: ps.getSubscribers(t).length, mesh: (ps as any).getMeshPeers(t).length })),
        status: (h as any).status.counters
      }
    }
  }
}

// ---------------------------------------------------------------- plain libp2p + gossipsub

async function runRaw (): Promise<Record<string, (req: Request) => Promise<unknown>>> {
  const [{ noise }, { gossipsub }, { identify }, { ping }, { tcp }, { yamux }, { multiaddr }, { createLibp2p }] = await Promise.all([
    import('@chainsafe/libp2p-noise'), import('@libp2p/gossipsub'), import('@libp2p/identify'), import('@libp2p/ping'),
    import('@libp2p/tcp'), import('@libp2p/yamux'), import('@multiformats/multiaddr'), import('libp2p')
  ])
  const node: Libp2p<{ pubsub: GossipSub }> = await createLibp2p({
    addresses: { listen: [`/ip4/${opts.ip as string}/tcp/0`] },
    // @libp2p/tcp spreads dialOpts into net.connect's options (its type lists a subset).
    transports: [tcp(typeof opts.sourceIp === 'string' ? { dialOpts: { localAddress: opts.sourceIp } as any } : {})],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    connectionManager: { inboundConnectionThreshold: 200, maxIncomingPendingConnections: 200, maxConnections: 1024 },
    // The options edgelink's hosts use (lib/host.ts createNode), but for the mesh degree, which
    // between two peers changes nothing.
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false, floodPublish: true, fallbackToFloodsub: false, doPX: false })
    }
  }) as any
  stopFn = async () => { await node.stop() }
  const enc = new TextEncoder()
  const dec = new TextDecoder()
  node.services.pubsub.addEventListener('message', (e: CustomEvent<Message>) => {
    const t = now()
    const sent = Number(dec.decode(e.detail.data))
    sendRaw({ ev: 'raw', sent, t })
  })
  return {
    info: async () => ({ id: node.peerId.toString(), addrs: node.getMultiaddrs().map(a => a.toString()), pid: process.pid }),
    dial: async (req) => { await node.dial(multiaddr(req.addr as string), { signal: AbortSignal.timeout(10_000) }); return true },
    subscribe: async (req) => { node.services.pubsub.subscribe(req.topic as string); return true },
    subscribers: async (req) => node.services.pubsub.getSubscribers(req.topic as string).length,
    publish: async (req) => {
      const t0 = now()
      await node.services.pubsub.publish(req.topic as string, enc.encode(String(t0)))
      return { t0 }
    },
    memory: async () => memory()
  }
}

// ---------------------------------------------------------------- main

/** `host` mode: every host listed in `opts.hosts`, requests routed by their `h` (default 0). */
async function runHosts (): Promise<Handlers> {
  const list = opts.hosts as HostOptions[]
  const hosts = await Promise.all(list.map(async (o, i) => await runHost(o, i, list.length)))
  stopFn = async () => { await Promise.allSettled(hosts.map(async x => await x.stop({} as Request))) }
  const handlers: Handlers = { memory: async () => memory(), eventLoop: async (req) => eventLoop(req) }
  for (const cmd of Object.keys(hosts[0])) {
    if (cmd === 'stop' || cmd === 'memory') continue
    handlers[cmd] = async (req) => {
      const x = hosts[Number(req.h ?? 0)]
      if (x == null) throw new Error(`no host ${String(req.h)} in this process`)
      return await x[cmd](req)
    }
  }
  return handlers
}

let handlers: Handlers
try {
  handlers = mode === 'host' ? await runHosts() : mode === 'raw' ? await runRaw() : { memory: async () => memory() }
} catch (err: any) {
  sendRaw({ ev: 'fatal', error: String(err?.stack ?? err) })
  process.exit(1)
}

serveIpc(handlers, sendRaw, shutdown)

sendRaw({ ev: 'ready', mode, pid: process.pid })
