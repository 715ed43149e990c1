/**
 * The single executable (`npm run build:binary` → dist/bin/edgelink) on a machine without
 * Node.js: every process here runs with `PATH=''` and a fresh HOME, so nothing but the
 * executable itself can run the agent and the CLI. Two agents from it, on their own loopback
 * IPs and data dirs, are linked through its own `token` and `link` commands.
 *
 * The `before` hook builds the executable (scripts/build-binary.mjs --if-stale: a few seconds,
 * nothing when dist/ and the assets are unchanged since the last build).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { chmod, mkdir, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { VERSION } from '../lib/version.ts'
import { UI_FILES } from '../agent/ui.ts'
import { AgentProc, cleanEnv, freePort, ROOT, run, type Run } from './agent.procs.ts'
import { loopbackIp, tempDir, waitFor } from './helpers.ts'

const BIN = join(ROOT, 'dist', 'bin', 'edgelink')
const BUILD = join(ROOT, 'scripts', 'build-binary.mjs')

/** An agent process started from the executable, with nothing on PATH. */
class BinaryAgent extends AgentProc {
  private readonly binEnv: NodeJS.ProcessEnv
  protected override readonly startTimeout = 20_000

  constructor (name: string, ip: string, port: number, dataDir: string, env: NodeJS.ProcessEnv) {
    super({ name, ip, port, dataDir })
    this.binEnv = env
  }

  override get env (): NodeJS.ProcessEnv { return this.binEnv }

  protected override spawnAgent (args: string[], env: NodeJS.ProcessEnv): ChildProcess {
    return spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  }

  /** `edgelink <args> --data-dir <this agent's>` through the executable. */
  override async cli (...args: string[]): Promise<Run> {
    return await run(BIN, [...args, '--data-dir', this.dataDir], this.binEnv)
  }
}

