/** What the CLI shows people: tables and sentences. `--json` output is the API's answer unchanged. */
import Table from 'cli-table3'
import type { HostRow, LinkStatus } from '../lib/index.ts'

export function json (value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n'
}

/** Host ids are long peer ids sharing the prefix `12D3KooW`; the tail tells them apart. */
export function shortId (id: string): string {
  return id.length > 14 ? `…${id.slice(-12)}` : id
}

/** The Linked Edge Hosts table; `*` marks the host that answered. */
export function hostsTable (rows: HostRow[]): string {
  if (rows.length === 0) return 'This host is not linked to a group. Run `edgelink token` on the leader, then `edgelink link <token>` here.\n'
  const table = new Table({
    head: ['ID', 'NAME', 'ADDRESS', 'ROLE', 'STATUS', 'CONTENT', 'HEALTH'],
    // No colours: the table is also read from pipes and logs.
    style: { head: [], border: [] }
  })
  for (const r of rows) {
    table.push([
      `${shortId(r.id)}${r.self ? ' *' : ''}`,
      r.config.name,
      r.ip,
      r.role,
      r.status,
      r.contentSyncStatus,
      r.health
    ])
  }
  return `${table.toString()}\n* this host. Unlink a follower with \`edgelink unlink <ID>\` (the shown tail of the ID is enough).\n`
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
