/**
 * Chunk exchange throughput between two processes on loopback: one host holds a content of
 * `--mib` MiB in `--chunk`-KiB chunks, the other fetches it (verifying every chunk's SHA-256),
 * next to a raw libp2p stream carrying the same bytes between the same two processes in
 * 256 KiB writes. Runs alternate; medians are reported.
 *
 *   node dist/benchmarks/exchange.js --mib 256 --chunk 1024 --rounds 3
 *
 * Prints one JSON object on stdout (also written to benchmarks/results/exchange-latest.json) and a
 * short table on stderr. `run(options)` does the same for benchmarks/run.ts and returns the result.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { ParseArgsOptionsConfig } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Stream } from '@libp2p/interface'
import { systemClock } from '../lib/clock.ts'
import { EdgelinkError } from '../lib/errors.ts'
import type { Logger } from '../lib/logger.ts'
import { newBitmap, setBit } from '../lib/content/bitmap.ts'
import { ContentExchange, sendSlices, type ChunkSource } from '../lib/content/exchange.ts'
import { environment, median, parseBenchArgs, table, writeResult } from './lib.ts'

export interface ExchangeOptions {
  mib: number
  chunkKiB: number
  rounds: number
  /** Requests in flight per peer. */
  perPeerConcurrency: number
}
export const EXCHANGE_DEFAULTS: ExchangeOptions = { mib: 256, chunkKiB: 1024, rounds: 3, perPeerConcurrency: 4 }

// Set by run() (or the holder's command line); read by the functions below.
let MIB = EXCHANGE_DEFAULTS.mib
let CHUNK = EXCHANGE_DEFAULTS.chunkKiB * 1024
let ROUNDS = EXCHANGE_DEFAULTS.rounds
let PPC = EXCHANGE_DEFAULTS.perPeerConcurrency
let TOTAL = MIB * 1024 * 1024
function configure (o: ExchangeOptions): void {
  MIB = o.mib
  CHUNK = o.chunkKiB * 1024
  ROUNDS = o.rounds
  PPC = o.perPeerConcurrency
  TOTAL = MIB * 1024 * 1024
}
const RAW_PROTOCOL = '/edgelink/bench/raw/1'
const quiet: Logger = { debug () {}, info () {}, warn () {}, error () {}, child () { return quiet } }
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** Chunk `i` of content `seed`: made on demand so neither process holds the content. */
function chunkBytes (seed: number, i: number): Buffer {
  const b = Buffer.alloc(CHUNK, (seed * 31 + i) & 0xff)
  b.writeUInt32BE(seed, 0)
  b.writeUInt32BE(i, 4)
  return b
}

class BenchSource implements ChunkSource {
  readonly index = new Map<string, [number, number]>()
  readonly held = new Set<string>()
  readonly bitmaps = new Map<string, { hashes: string[], bitmap: Uint8Array }>()
  hasChunk (hash: string): boolean { return this.held.has(hash) }
  async readChunk (hash: string): Promise<Uint8Array> {
    const at = this.index.get(hash)
    if (at == null) throw new EdgelinkError('CHUNK_MISSING')
    return chunkBytes(at[0], at[1])
  }

  async writeChunk (hash: string, bytes: Uint8Array): Promise<void> {
    if (sha256(bytes) !== hash) throw new EdgelinkError('CHUNK_CORRUPT')
    this.held.add(hash)
  }

  bitmap (id: string): Uint8Array | undefined { return this.bitmaps.get(id)?.bitmap }
  async markHave (id: string, i: number): Promise<void> { setBit((this.bitmaps.get(id) as { bitmap: Uint8Array }).bitmap, i) }
}

