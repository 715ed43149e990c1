import { expect } from 'chai'
import { execFile } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { VERSION } from '../lib/index.ts'

const run = promisify(execFile)

describe('examples and package metadata', function () {
  this.timeout(30_000)

  it('examples/link-two-hosts runs and links two hosts', async () => {
    const { stdout } = await run(process.execPath, ['dist/examples/link-two-hosts.js'])
    expect(stdout).to.match(/link status: Completed/)
    expect(stdout).to.match(/follower sees leader \(leader\)/)
  })

  it('examples/99-edgelink.conf is a sysctl.d file the kernel accepts: applied in a network namespace, it sets what it says', async function () {
    const { createTestbed, requireNetns } = await import('./testbed/netns.ts')
    await requireNetns(this)
    const file = new URL('../../examples/99-edgelink.conf', import.meta.url)
    const settings = (await readFile(file, 'utf8')).split('\n').filter(l => l.trim() !== '' && !l.startsWith('#')).map(l => l.split('=').map(s => s.trim()))
    expect(settings).to.deep.equal([['net.ipv4.tcp_notsent_lowat', '131072']])
    const bed = await createTestbed({ hosts: 1 })
    try {
      const [host] = bed.hosts
      const before = await host.exec(['sysctl', '-n', 'net.ipv4.tcp_notsent_lowat'])
      expect(before.stdout.trim()).to.not.equal('131072')
      const applied = await host.exec(['sysctl', '-p', fileURLToPath(file)])
      expect(applied.code, applied.stderr).to.equal(0)
      const after = await host.exec(['sysctl', '-n', 'net.ipv4.tcp_notsent_lowat'])
      expect(after.stdout.trim()).to.equal('131072')
    } finally {
      await bed.destroy()
    }
  })

  it('the library reports the package version', async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8'))
    expect(VERSION).to.equal(pkg.version)
  })

  it('the launcher, the single binary and the benchmarks run the agent with the same Node flags', async () => {
    const { AGENT_NODE_FLAGS } = await import('../benchmarks/lib.ts')
    const launcher = await readFile(new URL('../../bin/edgelink', import.meta.url), 'utf8')
    const exec = launcher.split('\n').filter(l => /^exec /.test(l))
    expect(exec).to.deep.equal([`exec "$node_bin" ${AGENT_NODE_FLAGS.join(' ')} "$cli" "$@"`])
    const builder = await readFile(new URL('../../scripts/build-binary.mjs', import.meta.url), 'utf8')
    const argv = builder.match(/^const EXEC_ARGV = (\[.*\])$/m)
    expect(argv, 'EXEC_ARGV in scripts/build-binary.mjs').to.not.equal(null)
    expect(JSON.parse((argv as RegExpMatchArray)[1].replace(/'/g, '"'))).to.deep.equal([...AGENT_NODE_FLAGS])
  })

  it('the systemd unit gives the single binary the environment the launcher gives the agent', async () => {
    const { AGENT_ENV } = await import('../benchmarks/lib.ts')
    const unit = await readFile(new URL('../../examples/edgelink.service', import.meta.url), 'utf8')
    const env = Object.fromEntries([...unit.matchAll(/^Environment=([A-Z_]+)=(\S+)$/gm)].map(m => [m[1], m[2]]))
    expect(env).to.deep.equal({ ...AGENT_ENV })
  })

  it('the launcher starts Node with the agent\'s flags and environment, keeping values already set', async () => {
    const { AGENT_ENV, AGENT_NODE_FLAGS } = await import('../benchmarks/lib.ts')
    const names = Object.keys(AGENT_ENV)
    expect(names).to.include.members(['MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_'])
    const dir = await mkdtemp(join(tmpdir(), 'edgelink-launcher-'))
    try {
      // A stand-in for node (EDGELINK_NODE): says it is Node 24, then prints what it was started with.
      const fake = join(dir, 'node')
      const show = names.map(n => `echo "${n}=\${${n}:-unset}"`).join('\n')
      await writeFile(fake, `#!/bin/sh\nif [ "$1" = "-p" ]; then echo 24; exit 0; fi\n${show}\necho "$@"\n`)
      await chmod(fake, 0o755)
      const launch = async (env: Record<string, string>): Promise<string[]> => {
        const rest: NodeJS.ProcessEnv = { ...process.env }
        for (const n of names) delete rest[n]
        return (await run('bin/edgelink', ['hosts', '--json'], { env: { ...rest, EDGELINK_NODE: fake, ...env } })).stdout.trim().split('\n')
      }
      const lines = await launch({})
      expect(lines.slice(0, names.length)).to.deep.equal(names.map(n => `${n}=${AGENT_ENV[n]}`))
      expect(lines[names.length].split(' ')).to.deep.equal([...AGENT_NODE_FLAGS, join(process.cwd(), 'dist', 'agent', 'edgelink.mjs'), 'hosts', '--json'])
      const own = await launch({ MALLOC_ARENA_MAX: '8', MALLOC_MMAP_THRESHOLD_: '65536' })
      expect(own.slice(0, names.length)).to.include.members(['MALLOC_ARENA_MAX=8', 'MALLOC_MMAP_THRESHOLD_=65536'])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
