/** What the CLI shows people: tables and sentences. `--json` output is the API's answer unchanged. */
import Table from 'cli-table3'
import type { HostRow, LinkStatus } from '../lib/index.ts'
import type { ClusterDefinition, GroupSettings } from '../lib/index.ts'
import type { ContentInfo } from '../lib/index.ts'
import type { AgentStatus } from './api.ts'
import type { ContentRow } from './content.ts'

export function json (value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n'
}

/** Host ids are long peer ids sharing the prefix `12D3KooW`; the tail tells them apart. */
export function shortId (id: string): string {
  return id.length > 14 ? `…${id.slice(-12)}` : id
}

/** Content ids are 64 hex digits; the first 12 name one in any group (and the CLI takes any unique prefix of 6 or more). */
export function shortContentId (id: string): string {
  return id.slice(0, 12)
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/** Binary units, one decimal from KiB up: 8388608 → "8.0 MiB". */
export function bytes (n: number): string {
  let v = Math.max(0, n)
  let u = 0
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${UNITS[u]}`
}

/** Whole seconds as "45s", "3m05s", "2h04m". */
export function duration (seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`
}

function table (head: string[]): Table.Table {
  // No colours: tables are also read from pipes and logs.
  return new Table({ head, style: { head: [], border: [] } })
}

/** `lastSeen` as people read it; the agent runs on this machine, so the clocks agree. */
export function ago (epochMs: number, now = Date.now()): string {
  if (epochMs <= 0) return 'never'
  const s = Math.max(0, Math.round((now - epochMs) / 1000))
  if (s < 5) return 'now'
  if (s < 120) return `${s}s ago`
  if (s < 7200) return `${Math.round(s / 60)}m ago`
  return `${Math.round(s / 3600)}h ago`
}

/** The Linked Edge Hosts table; `*` marks the host that answered. */
export function hostsTable (rows: HostRow[], now = Date.now()): string {
  if (rows.length === 0) return 'This host is not linked to a group. Run `edgelink token` on the leader, then `edgelink link <token>` here.\n'
  const t = table(['ID', 'NAME', 'ADDRESS', 'ROLE', 'NODE ROLE', 'STATUS', 'CONTENT', 'HEALTH', 'LAST SEEN'])
  for (const r of rows) {
    t.push([
      `${shortId(r.id)}${r.self ? ' *' : ''}`,
      r.config.name,
      r.ip,
      r.role,
      r.nodeRole,
      r.status,
      r.contentSyncStatus,
      r.config.failing.length > 0 ? `${r.health} (${r.config.failing.join(', ')})` : r.health,
      ago(r.lastSeen, now)
    ])
  }
  return `${t.toString()}\n* this host. Unlink a follower with \`edgelink unlink <ID>\` (the shown tail of the ID is enough).\n`
}

/** The line above each redraw of `hosts --watch`. */
export function watchHeader (intervalMs: number, now = new Date()): string {
  return `Every ${intervalMs / 1000}s: edgelink hosts    ${now.toISOString()}    (Ctrl-C to stop)\n`
}

/**
 * Settings one per line, keys spelled as `edgelink settings set KEY=VALUE` takes them, lists
 * comma-separated as it takes them; `-` for empty.
 */
export function settingsTable (s: GroupSettings): string {
  const list = (v: string[]): string => v.join(',')
  const rows: Array<[string, string]> = [
    ['ntpServers', list(s.ntpServers)],
    ['httpProxy', s.httpProxy],
    ['httpsProxy', s.httpsProxy],
    ['noProxy', list(s.noProxy)],
    ['registryMirror', s.registryMirror],
    // PEM blocks and keys are long: count them here, `--json` has them whole.
    ['caCertificates', s.caCertificates.length === 0 ? '' : `${s.caCertificates.length} certificate(s) (see --json)`],
    ['sshKeys', s.sshKeys.length === 0 ? '' : `${s.sshKeys.length} key(s) (see --json)`]
  ]
  for (const [k, v] of Object.entries(s.values)) rows.push([`values.${k}`, v])
  const width = Math.max(...rows.map(([k]) => k.length)) + 2
  return rows.map(([k, v]) => `${k.padEnd(width)}${v === '' ? '-' : v}`).join('\n') + '\n'
}

/** The cluster and its hosts: pool, node role and health from the hosts table. */
export function clusterSummary (c: ClusterDefinition, rows: HostRow[]): string {
  const facts = [`profile: ${c.profile || '-'}`, `VIP: ${c.vip || '-'}`, `created by: ${shortId(c.createdBy)}`]
  const lines = [`Cluster ${c.name} (${facts.join(', ')})`]
  const t = table(['ID', 'NAME', 'POOL', 'NODE ROLE', 'HEALTH'])
  for (const p of c.pools) {
    for (const id of p.hosts) {
      const r = rows.find(x => x.id === id)
      t.push([shortId(id), r?.config.name ?? '?', `${p.name}${p.controlPlane ? ' (control plane)' : ''}`, r?.nodeRole ?? '?', r?.health ?? 'not in the group'])
    }
  }
  lines.push(t.toString())
  const pairs = (m: Record<string, string>): string => Object.entries(m).map(([k, v]) => `${k}=${v}`).join(', ')
  if (Object.keys(c.variables).length > 0) lines.push(`Variables: ${pairs(c.variables)}`)
  for (const p of c.pools) {
    if (Object.keys(p.labels).length > 0) lines.push(`Labels of ${p.name}: ${pairs(p.labels)}`)
    if (p.taints.length > 0) lines.push(`Taints of ${p.name}: ${p.taints.join(', ')}`)
  }
  return lines.join('\n') + '\n'
}

/** `edgelink content ls`: `names` maps host ids to the names the hosts table shows. */
export function contentTable (rows: ContentRow[], names: Map<string, string> = new Map()): string {
  if (rows.length === 0) return 'No content in this group. Add a file or an OCI image layout with `edgelink content add PATH` on the leader.\n'
  const t = table(['ID', 'NAME', 'KIND', 'SIZE', 'HAVE', 'UPLOADER'])
  for (const r of rows) {
    t.push([shortContentId(r.id), r.name, r.kind, bytes(r.size), `${r.percent}%`, names.get(r.uploader) ?? shortId(r.uploader)])
  }
  return `${t.toString()}\nHAVE: share of the content's chunks this host holds. Any unique prefix of an ID (6 or more digits) names it.\n`
}

export function contentAdded (c: ContentInfo): string {
  const m = c.manifest
  const files = m.files.length === 1 ? '' : `, ${m.files.length} files`
  return `Added ${m.name} (${m.kind}, ${bytes(m.size)}${files}, ${c.totalChunks} chunk${c.totalChunks === 1 ? '' : 's'}) as ${c.id}.\n` +
    `Every host in the group fetches it; \`edgelink content wait ${shortContentId(c.id)}\` on a host waits until it is there.\n`
}

/** `edgelink status` for people: one fact per line. */
export function statusLines (st: AgentStatus): string {
  const rows: Array<[string, string]> = [
    ['Host', st.id],
    ['Group', st.groupId ?? '(none)'],
    ['Role', st.role ?? '-'],
    ['Node role', st.nodeRole],
    ['Cluster', st.cluster ?? '(none)'],
    ['Health', st.health ?? '-'],
    ['Linked', st.linked ? 'yes' : 'no'],
    ['Tokens', st.tokenGeneration ? 'generation on' : 'generation off'],
    ['Mesh', st.addrs.join(', ') || '(no address)'],
    ['Version', st.version]
  ]
  return rows.map(([k, v]) => `${`${k}:`.padEnd(11)}${v}`).join('\n') + '\n'
}

export function linkedSummary (status: LinkStatus): string {
  const n = status.peers.length
  return `Linked to group. ${n} host${n === 1 ? '' : 's'}.\n`
}

/** Printed on stderr when the agent is up: where it is and what to do next. */
export function startBanner (info: { id: string, mesh: string[], url: string, linked: boolean, leader: boolean, hosts: number }): string {
  const lines = [
    `edgelink agent running. Host ${info.id}`,
    `  Mesh: ${info.mesh.join(', ') || '(no address)'}`,
    `  API:  ${info.url}`
  ]
  if (info.linked) {
    lines.push(`Linked as ${info.leader ? 'leader' : 'follower'} in a group of ${info.hosts} hosts. See them with \`edgelink hosts\`.`)
  } else {
    lines.push('Next: run `edgelink token` on the leader, then `edgelink link <token>` on each other host.')
  }
  return lines.join('\n') + '\n'
}
