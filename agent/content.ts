/**
 * How the agent shows content: the library's {@link ContentInfo} carries every chunk hash (67
 * bytes a MiB: 670 KB for a 10 GiB image), too much for a list or an event. Rows leave them out.
 */
import type { ContentInfo, ContentKind } from '../lib/index.ts'

/** One row of `GET /v1/edgelink/content`: a {@link ContentInfo} without its chunk lists, which grow with the size. */
export interface ContentRow {
  id: string
  name: string
  kind: ContentKind
  mediaType: string
  /** Bytes of the content as exported (sum of its files). */
  size: number
  files: number
  createdAt: number
  uploader: string
  totalChunks: number
  haveChunks: number
  /** Bytes of distinct chunks: what a host stores and fetches (a repeated chunk counts once). */
  totalBytes: number
  haveBytes: number
  /** Whole percent of totalBytes held here, rounded down: 100 only once complete. */
  percent: number
  complete: boolean
}

export function contentRow (c: ContentInfo): ContentRow {
  const m = c.manifest
  return {
    id: c.id,
    name: m.name,
    kind: m.kind,
    mediaType: m.mediaType,
    size: m.size,
    files: m.files.length,
    createdAt: m.createdAt,
    uploader: c.uploader,
    totalChunks: c.totalChunks,
    haveChunks: c.haveChunks,
    totalBytes: c.totalBytes,
    haveBytes: c.haveBytes,
    percent: c.totalBytes === 0 ? 100 : Math.floor(c.haveBytes * 100 / c.totalBytes),
    complete: c.complete
  }
}
