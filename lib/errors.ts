/**
 * Every failure edgelink reports carries a stable `code`. Callers branch on the code, never on
 * the message. The agent maps codes to HTTP status codes and CLI exit codes with {@link ERROR_TABLE}.
 *
 * Only append to this list: the codes travel on the wire inside join and leave responses.
 */
export const ERROR_TABLE = {
  // token text
  TOKEN_CORRUPT: { http: 400, summary: 'the token is corrupt (a typo, or it was cut short)' },
  TOKEN_TAMPERED: { http: 400, summary: 'the token was altered' },
  TOKEN_VERSION: { http: 400, summary: 'the token was made by an incompatible edgelink version' },
  // token state on the leader
  TOKEN_EXPIRED: { http: 409, summary: 'the token has expired' },
  TOKEN_USED: { http: 409, summary: 'the token was already used' },
  TOKEN_BURNED: { http: 409, summary: 'the token was revoked after too many bad proofs' },
  TOKEN_UNKNOWN: { http: 409, summary: 'the leader does not know this token' },
  TOKEN_REVOKED: { http: 409, summary: 'token generation was stopped on the leader' },
  BAD_PROOF: { http: 403, summary: 'the proof of the one-time password was wrong' },
  RATE_LIMITED: { http: 429, summary: 'too many join attempts; try again later' },
  TOO_MANY_TOKENS: { http: 429, summary: 'too many live tokens' },
  // reaching the leader
  WRONG_LEADER: { http: 502, summary: 'the host at the token\'s address is not the leader that issued it' },
  LEADER_UNREACHABLE: { http: 504, summary: 'the leader could not be reached' },
  LEADER_REFUSED: { http: 502, summary: 'the leader refused the connection' },
  // who may do what
  ALREADY_LINKED: { http: 409, summary: 'this host is already linked to a group' },
  IN_CLUSTER: { http: 409, summary: 'this host is assigned to a cluster' },
  ALREADY_MEMBER: { http: 409, summary: 'the host is already a member of this group' },
  SELF_LINK: { http: 409, summary: 'a host cannot link to itself' },
  NOT_LINKED: { http: 409, summary: 'this host is not linked to a group' },
  NOT_LEADER: { http: 403, summary: 'only the leader may do this' },
  NOT_MEMBER: { http: 403, summary: 'the peer is not a member of the group' },
  LEADER_HAS_FOLLOWERS: { http: 409, summary: 'the leader cannot be unlinked while it has followers' },
  HOST_IN_USE: { http: 409, summary: 'the host is assigned to a cluster (In-Use)' },
  UNKNOWN_HOST: { http: 404, summary: 'no such host in the group' },
  // everything else
  PROTOCOL_ERROR: { http: 502, summary: 'a peer sent a malformed message' },
  INVALID_ARGUMENT: { http: 400, summary: 'an argument is not valid' },
  NOT_STARTED: { http: 503, summary: 'the host is not running' },
  ABORTED: { http: 499, summary: 'the operation was aborted' },
  TIMEOUT: { http: 504, summary: 'the operation timed out' },
  STORE_ERROR: { http: 500, summary: 'the local store failed' },
  BUSY: { http: 409, summary: 'another operation of this kind is in progress' },
  // group state
  NOT_CONTROL_PLANE: { http: 403, summary: 'only control-plane hosts of the cluster may do this' },
  STALE_TERM: { http: 409, summary: 'written by a leader of an older term' },
  STALE_VERSION: { http: 409, summary: 'an older or equal version is already held' },
  BAD_SIGNATURE: { http: 400, summary: 'the signature is not valid' },
  HOST_NOT_READY: { http: 409, summary: 'the host is not Ready and healthy' },
  CLUSTER_EXISTS: { http: 409, summary: 'a cluster already exists in this group' },
  NO_CLUSTER: { http: 404, summary: 'no cluster exists in this group' },
  TOO_LARGE: { http: 413, summary: 'the document is too large' },
  // content store
  CHUNK_CORRUPT: { http: 502, summary: 'a chunk does not match its SHA-256' },
  CHUNK_MISSING: { http: 404, summary: 'the chunk is not in the local store' },
  DISK_FULL: { http: 507, summary: 'the disk holding the content store is full' },
  NOT_COMPLETE: { http: 409, summary: 'the content is not complete on this host' },
  UNKNOWN_CONTENT: { http: 404, summary: 'no such content on this host' },
  FILE_EXISTS: { http: 409, summary: 'the destination already exists' }
} as const satisfies Record<string, { http: number, summary: string }>

export type ErrorCode = keyof typeof ERROR_TABLE

export function isErrorCode (code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_TABLE, code)
}

/** The one error class edgelink throws. `code` is stable; `message` is for people. */
export class EdgelinkError extends Error {
  override readonly name = 'EdgelinkError'
  readonly code: ErrorCode

  constructor (code: ErrorCode, message?: string, options?: ErrorOptions) {
    super(message ?? ERROR_TABLE[code].summary, options)
    this.code = code
  }
}

/** True when `err` is an {@link EdgelinkError}, optionally with the given code. */
export function isEdgelinkError (err: unknown, code?: ErrorCode): err is EdgelinkError {
  return err instanceof EdgelinkError && (code == null || err.code === code)
}
