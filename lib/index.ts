/**
 * @packageDocumentation
 *
 * edgelink links air-gapped edge hosts into a group: the leader issues a one-time link token,
 * each other host links with it, and the members form a libp2p mesh only they may connect to.
 *
 * @example
 * ```ts
 * import { createHost } from 'edgelink'
 *
 * const leader = await createHost({ dataDir: '/var/lib/edgelink', listen: ['10.0.0.1:7400'] })
 * const { token } = await leader.generateLinkToken()
 * // on another host:
 * const follower = await createHost({ dataDir: '/var/lib/edgelink', listen: ['10.0.0.2:7400'] })
 * await follower.link(token)
 * console.log(follower.hosts()) // both hosts, leader first
 * ```
 */
export { createHost, Host, type AbortOptions, type HostStats } from './host.ts'
export { EdgelinkError, isEdgelinkError, ERROR_TABLE, type ErrorCode } from './errors.ts'
export { DEFAULTS, PRESETS, type HostOptions } from './options.ts'
export { systemClock, ManualClock, type Clock, type ClockTimer } from './clock.ts'
export { decodeToken, TOKEN_PREFIX, type DecodedToken, type LinkTokenBody } from './link/token.ts'
export type { HostRow, LinkStatus, LinkState, LinkToken, HostEvents } from './types.ts'
export type { Logger } from './logger.ts'
export type { RosterData, MemberInfo } from './group/roster.ts'
export type { GroupSettings, ClusterDefinition, MachinePool, NodeRole } from './group/state.ts'
export type { Health } from './gossip/status.ts'
export { CONTENT_KINDS, DEFAULT_CHUNK_SIZE, type ContentInfo, type ContentKind, type ContentProgress, type Manifest, type ManifestFile } from './content/types.ts'
export { VERSION } from './version.ts'
