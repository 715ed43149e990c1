/**
 * Chaos: eight agents in network namespaces (test/testbed/agents.ts); for a bounded time, random
 * SIGKILLs and restarts, cables pulled and plugged back, and settings changes on whoever leads.
 * Then every host comes back and every cable is plugged in, and all must agree: the same roster,
 * the same leader, the same settings, everyone Healthy — and no term ever had two leaders.
 *
 * The schedule comes from a seeded PRNG whose seed is printed; EDGELINK_CHAOS_SEED=<seed> replays
 * the same schedule (the outcome also depends on timing), EDGELINK_CHAOS_MS sets the duration.
 */
import { expect } from 'chai'
import { describeViews, faultBedHooks, leaderClaims, rng, sleep, splitTerms, viewOf, waitConverged, type NsAgent } from './testbed/agents.ts'

const HOSTS = 8
/** At most this many hosts dead or cut at once, so that a majority (5 of 8) can stay together. */
const MAX_FAULTY = 3

describe('faults: chaos', function () {
  this.timeout(240_000)
  const beds = faultBedHooks({ logLines: 15, teardownMs: 40_000 })

  it(`${HOSTS} hosts under random kills, restarts, cuts and heals, with settings changes, converge once it stops`, async () => {
    const seed = Number(process.env.EDGELINK_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31))
    const duration = Number(process.env.EDGELINK_CHAOS_MS ?? 60_000)
    console.log(`      chaos seed ${seed} for ${duration} ms (replay: EDGELINK_CHAOS_SEED=${seed})`)
    const rand = rng(seed)
    const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]

    const fb = await beds.create({ hosts: HOSTS })
    await fb.startAll()
    await fb.formGroup(0, undefined, 60_000)
    const a = fb.agents
    const ids = fb.ids
    const dead = new Set<number>()
    const cut = new Set<number>()
    const journal: string[] = []
    const writes: Array<{ round: number, by: string, status: number }> = []
    let round = 0

    /** The leader most answering agents name (dead and cut ones are asked too: they answer from their side). */
    const leaderNow = async (): Promise<NsAgent | undefined> => {
      const views = await Promise.all(a.filter(x => x.alive).map(async x => await viewOf(x, false)))
      const votes = new Map<string, number>()
      for (const v of views) if (v.leaders.length === 1) votes.set(v.leaders[0], (votes.get(v.leaders[0]) ?? 0) + 1)
      const best = [...votes].sort((x, y) => y[1] - x[1])[0]?.[0]
      const i = best == null ? -1 : ids.indexOf(best)
      return i >= 0 && a[i].alive ? a[i] : undefined
    }

    const start = Date.now()
    while (Date.now() - start < duration) {
      const faulty = new Set([...dead, ...cut]).size
      const actions: string[] = ['settings']
      if (faulty < MAX_FAULTY) actions.push('kill', 'cut')
      if (dead.size > 0) actions.push('restart')
      if (cut.size > 0) actions.push('heal')
      const action = pick(actions)
      const t = ((Date.now() - start) / 1000).toFixed(1)
      if (action === 'kill') {
        const i = pick(a.map((_, k) => k).filter(k => !dead.has(k) && !cut.has(k)))
        await a[i].kill('SIGKILL')
        dead.add(i)
        journal.push(`${t}s kill h${i}`)
      } else if (action === 'restart') {
        const i = pick([...dead])
        await a[i].start()
        dead.delete(i)
        journal.push(`${t}s restart h${i}`)
      } else if (action === 'cut') {
        const i = pick(a.map((_, k) => k).filter(k => !dead.has(k) && !cut.has(k)))
        await fb.bed.cut(i)
        cut.add(i)
        journal.push(`${t}s cut h${i}`)
      } else if (action === 'heal') {
        const i = pick([...cut])
        await fb.bed.heal(i)
        cut.delete(i)
        journal.push(`${t}s heal h${i}`)
      } else {
        const l = await leaderNow()
        if (l != null) {
          round++
          const r = await l.api('PATCH', '/v1/edgelink/settings', { body: JSON.stringify({ set: [`values.round=${round}`, `values.by=${l.name}`] }), headers: { 'content-type': 'application/json' } })
            .catch(() => ({ status: 0, body: undefined }))
          writes.push({ round, by: l.name, status: r.status })
          journal.push(`${t}s settings round ${round} on ${l.name} → ${r.status}`)
        }
      }
      await sleep(500 + rand() * 1_500)
    }

    // Stop: everyone back, every cable in.
    journal.push(`${((Date.now() - start) / 1000).toFixed(1)}s heal all, restart ${[...dead].map(i => `h${i}`).join(' ') || 'none'}`)
    await fb.bed.healAll()
    await Promise.all([...dead].map(async i => { await a[i].start() }))
    dead.clear()
    cut.clear()
    const stopped = Date.now()
    console.log(`      ${journal.length} steps: ${journal.join('; ')}`)

    const views = await waitConverged(a, { members: ids }, 45_000)
    const agreed = views[0].settings?.values ?? {}
    const acked = writes.filter(w => w.status === 200)
    console.log(`      converged ${Date.now() - stopped} ms after the heal: leader ${a[ids.indexOf(views[0].leaders[0])].name}, settings ${JSON.stringify(agreed)}; ` +
      `${acked.length}/${writes.length} writes acknowledged; terms ${JSON.stringify([...leaderClaims(a)].map(([term, w]) => [term, [...w]]))}`)

    expect(splitTerms(a), 'terms with two leaders').to.deep.equal([])
    // What everyone agrees on is a write some leader acknowledged (or the initial settings when none was).
    if (acked.length > 0) {
      expect(acked.map(w => String(w.round)), `agreed settings ${JSON.stringify(agreed)}; ${describeViews(views)}`).to.include(agreed.round)
    }
  })
})
