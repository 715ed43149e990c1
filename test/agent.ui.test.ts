/**
 * The Local UI end to end: real agent processes on their own loopback IPs, each page in Debian's
 * Chromium (/usr/bin/chromium, driven by playwright-core; no browser is downloaded). The `it`s run
 * in order and build on one another: sign in, generate and copy a token on the leader, paste it on
 * a follower, refusals in the Link dialog, stop token generation, settings, content, a cluster,
 * unlink. Elements are found by role and label, as assistive technology finds them.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { expect } from 'chai'
import { chromium, type Browser, type Page, type Request } from 'playwright-core'
import { waitFor } from './helpers.ts'
import { type AgentProc, Fleet, ROOT } from './agent.procs.ts'

const CHROMIUM = '/usr/bin/chromium'
const SCREENSHOT = join(ROOT, 'docs', 'ui-linked-hosts.png')
/** What the sign-in test pastes first. */
const WRONG_SECRET = '0'.repeat(64)

interface UiPage {
  agent: AgentProc
  page: Page
  base: string
  secret: string
  /** Every request the page made, to check that the secret never travels in a URL. */
  requests: Request[]
  /** Uncaught exceptions in the page. */
  errors: Error[]
}

/** The Linked Edge Hosts rows as the page shows them: one object per row, keyed by column header. */
async function tableRows (page: Page, table = 'Linked Edge Hosts'): Promise<Array<Record<string, string>>> {
  return await page.getByRole('table', { name: table, includeHidden: true }).evaluate((t: any) => {
    if (t.hidden) return []
    const heads: string[] = [...t.tHead.rows[0].cells].map((c: any) => c.textContent.trim())
    // innerText: what is shown (a hidden badge or button is not), headers by their text as written.
    return [...t.tBodies[0].rows].map((r: any) => Object.fromEntries([...r.cells].map((c: any, i: number) => [heads[i], c.innerText.trim()])))
  })
}

/** Waits until the page's table lists exactly `names` (in any order) and `check` holds for the rows. */
async function waitForRows (ui: UiPage, names: string[], check: (rows: Array<Record<string, string>>) => boolean = () => true, ms = 15_000): Promise<Array<Record<string, string>>> {
  let rows: Array<Record<string, string>> = []
  try {
    await waitFor(async () => {
      rows = await tableRows(ui.page)
      const shown = rows.map(r => r.Name.replace(/\s*this host$/, '')).sort()
      return JSON.stringify(shown) === JSON.stringify([...names].sort()) && check(rows)
    }, ms, `the table on ${ui.agent.name}'s page to list ${names.join(', ')}`)
  } catch (err: any) {
    throw new Error(`${err.message}; last seen ${JSON.stringify(rows)}`)
  }
  return rows
}

const healthy = (rows: Array<Record<string, string>>): boolean => rows.every(r => r.Health === 'Healthy')

