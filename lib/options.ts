import { hostname } from 'node:os'
import { isIP } from 'node:net'
import { systemClock, type Clock } from './clock.ts'
import { EdgelinkError } from './errors.ts'
import type { Logger } from './logger.ts'

/** Options of {@link createHost}. Every field but `dataDir` has a default. */
export interface HostOptions {
  /** Directory for the host key, LevelDB and everything else this host keeps. Created 0700. */
  dataDir: string
  /**
   * Mesh addresses to listen on, each `HOST:PORT` (IPv6 as `[::1]:7400`) or a multiaddr.
   * Listening on a wildcard makes libp2p advertise and dial every interface address; listen on an
   * exact address wherever the host's other interfaces must not be used.
   * @default ['0.0.0.0:7400']
   */
  listen?: string[]
  /**
   * IPs other hosts should dial, put into tokens and the roster instead of the interface
   * addresses. Use it behind NAT or when only one interface faces the other hosts.
   * @default the listen address, or every non-loopback interface address when listening on a wildcard
   */
  advertise?: string[]
  /**
   * Source IP of the mesh connections this host opens (`localAddress` of its TCP dials), for a
   * host with several addresses whose peers must see one of them. Dials to the other IP family
   * then fail. @default the kernel's choice
   */
  dialFrom?: string
  /** Human name shown in the hosts table. @default the OS hostname */
  name?: string
  /** Port of this host's local API / Local UI, reported to the group as `localUIPort`. @default 5080 */
  apiPort?: number
  /**
   * How long a link token lives. Shorter is safer (a leaked token is useful for less time);
   * longer leaves operators more time to paste it.
   * @default 120_000 (two minutes)
   */
  tokenTtl?: number
  /** Wrong proofs of a token's one-time password before the token is burned. @default 5 */
  maxProofFailures?: number
  /**
   * Join attempts accepted per remote IP per {@link HostOptions.joinRateWindow}. Together with
   * 128-bit passwords and burning after `maxProofFailures`, this keeps guessing hopeless.
   * @default 20
   */
  joinRateLimit?: number
  /** Window of {@link HostOptions.joinRateLimit}, in ms. @default 60_000 */
  joinRateWindow?: number
  /** Live tokens a leader keeps at once (each `generateLinkToken({ fresh: true })` adds one). @default 64 */
  maxLiveTokens?: number
  /**
   * How long a non-member may stay connected to the leader to complete a join, in ms; after it
   * the connection is closed. Bounds what an unauthenticated peer can hold open.
   * @default 15_000
   */
  guestTimeout?: number
  /** Non-member connections the leader accepts at once while a token is live. @default 32 */
  maxGuests?: number
  /** Time allowed for one join or leave exchange, in ms. @default 10_000 */
  requestTimeout?: number
  /** How often a member re-dials members it is not connected to, in ms. @default 5_000 */
  reconnectInterval?: number
  /** Unlinked peer ids the roster remembers so that a host unlinked while offline learns it. @default 64 */
  maxTombstones?: number
  /**
   * Status heartbeat period, in ms. Every host publishes its status this often and at once on a
   * change; shorter detects silent failures sooner at the cost of N messages per period per host.
   * Groups larger than 16 hosts stretch it (and `failureTimeout`) by members ÷ 16, so each host
   * receives about 16 heartbeats per period whatever the group's size.
   * @default 1_000
   */
  statusInterval?: number
  /**
   * Silence after which a host is shown `Unreachable` even while connections look open (a cut
   * link closes nothing). Keep it ≥ 3 × statusInterval so a loaded CPU does not flap it.
   * @default 3_500
   */
  failureTimeout?: number
  /**
   * Silence after which a host with no open connection to this one is `Unreachable`. A killed
   * host closes its connections at once, so this bounds detection of crashes.
   * @default 1_000
   */
  disconnectGrace?: number
  /**
   * With no cluster, followers elect a new leader after it was silent this long (each wait drawn
   * in [min, max]); a voter that heard from the leader within `min` refuses to vote. Must be
   * several status intervals, or a busy leader gets deposed. Groups larger than 16 hosts stretch
   * both bounds by members ÷ 16, as they stretch the heartbeat.
   * @default 3_000
   */
  electionTimeoutMin?: number
  /** @default 6_000 */
  electionTimeoutMax?: number
  /** How often a host runs anti-entropy with one random member, in ms. @default 10_000 */
  syncInterval?: number
  /**
   * Size of the chunks content is split into, in bytes (64 KiB – 16 MiB). Larger chunks cost less
   * per byte; smaller ones spread over more peers sooner and lose less when a transfer breaks.
   * @default 1 MiB
   */
  chunkSize?: number
  /** Upload limit for content, in bytes per second over all peers; 0 for none. @default 0 */
  uploadRate?: number
  /** Free disk below this many bytes makes the host report itself `Unhealthy` (check `disk`). @default 256 MiB */
  minFreeDisk?: number
  /** Source of time. @default the system clock */
  clock?: Clock
  /** Structured logger (pino-compatible). @default silent */
  logger?: Logger
  /** Start the host before {@link createHost} resolves. @default true */
  start?: boolean
  /** Agent version reported to other hosts. @default the package version */
  version?: string
}

