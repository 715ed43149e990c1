/**
 * The network-namespace test bed itself: addressing, reachability, isolation from the machine,
 * cut/heal, partitions, shaping and cleanup. Multi-host tests build on it, so it is proven here
 * with plain TCP (node's `net`, spawned inside the namespaces) before anything else uses it.
 */
import { execFile, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect } from 'chai'
import {
  cleanupStale, createTestbed, requireNetns, tcpSend, tcpServer, SKIP_VAR, TestbedError,
  type Testbed, type TcpServer
} from './testbed/netns.ts'

const NETNS_JS = fileURLToPath(new URL('./testbed/netns.js', import.meta.url))
const MB20 = 20_000_000

async function sh (file: string, args: string[]): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(file, args, (err, stdout, stderr) => { if (err != null) reject(new Error(`${file} ${args.join(' ')}: ${stderr}`)); else resolve(stdout) })
  })
}

/** Interfaces of the root namespace whose name starts with `prefix-` (the test bed makes none there). */
async function rootLinks (prefix: string): Promise<string[]> {
  const links = (await sh('ip', ['-o', 'link', 'show'])).split('\n').map(l => l.split(':')[1]?.trim().split('@')[0] ?? '')
  return links.filter(n => n.startsWith(`${prefix}-`))
}

/** Namespaces, and root-namespace interfaces, whose name starts with `prefix-`. */
async function leftovers (prefix: string): Promise<string[]> {
  const ns = (await sh('ip', ['netns', 'list'])).split('\n').map(l => l.split(' ')[0])
  return [...ns.filter(n => n.startsWith(`${prefix}-`)), ...await rootLinks(prefix)]
}

