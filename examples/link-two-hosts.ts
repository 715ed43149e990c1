/**
 * Links two hosts in one process on loopback addresses and prints the hosts table of each.
 *
 *     npm run build && node dist/examples/link-two-hosts.js
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHost } from '../lib/index.ts'

const dirs = [await mkdtemp(join(tmpdir(), 'edgelink-a-')), await mkdtemp(join(tmpdir(), 'edgelink-b-'))]

// Listen on exact addresses: a wildcard would make libp2p advertise every interface.
const leader = await createHost({ dataDir: dirs[0], listen: ['127.0.0.2:0'], name: 'leader' })
const follower = await createHost({ dataDir: dirs[1], listen: ['127.0.0.3:0'], name: 'follower' })

follower.on('host:linked', row => { console.log(`follower sees ${row.config.name} (${row.role})`) })

// On the leader: a one-line token, valid for two minutes and for one host.
const { token, remainingTime } = await leader.generateLinkToken()
console.log(`token (${remainingTime}s left): ${token}`)

// On the follower: paste it. Resolves once the follower holds the group's roster.
const status = await follower.link(token)
console.log(`link status: ${status.status}`)

for (const host of [leader, follower]) {
  console.table(host.hosts().map(r => ({ name: r.config.name, ip: r.ip, role: r.role, health: r.health })))
}

await Promise.all([leader.stop(), follower.stop()])
await Promise.all(dirs.map(async d => { await rm(d, { recursive: true, force: true }) }))
