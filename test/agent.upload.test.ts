/**
 * `POST /v1/edgelink/content/upload`: a file sent as the raw request body, against real agent
 * processes on their own loopback IPs. The body streams to a private file under the data dir and
 * is imported; whatever happens (success, refusal, a client that goes away, a full disk) that file
 * is gone afterwards. Ends with the Local UI sending a file picked in Debian's Chromium.
 */
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { mkdir, readdir, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { chromium } from 'playwright-core'
import type { ContentRow } from '../agent/content.ts'
import { SseParser } from '../agent/client.ts'
import { sha256, waitFor } from './helpers.ts'
import { type AgentProc, Fleet, waitForGroup } from './agent.procs.ts'

const LINK = '/v1/edge-mgmt/edgehosts/current/link'
const UPLOAD = '/v1/edgelink/content/upload'
const octet = { 'content-type': 'application/octet-stream' }
const MiB = 1024 * 1024
const CHROMIUM = '/usr/bin/chromium'
/** EDGELINK_TEST_NO_TMPFS=1 skips the full-disk test where a tmpfs cannot be mounted (not root). */
const NO_TMPFS = 'EDGELINK_TEST_NO_TMPFS'


/** Everything under `<data-dir>/uploads`, relative path → size; empty when the dir does not exist. */
async function uploadsLeft (a: AgentProc): Promise<Record<string, number>> {
  const root = join(a.dataDir, 'uploads')
  const out: Record<string, number> = {}
  let entries
  try {
    entries = await readdir(root, { recursive: true, withFileTypes: true })
  } catch (err: any) {
    if (err.code === 'ENOENT') return out
    throw err
  }
  for (const e of entries) out[join(e.parentPath, e.name).slice(root.length + 1)] = e.isFile() ? (await stat(join(e.parentPath, e.name))).size : -1
  return out
}

async function contentIds (a: AgentProc): Promise<string[]> {
  const r = await a.api('GET', '/v1/edgelink/content')
  expect(r.status, JSON.stringify(r.body)).to.equal(200)
  return (r.body as ContentRow[]).map(c => c.id).sort()
}

/** One upload through fetch; `body` a stream is sent chunked (no Content-Length). */
async function upload (a: AgentProc, body: Uint8Array | ReadableStream<Uint8Array>, query: Record<string, string>, init: { auth?: false | string, headers?: Record<string, string> } = {}): Promise<{ status: number, body: any }> {
  const { url, token } = await a.apiFile()
  const bearer = init.auth === false ? undefined : init.auth ?? token
  const res = await fetch(`${url}${UPLOAD}?${new URLSearchParams(query)}`, {
    method: 'POST',
    headers: { ...octet, ...(bearer != null ? { authorization: `Bearer ${bearer}` } : {}), ...init.headers },
    body,
    ...(body instanceof ReadableStream ? { duplex: 'half' } : {})
  } as RequestInit)
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) }
}

/**
 * A request whose headers promise `length` bytes, of which `send` are written; resolves with the
 * answer if one comes. The request stays open (the caller destroys it).
 */
function partialRequest (a: { url: string, token: string }, query: string, length: number, send: Uint8Array): { req: ReturnType<typeof httpRequest>, answer: Promise<{ status: number, body: any }> } {
  const req = httpRequest(`${a.url}${UPLOAD}?${query}`, {
    method: 'POST',
    headers: { ...octet, authorization: `Bearer ${a.token}`, 'content-length': String(length) }
  })
  const answer = new Promise<{ status: number, body: any }>((resolve, reject) => {
    req.on('response', res => {
      let text = ''
      res.on('data', (b: Buffer) => { text += b.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : JSON.parse(text) }) })
    })
    req.on('error', reject)
  })
  answer.catch(() => {})
  if (send.length > 0) req.write(send)
  else req.flushHeaders()
  return { req, answer }
}

/** `p`, or a failure naming `what` after `ms`. */
async function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`no ${what} within ${ms} ms`)) }, ms) })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}

