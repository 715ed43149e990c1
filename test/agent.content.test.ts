/**
 * Content through the agent, as an operator drives it: real agent processes on their own loopback
 * IPs, `edgelink content …` as separate processes. Three linked agents sync a random file and an
 * OCI layout made with umoci (checked with skopeo); a follower killed with SIGKILL mid-transfer
 * resumes from the chunks on its disk; bad API input is refused and changes nothing.
 */
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import type { ContentRow } from '../agent/content.ts'
import { SseParser } from '../agent/client.ts'
import { chunkFiles, waitFor } from './helpers.ts'
import { AgentProc, cleanEnv, CLI, expectRefusal, Fleet, fleetHooks, run, waitForGroup } from './agent.procs.ts'

const exec = promisify(execFile)
const json = { 'content-type': 'application/json' }
const MiB = 1024 * 1024

async function sha256File (path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex')
}

/** Every regular file under `dir`, relative path → [sha256, mode]. */
async function tree (dir: string): Promise<Record<string, [string, number]>> {
  const out: Record<string, [string, number]> = {}
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue
    const abs = join(e.parentPath, e.name)
    out[relative(dir, abs)] = [await sha256File(abs), (await stat(abs)).mode & 0o777]
  }
  return out
}


/**
 * Bytes a process's open TCP sockets have received, from the kernel's tcp_info (`ss -tinp`):
 * an account of the wire the process cannot fudge.
 */
async function tcpBytesReceived (pid: number): Promise<number> {
  const { stdout } = await exec('ss', ['-tinpH'])
  const lines = stdout.split('\n')
  let total = 0
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].includes(`pid=${pid},`)) continue
    const info = lines[i + 1] ?? ''
    const m = /bytes_received:(\d+)/.exec(info)
    if (m != null) total += Number(m[1])
  }
  return total
}

async function contentRows (a: AgentProc): Promise<ContentRow[]> {
  const r = await a.api('GET', '/v1/edgelink/content')
  expect(r.status, JSON.stringify(r.body)).to.equal(200)
  return r.body
}