async function rejection (fn: () => Promise<unknown>): Promise<any> {
  try {
    await fn()
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection, got a result')
}

const mbit = (bytes: number, ms: number): number => bytes * 8 / ms / 1000

describe('netns test bed', function () {
  this.timeout(60_000)

  describe('requireNetns', () => {
    const saved = process.env[SKIP_VAR]
    const warn = console.warn
    afterEach(() => {
      if (saved == null) delete process.env[SKIP_VAR]
      else process.env[SKIP_VAR] = saved
      console.warn = warn
    })
    const skipped = new Error('skipped')
    const ctx = { skip: (): never => { throw skipped } }
    const down = async (): Promise<{ ok: boolean, reason?: string }> => ({ ok: false, reason: 'no namespaces in this test' })

    it('fails loudly when namespaces are unavailable', async () => {
      delete process.env[SKIP_VAR]
      const err = await rejection(async () => { await requireNetns(ctx, down) })
      expect(err).to.be.instanceOf(TestbedError)
      expect(err.code).to.equal('NETNS_UNAVAILABLE')
    })

    it(`skips, saying why, only with ${SKIP_VAR}=1`, async () => {
      process.env[SKIP_VAR] = '1'
      const said: string[] = []
      console.warn = (s: string) => { said.push(s) }
      expect(await rejection(async () => { await requireNetns(ctx, down) })).to.equal(skipped)
      expect(said.join('')).to.include('no namespaces in this test')
    })
  })

  describe('options', () => {
    it('refuses bad options before creating anything', async () => {
      for (const opts of [{ hosts: 0 }, { hosts: 2, subnet: '10.0.0.0/24' }, { hosts: 100, subnet: '198.18.9.0/26' },
        { hosts: 2, prefix: 'averyverylongprefix' }, { hosts: 2, rateMbit: -1 }]) {
        const err = await rejection(async () => await createTestbed(opts))
        expect(err, JSON.stringify(opts)).to.be.instanceOf(TestbedError)
        expect(err.code, JSON.stringify(opts)).to.equal('INVALID_ARGUMENT')
      }
    })
  })

  describe('with namespaces', function () {
    before(async function () { await requireNetns(this) })

    describe('three hosts', () => {
      let bed: Testbed
      let servers: TcpServer[]
      before(async () => {
        bed = await createTestbed({ hosts: 3 })
        servers = await Promise.all(bed.hosts.map(async h => await tcpServer(h)))
      })
      after(async () => { await bed?.destroy() })

      const reach = async (from: number, to: number, timeoutMs = 2_000): Promise<boolean> =>
        (await tcpSend(bed.hosts[from], bed.hosts[to].ip, servers[to].port, 0, timeoutMs)).ok

      it('gives each host its own namespace and an address in 198.18.0.0/15', async () => {
        expect(new Set(bed.hosts.map(h => h.name)).size).to.equal(3)
        expect(new Set(bed.hosts.map(h => h.ip)).size).to.equal(3)
        for (const h of bed.hosts) {
          expect(h.name.length).to.be.at.most(15)
          expect(h.ip).to.match(/^198\.1[89]\.\d+\.\d+$/)
          const addrs = (await h.exec(['ip', '-o', '-4', 'addr', 'show'])).stdout
          expect(addrs).to.include(`${h.ip}/24`)
          expect(addrs).to.include('127.0.0.1/8')
        }
      })

      it('lets every host reach every other over TCP', async () => {
        const pairs = [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]]
        const ok = await Promise.all(pairs.map(async ([a, b]) => await reach(a, b)))
        expect(ok).to.deep.equal(pairs.map(() => true))
        const sent = await tcpSend(bed.hosts[2], bed.hosts[0].ip, servers[0].port, 100_000)
        expect(sent).to.include({ ok: true, bytes: 100_000 })
      })

      it('keeps the machine out: no interface or route of the root namespace leads to a host', async () => {
        // A real connect from the root namespace would send a SYN out of the machine's own NIC
        // (its default route), which the test bed must never do; the kernel's route lookup
        // proves the same without a packet: the host addresses resolve to a non-test-bed device.
        const rootAddrs = await sh('ip', ['-o', '-4', 'addr', 'show'])
        for (const h of bed.hosts) {
          expect(rootAddrs).not.to.include(h.ip.split('.').slice(0, 3).join('.') + '.')
          const route = await sh('ip', ['route', 'get', h.ip]).catch((err: Error) => err.message)
          expect(route).not.to.include(bed.prefix)
        }
        expect(await rootLinks(bed.prefix)).to.deep.equal([])
        // …and no host has a way out: its only route is its own subnet.
        for (const h of bed.hosts) {
          const routes = (await h.exec(['ip', '-4', 'route', 'show'])).stdout.trim().split('\n')
          expect(routes).to.have.length(1)
          expect(routes[0]).to.match(new RegExp(`^${bed.subnet.replaceAll('.', '\\.')} dev ${h.ifname} `))
        }
      })

      it('cut stops a host\'s traffic and heal restores it', async () => {
        await bed.cut(1)
        expect(await reach(0, 1, 1_000)).to.equal(false)
        expect(await reach(1, 2, 1_000)).to.equal(false)
        expect(await reach(0, 2)).to.equal(true)
        await bed.heal(1)
        expect(await reach(0, 1)).to.equal(true)
        expect(await reach(1, 2)).to.equal(true)
      })

      it('partition splits the hosts into groups and healAll joins them again', async () => {
        await bed.partition([0])
        expect(await Promise.all([reach(0, 1, 1_000), reach(0, 2, 1_000), reach(1, 0, 1_000), reach(1, 2), reach(2, 1)]))
          .to.deep.equal([false, false, false, true, true])
        await bed.partition([0], [1])
        expect(await Promise.all([reach(0, 1, 1_000), reach(1, 2, 1_000), reach(0, 2, 1_000)])).to.deep.equal([false, false, false])
        await bed.cut(2)
        await bed.healAll()
        expect(await Promise.all([reach(0, 1), reach(1, 2), reach(2, 0)])).to.deep.equal([true, true, true])
        const err = await rejection(async () => { await bed.partition([0], [0, 1]) })
        expect(err.code).to.equal('INVALID_ARGUMENT')
      })
    })

    describe('shaping', () => {
      let bed: Testbed
      before(async () => { bed = await createTestbed({ hosts: 2, rateMbit: 100 }) })
      after(async () => { await bed?.destroy() })

      async function transfer (from: number, to: number, bytes: number): Promise<number> {
        const srv = await tcpServer(bed.hosts[to])
        try {
          const r = await tcpSend(bed.hosts[from], bed.hosts[to].ip, srv.port, bytes, 10_000)
          expect(r, JSON.stringify(r)).to.include({ ok: true, bytes })
          return r.ms as number
        } finally {
          await srv.close()
        }
      }

      it('limits each host to rateMbit up and down (20 MB at 100 Mbit/s takes ≥ 0.8 × 1.6 s)', async () => {
        const limitMs = MB20 * 8 / 100e6 * 1000
        for (const [a, b] of [[0, 1], [1, 0]]) {
          const ms = await transfer(a, b, MB20)
          console.log(`      host ${a} → host ${b}, 100 Mbit/s tbf: 20 MB in ${ms.toFixed(0)} ms = ${mbit(MB20, ms).toFixed(1)} Mbit/s`)
          expect(ms).to.be.at.least(0.8 * limitMs)
          expect(mbit(MB20, ms), 'the bucket is too small to reach the rate').to.be.at.least(50)
        }
      })

      it('shape changes one link\'s rate and null removes it (then it is much faster)', async () => {
        await bed.shape(1, 50)
        const ms50 = await transfer(0, 1, MB20 / 2)
        console.log(`      host 0 → host 1, host 1 at 50 Mbit/s: 10 MB in ${ms50.toFixed(0)} ms = ${mbit(MB20 / 2, ms50).toFixed(1)} Mbit/s`)
        expect(ms50).to.be.at.least(0.8 * (MB20 / 2) * 8 / 50e6 * 1000)
        await bed.shape(0, null)
        await bed.shape(1, null)
        await bed.shape(1, null)
        const ms = await transfer(0, 1, MB20)
        console.log(`      host 0 → host 1, unshaped: 20 MB in ${ms.toFixed(0)} ms = ${mbit(MB20, ms).toFixed(1)} Mbit/s`)
        expect(mbit(MB20, ms), 'unshaped should beat both removed limits by far').to.be.at.least(200)
      })
    })

    describe('cleanup', () => {
      it('destroy kills what runs inside and leaves no namespace or interface; it is idempotent', async () => {
        const bed = await createTestbed({ hosts: 2, rateMbit: 10 })
        const sleeper = bed.hosts[0].spawn([process.execPath, '-e', 'setInterval(() => {}, 1000)'])
        const gone = new Promise(resolve => { sleeper.on('exit', resolve) })
        await bed.partition([1])
        expect(await leftovers(bed.prefix)).to.have.length(3)
        await bed.destroy()
        await gone
        expect(await leftovers(bed.prefix)).to.deep.equal([])
        await bed.destroy()
        expect((await rejection(async () => { await bed.cut(0) })).code).to.equal('DESTROYED')
      })

      it('destroy copes with namespaces already gone', async () => {
        const bed = await createTestbed({ hosts: 2 })
        await sh('ip', ['netns', 'del', bed.hosts[1].name])
        await bed.destroy()
        expect(await leftovers(bed.prefix)).to.deep.equal([])
      })

      it('removes the test bed when the process exits or is killed', async () => {
        const child = async (prefix: string, then: string, kill: boolean): Promise<void> => {
          const script = `import { createTestbed } from ${JSON.stringify(NETNS_JS)}
await createTestbed({ hosts: 2, prefix: ${JSON.stringify(prefix)} })
console.log('ready')
${then}`
          const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
          await new Promise<void>((resolve, reject) => {
            p.stdout.on('data', (b: Buffer) => { if (kill && b.toString().includes('ready')) p.kill('SIGTERM') })
            p.on('exit', (code, signal) => { if (code === 0 || signal === 'SIGTERM') resolve(); else reject(new Error(`child exited ${code} ${signal}`)) })
          })
        }
        const base = `elx${process.pid % 1000}`
        await Promise.all([child(`${base}t`, 'setInterval(() => {}, 1000)', true), child(`${base}e`, 'process.exit(0)', false)])
        expect(await leftovers(`${base}t`)).to.deep.equal([])
        expect(await leftovers(`${base}e`)).to.deep.equal([])
      })

      it('cleanupStale removes what a dead run left and nothing of a live run', async () => {
        const dead = spawn(process.execPath, ['-e', ''])
        const deadPid = await new Promise<number>(resolve => { dead.on('exit', () => { resolve(dead.pid as number) }) })
        const stale = `el${process.pid % 10000}zz`
        await sh('ip', ['netns', 'add', `${stale}-sw`])
        await sh('ip', ['netns', 'add', `${stale}-h0`])
        await sh('ip', ['-n', `${stale}-sw`, 'link', 'set', 'lo', 'alias', `edgelink-testbed pid=${deadPid} start=1`])
        const young = `elx${process.pid % 1000}y`
        await sh('ip', ['netns', 'add', `${young}-h0`])
        const bed = await createTestbed({ hosts: 1 })
        try {
          const removed = await cleanupStale()
          expect(removed).to.include.members([`${stale}-h0`, `${stale}-sw`])
          expect(await leftovers(stale)).to.deep.equal([])
          expect(await leftovers(bed.prefix)).to.have.length(2)
          // Unmarked and young: maybe a run still setting up, so neither swept nor taken.
          expect((await rejection(async () => await cleanupStale(young))).code).to.equal('PREFIX_IN_USE')
          expect((await rejection(async () => await createTestbed({ hosts: 1, prefix: bed.prefix }))).code).to.equal('PREFIX_IN_USE')
        } finally {
          await sh('ip', ['netns', 'del', `${young}-h0`])
          await bed.destroy()
        }
      })

      it('takes a subnet anywhere in 198.18.0.0/15', async () => {
        const bed = await createTestbed({ hosts: 2, subnet: '198.19.200.64/26' })
        try {
          expect(bed.hosts.map(h => h.ip)).to.deep.equal(['198.19.200.65', '198.19.200.66'])
          const srv = await tcpServer(bed.hosts[1])
          expect((await tcpSend(bed.hosts[0], bed.hosts[1].ip, srv.port)).ok).to.equal(true)
        } finally {
          await bed.destroy()
        }
      })
    })
  })
})
