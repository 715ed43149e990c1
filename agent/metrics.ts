/**
 * Prometheus metrics at `GET /metrics` on the agent's API (bearer secret required, like every
 * route). Every edgelink metric is read from the host when scraped — its counters through
 * `host.stats()`, its state through `host.hosts()` and `host.listContent()` — by collect()
 * callbacks: nothing runs between scrapes. prom-client's default process metrics come along
 * (CPU, memory, file descriptors, event-loop lag, GC).
 */
import type { FastifyInstance } from 'fastify'
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import { VERSION, type Host, type HostStats } from '../lib/index.ts'

/** Document kinds always reported, so their series exist (at 0) before the first message. */
const DOC_KINDS = ['settings', 'cluster', 'content']
const HEALTH = ['Healthy', 'Unhealthy', 'Unreachable'] as const

type Labels = Record<string, string>
type Samples = Array<[Labels, number]>

/** A registry of this host's metrics; serve it with {@link metricsRoute}. */
export function createMetrics (host: Host): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const counter = (name: string, help: string, labelNames: string[], read: (s: HostStats) => Samples): void => {
    // A counter read from a total kept elsewhere: start from zero and add the total.
    new Counter({ name, help, labelNames, registers: [registry], collect () { this.reset(); for (const [l, v] of read(host.stats())) this.inc(l, v) } })
  }
  const gauge = (name: string, help: string, labelNames: string[], read: () => Samples): void => {
    new Gauge({ name, help, labelNames, registers: [registry], collect () { this.reset(); for (const [l, v] of read()) this.set(l, v) } })
  }
  const byKey = (counts: Record<string, number>, label: string, always: string[] = []): Samples =>
    [...new Set([...always, ...Object.keys(counts)])].map(k => [{ [label]: k }, counts[k] ?? 0])
  const content = (): ReturnType<Host['listContent']> => host.started ? host.listContent() : []

  // ---- the host and its group
  gauge('edgelink_host_info', 'This host: its id and edgelink version (always 1).', ['id', 'version'], () =>
    [[{ id: host.id, version: VERSION }, 1]])
  gauge('edgelink_linked', '1 while this host is in a group with at least one other host.', [], () => [[{}, host.isLinked() ? 1 : 0]])
  gauge('edgelink_leader', '1 while this host is the leader of its group.', [], () => [[{}, host.isLeader() ? 1 : 0]])
  gauge('edgelink_token_generation', '1 while token generation is on here.', [], () => [[{}, host.tokenGeneration ? 1 : 0]])
  gauge('edgelink_group_hosts', 'Members of the group, this host included (0 in no group).', [], () => [[{}, host.hosts().length]])
  gauge('edgelink_hosts', 'Members of the group by health as this host sees them.', ['health'], () => {
    const rows = host.hosts()
    return HEALTH.map(h => [{ health: h }, rows.filter(r => r.health === h).length])
  })

  // ---- linking
  counter('edgelink_link_attempts_total', 'Links this host tried as a follower (`edgelink link`).', [], s => [[{}, s.link.attempts]])
  counter('edgelink_link_results_total', 'Outcomes of those links: Completed or the error code.', ['result'], s => byKey(s.link.results, 'result'))
  counter('edgelink_link_joins_total', 'Join requests this host answered as the token issuer: admitted or the refusal code.', ['result'], s => byKey(s.link.joins, 'result'))

  // ---- gossip
  counter('edgelink_gossip_messages_total', 'Gossip messages published (out) and accepted (in), by topic and document kind.', ['topic', 'kind', 'direction'], s => {
    const d = s.gossip.documents
    return [
      [{ topic: 'status', kind: 'status', direction: 'out' }, s.gossip.status.published],
      [{ topic: 'status', kind: 'status', direction: 'in' }, s.gossip.status.received],
      ...DOC_KINDS.flatMap((kind): Samples => [
        [{ topic: 'documents', kind, direction: 'out' }, d.published[kind] ?? 0],
        [{ topic: 'documents', kind, direction: 'in' }, d.received[kind] ?? 0]
      ])
    ]
  })
  counter('edgelink_gossip_messages_rejected_total', 'Gossip messages the validators rejected (neither delivered nor forwarded), by topic and document kind (unknown: undecodable or from a non-member).', ['topic', 'kind'], s => [
    [{ topic: 'status', kind: 'status' }, s.gossip.status.rejected],
    ...byKey(s.gossip.documents.rejected, 'kind', DOC_KINDS).map(([l, v]): [Labels, number] => [{ topic: 'documents', ...l }, v])
  ])
  counter('edgelink_documents_synced_total', 'Documents pulled by anti-entropy (missed on gossip), by kind.', ['kind'], s => byKey(s.gossip.documents.synced, 'kind', DOC_KINDS))

  // ---- content
  counter('edgelink_content_bytes_total', 'Content chunk bytes sent to peers (out) and received, verified and stored (in).', ['direction'], s =>
    [[{ direction: 'out' }, s.content.bytesSent], [{ direction: 'in' }, s.content.bytesReceived]])
  counter('edgelink_content_chunks_total', 'Content chunks sent (out) and received (in).', ['direction'], s =>
    [[{ direction: 'out' }, s.content.chunksSent], [{ direction: 'in' }, s.content.chunksReceived]])
  counter('edgelink_content_chunks_corrupt_total', 'Chunks received that failed verification (the sender is dropped for that content).', [], s => [[{}, s.content.chunksCorrupt]])
  gauge('edgelink_content_size_bytes', 'Bytes of the distinct chunks of each content announced to the group.', ['content', 'name'], () =>
    content().map(c => [{ content: c.id, name: c.manifest.name }, c.totalBytes]))
  gauge('edgelink_content_have_bytes', 'Bytes of those chunks this host holds, verified.', ['content', 'name'], () =>
    content().map(c => [{ content: c.id, name: c.manifest.name }, c.haveBytes]))
  gauge('edgelink_content_sync_ratio', 'Share of all announced content bytes this host holds (1 when there is none to hold).', [], () => {
    const all = content()
    const total = all.reduce((a, c) => a + c.totalBytes, 0)
    return [[{}, total === 0 ? 1 : all.reduce((a, c) => a + c.haveBytes, 0) / total]]
  })
  return registry
}

/** `GET /metrics` in the Prometheus text format. Authentication is the API's, as for every route. */
export function metricsRoute (app: FastifyInstance, registry: Registry): void {
  app.get('/metrics', async (_req, reply) => {
    const text = await registry.metrics()
    return await reply.type(registry.contentType).send(text)
  })
}