describe('agent CLI and API: content across three agents', function () {
  this.timeout(60_000)
  const fleet = new Fleet()
  let h1: AgentProc
  let h2: AgentProc
  let h3: AgentProc
  let dir: string
  let file: string
  let fileId = ''
  let ociId = ''
  let ociDest = ''

  before(async function () {
    ;[h1, h2, h3] = await Promise.all(['c1', 'c2', 'c3'].map(async name => await fleet.agent({ name })))
    const ids = [await h1.id(), await h2.id(), await h3.id()]
    for (const f of [h2, h3]) {
      const t = await h1.cli('token')
      expect(t.code, t.stderr).to.equal(0)
      const l = await f.cli('link', t.stdout.trim())
      expect(l.code, l.stderr).to.equal(0)
    }
    await waitForGroup([h1, h2, h3], ids, ids[0])
    dir = await fleet.dir()
    file = join(dir, 'payload.bin')
    await writeFile(file, randomBytes(8 * MiB))
  })

  after(async function () {
    this.timeout(20_000)
    await fleet.teardown()
  })

  it('`content add` of 8 MiB on the leader reaches both followers: wait exits 0, export is byte-identical, 100% and Synced everywhere', async () => {
    const added = await h1.cli('content', 'add', file, '--json')
    expect(added.code, added.stderr).to.equal(0)
    const info = JSON.parse(added.stdout)
    expect(info.manifest).to.include({ kind: 'file', name: 'payload.bin', size: 8 * MiB })
    expect(info).to.include({ complete: true, totalChunks: 8 })
    fileId = info.id

    const waits = await Promise.all([h2, h3].map(async f => await f.cli('content', 'wait', fileId.slice(0, 12), '--timeout', '30')))
    for (const w of waits) {
      expect(w.code, w.stderr).to.equal(0)
      expect(w.stdout).to.equal(`payload.bin (${fileId.slice(0, 12)}) is complete here: 8.0 MiB.\n`)
    }

    const out = join(dir, 'out.bin')
    const ex = await h2.cli('content', 'export', fileId.slice(0, 8), out)
    expect(ex.code, ex.stderr).to.equal(0)
    expect(ex.stdout).to.equal(`Exported ${fileId.slice(0, 12)} to ${out}.\n`)
    expect(await sha256File(out)).to.equal(await sha256File(file))

    for (const a of [h1, h2, h3]) {
      const ls = await a.cli('content', 'ls', '--json')
      expect(ls.code, ls.stderr).to.equal(0)
      const rows: ContentRow[] = JSON.parse(ls.stdout)
      expect(rows.map(r => [r.id, r.name, r.percent, r.complete, r.haveBytes])).to.deep.equal([[fileId, 'payload.bin', 100, true, 8 * MiB]])
      expect(rows[0]).to.not.have.property('manifest') // rows leave the chunk lists out
    }
    const human = await h3.cli('content', 'ls')
    expect(human.stdout).to.match(new RegExp(`│ ${fileId.slice(0, 12)} +│ payload\\.bin +│ file +│ 8\\.0 MiB +│ 100% +│ c1 +│`))

    await waitFor(async () => {
      const tables = await Promise.all([h1, h2, h3].map(async a => await a.hosts()))
      return tables.every(rows => rows.length === 3 && rows.every(r => r.contentSyncStatus === 'Synced'))
    }, 15_000, 'contentSyncStatus Synced in every hosts table')
  })

  it('a follower\'s `content add` exits 1 NOT_LEADER; `content rm` on the leader removes it everywhere', async () => {
    expectRefusal(await h2.cli('content', 'add', file), 'NOT_LEADER')
    expect((await contentRows(h1)).map(r => r.id)).to.deep.equal([fileId])

    const rm = await h1.cli('content', 'rm', fileId.slice(0, 12))
    expect(rm.code, rm.stderr).to.equal(0)
    expect(rm.stdout).to.equal(`Removed payload.bin (${fileId.slice(0, 12)}) from the group.\n`)
    for (const a of [h1, h2, h3]) {
      await waitFor(async () => (await contentRows(a)).length === 0, 10_000, `no content on ${a.name}`)
      const ls = await a.cli('content', 'ls', '--json')
      expect([ls.code, JSON.parse(ls.stdout)]).to.deep.equal([0, []])
    }
    expectRefusal(await h1.cli('content', 'rm', fileId.slice(0, 12)), 'UNKNOWN_CONTENT')
    const none = await h2.cli('content', 'wait')
    expect([none.code, none.stdout]).to.deep.equal([0, 'Nothing to wait for: this host knows of no content.\n'])
  })

  it('an OCI layout built with umoci comes back from a follower byte-identical, and skopeo reads it', async () => {
    const layout = join(dir, 'layout')
    const payload = join(dir, 'app.bin')
    await writeFile(payload, randomBytes(3 * MiB + 12345))
    await exec('umoci', ['init', '--layout', layout])
    await exec('umoci', ['new', '--image', `${layout}:a`])
    await exec('umoci', ['insert', '--image', `${layout}:a`, payload, '/opt/app.bin'])

    const added = await h1.cli('content', 'add', layout, '--kind', 'oci-layout', '--name', 'app', '--json')
    expect(added.code, added.stderr).to.equal(0)
    const info = JSON.parse(added.stdout)
    expect(info.manifest).to.include({ kind: 'oci-layout', name: 'app' })
    ociId = info.id

    const w = await h3.cli('content', 'wait', ociId, '--timeout', '30')
    expect(w.code, w.stderr).to.equal(0)
    ociDest = join(dir, 'exported-layout')
    const ex = await h3.cli('content', 'export', ociId.slice(0, 12), ociDest)
    expect(ex.code, ex.stderr).to.equal(0)
    const inspect = await exec('skopeo', ['inspect', `oci:${ociDest}:a`])
    expect(JSON.parse(inspect.stdout).Layers).to.have.length(1)
    const want = await tree(layout)
    expect(Object.keys(want)).to.include.members(['oci-layout', 'index.json'])
    expect(await tree(ociDest)).to.deep.equal(want)

    // A layout only goes into a new or empty directory.
    expectRefusal(await h3.cli('content', 'export', ociId.slice(0, 12), ociDest), 'FILE_EXISTS')
  })

  it('API: bad input is 400 (404 for an unknown id, 409 for a non-empty destination) and changes nothing', async () => {
    const before = await contentRows(h1)
    expect(before.map(r => r.id)).to.deep.equal([ociId])
    const post = async (path: string, body: unknown): Promise<{ status: number, body: any }> =>
      await h1.api('POST', path, { body: JSON.stringify(body), headers: json })

    for (const body of [{}, { path: 42 }, { path: '' }, { path: file, kind: 'bogus' }, { path: file, extra: 1 }, { path: file, name: '' }, { path: 'x'.repeat(5000) }]) {
      const r = await post('/v1/edgelink/content', body)
      expect([r.status, r.body.code], JSON.stringify(body)).to.deep.equal([400, 'INVALID_ARGUMENT'])
    }
    const rel = await post('/v1/edgelink/content', { path: 'payload.bin' })
    expect([rel.status, rel.body.code]).to.deep.equal([400, 'INVALID_ARGUMENT'])
    expect(rel.body.message).to.include('absolute')
    const missing = await post('/v1/edgelink/content', { path: join(dir, 'no-such-file') })
    expect([missing.status, missing.body.code]).to.deep.equal([400, 'INVALID_ARGUMENT'])
    expect(missing.body.message).to.include('does not exist')
    const notLayout = await post('/v1/edgelink/content', { path: file, kind: 'oci-layout' })
    expect([notLayout.status, notLayout.body.code]).to.deep.equal([400, 'INVALID_ARGUMENT'])

    const unknown = 'f'.repeat(64)
    for (const [method, path, body] of [['GET', `/v1/edgelink/content/${unknown}`], ['DELETE', `/v1/edgelink/content/${unknown}`], ['POST', `/v1/edgelink/content/${unknown}/export`, { dest: join(dir, 'x') }]] as const) {
      const r = await h1.api(method, path, body != null ? { body: JSON.stringify(body), headers: json } : {})
      expect([r.status, r.body.code], `${method} ${path}`).to.deep.equal([404, 'UNKNOWN_CONTENT'])
    }
    for (const body of [{}, { dest: 'relative/dir' }, { dest: join(dir, 'y'), overwrite: 'yes' }]) {
      const r = await post(`/v1/edgelink/content/${ociId}/export`, body)
      expect([r.status, r.body.code], JSON.stringify(body)).to.deep.equal([400, 'INVALID_ARGUMENT'])
    }
    const full = await post(`/v1/edgelink/content/${ociId}/export`, { dest: ociDest })
    expect([full.status, full.body.code]).to.deep.equal([409, 'FILE_EXISTS'])
    const unauth = await h1.api('GET', '/v1/edgelink/content', { auth: false })
    expect(unauth.status).to.equal(401)

    expect(await contentRows(h1)).to.deep.equal(before)
    expect(await readdir(dir)).to.not.include('x')
    // The CLI's own checks are usage errors.
    for (const args of [['content', 'add', file, '--kind', 'bogus'], ['content', 'add'], ['content', 'wait', '--timeout', '0'], ['content', 'export', 'abc']]) {
      const r = await h1.cli(...args)
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).to.equal(2)
    }
  })

  it('`GET /v1/edgelink/events` streams content events as rows, group events as the library emits them, and lets go of clients that leave', async () => {
    const { url, token } = await h2.apiFile()
    const seen: Array<[string, any]> = []
    const ac = new AbortController()
    const res = await fetch(new URL('/v1/edgelink/events', url), { headers: { authorization: `Bearer ${token}` }, signal: ac.signal })
    expect(res.status).to.equal(200)
    expect(res.headers.get('content-type')).to.match(/^text\/event-stream/)
    const parser = new SseParser((event, data) => { seen.push([event, data]) })
    const reading = (async () => {
      const decoder = new TextDecoder()
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) parser.push(decoder.decode(chunk, { stream: true }))
    })().catch(() => {})
    const small = join(dir, 'small.bin')
    await writeFile(small, randomBytes(2 * MiB + 7))
    const added = await h1.cli('content', 'add', small, '--json')
    expect(added.code, added.stderr).to.equal(0)
    const id = JSON.parse(added.stdout).id
    await waitFor(() => seen.some(([e, d]) => e === 'content:complete' && d.id === id), 15_000, 'content:complete on the stream')
    const names = seen.filter(([, d]) => d?.id === id).map(([e]) => e)
    expect(names[0]).to.equal('content:added')
    expect(names).to.include('content:progress')
    const complete = seen.find(([e, d]) => e === 'content:complete' && d.id === id)?.[1]
    expect(complete).to.include({ id, name: 'small.bin', percent: 100, complete: true })
    expect(complete).to.not.have.property('manifest')
    // Group events ride the same stream: a settings change made on the leader arrives here.
    const set = await h1.cli('settings', 'set', 'ntpServers=ntp-events.example')
    expect(set.code, set.stderr).to.equal(0)
    await waitFor(() => seen.some(([e, d]) => e === 'settings' && d?.ntpServers?.includes('ntp-events.example')), 15_000, 'a settings event on the stream')
    ac.abort()
    await reading

    // Streams opened and dropped one after another: a listener left behind by each would trip
    // Node's leak warning (more than 10 listeners on one event) in the agent's stderr.
    for (let i = 0; i < 12; i++) {
      const c = new AbortController()
      const r = await fetch(new URL('/v1/edgelink/events', url), { headers: { authorization: `Bearer ${token}` }, signal: c.signal })
      expect(r.status).to.equal(200)
      c.abort()
    }
    await h1.cli('content', 'rm', id)
    await waitFor(async () => (await contentRows(h2)).every(r => r.id !== id), 10_000, 'the removal on c2')
    expect(h2.stderr).to.not.include('MaxListenersExceeded')
    const noAuth = await fetch(new URL('/v1/edgelink/events', url))
    expect(noAuth.status).to.equal(401)
  })
})