describe('Local UI in Chromium (real agent processes)', function () {
  this.timeout(30_000)
  const fleet = new Fleet()
  let browser: Browser
  let leader: AgentProc
  let f1: AgentProc
  let f2: AgentProc
  let L: UiPage
  let P1: UiPage
  let P2: UiPage
  const pages: UiPage[] = []
  let copied = ''

  before(async function () {
    this.timeout(30_000)
    const agents = Promise.all(['edge-1', 'edge-2', 'edge-3'].map(async name => await fleet.agent({ name })))
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
    ;[leader, f1, f2] = await agents
  })

  after(async function () {
    this.timeout(20_000)
    await browser?.close().catch(() => {})
    await fleet.teardown()
  })

  afterEach(function () {
    // A page that threw is a failure even when the assertions passed.
    for (const p of pages) expect(p.errors.map(e => e.message), `uncaught errors on ${p.agent.name}'s page`).to.deep.equal([])
  })

  /** A fresh browser context (its own sessionStorage and clipboard) on `agent`'s API origin. */
  async function newPage (agent: AgentProc, opts: { clock?: boolean } = {}): Promise<UiPage> {
    const { url, token } = await agent.apiFile()
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' })
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: url })
    const page = await context.newPage()
    page.setDefaultTimeout(15_000)
    if (opts.clock === true) await page.clock.install()
    const ui: UiPage = { agent, page, base: url, secret: token, requests: [], errors: [] }
    page.on('request', r => { ui.requests.push(r) })
    page.on('pageerror', e => { ui.errors.push(e) })
    pages.push(ui)
    return ui
  }

  it('serves the page without the secret; every data call still needs it', async () => {
    const { url, token } = await leader.apiFile()
    const page = await fetch(`${url}/`)
    expect(page.status).to.equal(200)
    expect(page.headers.get('content-type')).to.match(/^text\/html/)
    expect(page.headers.get('content-security-policy')).to.include("script-src 'self'").and.include("frame-ancestors 'none'")
    const html = await page.text()
    expect(html).to.include('Linked Edge Hosts').and.not.include(token)
    for (const path of ['/ui/app.js', '/ui/style.css']) {
      const r = await fetch(`${url}${path}`)
      expect(r.status, path).to.equal(200)
      expect(await r.text()).to.not.include(token)
    }
    // Only those files are public: anything else, known route or not, wants the bearer.
    for (const path of ['/v1/edgelink/hosts', '/v1/edgelink/events', '/ui/other.js', '/index.html']) {
      const r = await fetch(`${url}${path}`)
      expect(r.status, path).to.equal(401)
      expect(((await r.json()) as any).code).to.equal('UNAUTHORIZED')
    }
  })

  it('`edgelink ui` prints a sign-in link; the page takes the secret from the fragment and strips it', async () => {
    const r = await leader.cli('ui')
    expect(r.code, r.stderr).to.equal(0)
    const { url, token } = await leader.apiFile()
    expect(r.stdout).to.equal(`${url}/#token=${token}\n`)
    L = await newPage(leader)
    await L.page.goto(r.stdout.trim())
    await L.page.getByRole('heading', { name: 'Linked Edge Hosts' }).waitFor()
    await waitFor(() => L.page.url() === `${url}/`, 5_000, 'the fragment to leave the address bar')
    expect(await L.page.evaluate(() => (globalThis as any).sessionStorage.getItem('edgelink.apiSecret'))).to.equal(token)
    expect(await L.page.evaluate(() => (globalThis as any).location.hash)).to.equal('')
    await L.page.getByRole('status').filter({ hasText: /^Live$/ }).waitFor()
    await waitForRows(L, []) // an idle host: no table yet
    expect(await L.page.getByText('This host is not linked to any other host yet.').isVisible()).to.equal(true)
  })

  it('signs in with a pasted secret; a wrong one is refused with a sentence', async () => {
    P1 = await newPage(f1)
    await P1.page.goto(`${P1.base}/`)
    const secret = P1.page.getByLabel('API secret')
    await secret.fill(WRONG_SECRET)
    await P1.page.getByRole('button', { name: 'Sign in' }).click()
    await P1.page.getByRole('alert').filter({ hasText: 'did not accept this secret' }).waitFor()
    expect(await P1.page.getByRole('heading', { name: 'Linked Edge Hosts' }).isVisible()).to.equal(false)
    await secret.fill(P1.secret)
    await P1.page.getByRole('button', { name: 'Sign in' }).click()
    await P1.page.getByRole('heading', { name: 'Linked Edge Hosts' }).waitFor()
    expect(await P1.page.evaluate(() => (globalThis as any).sessionStorage.getItem('edgelink.apiSecret'))).to.equal(P1.secret)

    P2 = await newPage(f2)
    await P2.page.goto(`${P2.base}/#token=${P2.secret}`)
    await P2.page.getByRole('heading', { name: 'Linked Edge Hosts' }).waitFor()
  })

  it('generates a token that counts down; Copy puts it on the clipboard', async () => {
    await L.page.getByRole('button', { name: 'Generate token' }).click()
    const field = L.page.getByLabel('Generated link token')
    await field.waitFor()
    const token = await field.inputValue()
    expect(token).to.match(/^EL1[A-Za-z0-9_-]{40,}$/)
    // The page shows the leader's live token: the API hands out the same one.
    expect((await leader.api('POST', '/v1/edge-mgmt/edgehosts/current/link/generate-token')).body.token).to.equal(token)

    const timer = L.page.getByRole('timer')
    const seconds = async (): Promise<number> => {
      const m = /^Expires in (\d+):(\d\d)$/.exec((await timer.textContent()) ?? '')
      expect(m, 'countdown text').to.not.equal(null)
      return Number(m![1]) * 60 + Number(m![2])
    }
    const first = await seconds()
    expect(first).to.be.within(100, 120)
    await waitFor(async () => await seconds() < first, 5_000, 'the countdown to go down')

    await L.page.getByRole('button', { name: 'Copy' }).click()
    await L.page.getByRole('button', { name: 'Copied' }).waitFor()
    copied = await L.page.evaluate(async () => await (globalThis as any).navigator.clipboard.readText())
    expect(copied).to.equal(token)
    // The page shows what the leader generated; linking with it is the next test.
  })

  it('a wrong token shows a clear error in the Link dialog and links nothing', async () => {
    const { page } = P1
    await page.getByRole('button', { name: 'Link this device to another' }).click()
    const dialog = page.getByRole('dialog', { name: 'Link this device to another' })
    await dialog.waitFor()
    const field = dialog.getByLabel('Link token')
    expect(await field.evaluate(el => el === (globalThis as any).document.activeElement)).to.equal(true)
    // The copied token with one character changed: the checksum catches it before any network.
    const wrong = copied.slice(0, 20) + (copied[20] === 'A' ? 'B' : 'A') + copied.slice(21)
    await field.fill(wrong)
    await dialog.getByRole('button', { name: 'Confirm' }).click()
    const alert = dialog.getByRole('alert')
    await alert.filter({ hasText: 'TOKEN_CORRUPT' }).waitFor()
    const text = (await alert.textContent())!
    expect(text).to.match(/^Linking failed\. The token [^]+\. Copy the whole token again\.\s*TOKEN_CORRUPT$/)
    expect((await f1.api('GET', '/v1/edgelink/status')).body).to.include({ groupId: null, linked: false })
    // The dialog stays open for another try; Cancel closes it.
    expect(await dialog.isVisible()).to.equal(true)
    await dialog.getByRole('button', { name: 'Cancel' }).click()
    await dialog.waitFor({ state: 'hidden' })
  })

  it('links a follower with the copied token: both tables show both hosts, and the leader shows a fresh token', async () => {
    const { page } = P1
    await page.getByRole('button', { name: 'Link this device to another' }).click()
    const dialog = page.getByRole('dialog', { name: 'Link this device to another' })
    await dialog.getByLabel('Link token').fill(copied)
    await dialog.getByRole('button', { name: 'Confirm' }).click()
    await dialog.getByRole('status').filter({ hasText: 'Linked: Completed.' }).waitFor()
    expect(await dialog.getByRole('alert').count()).to.equal(0) // an empty alert is not shown at all
    await dialog.getByRole('button', { name: 'Close' }).click()
    await dialog.waitFor({ state: 'hidden' })

    for (const ui of [L, P1]) {
      const rows = await waitForRows(ui, ['edge-1', 'edge-2'], healthy)
      const byName = Object.fromEntries(rows.map(r => [r.Name.replace(/\s*this host$/, ''), r]))
      const self = ui === L ? 'edge-1' : 'edge-2'
      expect(rows.filter(r => r.Name.endsWith('this host')).map(r => r.Name)).to.deep.equal([`${self} this host`])
      expect(byName['edge-1']).to.include({ Role: 'Leader', Status: 'Ready', Address: leader.ip })
      expect(byName['edge-2']).to.include({ Role: 'Follower', Status: 'Ready', Address: f1.ip })
      expect(byName['edge-1'].ID).to.equal(`…${(await leader.id()).slice(-12)}`)
    }
    // The used token was replaced on the leader, and its page follows.
    await waitFor(async () => {
      const v = await L.page.getByLabel('Generated link token').inputValue()
      return v !== '' && v !== copied
    }, 10_000, 'a fresh token on the leader\'s page')
    // The leader may unlink the follower, not itself; the follower only itself.
    expect(await L.page.getByRole('button', { name: 'Unlink edge-2' }).isVisible()).to.equal(true)
    expect(await L.page.getByRole('button', { name: 'Unlink edge-1' }).isVisible()).to.equal(false)
    expect(await P1.page.getByRole('button', { name: 'Unlink edge-1' }).isVisible()).to.equal(false)
    expect(await P1.page.getByRole('button', { name: 'Unlink edge-2' }).isVisible()).to.equal(true)
    expect(await P1.page.getByRole('button', { name: 'Generate token' }).isDisabled()).to.equal(true)
  })

  it('Stop token generation kills the shown token: linking with it fails with a sentence', async () => {
    const token = await L.page.getByLabel('Generated link token').inputValue()
    await L.page.getByRole('button', { name: 'Stop token generation' }).click()
    await L.page.getByRole('status').filter({ hasText: 'Token generation stopped' }).waitFor()
    expect(await L.page.getByLabel('Generated link token').isVisible()).to.equal(false)
    expect((await leader.api('GET', '/v1/edgelink/status')).body.tokenGeneration).to.equal(false)

    const { page } = P2
    await page.getByRole('button', { name: 'Link this device to another' }).click()
    const dialog = page.getByRole('dialog', { name: 'Link this device to another' })
    await dialog.getByLabel('Link token').fill(token)
    await dialog.getByRole('button', { name: 'Confirm' }).click()
    const alert = dialog.getByRole('alert')
    await alert.filter({ hasText: /^Linking failed\. / }).waitFor()
    // Refused by the leader's gater while no token is live (LEADER_REFUSED), or by name (TOKEN_REVOKED).
    expect(await alert.textContent()).to.match(/^Linking failed\. [A-Z][^]*\. [^]*(LEADER_REFUSED|TOKEN_REVOKED)$/)
    await dialog.getByRole('button', { name: 'Cancel' }).click()
    expect((await f2.api('GET', '/v1/edgelink/status')).body).to.include({ linked: false })
  })

  it('asks the leader for the live token when the countdown ends', async () => {
    await L.page.getByRole('button', { name: 'Generate token' }).click()
    await L.page.getByLabel('Generated link token').waitFor()
    // A second leader page whose clock the test moves: two minutes pass in an instant.
    const T = await newPage(leader, { clock: true })
    await T.page.goto(`${T.base}/#token=${T.secret}`)
    const field = T.page.getByLabel('Generated link token')
    await field.waitFor() // generation is on: the page shows the live token at once
    expect(await field.inputValue()).to.equal(await L.page.getByLabel('Generated link token').inputValue())
    const asked = T.page.waitForRequest(r => r.method() === 'POST' && r.url().endsWith('/link/generate-token'))
    await T.page.clock.fastForward(121_000)
    const req = await asked
    expect(req.headers().authorization).to.equal(`Bearer ${T.secret}`)
    await T.page.getByRole('timer').filter({ hasText: /^Expires in 1:\d\d$/ }).waitFor()
    await T.page.context().close()
    pages.splice(pages.indexOf(T), 1)
  })

  it('links a third host; the screenshot of the leader\'s table goes to docs/', async () => {
    const token = await L.page.getByLabel('Generated link token').inputValue()
    const { page } = P2
    await page.getByRole('button', { name: 'Link this device to another' }).click()
    const dialog = page.getByRole('dialog', { name: 'Link this device to another' })
    await dialog.getByLabel('Link token').fill(token)
    await dialog.getByRole('button', { name: 'Confirm' }).click()
    await dialog.getByRole('status').filter({ hasText: 'group of 3 hosts' }).waitFor()
    await dialog.getByRole('button', { name: 'Close' }).click()
    for (const ui of [L, P1, P2]) await waitForRows(ui, ['edge-1', 'edge-2', 'edge-3'], healthy)

    await L.page.getByRole('status').filter({ hasText: /^Live$/ }).waitFor()
    await mkdir(join(ROOT, 'docs'), { recursive: true })
    await L.page.evaluate(() => (globalThis as any).document.activeElement?.blur())
    await L.page.locator('#hosts-section').screenshot({ path: SCREENSHOT, animations: 'disabled' })
  })

  it('edits settings on the leader; followers see them and may not change them', async () => {
    await L.page.getByRole('button', { name: 'Edit settings' }).click()
    await L.page.getByLabel('NTP servers').fill('ntp1.example.net\nntp2.example.net')
    await L.page.getByLabel('Values').fill('site=berlin')
    await L.page.getByRole('button', { name: 'Save settings' }).click()
    await L.page.getByRole('status').filter({ hasText: 'Settings saved' }).waitFor()
    expect((await f2.api('GET', '/v1/edgelink/settings')).body).to.deep.include({ ntpServers: ['ntp1.example.net', 'ntp2.example.net'], values: { site: 'berlin' } })
    await P2.page.getByRole('definition').filter({ hasText: 'ntp1.example.net, ntp2.example.net' }).waitFor()

    // A follower's page offers no edit: only the leader writes settings.
    expect(await P1.page.getByRole('button', { name: 'Edit settings' }).isDisabled()).to.equal(true)
    expect(await P1.page.getByRole('button', { name: 'Upload' }).isDisabled()).to.equal(true)
    expect(await P1.page.getByRole('button', { name: 'Create cluster' }).count()).to.equal(0)
    // A value line without a key is refused on the page, in a sentence, before anything is sent.
    await L.page.getByRole('button', { name: 'Edit settings' }).click()
    await L.page.getByLabel('Values').fill('site=berlin\n=north')
    await L.page.getByRole('button', { name: 'Save settings' }).click()
    await L.page.getByRole('alert').filter({ hasText: 'Each value needs the form key=value' }).waitFor()
    await L.page.getByRole('button', { name: 'Cancel' }).click()
    expect((await leader.api('GET', '/v1/edgelink/settings')).body.values).to.deep.equal({ site: 'berlin' })
  })

  it('uploads content on the leader; the followers\' pages show it complete', async () => {
    const dir = await fleet.dir()
    const file = join(dir, 'bundle.tar')
    await writeFile(file, randomBytes(3 * 1024 * 1024 + 5))
    await L.page.getByLabel('Absolute path on this host').fill(file)
    await L.page.getByLabel('Kind').selectOption({ label: 'Content bundle' })
    await L.page.getByRole('button', { name: 'Upload' }).click()
    await L.page.getByRole('status').filter({ hasText: 'bundle.tar was uploaded' }).waitFor()
    for (const ui of [L, P1, P2]) {
      await waitFor(async () => (await tableRows(ui.page, 'Content')).some(r => r.Name === 'bundle.tar' && r['On this host'] === 'Complete' && r.Kind === 'Content bundle' && r.Size === '3.0 MiB'),
        15_000, `bundle.tar complete on ${ui.agent.name}'s page`)
    }
    // A relative path is refused before it reaches the agent, in a sentence.
    await L.page.getByLabel('Absolute path on this host').fill('bundle.tar')
    await L.page.getByRole('button', { name: 'Upload' }).click()
    await L.page.getByRole('alert').filter({ hasText: 'Give the absolute path' }).waitFor()
  })

  it('creates a cluster and deletes it from the leader\'s page', async () => {
    const { page } = L
    await page.getByLabel('Cluster name').fill('edge-a')
    // Two control-plane hosts: the agent refuses (the count must be odd), and the page says why.
    await page.getByLabel('edge-2', { exact: true }).selectOption({ label: 'Control plane' })
    await page.getByRole('button', { name: 'Create cluster' }).click()
    const refused = page.getByRole('alert').filter({ hasText: /^The cluster was not created\. / })
    await refused.waitFor()
    expect(await refused.textContent()).to.match(/^The cluster was not created\. [A-Z][^]*odd[^]*\.\s*INVALID_ARGUMENT$/)
    expect((await leader.api('GET', '/v1/edgelink/status')).body.cluster).to.equal(null)

    await page.getByLabel('edge-2', { exact: true }).selectOption({ label: 'Worker' })
    await page.getByRole('button', { name: 'Create cluster' }).click()
    await page.getByRole('status').filter({ hasText: 'Cluster edge-a created.' }).waitFor()
    await waitForRows(L, ['edge-1', 'edge-2', 'edge-3'], rows => rows.filter(r => r.Status === 'In-Use').length === 2)
    await P1.page.getByRole('table', { name: 'Machine pools' }).waitFor()
    // An In-Use follower cannot be unlinked: its button is disabled.
    expect(await page.getByRole('button', { name: 'Unlink edge-2' }).isDisabled()).to.equal(true)
    expect(await page.getByRole('button', { name: 'Unlink edge-3' }).isDisabled()).to.equal(false)

    await page.getByRole('button', { name: 'Delete cluster' }).click()
    const confirm = page.getByRole('dialog', { name: 'Delete cluster edge-a?' })
    await confirm.getByRole('button', { name: 'Delete cluster' }).click()
    await page.getByRole('status').filter({ hasText: 'Cluster edge-a deleted.' }).waitFor()
    await waitForRows(L, ['edge-1', 'edge-2', 'edge-3'], rows => rows.every(r => r.Status === 'Ready'))
    await page.getByRole('heading', { name: 'Create a cluster' }).waitFor()
  })

  it('unlinks a follower from the leader\'s page; its own page shows it idle', async () => {
    const { page } = L
    await page.getByRole('button', { name: 'Unlink edge-3' }).click()
    const confirm = page.getByRole('dialog', { name: 'Unlink edge-3?' })
    await confirm.getByRole('button', { name: 'Unlink' }).click()
    await page.getByRole('status').filter({ hasText: 'edge-3 was unlinked.' }).waitFor()
    for (const ui of [L, P1]) await waitForRows(ui, ['edge-1', 'edge-2'], healthy)
    await waitForRows(P2, [])
    expect(await P2.page.getByText('This host is not linked to any other host yet.').isVisible()).to.equal(true)
    expect((await f2.api('GET', '/v1/edgelink/status')).body).to.include({ linked: false })
  })

  it('shows a follower that went away as unreachable, live', async () => {
    expect(await f1.stop()).to.equal(0)
    await waitForRows(L, ['edge-1', 'edge-2'], rows => rows.some(r => r.Name === 'edge-2' && /^(Unreachable|Unhealthy)/.test(r.Health)))
    expect((await tableRows(L.page)).find(r => r.Name === 'edge-1 this host')!.Health).to.equal('Healthy')
  })

  it('never put the secret in a URL, and sent it on every data call', async () => {
    for (const ui of [L, P1, P2]) {
      const data = ui.requests.filter(r => new URL(r.url()).pathname.startsWith('/v1/'))
      expect(data.length).to.be.greaterThan(10)
      // The live stream was read with the header too (fetch, not EventSource).
      expect(data.some(r => new URL(r.url()).pathname === '/v1/edgelink/events')).to.equal(true)
      for (const r of ui.requests) expect(r.url(), 'a request URL').to.not.include(ui.secret)
      // Besides the wrong secret the sign-in test pasted on purpose, every data call had the agent's.
      for (const r of data) expect(r.headers().authorization, r.url()).to.be.oneOf([`Bearer ${ui.secret}`, `Bearer ${WRONG_SECRET}`])
      expect(data.filter(r => r.headers().authorization === `Bearer ${WRONG_SECRET}`).length).to.equal(ui === P1 ? 1 : 0)
    }
  })
})