describe('single executable: dist/bin/edgelink without Node.js', function () {
  this.timeout(30_000)
  let home: string
  let env: NodeJS.ProcessEnv
  const agents: BinaryAgent[] = []

  before(async function () {
    this.timeout(180_000)
    const build = await run(process.execPath, [BUILD, '--if-stale'], cleanEnv(), 170_000)
    expect(build.code, `${build.stdout}${build.stderr}`).to.equal(0)
    home = await tempDir('edgelink-binary-test-')
    env = { PATH: '', HOME: home }
  })

  after(async function () {
    this.timeout(20_000)
    await Promise.allSettled(agents.map(async a => await a.stop()))
    if (home != null) await rm(home, { recursive: true, force: true })
  })

  it('is a native executable, not a script that needs node', async () => {
    const fd = await open(BIN, 'r')
    try {
      const { buffer } = await fd.read(Buffer.alloc(4), 0, 4, 0)
      expect(buffer.toString('latin1')).to.equal('\x7fELF')
    } finally {
      await fd.close()
    }
    expect((await stat(BIN)).mode & 0o111).to.equal(0o111)
  })

  it('prints --version and --help with an empty PATH', async () => {
    const v = await run(BIN, ['--version'], env)
    expect(v).to.deep.equal({ code: 0, stdout: `${VERSION}\n`, stderr: '' })
    const h = await run(BIN, ['--help'], env)
    expect(h.code, h.stderr).to.equal(0)
    expect(h.stderr).to.equal('')
    expect(h.stdout).to.match(/^Usage: edgelink \[options\] \[command\]/)
    for (const command of ['agent', 'token', 'link', 'unlink', 'hosts', 'status', 'content']) expect(h.stdout).to.match(new RegExp(`^  ${command}\\b`, 'm'))
    const sub = await run(BIN, ['link', '--help'], env)
    expect(sub.code).to.equal(0)
    expect(sub.stdout).to.match(/^Usage: edgelink link \[options\] <token>/)
    // Usage errors keep their exit code 2 inside the executable.
    expect((await run(BIN, ['no-such-command'], env)).code).to.equal(2)
  })

  it('runs two agents that link through its own `token` and `link`', async function () {
    this.timeout(60_000)
    for (const name of ['b1', 'b2']) {
      const ip = loopbackIp()
      agents.push(new BinaryAgent(name, ip, await freePort(ip), join(home, name), env))
    }
    const [leader, follower] = agents
    await Promise.all(agents.map(async a => { await a.start() }))
    const ids = await Promise.all(agents.map(async a => {
      const s = await a.cli('status', '--json')
      expect(s.code, s.stderr).to.equal(0)
      return JSON.parse(s.stdout).id as string
    }))
    expect(ids[0]).to.not.equal(ids[1])

    const t = await leader.cli('token')
    expect(t.code, t.stderr).to.equal(0)
    const token = t.stdout.trim()
    expect(t.stdout).to.equal(`${token}\n`) // only the token, for $(edgelink token)
    const l = await follower.cli('link', token)
    expect(l.code, `${l.stdout}${l.stderr}`).to.equal(0)
    expect(l.stdout).to.match(/^Linked to group\. 2 hosts\.$/m)

    let last: unknown
    await waitFor(async () => {
      const tables = await Promise.all(agents.map(async a => await a.hosts()))
      last = tables
      return tables.every(rows => rows.length === 2 && ids.every(id => rows.some(r => r.id === id && r.health === 'Healthy')))
    }, 15_000, 'both hosts on both agents').catch((err: Error) => { throw new Error(`${err.message}; last seen ${JSON.stringify(last)}`) })
    const rows = await leader.hosts()
    expect(rows.find(r => r.id === ids[0])?.role).to.equal('leader')
    expect(rows.find(r => r.id === ids[1])?.role).to.equal('follower')
  })

  it('loaded LevelDB\'s native addon from one private file under HOME', async () => {
    const dir = join(home, '.cache', 'edgelink', 'native')
    const files = await readdir(dir)
    expect(files).to.have.length(1) // two agents, one file: written once, then reused
    expect(files[0]).to.match(/^classic-level-[0-9a-f]{16}\.node$/)
    expect((await stat(dir)).mode & 0o777).to.equal(0o700)
    expect((await stat(join(dir, files[0]))).mode & 0o777).to.equal(0o600)
    const shipped = await readFile(join(ROOT, 'node_modules', 'classic-level', 'prebuilds', 'linux-x64', 'classic-level.node'))
    expect((await readFile(join(dir, files[0]))).equals(shipped)).to.equal(true)
  })

  it('serves the Local UI from files embedded in the executable', async () => {
    const { url } = await agents[0].apiFile()
    for (const [path, { file, type }] of Object.entries(UI_FILES)) {
      const res = await fetch(new URL(path, url))
      expect(res.status, path).to.equal(200)
      expect(res.headers.get('content-type')).to.equal(type)
      expect(Buffer.from(await res.arrayBuffer()).equals(await readFile(join(ROOT, 'agent', 'ui', file))), path).to.equal(true)
    }
  })

  it('stops on SIGTERM with exit 0', async () => {
    for (const a of agents) expect(await a.stop(), a.stderr).to.equal(0)
  })

  it('replaces a damaged addon file on the next start, and refuses a directory others can write', async function () {
    this.timeout(30_000)
    const dir = join(home, '.cache', 'edgelink', 'native')
    const [file] = await readdir(dir)
    await writeFile(join(dir, file), 'not an ELF file')
    const again = agents[0]
    await again.start()
    expect((await again.hosts()).map(r => r.id)).to.have.length(2) // same data, same group
    expect(await again.stop(), again.stderr).to.equal(0)
    const shipped = await readFile(join(ROOT, 'node_modules', 'classic-level', 'prebuilds', 'linux-x64', 'classic-level.node'))
    expect((await readFile(join(dir, file))).equals(shipped)).to.equal(true)
    expect(await readdir(dir)).to.deep.equal([file])

    // Code loaded from a directory anyone may write to could be anyone's: the agent stops there.
    const open = join(home, 'world-writable')
    await mkdir(open)
    await chmod(open, 0o777)
    const ip = loopbackIp()
    const r = await run(BIN, ['agent', '--data-dir', join(home, 'b3'), '--listen', `${ip}:${await freePort(ip)}`, '--api', '127.0.0.1:0'], { ...env, EDGELINK_NATIVE_DIR: open }, 20_000)
    expect(r.code, r.stderr).to.equal(1)
    expect(r.stderr).to.match(/^edgelink: cannot load the native addon classic-level\.node .*writable by others/m)
    expect(await readdir(open)).to.deep.equal([])
  })
})