describe('agent: kill -9 during a content transfer', function () {
  this.timeout(90_000)
  const fleet = fleetHooks()

  it('a follower killed mid-transfer resumes from its verified chunks on restart and never fetches them again', async () => {
    const SIZE = 48 * MiB
    const CHUNKS = SIZE / MiB
    // The leader sends 4 MiB/s: about 12 s for the whole, a wide window to kill the follower in.
    const leader = await fleet.agent({ name: 'k1', flags: ['--upload-rate', '4M'] })
    const follower = await fleet.agent({ name: 'k2' })
    const t = await leader.cli('token')
    const l = await follower.cli('link', t.stdout.trim())
    expect(l.code, l.stderr).to.equal(0)

    const dir = await fleet.dir()
    const file = join(dir, 'big.bin')
    await writeFile(file, randomBytes(SIZE))
    const added = await leader.cli('content', 'add', file, '--json')
    expect(added.code, added.stderr).to.equal(0)
    const id: string = JSON.parse(added.stdout).id

    let atKill = 0
    await waitFor(async () => {
      const row = (await contentRows(follower)).find(r => r.id === id)
      atKill = row?.haveChunks ?? 0
      return atKill >= 8
    }, 30_000, 'the follower to hold some chunks')
    const child = follower.child!
    const exited = once(child, 'exit')
    child.kill('SIGKILL')
    await exited

    const kept = await chunkFiles(follower.dataDir)
    expect(kept.size, 'chunks on disk after the kill').to.be.at.least(atKill).and.below(CHUNKS)
    const missing = SIZE - kept.size * MiB

    await follower.start()
    const resumed = await follower.api('GET', `/v1/edgelink/content/${id}`)
    expect(resumed.status).to.equal(200)
    // Every chunk file found on disk counts as held again, straight away.
    expect(resumed.body.haveChunks, 'chunks held right after the restart').to.be.at.least(kept.size)

    const w = await run(process.execPath, [CLI, 'content', 'wait', id.slice(0, 12), '--timeout', '40', '--data-dir', follower.dataDir], cleanEnv(), 60_000)
    expect(w.code, w.stderr).to.equal(0)
    // On a pipe, progress comes as lines.
    expect(w.stderr).to.match(/big\.bin: [\d.]+ MiB \/ 48\.0 MiB \(\d+%\)/)

    // What the restarted follower took off the wire: its TCP sockets' received bytes.
    const received = await tcpBytesReceived(follower.child!.pid!)
    const fetched = SIZE - resumed.body.haveBytes
    expect(received, 'bytes the restarted follower received').to.be.at.least(fetched * 0.99)
    expect(received, 'bytes the restarted follower received').to.be.at.most(missing + 3 * MiB)
    // The chunk files from before the kill are the very same files.
    const after = await chunkFiles(follower.dataDir)
    for (const [hash, ino] of kept) expect(after.get(hash), hash).to.equal(ino)

    const out = join(dir, 'big.out')
    const ex = await follower.cli('content', 'export', id, out)
    expect(ex.code, ex.stderr).to.equal(0)
    expect(await sha256File(out)).to.equal(await sha256File(file))
  })
})