/** `total` random bytes as a stream of 1 MiB pieces, and their SHA-256 once it is read. */
function randomStream (total: number): { stream: ReadableStream<Uint8Array>, digest: Promise<string> } {
  const hash = createHash('sha256')
  let sent = 0
  let done: (d: string) => void
  const digest = new Promise<string>(resolve => { done = resolve })
  const stream = new ReadableStream<Uint8Array>({
    pull (ctrl) {
      if (sent >= total) { ctrl.close(); done(hash.digest('hex')); return }
      const piece = randomBytes(Math.min(MiB, total - sent))
      sent += piece.length
      hash.update(piece)
      ctrl.enqueue(piece)
    }
  })
  return { stream, digest }
}

describe('agent content upload: the file as the request body (real agent processes)', function () {
  this.timeout(60_000)
  const fleet = new Fleet()
  let leader: AgentProc
  let follower: AgentProc
  let dir: string

  before(async function () {
    this.timeout(30_000)
    ;[leader, follower] = await Promise.all(['up-1', 'up-2'].map(async name => await fleet.agent({ name })))
    const gen = await leader.api('POST', `${LINK}/generate-token`)
    expect(gen.status).to.equal(200)
    const linked = await follower.api('POST', LINK, { body: JSON.stringify({ token: gen.body.token }), headers: { 'content-type': 'application/json' } })
    expect(linked.body?.status, JSON.stringify(linked.body)).to.equal('Completed')
    await waitForGroup([leader, follower], [await leader.id(), await follower.id()], await leader.id())
    dir = await fleet.dir()
  })

  after(async function () {
    this.timeout(20_000)
    await fleet.teardown()
  })

  it('uploads 6 MiB from fetch: 201 with the ContentInfo, import progress on the event stream, byte-identical export on the follower, nothing left in uploads/', async () => {
    const data = randomBytes(6 * MiB + 321)
    const { url, token } = await leader.apiFile()
    const seen: Array<[string, any]> = []
    const ac = new AbortController()
    const res = await fetch(`${url}/v1/edgelink/events`, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal })
    const parser = new SseParser((event, d) => { seen.push([event, d]) })
    const reading = (async () => {
      const decoder = new TextDecoder()
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) parser.push(decoder.decode(chunk, { stream: true }))
    })().catch(() => {})

    const r = await upload(leader, data, { name: 'payload.tar', kind: 'bundle' })
    expect(r.status, JSON.stringify(r.body)).to.equal(201)
    expect(r.body.manifest).to.include({ name: 'payload.tar', kind: 'bundle', size: data.length })
    // The received file is named after the upload and is an ordinary 0644 file: what the manifest
    // keeps, and what every host's export writes.
    expect(r.body.manifest.files).to.have.length(1)
    expect(r.body.manifest.files[0]).to.include({ path: 'payload.tar', size: data.length, mode: 0o644 })
    expect(r.body).to.include({ complete: true, uploader: await leader.id() })
    const id: string = r.body.id

    // Receiving and importing reported under `upload:<name>`, ending at the full size.
    await waitFor(() => seen.some(([e, d]) => e === 'content:import' && d.path === 'upload:payload.tar' && d.bytes === data.length && d.totalBytes === data.length), 5_000, 'content:import at 100%')
    ac.abort()
    await reading
    const imports = seen.filter(([e]) => e === 'content:import').map(([, d]) => d)
    expect(imports.every(d => d.path === 'upload:payload.tar' && d.name === 'payload.tar')).to.equal(true)

    expect(await uploadsLeft(leader)).to.deep.equal({})
    expect((await stat(join(leader.dataDir, 'uploads'))).mode & 0o777).to.equal(0o700)

    const w = await follower.cli('content', 'wait', id, '--timeout', '30')
    expect(w.code, w.stderr).to.equal(0)
    const out = join(dir, 'from-follower')
    await mkdir(out)
    const ex = await follower.cli('content', 'export', id.slice(0, 12), out)
    expect(ex.code, ex.stderr).to.equal(0)
    const exported = join(out, 'payload.tar')
    expect(sha256(await readFile(exported))).to.equal(sha256(data))
    expect((await stat(exported)).mode & 0o777).to.equal(0o644)
  })

  it('uploads a body sent chunked (no Content-Length): 201 and the same bytes', async () => {
    const { stream, digest } = randomStream(3 * MiB + 17)
    const r = await upload(leader, stream, { name: 'chunked.bin' })
    expect(r.status, JSON.stringify(r.body)).to.equal(201)
    expect(r.body.manifest).to.include({ name: 'chunked.bin', kind: 'file', size: 3 * MiB + 17 })
    const out = join(dir, 'chunked.bin')
    const ex = await leader.cli('content', 'export', r.body.id, out)
    expect(ex.code, ex.stderr).to.equal(0)
    expect(sha256(await readFile(out))).to.equal(await digest)
    expect(await uploadsLeft(leader)).to.deep.equal({})
  })

  it('refuses without the bearer or with a wrong one: 401, nothing kept', async () => {
    const before = await contentIds(leader)
    const { token } = await leader.apiFile()
    for (const auth of [false, token.replace(/^./, c => c === 'a' ? 'b' : 'a')] as const) {
      const r = await upload(leader, randomBytes(2 * MiB), { name: 'sneaky.bin' }, { auth })
      expect(r.status).to.equal(401)
      expect(r.body.code).to.equal('UNAUTHORIZED')
    }
    expect(await contentIds(leader)).to.deep.equal(before)
    expect(await uploadsLeft(leader)).to.deep.equal({})
  })

  it('refuses a follower\'s upload with 403 NOT_LEADER from the headers, before reading or storing anything', async () => {
    const before = await contentIds(follower)
    const r = await upload(follower, randomBytes(4 * MiB), { name: 'from-follower.bin' })
    expect(r.status, JSON.stringify(r.body)).to.equal(403)
    expect(r.body.code).to.equal('NOT_LEADER')
    expect(await uploadsLeft(follower)).to.deep.equal({})
    expect(await contentIds(follower)).to.deep.equal(before)
    expect(await contentIds(leader)).to.deep.equal(before)
    // Refused from the headers: the answer comes while most of a declared 64 MiB is still unsent.
    const { req, answer } = partialRequest(await follower.apiFile(), 'name=from-follower.bin', 64 * MiB, randomBytes(MiB))
    const early = await within(answer, 10_000, 'answer while the body was still unsent')
    req.destroy()
    expect([early.status, early.body.code]).to.deep.equal([403, 'NOT_LEADER'])
    expect(await uploadsLeft(follower)).to.deep.equal({})
    expect(await contentIds(follower)).to.deep.equal(before)
  })

  it('refuses bad input with a sentence and keeps nothing: kind oci-layout or unknown, no or too long a name, a JSON body, a declared size over the limit', async () => {
    const before = await contentIds(leader)
    const body = randomBytes(64 * 1024)
    const oci = await upload(leader, body, { name: 'layout', kind: 'oci-layout' })
    expect(oci.status).to.equal(400)
    expect(oci.body.code).to.equal('INVALID_ARGUMENT')
    expect(oci.body.message).to.match(/^an OCI image layout is a directory .+ by path/)
    const queries: Array<Record<string, string>> = [{ name: 'x', kind: 'tarball' }, { kind: 'file' }, { name: '' }, { name: 'n'.repeat(257) }, { name: 'x', path: '/etc/passwd' }]
    for (const query of queries) {
      const r = await upload(leader, body, query)
      expect(r.status, JSON.stringify(query)).to.equal(400)
      expect(r.body.code).to.equal('INVALID_ARGUMENT')
    }
    const asJson = await upload(leader, new TextEncoder().encode('{"path":"/etc/passwd"}'), { name: 'x' }, { headers: { 'content-type': 'application/json' } })
    expect(asJson.status).to.equal(415)
    expect(asJson.body).to.deep.equal({ code: 'UNSUPPORTED_MEDIA_TYPE', message: 'send the file itself as the body, with content-type: application/octet-stream' })

    // 64 GiB + 1 declared: refused from the header, before any body is sent.
    const { req, answer } = partialRequest(await leader.apiFile(), 'name=huge.bin', 64 * 1024 ** 3 + 1, new Uint8Array())
    const tooBig = await within(answer, 10_000, 'answer to the declared size')
    req.destroy()
    expect(tooBig.status).to.equal(413)
    expect(tooBig.body.code).to.equal('PAYLOAD_TOO_LARGE')
    expect(tooBig.body.message).to.include('at most 68719476736 bytes')

    expect(await contentIds(leader)).to.deep.equal(before)
    expect(await uploadsLeft(leader)).to.deep.equal({})
  })

  it('streams to disk as it arrives and deletes the file when the client goes away mid-upload', async () => {
    const before = await contentIds(leader)
    const { req } = partialRequest(await leader.apiFile(), 'name=cut-short.bin', 64 * MiB, randomBytes(8 * MiB))
    // 8 of 64 MiB sent and on the agent's disk: the body is written as it comes, not held.
    let left: Record<string, number> = {}
    await waitFor(async () => {
      left = await uploadsLeft(leader)
      return Object.entries(left).some(([p, size]) => p.endsWith('/cut-short.bin') && size === 8 * MiB)
    }, 10_000, 'the first 8 MiB in <data-dir>/uploads')
    expect(Object.keys(left).every(p => /^u-[^/]+(\/cut-short\.bin)?$/.test(p)), JSON.stringify(left)).to.equal(true)
    req.destroy()
    await waitFor(async () => Object.keys(await uploadsLeft(leader)).length === 0, 10_000, 'uploads/ to be empty again')
    expect(await contentIds(leader)).to.deep.equal(before)
    expect(await contentIds(follower)).to.deep.equal(before)
  })

  it('Local UI in Chromium: choosing a file on the leader\'s page sends it; the row reaches Complete there and on the follower', async function () {
    this.timeout(45_000)
    const file = join(dir, 'site-bundle.tar.zst')
    const data = randomBytes(5 * MiB + 3)
    await writeFile(file, data)
    const { url, token } = await leader.apiFile()
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
      page.setDefaultTimeout(20_000)
      const errors: Error[] = []
      const urls: string[] = []
      page.on('pageerror', e => { errors.push(e) })
      page.on('request', r => { urls.push(r.url()) })
      await page.goto(`${url}/#token=${token}`)
      await page.getByRole('status').filter({ hasText: /^Live$/ }).waitFor()
      await page.getByLabel('Kind').selectOption({ label: 'Content bundle' })
      await page.getByLabel('File from this computer').setInputFiles(file)
      await page.getByRole('status').filter({ hasText: 'site-bundle.tar.zst was uploaded' }).waitFor()
      const row = async (): Promise<Record<string, string> | undefined> => await page.getByRole('table', { name: 'Content' }).evaluate((t: any) => {
        const heads: string[] = [...t.tHead.rows[0].cells].map((c: any) => c.textContent.trim())
        return [...t.tBodies[0].rows].map((r: any) => Object.fromEntries([...r.cells].map((c: any, i: number) => [heads[i], c.innerText.trim()])))
          .find((r: any) => r.Name === 'site-bundle.tar.zst')
      })
      await waitFor(async () => (await row())?.['On this host'] === 'Complete', 15_000, 'the row at Complete on the leader\'s page')
      expect(await row()).to.include({ Kind: 'Content bundle', Size: '5.0 MiB' })
      // The form is ready for the next file, and the secret never went into an address.
      expect(await page.getByLabel('File from this computer').isEnabled()).to.equal(true)
      expect(await page.getByLabel('File from this computer').inputValue()).to.equal('')
      expect(urls.filter(u => u.includes(token))).to.deep.equal([])
      expect(urls.some(u => u.startsWith(`${url}${UPLOAD}?name=site-bundle.tar.zst&kind=bundle`))).to.equal(true)
      expect(errors.map(e => e.message)).to.deep.equal([])

      const rows: ContentRow[] = []
      await waitFor(async () => {
        rows.splice(0, rows.length, ...(await follower.api('GET', '/v1/edgelink/content')).body)
        return rows.some(c => c.name === 'site-bundle.tar.zst' && c.complete)
      }, 15_000, 'the upload complete on the follower')
      const id = rows.find(c => c.name === 'site-bundle.tar.zst')!.id
      const out = join(dir, 'ui-export.bin')
      const ex = await follower.cli('content', 'export', id, out)
      expect(ex.code, ex.stderr).to.equal(0)
      expect(sha256(await readFile(out))).to.equal(sha256(data))
      expect(await uploadsLeft(leader)).to.deep.equal({})
    } finally {
      await browser.close()
    }
  })

  describe('on a full disk (the data dir on a 40 MiB tmpfs)', function () {
    const disk = new Fleet()
    let mountPoint: string | undefined
    let lone: AgentProc

    before(async function () {
      this.timeout(30_000)
      const mp = join(tmpdir(), `edgelink-upload-tmpfs-${process.pid}`)
      await mkdir(mp, { recursive: true })
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=40m,mode=0700', 'tmpfs', mp], { stdio: 'pipe' })
        mountPoint = mp
      } catch (err: any) {
        await rm(mp, { recursive: true, force: true })
        const why = `cannot mount a tmpfs (${String(err.stderr ?? err.message).trim()}); run as root`
        if (process.env[NO_TMPFS] === '1') {
          console.warn(`\n  !!! FULL-DISK UPLOAD TEST SKIPPED: ${why}; ${NO_TMPFS}=1 is set.\n`)
          this.skip()
        }
        throw new Error(`${why}, or set ${NO_TMPFS}=1 on a machine that cannot mount one`)
      }
      lone = await disk.agent({ name: 'up-full', dataDir: join(mp, 'data') })
      const t = await lone.cli('token') // a group of one, led by this agent
      expect(t.code, t.stderr).to.equal(0)
    })

    after(async function () {
      this.timeout(20_000)
      await disk.teardown()
      if (mountPoint != null) {
        execFileSync('umount', [mountPoint])
        await rm(mountPoint, { recursive: true, force: true })
      }
    })

    it('answers 507 DISK_FULL to a declared size over the free space, and to a chunked body that fills the disk; deletes the partial file; the next upload fits', async () => {
      const fs = await statfs(join(lone.dataDir))
      const free = fs.bavail * fs.bsize
      // Declared: refused from the header, before a byte is read.
      const { req, answer } = partialRequest(await lone.apiFile(), 'name=too-big.bin', free + MiB, new Uint8Array())
      const declared = await within(answer, 10_000, 'answer to the declared size')
      req.destroy()
      expect(declared.status).to.equal(507)
      expect(declared.body.code).to.equal('DISK_FULL')
      expect(await uploadsLeft(lone)).to.deep.equal({})

      // Chunked: the disk fills while the body is written.
      const { stream } = randomStream(48 * MiB)
      const full = await upload(lone, stream, { name: 'fills-the-disk.bin' })
      expect(full.status, JSON.stringify(full.body)).to.equal(507)
      expect(full.body.code).to.equal('DISK_FULL')
      expect(full.body.message).to.match(/filled up while receiving the upload/)
      expect(await uploadsLeft(lone)).to.deep.equal({})
      const after = await statfs(join(lone.dataDir))
      expect(after.bavail * after.bsize).to.be.greaterThan(free - 4 * MiB)
      expect(await contentIds(lone)).to.deep.equal([])

      const data = randomBytes(8 * MiB)
      const ok = await upload(lone, data, { name: 'fits.bin' })
      expect(ok.status, JSON.stringify(ok.body)).to.equal(201)
      const out = join(await disk.dir(), 'fits.bin')
      const ex = await lone.cli('content', 'export', ok.body.id, out)
      expect(ex.code, ex.stderr).to.equal(0)
      expect(sha256(await readFile(out))).to.equal(sha256(data))
      expect(await uploadsLeft(lone)).to.deep.equal({})
    })
  })
})
