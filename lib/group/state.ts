import { EdgelinkError } from '../errors.ts'
import type { RosterData } from './roster.ts'

/**
 * The group's replicated documents and the rules that say who may write them. Pure: the same
 * functions decide at the API (before writing) and at every receiver (before accepting).
 */

/** Host settings the leader (or, with a cluster, a control-plane host) may change. */
export interface GroupSettings {
  ntpServers: string[]
  httpProxy: string
  httpsProxy: string
  noProxy: string[]
  caCertificates: string[]
  sshKeys: string[]
  registryMirror: string
  /** Free-form key/values. */
  values: Record<string, string>
}

export interface MachinePool {
  name: string
  controlPlane: boolean
  hosts: string[]
  labels: Record<string, string>
  taints: string[]
}

/** A cluster definition. edgelink replicates it and assigns roles; it does not provision Kubernetes. */
export interface ClusterDefinition {
  name: string
  profile: string
  variables: Record<string, string>
  /** Control-plane endpoint / VIP, or empty. */
  vip: string
  pools: MachinePool[]
  /** The host that created it (its first control-plane host, nodeRole `init`). */
  createdBy: string
}

export const EMPTY_SETTINGS: GroupSettings = {
  ntpServers: [], httpProxy: '', httpsProxy: '', noProxy: [], caCertificates: [], sshKeys: [], registryMirror: '', values: {}
}

const LIST_KEYS = ['ntpServers', 'noProxy', 'caCertificates', 'sshKeys'] as const
const STRING_KEYS = ['httpProxy', 'httpsProxy', 'registryMirror'] as const
export const SETTINGS_KEYS = [...LIST_KEYS, ...STRING_KEYS, 'values'] as const

/** Bounds on what a document may hold; a receiver rejects anything larger. */
const MAX_STRING = 64 * 1024
const MAX_LIST = 1024
const MAX_MAP = 1024

function bad (what: string): never { throw new EdgelinkError('INVALID_ARGUMENT', what) }

function str (v: unknown, what: string, max = MAX_STRING): string {
  if (typeof v !== 'string') bad(`${what} must be a string`)
  if (v.length > max) bad(`${what} is too long`)
  return v
}

function list (v: unknown, what: string): string[] {
  if (!Array.isArray(v)) bad(`${what} must be a list of strings`)
  if (v.length > MAX_LIST) bad(`${what} has too many entries`)
  return v.map((x, i) => str(x, `${what}[${i}]`))
}

function map (v: unknown, what: string): Record<string, string> {
  if (v == null || typeof v !== 'object' || Array.isArray(v)) bad(`${what} must be an object of strings`)
  const entries = Object.entries(v as object)
  if (entries.length > MAX_MAP) bad(`${what} has too many entries`)
  const out: Record<string, string> = {}
  for (const [k, x] of entries) out[str(k, `${what} key`, 256)] = str(x, `${what}.${k}`)
  return out
}

/** Validates a whole settings document (total: any JSON in, settings or INVALID_ARGUMENT out). */
export function parseSettings (v: unknown): GroupSettings {
  if (v == null || typeof v !== 'object' || Array.isArray(v)) bad('settings must be an object')
  const o = v as Record<string, unknown>
  for (const k of Object.keys(o)) if (!(SETTINGS_KEYS as readonly string[]).includes(k)) bad(`unknown setting "${k}" (known: ${SETTINGS_KEYS.join(', ')})`)
  const s: GroupSettings = structuredClone(EMPTY_SETTINGS)
  for (const k of LIST_KEYS) if (o[k] != null) s[k] = list(o[k], k)
  for (const k of STRING_KEYS) if (o[k] != null) s[k] = str(o[k], k)
  if (o.values != null) s.values = map(o.values, 'values')
  return s
}

/**
 * Applies `KEY=VALUE` assignments to settings: list keys take comma-separated values, `values.K=V`
 * sets one free-form value, an empty value clears.
 */
export function applyAssignments (base: GroupSettings, assignments: string[]): GroupSettings {
  const s = structuredClone(base)
  for (const a of assignments) {
    const eq = a.indexOf('=')
    if (eq <= 0) bad(`expected KEY=VALUE, got "${a}"`)
    const key = a.slice(0, eq)
    const value = a.slice(eq + 1)
    if (key.startsWith('values.')) {
      const k = key.slice('values.'.length)
      if (k === '') bad('values.KEY needs a key')
      if (value === '') delete s.values[k]
      else s.values[k] = value
    } else if ((LIST_KEYS as readonly string[]).includes(key)) {
      s[key as typeof LIST_KEYS[number]] = value === '' ? [] : value.split(',').map(x => x.trim()).filter(x => x !== '')
    } else if ((STRING_KEYS as readonly string[]).includes(key)) {
      s[key as typeof STRING_KEYS[number]] = value
    } else {
      bad(`unknown setting "${key}" (known: ${SETTINGS_KEYS.join(', ')}, values.KEY)`)
    }
  }
  return parseSettings(s)
}

