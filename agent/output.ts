/** What the CLI shows people: tables and sentences. `--json` output is the API's answer unchanged. */
import Table from 'cli-table3'
import type { HostRow, LinkStatus } from '../lib/index.ts'
import type { ClusterDefinition, GroupSettings } from '../lib/index.ts'
import type { AgentStatus } from './api.ts'

export function json (value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n'
}

/** Host ids are long peer ids sharing the prefix `12D3KooW`; the tail tells them apart. */
export function shortId (id: string): string {
  return id.length > 14 ? `…${id.slice(-12)}` : id
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
