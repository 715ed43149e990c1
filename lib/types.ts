import type { ContentInfo, ContentProgress } from './content/types.ts'
import type { ErrorCode } from './errors.ts'
import type { ClusterDefinition, GroupSettings, NodeRole } from './group/state.ts'

/** One row of the Linked Edge Hosts table; field names and values follow the Local UI link API. */
export interface HostRow {
  /** Host id: the libp2p peer id. */
  id: string
  /** The host's mesh address. */
  ip: string
  /** Port of the host's local API / Local UI. */
  localUIPort: number
  /** Overlay address if any, else empty. */
  overlayIP: string
  role: 'leader' | 'follower'
  nodeRole: 'init' | 'controlplane' | 'worker' | 'unknown'
  status: 'Ready' | 'In-Use'
  contentSyncStatus: 'Synced' | 'Not Synced'
  health: 'Healthy' | 'Unhealthy' | 'Unreachable'
  /** Free-form host facts. */
  config: {
    name: string
    hostname: string
    os: string
    arch: string
    cpus: number
    memory: number
    version: string
    /** Free bytes on the host's data disk. */
    freeDisk: number
    /** 1-minute load average. */
    load: number
    /** Names of the host's failing health checks. */
    failing: string[]
  }
  /** Mesh multiaddrs of the host. */
  addrs: string[]
  /** Epoch ms this host last had a connection to it (now for itself and connected hosts); 0 if never. */
  lastSeen: number
  /** True for the row of the host answering. */
  self: boolean
}

export type LinkState = 'Pending' | 'InProgress' | 'Completed' | 'Failed'

/** The Local UI link API's LinkStatus, plus a stable error code when it failed. */
export interface LinkStatus {
  status: LinkState
  errorMessage?: string
  errorCode?: ErrorCode
  peers: HostRow[]
}

/** A link token as shown to an operator. */
export interface LinkToken {
  /** The one-line token to paste on other hosts. */
  token: string
  /** Hex token id (not secret). */
  tokenId: string
  /** Epoch ms when it stops working. */
  expiresAt: number
  /** Seconds between regenerations while generation is on. */
  interval: number
  /** Whole seconds this token has left. */
  remainingTime: number
}

export interface HostEvents {
  /** A host joined the group (also emitted for every member when this host links). */
  'host:linked': [HostRow]
  /** A host left the group; `id` is this host's own id when this host was unlinked. */
  'host:unlinked': [{ id: string, reason: string }]
  /** A member connected or disconnected. */
  'host:health': [HostRow]
  /** This host's link status changed. */
  'link:status': [LinkStatus]
  /** A new token became current (generation on). */
  'token:generated': [{ tokenId: string, expiresAt: number }]
  /** Token generation stopped; every live token was revoked. */
  'token:stopped': []
  /** The roster changed (new version adopted). */
  'roster': [{ version: number, members: string[] }]
  /** Group settings changed. */
  'settings': [GroupSettings]
  /** The cluster definition changed (undefined: deleted). */
  'cluster': [ClusterDefinition | undefined]
  /** This host was put into the cluster: the embedding agent provisions it now. */
  'cluster:assigned': [{ cluster: ClusterDefinition, nodeRole: NodeRole }]
  /** This host left the cluster (deleted, or scaled down). */
  'cluster:released': [{ name: string }]
  /** Download progress of one content (bytes, chunks, rate, ETA). */
  'content:progress': [ContentProgress]
  /** A content is complete (verified) on this host. */
  'content:complete': [ContentInfo]
  /** A content was announced to the group and registered here. */
  'content:added': [ContentInfo]
  /** A content was removed from the group; its unshared chunks are freed. */
  'content:removed': [{ id: string, name: string }]
}