/** Validates a cluster definition's shape (not who may write it: see {@link checkClusterPlan}). */
export function parseCluster (v: unknown): ClusterDefinition {
  if (v == null || typeof v !== 'object' || Array.isArray(v)) bad('cluster must be an object')
  const o = v as Record<string, unknown>
  const name = str(o.name, 'name', 253)
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)) bad('cluster name must be lowercase letters, digits and dashes')
  if (!Array.isArray(o.pools) || o.pools.length === 0 || o.pools.length > 16) bad('pools must be a list of 1 to 16 machine pools')
  const pools = o.pools.map((p: any, i: number): MachinePool => {
    if (p == null || typeof p !== 'object') bad(`pools[${i}] must be an object`)
    return {
      name: str(p.name, `pools[${i}].name`, 253),
      controlPlane: p.controlPlane === true,
      hosts: list(p.hosts, `pools[${i}].hosts`),
      labels: p.labels == null ? {} : map(p.labels, `pools[${i}].labels`),
      taints: p.taints == null ? [] : list(p.taints, `pools[${i}].taints`)
    }
  })
  return {
    name,
    profile: o.profile == null ? '' : str(o.profile, 'profile'),
    variables: o.variables == null ? {} : map(o.variables, 'variables'),
    vip: o.vip == null ? '' : str(o.vip, 'vip', 64),
    pools,
    createdBy: str(o.createdBy, 'createdBy', 128)
  }
}

export function controlPlaneOf (c: ClusterDefinition): string[] {
  return c.pools.filter(p => p.controlPlane).flatMap(p => p.hosts)
}

export function workersOf (c: ClusterDefinition): string[] {
  return c.pools.filter(p => !p.controlPlane).flatMap(p => p.hosts)
}

export type NodeRole = 'init' | 'controlplane' | 'worker' | 'unknown'

export function nodeRoleOf (c: ClusterDefinition | undefined, id: string): NodeRole {
  if (c == null) return 'unknown'
  if (controlPlaneOf(c).includes(id)) return id === c.createdBy ? 'init' : 'controlplane'
  if (workersOf(c).includes(id)) return 'worker'
  return 'unknown'
}

/**
 * The rules a new cluster plan must meet: hosts linked, each in one pool only, an odd number of
 * control-plane hosts, the creator among them, every host `Ready` and healthy (`usable`).
 */
export function checkClusterPlan (c: ClusterDefinition, roster: RosterData, usable: (id: string) => string | undefined): void {
  const cp = controlPlaneOf(c)
  const all = [...cp, ...workersOf(c)]
  if (cp.length === 0 || cp.length % 2 === 0) bad(`the control plane needs an odd number of hosts, got ${cp.length}`)
  if (!cp.includes(c.createdBy)) bad('the host creating the cluster must be one of its control-plane hosts')
  if (new Set(all).size !== all.length) bad('a host may be in only one pool')
  for (const id of all) {
    if (!roster.members.some(m => m.id === id)) throw new EdgelinkError('UNKNOWN_HOST', `host ${id} is not linked to this group`)
    const why = usable(id)
    if (why != null) throw new EdgelinkError('HOST_NOT_READY', `host ${id} cannot join a cluster: ${why}`)
  }
}

/** Who may write group documents now: the leader before a cluster exists, its control plane after. */
export function authorize (author: string, term: number, roster: RosterData, cluster: ClusterDefinition | undefined): EdgelinkError | undefined {
  if (!roster.members.some(m => m.id === author)) return new EdgelinkError('NOT_MEMBER', 'the author is not a member of the group')
  if (cluster != null) {
    if (!controlPlaneOf(cluster).includes(author)) return new EdgelinkError('NOT_CONTROL_PLANE', 'only control-plane hosts of the cluster may do this')
    return undefined
  }
  if (author !== roster.leader) return new EdgelinkError('NOT_LEADER', 'only the leader may do this before a cluster exists')
  // A deposed leader's writes from an older term are refused.
  if (term < roster.term) return new EdgelinkError('STALE_TERM', `written in term ${term}, the group is in term ${roster.term}`)
  return undefined
}
