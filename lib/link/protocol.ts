import { lpStream, pbStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { EdgelinkError, isErrorCode } from '../errors.ts'
import { MAX_ROSTER_BYTES } from '../group/roster.ts'
import type { AdmitResponse, JoinResponse, LeaveResponse } from './link.ts'

/** Protocol ids. A new incompatible version gets a new id; old ids keep their meaning. */
export const JOIN_PROTOCOL = '/edgelink/link/join/1.0.0'
export const LEAVE_PROTOCOL = '/edgelink/link/leave/1.0.0'
export const ROSTER_PROTOCOL = '/edgelink/link/roster/1.0.0'
export const ADMIT_PROTOCOL = '/edgelink/link/admit/1.0.0'

/** Largest join/leave message; a join request is well under 4 KiB. */
export const MAX_REQUEST_BYTES = 64 * 1024

export function requestStream (stream: Stream): ReturnType<typeof pbStream<Stream>> {
  return pbStream(stream, { maxDataLength: MAX_REQUEST_BYTES })
}

export function rosterStream (stream: Stream): ReturnType<typeof lpStream<Stream>> {
  return lpStream(stream, { maxDataLength: MAX_ROSTER_BYTES })
}

/** Turns a refusal carried in a response into the error the caller throws. */
export function refusal (res: JoinResponse | LeaveResponse | AdmitResponse): EdgelinkError | undefined {
  if (res.code === '') return undefined
  const code = isErrorCode(res.code) ? res.code : 'PROTOCOL_ERROR'
  return new EdgelinkError(code, res.message.slice(0, 500) || undefined)
}

/** Sends a refusal; `message` must hold nothing secret. */
export function refuse (err: EdgelinkError): { code: string, message: string } {
  return { code: err.code, message: err.message }
}
