import { expect } from 'chai'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { ManualClock } from '../lib/clock.ts'
import { TOKEN_PREFIX } from '../lib/link/token.ts'
import { loopbackIp, rejection, Testbed, waitFor } from './helpers.ts'

describe('linking hosts (real libp2p over loopback)', function () {
  this.timeout(60_000)
  const bed = new Testbed()
  afterEach(async () => { await bed.teardown() })

  it('dialFrom: the connections a host opens come from that address; a non-IP is refused', async () => {
    const leader = await bed.host()
    const ip = loopbackIp()
    const follower = await bed.host({ listen: [`${ip}:0`], dialFrom: ip })
    const { token } = await leader.generateLinkToken()
    expect((await follower.link(token)).status).to.equal('Completed')
    const seen = leader.libp2p.getConnections(follower.peerId).filter(c => c.direction === 'inbound')
    expect(seen.length).to.be.above(0)
    for (const c of seen) expect(c.remoteAddr.toString()).to.match(new RegExp(`^/ip4/${ip.replace(/\./g, '\\.')}/tcp/`))
    expect((await rejection(() => bed.host({ dialFrom: 'not-an-ip' }))).code).to.equal('INVALID_ARGUMENT')
  })

  it('links four hosts; every host sees the full table with the right roles', async () => {
    const hosts = await bed.group(4)
    const ids = hosts.map(h => h.id).sort()
    for (const h of hosts) {
      const rows = h.hosts()
      expect(rows.map(r => r.id).sort()).to.deep.equal(ids)
      expect(rows[0].role).to.equal('leader')
      expect(rows[0].id).to.equal(hosts[0].id)
      expect(rows.filter(r => r.role === 'follower')).to.have.length(3)
      for (const r of rows) {
        expect(r.ip).to.match(/^127\./)
        expect(r.status).to.equal('Ready')
        expect(r.health).to.equal('Healthy')
        expect(r.localUIPort).to.equal(5080)
        expect(r.config.hostname).to.be.a('string').and.not.equal('')
      }
      expect(h.linkStatus().status).to.equal('Completed')
    }
    // Followers connect to each other, not only to the leader.
    await waitFor(() => hosts[1].libp2p.getConnections(hosts[2].peerId).length > 0, 5_000, 'follower mesh')
  })

  it('emits host:linked on the leader and keeps identity and roster on disk', async () => {
    const leader = await bed.host()
    const follower = await bed.host()
    const seen: string[] = []
    leader.on('host:linked', row => seen.push(row.id))
    const { token } = await leader.generateLinkToken()
    const status = await follower.link(token)
    expect(status.status).to.equal('Completed')
    expect(status.peers.map(p => p.id)).to.include.members([leader.id, follower.id])
    expect(seen).to.include(follower.id)
    const key = await stat(join(follower.options.dataDir, 'identity.key'))
    expect(key.mode & 0o777).to.equal(0o600)
    const dir = await stat(follower.options.dataDir)
    expect(dir.mode & 0o077).to.equal(0)
  })

  it('a restarted follower rejoins without a token, with the same id', async () => {
    const [leader, f1, f2] = await bed.group(3)
    const addr = f1.multiaddrs[0].toString().split('/')
    const listen = `${addr[2]}:${addr[4]}`
    const dataDir = f1.options.dataDir
    const id = f1.id
    await f1.stop()
    await waitFor(() => leader.hosts().find(r => r.id === id)?.health === 'Unreachable', 5_000, 'leader sees follower down')
    const again = await bed.host({ dataDir, listen: [listen] })
    expect(again.id).to.equal(id)
    expect(again.isLinked()).to.equal(true)
    await waitFor(() => [leader, f2, again].every(h => h.hosts().length === 3 && h.hosts().every(r => r.health === 'Healthy')), 10_000, 'full healthy table')
  })

  it('a restarted leader keeps its group and followers reconnect', async () => {
    const [leader, f1] = await bed.group(2)
    const addr = leader.multiaddrs[0].toString().split('/')
    const dataDir = leader.options.dataDir
    await leader.stop()
    const again = await bed.host({ dataDir, listen: [`${addr[2]}:${addr[4]}`] })
    expect(again.isLeader()).to.equal(true)
    await waitFor(() => again.hosts().every(r => r.health === 'Healthy') && f1.hosts().every(r => r.health === 'Healthy'), 10_000, 'reconnect')
  })

  it('unlinks a follower from the leader; it is idle and refused, and can link again', async () => {
    const [leader, f1, f2] = await bed.group(3)
    const gone: string[] = []
    f2.on('host:unlinked', e => gone.push(e.id))
    await leader.unlink(f2.id)
    await waitFor(() => !f2.isLinked() && f1.hosts().length === 2, 5_000, 'unlink reaches everyone')
    expect(gone).to.include(f2.id)
    expect(leader.hosts().map(r => r.id)).to.not.include(f2.id)
    expect(f2.hosts()).to.deep.equal([])
    await waitFor(() => leader.libp2p.getConnections(f2.peerId).length === 0 && f1.libp2p.getConnections(f2.peerId).length === 0, 5_000, 'connections closed')
    // The unlinked host is refused by members from now on.
    const err = await rejection(async () => await f2.libp2p.dial(f1.multiaddrs[0]))
    expect(err).to.be.instanceOf(Error)
    // ... and may link again with a new token.
    const { token } = await leader.generateLinkToken()
    await f2.link(token)
    await waitFor(() => [leader, f1, f2].every(h => h.hosts().length === 3), 5_000, 'relinked')
  })

  it('a follower unlinks itself; only followers that are members can be unlinked', async () => {
    const [leader, f1, f2] = await bed.group(3)
    expect((await rejection(async () => await f1.unlink(f2.id))).code).to.equal('NOT_LEADER')
    expect((await rejection(async () => await f1.unlink(leader.id))).code).to.equal('LEADER_HAS_FOLLOWERS')
    expect((await rejection(async () => await leader.unlink(leader.id))).code).to.equal('LEADER_HAS_FOLLOWERS')
    expect((await rejection(async () => await leader.unlink('12D3KooWAbsentAbsentAbsentAbsentAbsentAbsentAbsentAbs'))).code).to.equal('UNKNOWN_HOST')
    await f1.unlink(f1.id)
    expect(f1.isLinked()).to.equal(false)
    await waitFor(() => leader.hosts().length === 2 && f2.hosts().length === 2, 5_000, 'leave reaches everyone')
    expect((await rejection(async () => await f1.unlink(f1.id))).code).to.equal('NOT_LINKED')
  })

  it('a follower unlinked while offline learns it when it comes back', async () => {
    const [leader, f1] = await bed.group(2)
    const addr = f1.multiaddrs[0].toString().split('/')
    const dataDir = f1.options.dataDir
    await f1.stop()
    await leader.unlink(f1.id)
    const back = await bed.host({ dataDir, listen: [`${addr[2]}:${addr[4]}`] })
    await waitFor(() => !back.isLinked(), 10_000, 'returning host learns it was unlinked')
    expect(leader.hosts().map(r => r.id)).to.deep.equal([leader.id])
  })

  describe('refusals, each with its code and nothing changed', () => {
    it('expired token (leader clock moved, no sleeping)', async () => {
      const clock = new ManualClock()
      const leader = await bed.host({ clock })
      const follower = await bed.host()
      const old = await leader.generateLinkToken()
      clock.advance(120_001)
      // Generation is on, so a new token replaced the expired one and guests are still admitted.
      const fresh = await leader.generateLinkToken()
      expect(fresh.tokenId).to.not.equal(old.tokenId)
      expect(fresh.remainingTime).to.equal(120)
      const err = await rejection(async () => await follower.link(old.token))
      expect(err.code).to.equal('TOKEN_EXPIRED')
      expect(follower.linkStatus()).to.include({ status: 'Failed', errorCode: 'TOKEN_EXPIRED' })
      expect(follower.isLinked()).to.equal(false)
      expect(leader.hosts()).to.have.length(1)
      await follower.link(fresh.token)
      expect(leader.hosts()).to.have.length(2)
    })

    it('reused token', async () => {
      const leader = await bed.host()
      const [a, b] = [await bed.host(), await bed.host()]
      const { token } = await leader.generateLinkToken()
      await a.link(token)
      const err = await rejection(async () => await b.link(token))
      expect(err.code).to.equal('TOKEN_USED')
      expect(b.isLinked()).to.equal(false)
      expect(leader.hosts()).to.have.length(2)
      // The leader moved on to a new token automatically.
      expect((await leader.generateLinkToken()).token).to.not.equal(token)
    })

    it('corrupt, truncated and altered tokens never reach the network', async () => {
      const leader = await bed.host()
      const follower = await bed.host()
      const { token } = await leader.generateLinkToken()
      const flipped = token.slice(0, 20) + (token[20] === 'A' ? 'B' : 'A') + token.slice(21)
      expect((await rejection(async () => await follower.link(flipped))).code).to.equal('TOKEN_CORRUPT')
      expect((await rejection(async () => await follower.link(token.slice(0, token.length - 5)))).code).to.equal('TOKEN_CORRUPT')
      expect((await rejection(async () => await follower.link('hello'))).code).to.equal('TOKEN_CORRUPT')
      expect((await rejection(async () => await follower.link('EL9' + token.slice(3)))).code).to.equal('TOKEN_VERSION')
      expect(token.startsWith(TOKEN_PREFIX)).to.equal(true)
      expect(leader.libp2p.getConnections(follower.peerId)).to.have.length(0)
      // The real token still works: nothing was consumed.
      await follower.link(token)
    })

    it('wrong leader at the same address', async () => {
      const leader = await bed.host()
      const follower = await bed.host()
      const { token } = await leader.generateLinkToken()
      const addr = leader.multiaddrs[0].toString().split('/')
      await leader.stop()
      const impostor = await bed.host({ listen: [`${addr[2]}:${addr[4]}`] })
      await impostor.generateLinkToken()
      const err = await rejection(async () => await follower.link(token))
      expect(err.code).to.equal('WRONG_LEADER')
      expect(follower.isLinked()).to.equal(false)
      expect(impostor.hosts()).to.have.length(1)
    })

    it('leader unreachable', async () => {
      const leader = await bed.host()
      const follower = await bed.host()
      const { token } = await leader.generateLinkToken()
      await leader.stop()
      const err = await rejection(async () => await follower.link(token))
      expect(err.code).to.equal('LEADER_UNREACHABLE')
    })

    it('follower already in a group, and linking to itself', async () => {
      const [l1, f1] = await bed.group(2)
      const l2 = await bed.host()
      const { token } = await l2.generateLinkToken()
      const err = await rejection(async () => await f1.link(token))
      expect(err.code).to.equal('ALREADY_LINKED')
      expect(l2.hosts()).to.have.length(1)
      expect(f1.rosterData()?.groupId).to.equal(l1.groupId)
      const own = await l1.generateLinkToken()
      expect((await rejection(async () => await l1.link(own.token))).code).to.equal('SELF_LINK')
      // A leader whose group has no followers yet may link elsewhere: its solo group is dropped.
      const solo = await bed.host()
      await solo.generateLinkToken()
      await solo.link((await l2.generateLinkToken()).token)
      expect(solo.isLeader()).to.equal(false)
      expect(solo.groupId).to.equal(l2.groupId)
    })

    it('stopped token generation kills live tokens', async () => {
      const leader = await bed.host()
      const follower = await bed.host()
      const { token } = await leader.generateLinkToken()
      await leader.stopTokenGeneration()
      expect(leader.tokenGeneration).to.equal(false)
      const err = await rejection(async () => await follower.link(token))
      expect(err.code).to.equal('LEADER_REFUSED')
      // With a new token live, the old one is still refused, now by name.
      await leader.generateLinkToken()
      expect((await rejection(async () => await follower.link(token))).code).to.equal('TOKEN_REVOKED')
    })

    it('only the leader issues tokens', async () => {
      const [, f1] = await bed.group(2)
      expect((await rejection(async () => await f1.generateLinkToken())).code).to.equal('NOT_LEADER')
    })
  })
})