export type ResolvedOptions = Required<Omit<HostOptions, 'advertise' | 'dialFrom'>> & { advertise: string[], dialFrom?: string }

export const DEFAULTS = {
  listen: ['0.0.0.0:7400'],
  apiPort: 5080,
  tokenTtl: 120_000,
  maxProofFailures: 5,
  joinRateLimit: 20,
  joinRateWindow: 60_000,
  maxLiveTokens: 64,
  guestTimeout: 15_000,
  maxGuests: 32,
  requestTimeout: 10_000,
  reconnectInterval: 5_000,
  maxTombstones: 64,
  statusInterval: 1_000,
  failureTimeout: 3_500,
  disconnectGrace: 1_000,
  syncInterval: 10_000,
  electionTimeoutMin: 3_000,
  electionTimeoutMax: 6_000,
  minFreeDisk: 256 * 1024 * 1024,
  chunkSize: 1024 * 1024,
  uploadRate: 0
} as const

/**
 * Named starting points. `lan` is the default; `test` shortens the intervals that make tests
 * slow and listens on 127.0.0.1 with an OS-chosen port.
 */
export const PRESETS = {
  lan: {} satisfies Partial<HostOptions>,
  test: {
    listen: ['127.0.0.1:0'],
    reconnectInterval: 500,
    guestTimeout: 5_000,
    requestTimeout: 5_000,
    statusInterval: 250,
    failureTimeout: 1_500,
    disconnectGrace: 400,
    syncInterval: 1_000,
    electionTimeoutMin: 1_000,
    electionTimeoutMax: 2_000
  } satisfies Partial<HostOptions>
}

const silent: Logger = {
  debug () {}, info () {}, warn () {}, error () {}, child () { return silent }
}

export function resolveOptions (options: HostOptions, version: string): ResolvedOptions {
  if (typeof options?.dataDir !== 'string' || options.dataDir === '') {
    throw new EdgelinkError('INVALID_ARGUMENT', 'options.dataDir is required')
  }
  const positive = (name: string, value: number | undefined, def: number): number => {
    const v = value ?? def
    if (!Number.isFinite(v) || v <= 0) throw new EdgelinkError('INVALID_ARGUMENT', `options.${name} must be a positive number`)
    return v
  }
  const apiPort = options.apiPort ?? DEFAULTS.apiPort
  if (!Number.isInteger(apiPort) || apiPort < 0 || apiPort > 65535) {
    throw new EdgelinkError('INVALID_ARGUMENT', 'options.apiPort must be a port number')
  }
  const listen = options.listen ?? [...DEFAULTS.listen]
  if (!Array.isArray(listen) || listen.length === 0) throw new EdgelinkError('INVALID_ARGUMENT', 'options.listen needs at least one address')
  if (options.dialFrom != null && isIP(options.dialFrom) === 0) throw new EdgelinkError('INVALID_ARGUMENT', 'options.dialFrom must be an IP address')
  return {
    dataDir: options.dataDir,
    listen,
    advertise: options.advertise ?? [],
    dialFrom: options.dialFrom,
    name: options.name ?? hostname(),
    apiPort,
    tokenTtl: positive('tokenTtl', options.tokenTtl, DEFAULTS.tokenTtl),
    maxProofFailures: positive('maxProofFailures', options.maxProofFailures, DEFAULTS.maxProofFailures),
    joinRateLimit: positive('joinRateLimit', options.joinRateLimit, DEFAULTS.joinRateLimit),
    joinRateWindow: positive('joinRateWindow', options.joinRateWindow, DEFAULTS.joinRateWindow),
    maxLiveTokens: positive('maxLiveTokens', options.maxLiveTokens, DEFAULTS.maxLiveTokens),
    guestTimeout: positive('guestTimeout', options.guestTimeout, DEFAULTS.guestTimeout),
    maxGuests: positive('maxGuests', options.maxGuests, DEFAULTS.maxGuests),
    requestTimeout: positive('requestTimeout', options.requestTimeout, DEFAULTS.requestTimeout),
    reconnectInterval: positive('reconnectInterval', options.reconnectInterval, DEFAULTS.reconnectInterval),
    maxTombstones: positive('maxTombstones', options.maxTombstones, DEFAULTS.maxTombstones),
    statusInterval: positive('statusInterval', options.statusInterval, DEFAULTS.statusInterval),
    failureTimeout: positive('failureTimeout', options.failureTimeout, DEFAULTS.failureTimeout),
    disconnectGrace: positive('disconnectGrace', options.disconnectGrace, DEFAULTS.disconnectGrace),
    syncInterval: positive('syncInterval', options.syncInterval, DEFAULTS.syncInterval),
    electionTimeoutMin: positive('electionTimeoutMin', options.electionTimeoutMin, DEFAULTS.electionTimeoutMin),
    electionTimeoutMax: positive('electionTimeoutMax', options.electionTimeoutMax, DEFAULTS.electionTimeoutMax),
    minFreeDisk: options.minFreeDisk ?? DEFAULTS.minFreeDisk,
    chunkSize: positive('chunkSize', options.chunkSize, DEFAULTS.chunkSize),
    uploadRate: options.uploadRate ?? DEFAULTS.uploadRate,
    clock: options.clock ?? systemClock,
    logger: options.logger ?? silent,
    start: options.start ?? true,
    version: options.version ?? version
  }
}
