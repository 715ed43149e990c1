import { expect } from 'chai'
import { ManualClock } from '../lib/clock.ts'
import { HEARTBEAT_FANIN, STATUS_DOMAIN, StatusService, type StatusContext } from '../lib/gossip/status.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { HostStatus, SignedStatus } from '../lib/gossip/gossip.ts'
import { concat } from '../lib/util.ts'

const silent = { debug () {}, info () {}, warn () {}, error () {}, trace () {}, child () { return silent } } as any

const keys = new Map<string, PrivateKey>()
/** A host key per name, made once: 'me' is the service's own host, 'stranger' is no member. */
async function keyOf (name: string): Promise<PrivateKey> {
  if (!keys.has(name)) keys.set(name, await generateKeyPair('Ed25519'))
  return keys.get(name)!
}
const idOf = (name: string): string => peerIdFromPrivateKey(keys.get(name)!).toString()

/** A status message as `author` publishes it; `signer` signs it (the author unless forging). */
async function statusMessage (author: string, seq: bigint, sentAt: number, signer = author): Promise<Uint8Array> {
  const status = HostStatus.encode({ ...localStatus(), name: author, seq, sentAt: BigInt(sentAt) })
  const signature = await (await keyOf(signer)).sign(concat(STATUS_DOMAIN, status))
  return SignedStatus.encode({ author: peerIdFromPrivateKey(await keyOf(author)).toMultihash().bytes as any, status: status as any, signature: signature as any })
}

function localStatus (): any {
  return { name: 'me', addrs: [], version: '0', health: 'Healthy', failing: [], contentSyncStatus: 'Synced', syncPercent: 100, hostname: 'h', os: 'linux', arch: 'x64', cpus: 2, memory: 1n, freeDisk: 1n, apiPort: 0, rosterVersion: 1n, term: 1n, role: 'follower', nodeRole: 'unknown', status: 'Ready', load: 0n }
}

/**
 * A status service on a manual clock whose pubsub records what it publishes. `deliver` runs a
 * message through the service's topic validator as gossipsub would, `via` being the member that
 * handed it over (the author itself unless relayed); it returns the validator's verdict.
 */
async function service (members: () => number, connected = true, clock: any = new ManualClock(1_000_000)): Promise<{ svc: StatusService, clock: any, published: Uint8Array[], deliver: (from: string, seq: bigint, opts?: { via?: string, signer?: string }) => Promise<string> }> {
  for (const name of ['me', 'peer', 'other', 'stranger']) await keyOf(name)
  const published: Uint8Array[] = []
  const pubsub: any = {
    topicValidators: new Map(),
    subscribe () {},
    unsubscribe () {},
    publish: async (_topic: string, data: Uint8Array) => { published.push(data); return { recipients: [] } }
  }
  const ctx: StatusContext = {
    id: idOf('me'),
    key: keys.get('me')!,
    clock,
    log: silent,
    pubsub: () => pubsub,
    groupId: () => 'g',
    isMember: (id) => id !== idOf('stranger'),
    memberCount: members,
    isConnected: () => connected,
    localStatus
  }
  const svc = new StatusService(ctx, { statusInterval: 1000, failureTimeout: 3500, disconnectGrace: 1000 })
  const deliver = async (from: string, seq: bigint, opts: { via?: string, signer?: string } = {}): Promise<string> => {
    const data = await statusMessage(from, seq, clock.now(), opts.signer)
    const validator = pubsub.topicValidators.get('/edgelink/g/status/1')
    return await validator(peerIdFromPrivateKey(keys.get(opts.via ?? from)!), { type: 'unsigned', topic: '/edgelink/g/status/1', data })
  }
  return { svc, clock, published, deliver }
}

