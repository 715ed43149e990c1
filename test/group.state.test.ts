import { expect } from 'chai'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { HostStatus, SignedStatus } from '../lib/gossip/gossip.ts'
import { STATUS_DOMAIN, statusTopic } from '../lib/gossip/status.ts'
import { concat } from '../lib/util.ts'
import { craftDocument, gossip, rejection, Testbed, waitFor } from './helpers.ts'

async function craftSettings (host: { id: string }, body: object, version: number, term: number, opts: { breakSignature?: boolean } = {}): Promise<Uint8Array> {
  return await craftDocument(host, 'settings', 'group', body, version, term, opts)
}

const settle = async (ms = 400): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('group state over gossip (real libp2p over loopback)', function () {
  this.timeout(60_000)
  const bed = new Testbed()
  afterEach(async () => { await bed.teardown() })

  describe('host status and failure detection', () => {
    it('every host sees every other host\'s published status', async () => {
      const hosts = await bed.group(3)
      await waitFor(() => hosts.every(h => h.hosts().every(r => r.config.freeDisk > 0)), 5_000, 'status everywhere')
      for (const h of hosts) {
        for (const r of h.hosts()) {
          expect(r.lastSeen).to.be.greaterThan(Date.now() - 5_000)
          expect(r.config.failing).to.deep.equal([])
          expect(r.health).to.equal('Healthy')
        }
      }
    })

    it('a stopped host is Unreachable everywhere, and Healthy again when it returns', async () => {
      const [leader, f1, f2] = await bed.group(3)
      const addr = f2.multiaddrs[0].toString().split('/')
      const changes: string[] = []
      leader.on('host:health', row => { if (row.id === f2.id) changes.push(row.health) })
      const dataDir = f2.options.dataDir
      const id = f2.id
      const t0 = Date.now()
      await f2.stop()
      await waitFor(() => [leader, f1].every(h => h.hosts().find(r => r.id === id)?.health === 'Unreachable'), 5_000, 'Unreachable everywhere')
      expect(Date.now() - t0).to.be.lessThan(3_000)
      // The event follows within one health check (a quarter of disconnectGrace).
      await waitFor(() => changes.includes('Unreachable'), 1_000, 'host:health event')
      await bed.host({ dataDir, listen: [`${addr[2]}:${addr[4]}`] })
      await waitFor(() => [leader, f1].every(h => h.hosts().find(r => r.id === id)?.health === 'Healthy'), 10_000, 'Healthy again')
      await waitFor(() => changes.at(-1) === 'Healthy', 1_000, 'host:health event')
    })

    it('a member silent while connected is hung up on and dialled again; Healthy once it speaks', async () => {
      const [leader, f1] = await bed.group(2)
      await waitFor(() => (leader as any).status.get(f1.id) != null, 5_000, 'f1 heard')
      const closes: number[] = []
      leader.libp2p.addEventListener('connection:close', e => { if (e.detail.remotePeer.equals(f1.peerId)) closes.push(Date.now()) })
      // f1 keeps running and stays connected but publishes nothing: what a cut cable looks like.
      ;(f1 as any).status.stop()
      const t0 = Date.now()
      await waitFor(() => leader.hosts().find(r => r.id === f1.id)?.health === 'Unreachable', 5_000, 'f1 Unreachable')
      expect(Date.now() - t0).to.be.at.least(1_000) // failureTimeout (1.5 s) counted from the last heartbeat
      await waitFor(() => closes.length > 0, 2_000, 'the leader hangs up on the silent member')
      await waitFor(() => leader.libp2p.getConnections(f1.peerId).length > 0, 5_000, 'dialled again')
      ;(f1 as any).status.start()
      await waitFor(() => leader.hosts().find(r => r.id === f1.id)?.health === 'Healthy', 5_000, 'f1 Healthy again')
    })

    it('a member cannot pass off a status as another member\'s: receivers check the author\'s signature on relayed copies', async () => {
      const [leader, f1, f2] = await bed.group(3)
      await waitFor(() => (f2 as any).status.get(leader.id) != null, 5_000, 'leader status at f2')
      const name = f2.hosts().find(r => r.id === leader.id)?.config.name
      expect(name).to.be.a('string').and.not.equal('forged')
      const seq = (f2 as any).status.get(leader.id).status.seq as bigint
      // f1 publishes a status naming the leader as its author, signed with its own key.
      const status = HostStatus.encode({ ...(leader as any).localStatus(), name: 'forged', seq: seq + 1_000_000n, sentAt: BigInt(Date.now()) })
      const signature = await (f1 as any).key.sign(concat(STATUS_DOMAIN, status))
      const forged = SignedStatus.encode({ author: leader.peerId.toMultihash().bytes as any, status: status as any, signature })
      const rejectedBefore = (f2 as any).status.counters.rejected
      await (f1.libp2p.services.pubsub as any).publish(statusTopic(f1.groupId!), forged)
      await waitFor(() => (f2 as any).status.counters.rejected > rejectedBefore, 5_000, 'forged status rejected at f2')
      expect(f2.hosts().find(r => r.id === leader.id)?.config.name).to.equal(name)
      expect((f2 as any).status.get(leader.id).status.seq < seq + 1_000_000n).to.equal(true)
    })
  })

  describe('settings', () => {
    it('the leader\'s settings reach every host; a follower is refused at the API', async () => {
      const [leader, f1, f2] = await bed.group(3)
      const seen: any[] = []
      f2.on('settings', s => seen.push(s))
      await leader.updateSettings(['ntpServers=ntp1.example,ntp2.example', 'httpProxy=http://proxy:3128', 'values.site=berlin'])
      await waitFor(() => [f1, f2].every(h => h.settings().values.site === 'berlin'), 5_000, 'settings everywhere')
      expect(f1.settings().ntpServers).to.deep.equal(['ntp1.example', 'ntp2.example'])
      expect(seen).to.have.length(1)
      const err = await rejection(async () => await f1.updateSettings(['httpProxy=http://evil']))
      expect(err.code).to.equal('NOT_LEADER')
      expect((await rejection(async () => await leader.updateSettings(['bogus=1']))).code).to.equal('INVALID_ARGUMENT')
      await settle()
      expect(leader.settings().httpProxy).to.equal('http://proxy:3128')
    })

    it('receivers reject a member with the wrong role, a bad signature and a replayed old version', async () => {
      const [leader, f1, f2] = await bed.group(3)
      await leader.updateSettings(['values.v=1'])
      await leader.updateSettings(['values.v=2'])
      await waitFor(() => f2.settings().values.v === '2', 5_000, 'v2 everywhere')
      // A follower signs its own settings (it may not) and gossips them.
      await gossip(f1, await craftSettings(f1, { values: { v: 'evil' } }, 10, 1))
      // A document claiming the leader as author but with a broken signature.
      await gossip(f1, await craftSettings(leader, { values: { v: 'forged' } }, 11, 1, { breakSignature: true }))
      // A document by a host that is not a member at all, relayed by a member.
      const strangerKey = await generateKeyPair('Ed25519')
      const stranger = { id: peerIdFromPrivateKey(strangerKey).toString(), key: strangerKey }
      await gossip(f1, await craftSettings(stranger, { values: { v: 'stranger' } }, 12, 1))
      // A replay of the leader's genuine first version.
      const v1 = (leader as any).docs.get('settings', 'group')
      expect(v1.version).to.equal(2)
      await gossip(f1, await craftSettings(leader, { values: { v: 'old' } }, 1, 1))
      await settle(600)
      for (const h of [leader, f2]) expect(h.settings().values.v).to.equal('2')
      // The leader is always connected to f1, so it saw (and rejected, not forwarded) all three.
      expect((leader as any).docs.counters.rejected).to.be.at.least(3)
    })

    it('anti-entropy: a host that was down gets every update made meanwhile', async () => {
      const [leader, f1, f2] = await bed.group(3)
      const addr = f2.multiaddrs[0].toString().split('/')
      const dataDir = f2.options.dataDir
      await f2.stop()
      await leader.updateSettings(['values.while=down'])
      await leader.updateSettings(['registryMirror=mirror.local:5000'])
      const back = await bed.host({ dataDir, listen: [`${addr[2]}:${addr[4]}`] })
      await waitFor(() => back.settings().registryMirror === 'mirror.local:5000' && back.settings().values.while === 'down', 10_000, 'caught up')
      // f1 was up all along: gossip brings it the same versions (asynchronously, so waited for too).
      await waitFor(() => f1.settings().registryMirror === 'mirror.local:5000' && f1.settings().values.while === 'down', 10_000, 'f1 has them too')
      expect(f1.settings().registryMirror).to.equal('mirror.local:5000')
    })

    it('a document from gossip is applied before it is written, written before stop returns, and a failed write is pulled again', async () => {
      const [leader0, f1] = await bed.group(2, { syncInterval: 600_000 })
      const where = (h: any): { dataDir: string, listen: string[] } => {
        const a = h.multiaddrs[0].toString().split('/')
        return { dataDir: h.options.dataDir, listen: [`${a[2]}:${a[4]}`] }
      }
      const leaderAt = where(leader0)
      const f1At = where(f1)
      // A slow disk: v1 is applied on f1 while its write still waits; stop() waits for the write.
      const slow = (f1 as any).store
      const putDoc0 = slow.putDoc
      let written = 0
      slow.putDoc = async (k: string, v: Uint8Array) => { await settle(400); await putDoc0.call(slow, k, v); written++ }
      await leader0.updateSettings(['values.v=1'])
      await waitFor(() => f1.settings().values.v === '1', 5_000, 'v1 applied on f1')
      expect(written).to.equal(0)
      await f1.stop()
      expect(written).to.equal(1)
      await leader0.stop()
      const f1b = await bed.host({ ...f1At, syncInterval: 600_000 })
      expect(f1b.settings().values.v).to.equal('1')
      // A failing disk: v2 is still applied, the failure counted, and nothing else breaks.
      const leader = await bed.host(leaderAt)
      const failing = (f1b as any).store
      const putDoc1 = failing.putDoc
      failing.putDoc = async () => { throw new Error('no space left on device') }
      await waitFor(() => leader.hosts().some(r => r.id === f1b.id && r.health === 'Healthy'), 10_000, 'f1 back in the group')
      await leader.updateSettings(['values.v=2'])
      await waitFor(() => f1b.settings().values.v === '2', 5_000, 'v2 applied on f1')
      await waitFor(() => (f1b as any).docs.counters.writeErrors === 1, 2_000, 'the failed write counted')
      failing.putDoc = putDoc1
      // v2 never reached f1's disk: alone it comes back with v1, and pulls v2 once the leader is back.
      await f1b.stop()
      await leader.stop()
      const alone = await bed.host({ ...f1At, syncInterval: 600_000 })
      expect(alone.settings().values.v).to.equal('1')
      await bed.host(leaderAt)
      await waitFor(() => alone.settings().values.v === '2', 15_000, 'v2 pulled again')
      expect((alone as any).docs.counters.writeErrors).to.equal(0)
    })

    it('a partition heals and every host converges on the newest version', async () => {
      const hosts = await bed.group(4)
      const [leader, f1, f2, f3] = hosts
      // Cut f2 and f3 off from everyone (the gater refuses, connections close).
      const cut = new Set([f2.id, f3.id])
      for (const h of hosts) (h as any).partitioned = (peer: string) => cut.has(h.id) !== cut.has(peer)
      for (const h of hosts) for (const p of hosts) if ((h as any).partitioned(p.id)) await h.libp2p.hangUp(p.peerId).catch(() => {})
      await leader.updateSettings(['values.side=a1'])
      await leader.updateSettings(['values.side=a2'])
      await settle()
      expect(f1.settings().values.side).to.equal('a2')
      expect(f2.settings().values.side).to.equal(undefined)
      for (const h of hosts) (h as any).partitioned = undefined
      await waitFor(() => hosts.every(h => h.settings().values.side === 'a2'), 10_000, 'converged after heal')
    })

    it('a host with no connection to the author still gets its broadcasts, through gossip', async () => {
      // No anti-entropy within the test: what arrives came through gossip (IHAVE, then IWANT).
      const [leader, f1, f2] = await bed.group(3, { syncInterval: 600_000 })
      const leaderName = leader.hosts().find(r => r.id === leader.id)!.config.name
      // Cut only the leader–f2 link; both still reach f1.
      leader.partitioned = (peer: string) => peer === f2.id
      f2.partitioned = (peer: string) => peer === leader.id
      await leader.libp2p.hangUp(f2.peerId).catch(() => {})
      await waitFor(() => leader.libp2p.getConnections(f2.peerId).length === 0 && f2.libp2p.getConnections(leader.peerId).length === 0, 5_000, 'leader and f2 apart')
      await leader.updateSettings(['values.via=gossip'])
      await waitFor(() => f2.settings().values.via === 'gossip', 5_000, 'settings reached f2 without a connection to the leader')
      expect(f1.settings().values.via).to.equal('gossip')
      expect(leader.libp2p.getConnections(f2.peerId)).to.have.length(0)
      // Status heartbeats take the same way (f2 shows the leader Unreachable, having no connection
      // to it, but still knows its newest status).
      const before = f2.hosts().find(r => r.id === leader.id)!.lastSeen
      await waitFor(() => f2.hosts().find(r => r.id === leader.id)!.lastSeen > before, 5_000, 'a newer leader heartbeat at f2')
      expect(f2.hosts().find(r => r.id === leader.id)!.config.name).to.equal(leaderName)
    })

    it('a document too large for a gossip message travels by reference', async () => {
      const [leader, f1] = await bed.group(2)
      const big = 'x'.repeat(60_000)
      await leader.updateSettings({ caCertificates: Array.from({ length: 10 }, (_, i) => `${i}${big}`) })
      await waitFor(() => f1.settings().caCertificates.length === 10, 10_000, 'large settings')
      expect(f1.settings().caCertificates[9].length).to.equal(60_001)
    })
  })

  describe('clusters and who may do what', () => {
    it('creates a cluster: roles and In-Use everywhere, events on the assigned hosts', async () => {
      const [leader, f1, f2, f3] = await bed.group(4)
      const assigned: string[] = []
      for (const h of [f1, f2, f3]) h.on('cluster:assigned', e => assigned.push(`${h.id}:${e.nodeRole}`))
      expect((await rejection(async () => await leader.createCluster({ name: 'edge', controlPlane: [leader.id, f1.id] }))).code).to.equal('INVALID_ARGUMENT')
      expect((await rejection(async () => await leader.createCluster({ name: 'edge', controlPlane: [f1.id] }))).code).to.equal('INVALID_ARGUMENT')
      expect((await rejection(async () => await f1.createCluster({ name: 'edge', controlPlane: [f1.id] }))).code).to.equal('NOT_LEADER')
      await leader.createCluster({ name: 'edge', controlPlane: [leader.id, f1.id, f2.id], workers: [f3.id], vip: '198.18.0.100' })
      const want = { [leader.id]: 'init', [f1.id]: 'controlplane', [f2.id]: 'controlplane', [f3.id]: 'worker' }
      await waitFor(() => [leader, f1, f2, f3].every(h => h.hosts().every(r => r.nodeRole === want[r.id] && r.status === 'In-Use')), 5_000, 'roles everywhere')
      expect(assigned.sort()).to.deep.equal([`${f1.id}:controlplane`, `${f2.id}:controlplane`, `${f3.id}:worker`].sort())
      expect(f3.cluster()?.vip).to.equal('198.18.0.100')
      // Every control-plane host acts as leader now; workers do not.
      expect(f3.hosts().filter(r => r.role === 'leader').map(r => r.id).sort()).to.deep.equal([leader.id, f1.id, f2.id].sort())
      expect((await rejection(async () => await leader.createCluster({ name: 'two', controlPlane: [leader.id] }))).code).to.equal('CLUSTER_EXISTS')
      expect((await rejection(async () => await leader.unlink(f3.id))).code).to.equal('HOST_IN_USE')
      // A control-plane follower may change settings; a worker may not.
      await f1.updateSettings(['values.by=cp'])
      await waitFor(() => f3.settings().values.by === 'cp', 5_000, 'cp settings')
      expect((await rejection(async () => await f3.updateSettings(['values.by=worker']))).code).to.equal('NOT_CONTROL_PLANE')
      expect(leader.hosts().find(r => r.id === leader.id)?.nodeRole).to.equal('init')
      // Every control-plane host may issue link tokens; a worker may not.
      expect((await rejection(async () => await f3.generateLinkToken())).code).to.equal('NOT_CONTROL_PLANE')
      const newcomer = await bed.host()
      await newcomer.link((await f2.generateLinkToken()).token)
      await waitFor(() => [leader, f1, f2, f3, newcomer].every(h => h.hosts().length === 5), 5_000, 'newcomer everywhere')
      expect(newcomer.hosts().find(r => r.id === newcomer.id)?.status).to.equal('Ready')
      expect(leader.rosterData()!.leader).to.equal(leader.id)
    })

    it('deleting the cluster returns every host to Ready, still linked, and the deleter leads', async () => {
      const [leader, f1, f2] = await bed.group(3)
      await leader.createCluster({ name: 'edge', controlPlane: [leader.id, f1.id, f2.id] })
      await waitFor(() => f2.hosts().every(r => r.status === 'In-Use'), 5_000, 'in use')
      const released: string[] = []
      leader.on('cluster:released', () => released.push(leader.id))
      await f1.deleteCluster()
      await waitFor(() => [leader, f1, f2].every(h => h.hosts().length === 3 && h.hosts().every(r => r.status === 'Ready') && h.rosterData()?.leader === f1.id), 5_000, 'ready, f1 leads')
      expect(released).to.deep.equal([leader.id])
      expect(f1.isLeader()).to.equal(true)
      expect(leader.isLeader()).to.equal(false)
      expect(leader.rosterData()!.term).to.equal(2)
      // The old leader's tokens died with its term; the new leader issues them now.
      expect((await rejection(async () => await leader.generateLinkToken())).code).to.equal('NOT_LEADER')
      await f1.generateLinkToken()
      // And only the new leader may change settings.
      expect((await rejection(async () => await leader.updateSettings(['values.x=1']))).code).to.equal('NOT_LEADER')
      await f1.updateSettings(['values.x=1'])
    })

    it('scales the cluster by adding and removing workers', async () => {
      const [leader, f1, f2] = await bed.group(3)
      await leader.createCluster({ name: 'edge', controlPlane: [leader.id] })
      await leader.scaleCluster({ addWorkers: [f1.id, f2.id] })
      await waitFor(() => f2.hosts().filter(r => r.nodeRole === 'worker').length === 2, 5_000, 'scaled up')
      await leader.scaleCluster({ remove: [f2.id] })
      await waitFor(() => f1.hosts().find(r => r.id === f2.id)?.status === 'Ready', 5_000, 'scaled down')
      await leader.unlink(f2.id)
    })
  })
})