async function node (ip: string): Promise<Libp2p> {
  return await createLibp2p({ addresses: { listen: [`/ip4/${ip}/tcp/0`] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
}

/** The serving process: holds `ROUNDS` contents and streams raw bytes on request. */
async function holder (): Promise<void> {
  const n = await node('127.0.7.2')
  const source = new BenchSource()
  const contents: Array<{ id: string, hashes: string[] }> = []
  for (let r = 0; r < ROUNDS; r++) {
    const hashes: string[] = []
    for (let i = 0; i < TOTAL / CHUNK; i++) {
      const h = sha256(chunkBytes(r, i))
      hashes.push(h)
      source.index.set(h, [r, i])
      source.held.add(h)
    }
    const id = sha256(randomBytes(32))
    const bitmap = newBitmap(hashes.length)
    for (let i = 0; i < hashes.length; i++) setBit(bitmap, i)
    source.bitmaps.set(id, { hashes, bitmap })
    contents.push({ id, hashes })
  }
  const exchange = new ContentExchange({ node: () => n, isMember: () => true, source, clock: systemClock, log: quiet })
  await exchange.start()
  await n.handle(RAW_PROTOCOL, async (s: Stream) => {
    const lp = lpStream(s)
    await lp.read()
    const piece = Buffer.alloc(256 * 1024, 7)
    const all = function * (): Generator<Uint8Array> { for (let off = 0; off < TOTAL; off += piece.length) yield piece }
    await sendSlices(lp, all())
    await s.close()
  })
  process.send?.({ addr: n.getMultiaddrs()[0].toString(), contents })
  process.on('message', () => { void Promise.resolve(n.stop()).then(() => process.exit(0)) })
  process.once('disconnect', () => { void Promise.resolve(n.stop()).then(() => process.exit(0)) })
}

let holderProc: ChildProcess | undefined

export type ExchangeResult = Awaited<ReturnType<typeof fetcher>>

/** The exchange benchmark with `options` (forks the holder process, stops it at the end). */
export async function run (options: Partial<ExchangeOptions> = {}): Promise<ExchangeResult> {
  configure({ ...EXCHANGE_DEFAULTS, ...options })
  try {
    return await fetcher()
  } finally {
    // On failure the holder is still up: end it (on success it has been told to stop).
    if (holderProc != null && holderProc.exitCode == null && holderProc.signalCode == null) holderProc.kill('SIGKILL')
    holderProc = undefined
  }
}

async function fetcher () {
  const child: ChildProcess = fork(new URL(import.meta.url).pathname, ['--role', 'holder', '--mib', String(MIB), '--chunk', String(CHUNK / 1024), '--rounds', String(ROUNDS)], { execPath: process.execPath })
  holderProc = child
  const ready = await new Promise<{ addr: string, contents: Array<{ id: string, hashes: string[] }> }>((resolve, reject) => {
    child.once('message', m => { resolve(m as any) })
    child.once('exit', code => { reject(new Error(`holder exited ${code}`)) })
  })
  const n = await node('127.0.7.3')
  const source = new BenchSource()
  const exchange = new ContentExchange({ node: () => n, isMember: () => true, source, clock: systemClock, log: quiet }, { perPeerConcurrency: PPC })
  await exchange.start()
  const conn = await n.dial(multiaddr(ready.addr))
  const exchangeRuns: number[] = []
  const rawRuns: number[] = []
  const hashRuns: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    // raw: the same bytes on one stream, 256 KiB writes, read as fast as they come
    let t = performance.now()
    const s = await conn.newStream(RAW_PROTOCOL)
    const lp = lpStream(s)
    await lp.write(new Uint8Array(1))
    lp.unwrap()
    let got = 0
    for await (const buf of s) got += buf.byteLength
    if (got < TOTAL) throw new Error(`raw stream ended after ${got} bytes`)
    rawRuns.push(TOTAL / 1e6 / ((performance.now() - t) / 1000))
    // exchange
    const { id, hashes } = ready.contents[r]
    source.bitmaps.set(id, { hashes, bitmap: newBitmap(hashes.length) })
    t = performance.now()
    await exchange.fetch(id, hashes, hashes.map(() => CHUNK))
    exchangeRuns.push(TOTAL / 1e6 / ((performance.now() - t) / 1000))
    // SHA-256 alone, which the exchange does once per received chunk
    const b = chunkBytes(99, r)
    t = performance.now()
    for (let i = 0; i < 64; i++) sha256(b)
    hashRuns.push(64 * CHUNK / 1e6 / ((performance.now() - t) / 1000))
  }
  child.send('stop')
  await exchange.stop()
  await n.stop()
  const result = {
    benchmark: 'exchange',
    environment: environment(),
    params: { mib: MIB, chunkKiB: CHUNK / 1024, rounds: ROUNDS, perPeerConcurrency: PPC },
    exchange_MBps: exchangeRuns.map(x => Math.round(x)),
    raw_stream_MBps: rawRuns.map(x => Math.round(x)),
    sha256_MBps: hashRuns.map(x => Math.round(x)),
    exchange_p50_MBps: Math.round(median(exchangeRuns)),
    raw_p50_MBps: Math.round(median(rawRuns)),
    ratio: Math.round(median(exchangeRuns) / median(rawRuns) * 100) / 100
  }
  return result
}

function printTable (result: ExchangeResult): void {
  process.stderr.write(table([
    ['what', 'MB/s (median)', 'runs'],
    [`exchange, ${result.params.chunkKiB} KiB chunks, verified`, result.exchange_p50_MBps, result.exchange_MBps.join(' ')],
    ['raw libp2p stream, 256 KiB writes', result.raw_p50_MBps, result.raw_stream_MBps.join(' ')],
    ['SHA-256 alone (one core)', Math.round(median(result.sha256_MBps)), '']
  ]) + '\n')
}

/** The command line's options (parseArgs, node:util); every one is in USAGE. */
export const CLI_OPTIONS = {
  role: { type: 'string', default: 'fetcher' },
  mib: { type: 'string', default: String(EXCHANGE_DEFAULTS.mib) },
  chunk: { type: 'string', default: String(EXCHANGE_DEFAULTS.chunkKiB) },
  rounds: { type: 'string', default: String(EXCHANGE_DEFAULTS.rounds) },
  ppc: { type: 'string', default: String(EXCHANGE_DEFAULTS.perPeerConcurrency) }
} satisfies ParseArgsOptionsConfig

export const USAGE = `usage: node dist/benchmarks/exchange.js [options]     (after npm run build)
       (there is no bench:exchange npm script; npm run bench runs it as its exchange part, at its sizes)

Chunk exchange throughput between two processes on loopback: one process holds a content of --mib
MiB in --chunk KiB chunks, the other fetches it (verifying every chunk's SHA-256), next to a raw
libp2p stream carrying the same bytes between the same two processes in 256 KiB writes, and
SHA-256 alone on one core. Runs alternate; medians are reported, and the ratio exchange / raw
stream. It has no target.

options:
  --mib N        content size, in MiB (default ${EXCHANGE_DEFAULTS.mib})
  --chunk KIB    chunk size, in KiB (default ${EXCHANGE_DEFAULTS.chunkKiB})
  --rounds N     rounds, each one raw stream and one exchange fetch (default ${EXCHANGE_DEFAULTS.rounds})
  --ppc N        chunk requests in flight per peer (default ${EXCHANGE_DEFAULTS.perPeerConcurrency})
  --role ROLE    fetcher, or holder for the serving process the fetcher forks itself (internal;
                 default fetcher)
  -h, --help     print this help and exit

Output: one JSON object on stdout (also written to benchmarks/results/exchange-latest.json); a
short table on stderr. Exits 0 when it ran, 1 when it failed, 2 on a bad command line.
`

if (import.meta.main) {
  const { values: args } = parseBenchArgs(USAGE, { options: CLI_OPTIONS })
  const o = { mib: Number(args.mib), chunkKiB: Number(args.chunk), rounds: Number(args.rounds), perPeerConcurrency: Number(args.ppc) }
  if (args.role === 'holder') {
    configure(o)
    await holder()
  } else {
    const result = await run(o)
    await writeResult('exchange', result)
    process.stdout.write(JSON.stringify(result, null, 2) + '\n')
    printTable(result)
    process.exit(0)
  }
}