describe('status heartbeat and health (manual clock)', function () {
  it('heartbeats every statusInterval up to HEARTBEAT_FANIN members, stretched by members ÷ fan-in beyond', async () => {
    let n = 10
    const { svc, clock, published } = await service(() => n)
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
    const { svc, clock, deliver } = await service(() => n)
    svc.start()
    await deliver('peer', 1n)
    expect(svc.health(idOf('peer'))).to.equal('Healthy')
    await clock.advance(3_000)
    expect(svc.health(idOf('peer'))).to.equal('Healthy')
    await clock.advance(1_000) // 4 s of silence > 3.5 s
    expect(svc.health(idOf('peer'))).to.equal('Unreachable')

    // In a 64-host group heartbeats are 4 s apart, so 4 s of silence is one missed heartbeat, not a failure.
    n = 64
    await deliver('peer', 2n)
    await clock.advance(4_000)
    expect(svc.health(idOf('peer'))).to.equal('Healthy')
    await clock.advance(10_100) // 14.1 s > 3.5 s × 4
    expect(svc.health(idOf('peer'))).to.equal('Unreachable')
    svc.stop()
  })

  it('a peer with no connection is Unreachable after disconnectGrace, whatever the group size', async () => {
    const { svc, clock, deliver } = await service(() => 200, false)
    svc.start()
    await deliver('peer', 1n)
    await clock.advance(900)
    expect(svc.health(idOf('peer'))).to.equal('Healthy')
    await clock.advance(200)
    expect(svc.health(idOf('peer'))).to.equal('Unreachable')
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

    const { svc, deliver } = await service(() => 4, true, clock)
    svc.start()
    await deliver('peer', 1n)
    const seen: string[] = []
    svc.on('health', (_id, h) => { seen.push(h) })
    // Stalled for 5 s: nothing ran, so nothing could be heard; the late checker forgives it.
    t += 5_000
    await runDue()
    expect(svc.stalls).to.equal(1)
    expect(svc.health(idOf('peer'))).to.equal('Healthy')
    expect(seen).to.not.include('Unreachable')
    // The same 5 s with the loop running and the peer silent: Unreachable.
    await tick(5_000)
    expect(svc.health(idOf('peer'))).to.equal('Unreachable')
    expect(seen).to.include('Unreachable')
    svc.stop()
  })

  it('the validator takes a status from its author or relayed with a valid signature, and nothing else', async () => {
    const { svc, deliver } = await service(() => 4)
    svc.start()
    const heard: string[] = []
    svc.on('status', (id, st) => { heard.push(`${id === idOf('peer') ? 'peer' : id}:${st.seq}`) })

    expect(await deliver('peer', 1n)).to.equal('accept') // straight from its author
    expect(await deliver('peer', 2n, { via: 'other' })).to.equal('accept') // relayed, signed by peer
    expect(await deliver('peer', 3n, { via: 'other', signer: 'other' })).to.equal('reject') // forged by the relay
    expect(await deliver('peer', 2n)).to.equal('ignore') // a replay of an older seq
    expect(await deliver('stranger', 9n)).to.equal('reject') // author not a member
    expect(await deliver('peer', 4n, { via: 'stranger' })).to.equal('reject') // relay not a member
    expect(await deliver('me', 99n, { via: 'other' })).to.equal('ignore') // our own, echoed back
    expect(heard).to.deep.equal(['peer:1', 'peer:2'])
    expect(svc.get(idOf('peer'))?.status.seq).to.equal(2n)
    expect(svc.counters).to.include({ received: 2, rejected: 3 })

    const validator = (svc as any).validate
    const { peerIdFromPrivateKey: pid } = await import('@libp2p/peer-id')
    const garbage = await validator(pid(keys.get('peer')!), { type: 'unsigned', topic: 't', data: new Uint8Array([0x0a, 0xff, 0x01]) })
    expect(garbage).to.equal('reject')
    const huge = await validator(pid(keys.get('peer')!), { type: 'unsigned', topic: 't', data: new Uint8Array(20 * 1024) })
    expect(huge).to.equal('reject')
    svc.stop()
  })

  it('what it publishes is signed by its own key over the status', async () => {
    const { svc, clock, published } = await service(() => 4)
    svc.start()
    await clock.advance(10)
    await new Promise(resolve => setImmediate(resolve))
    expect(published.length).to.be.greaterThan(0)
    const signed = SignedStatus.decode(published[0])
    const me = peerIdFromPrivateKey(keys.get('me')!)
    expect(me.equals(signed.author)).to.equal(true)
    expect(await me.publicKey!.verify(concat(STATUS_DOMAIN, signed.status), signed.signature)).to.equal(true)
    expect(HostStatus.decode(signed.status).name).to.equal('me')
    svc.stop()
  })

  it('a member connected but never heard from turns Unreachable after failureTimeout', async () => {
    const { svc, clock } = await service(() => 4)
    svc.start()
    const seen: string[] = []
    svc.on('health', (id, h) => { if (id === idOf('other')) seen.push(h) })
    svc.check(idOf('other')) // what the host does when a connection opens
    expect(svc.health(idOf('other'))).to.equal('Healthy')
    await clock.advance(3_000)
    expect(svc.health(idOf('other'))).to.equal('Healthy')
    await clock.advance(1_000) // 4 s > 3.5 s, found by the periodic check
    await new Promise(resolve => setImmediate(resolve))
    expect(seen).to.deep.equal(['Healthy', 'Unreachable'])
    svc.stop()
  })
})
