/**
 * Content: what edgelink syncs to every linked host. Content is split into chunks addressed by
 * their SHA-256; a manifest lists them; the manifest travels as a signed group document of kind
 * `content` whose id is the content id (the SHA-256 of the manifest's JSON).
 */

/** What a piece of content is. Only append: the strings are stored in manifests. */
export const CONTENT_KINDS = ['agent-image', 'provider-image', 'bundle', 'cluster-definition', 'oci-layout', 'file'] as const
export type ContentKind = typeof CONTENT_KINDS[number]

/** Default chunk size: big enough that per-chunk overhead vanishes, small enough to swarm. */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024
export const MIN_CHUNK_SIZE = 64 * 1024
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024

/** One file of a manifest. A single upload has one; an OCI layout has one per blob and index. */
export interface ManifestFile {
  /** Relative POSIX path inside the content (no `..`, not absolute). */
  path: string
  size: number
  /** File mode bits (0o644, …). */
  mode: number
  /** SHA-256 (hex) of each chunk of the file, in order; every chunk is `chunkSize` bytes but the last. */
  chunks: string[]
}

export interface Manifest {
  version: 1
  kind: ContentKind
  name: string
  mediaType: string
  /** Sum of the files' sizes. */
  size: number
  chunkSize: number
  files: ManifestFile[]
  createdAt: number
}

/** One piece of content as a host holds it. */
export interface ContentInfo {
  /** SHA-256 (hex) of the manifest JSON. */
  id: string
  manifest: Manifest
  /** Host id of the uploader (the document's signer). */
  uploader: string
  /** Distinct chunks this content needs, and how many of them this host holds (verified). */
  totalChunks: number
  haveChunks: number
  /** Bytes of the distinct chunks held / needed. */
  haveBytes: number
  totalBytes: number
  complete: boolean
}

/** Progress of one download, emitted as `content:progress`. */
export interface ContentProgress {
  id: string
  name: string
  bytes: number
  totalBytes: number
  chunks: number
  totalChunks: number
  /** Bytes per second over the last few seconds. */
  rate: number
  /** Seconds left at that rate, or -1 when unknown. */
  eta: number
  /** Peers this host is fetching from right now. */
  peers: number
}
