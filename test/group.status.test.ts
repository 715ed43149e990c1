import { expect } from 'chai'
import { ManualClock } from '../lib/clock.ts'
import { HEARTBEAT_FANIN, StatusService, type StatusContext } from '../lib/gossip/status.ts'
import { HostStatus } from '../lib/gossip/gossip.ts'

const silent = { debug () {}, info () {}, warn () {}, error () {}, trace () {}, child () { return silent } } as any

/** A status service on a manual clock whose pubsub records what it publishes. */
function service (members: () => number, connected = true, clock: any = new ManualClock(1_000_000)): { svc: StatusService, clock: any, published: number[], deliver: (from: string, seq: bigint) => void } {
  const published: number[] = []
  const listeners: Array<(e: any) => void> = []
  const pubsub: any = {
    topicValidators: new Map(),
    subscribe () {},
    unsubscribe () {},
    addEventListener (_: string, fn: (e: any) => void) { listeners.push(fn) },
    removeEventListener () {},
    publish: async () => { published.push(clock.now()); return { recipients: [] } }
  }
  const ctx: StatusContext = {
    id: 'me',
    clock,
    log: silent,
    pubsub: () => pubsub,
    groupId: () => 'g',
    isMember: (id) => id !== 'stranger',
    memberCount: members,
    isConnected: () => connected,
    localStatus: () => ({ name: 'me', addrs: [], version: '0', health: 'Healthy', failing: [], contentSyncStatus: 'Synced', syncPercent: 100, hostname: 'h', os: 'linux', arch: 'x64', cpus: 2, memory: 1n, freeDisk: 1n, apiPort: 0, rosterVersion: 1n, term: 1n, role: 'follower', nodeRole: 'unknown', status: 'Ready', load: 0n })
  }
  const svc = new StatusService(ctx, { statusInterval: 1000, failureTimeout: 3500, disconnectGrace: 1000 })
  const deliver = (from: string, seq: bigint): void => {
    const data = HostStatus.encode({ ...ctx.localStatus(), name: from, seq, sentAt: BigInt(clock.now()) })
    for (const fn of listeners) fn({ detail: { type: 'signed', topic: '/edgelink/g/status/1', from: { toString: () => from }, data } })
  }
  return { svc, clock, published, deliver }
}

describe('status heartbeat and health (manual clock)', function () {
  it('heartbeats every statusInterval up to HEARTBEAT_FANIN members, stretched by members ÷ fan-in beyond', async () => {
    let n = 10
    const { svc, clock, published } = service(() => n)
    svc.start()
    await clock.advance(10_000)
    const small = published.length
    expect(small).to.be.within(10, 12) // one at start, then one a second
    expect(svc.heartbeatPeriod()).to.equal(1000)

    n = HEARTBEAT_FANIN * 3 // 48 hosts: one heartbeat every 3 s
    expect(svc.heartbeatPeriod()).to.equal(3000)
    published.length = 0
    await clock.advance(30_000)
    expect(published.length).to.be.within(9, 11)
    svc.stop()
  })

  it('a silent but connected peer turns Unreachable after failureTimeout, stretched with the heartbeat', async () => {
    let n = 4
    const { svc, clock, deliver } = service(() => n)
    svc.start()
    deliver('peer', 1n)
    expect(svc.health('peer')).to.equal('Healthy')
    await clock.advance(3_000)
    expect(svc.health('peer')).to.equal('Healthy')
    await clock.advance(1_000) // 4 s of silence > 3.5 s
    expect(svc.health('peer')).to.equal('Unreachable')

    // In a 64-host group heartbeats are 4 s apart, so 4 s of silence is one missed heartbeat, not a failure.
    n = 64
    deliver('peer', 2n)
    await clock.advance(4_000)
    expect(svc.health('peer')).to.equal('Healthy')
    await clock.advance(10_100) // 14.1 s > 3.5 s × 4
    expect(svc.health('peer')).to.equal('Unreachable')
    svc.stop()
  })

  it('a peer with no connection is Unreachable after disconnectGrace, whatever the group size', async () => {
    const { svc, clock, deliver } = service(() => 200, false)
    svc.start()
    deliver('peer', 1n)
    await clock.advance(900)
    expect(svc.health('peer')).to.equal('Healthy')
    await clock.advance(200)
    expect(svc.health('peer')).to.equal('Unreachable')
    svc.stop()
  })

  it('a stall of this host\'s own event loop is not counted as the others\' silence', async () => {
    // A clock whose timers fire only when the test says: a stall is time passing with none fired.
    let t = 1_000_000
    let timers: Array<{ at: number, fn: () => void }> = []
    const clock = {
      now: () => t,
      setTimeout: (fn: () => void, ms: number) => { const h = { at: t + ms, fn }; timers.push(h); return { id: h } },
      clearTimeout: (h: { id: unknown }) => { timers = timers.filter(x => x !== h.id) }
    }
    const runDue = async (): Promise<void> => {
      const due = timers.filter(x => x.at <= t)
      timers = timers.filter(x => x.at > t)
      for (const x of due) x.fn()
      await new Promise(resolve => setImmediate(resolve)) // the check runs after pending I/O
    }
    const tick = async (ms: number): Promise<void> => { for (let i = 0; i < ms; i += 50) { t += 50; await runDue() } }

    const { svc, deliver } = service(() => 4, true, clock)
    svc.start()
    deliver('peer', 1n)
    const seen: string[] = []
    svc.on('health', (_id, h) => { seen.push(h) })
    // Stalled for 5 s: nothing ran, so nothing could be heard; the late checker forgives it.
    t += 5_000
    await runDue()
    expect(svc.stalls).to.equal(1)
    expect(svc.health('peer')).to.equal('Healthy')
    expect(seen).to.not.include('Unreachable')
    // The same 5 s with the loop running and the peer silent: Unreachable.
    await tick(5_000)
    expect(svc.health('peer')).to.equal('Unreachable')
    expect(seen).to.include('Unreachable')
    svc.stop()
  })
})