describe('agent CLI: the content commands without an agent', function () {
  this.timeout(20_000)
  const fleet = fleetHooks()

  it('documents every content command with examples and exits 1 when no agent runs', async () => {
    const dir = await fleet.dir()
    for (const args of [['content', 'add'], ['content', 'ls'], ['content', 'export'], ['content', 'rm'], ['content', 'wait']]) {
      const help = await run(process.execPath, [CLI, ...args, '--help'])
      expect(help.code, args.join(' ')).to.equal(0)
      expect(help.stdout, args.join(' ')).to.include('Examples:')
    }
    for (const args of [['content', 'ls'], ['content', 'wait'], ['content', 'add', 'x'], ['content', 'rm', 'abcdef']]) {
      const r = await run(process.execPath, [CLI, ...args, '--data-dir', dir])
      expect([r.code, r.stderr], args.join(' ')).to.deep.equal([1, `edgelink: no agent is running for data dir ${dir} (start it with \`edgelink agent\`)\n`])
    }
    const help = await run(process.execPath, [CLI, 'agent', '--help'])
    expect(help.stdout).to.include('--upload-rate <bytes>')
    expect((await run(process.execPath, [CLI, 'agent', '--data-dir', dir, '--upload-rate', '4X'])).code).to.equal(2)
  })
})
