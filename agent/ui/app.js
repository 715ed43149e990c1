// edgelink Local UI: one page, no build step. It talks to the agent's API on this origin with
// the bearer secret, follows GET /v1/edgelink/events for live updates (read with fetch(): an
// EventSource cannot send the Authorization header, and the secret must never go into a URL)
// and refreshes the whole state every few seconds, so a missed event only delays an update.

const SECRET_KEY = 'edgelink.apiSecret'
const LINK = '/v1/edge-mgmt/edgehosts/current/link'
const UNLINK = '/v1/edge-mgmt/edgehosts/current/unlink'
/** Status and hosts this often; content, cluster and settings every SLOW_EVERY refreshes. */
const REFRESH_MS = 2000
const SLOW_EVERY = 3
const RECONNECT_MS = 2000

// A sign-in link (`edgelink ui`) carries the secret in the fragment, which the browser never
// sends to the server. Take it and remove it from the address bar (and the history entry) before
// anything else runs.
;(function takeSecretFromFragment () {
  const params = new URLSearchParams(location.hash.slice(1))
  const token = params.get('token')
  if (token == null) return
  if (token !== '') sessionStorage.setItem(SECRET_KEY, token)
  history.replaceState(null, '', location.pathname + location.search)
})()

const $ = (id) => document.getElementById(id)

const state = {
  secret: sessionStorage.getItem(SECRET_KEY),
  running: false,
  status: null,
  hosts: [],
  hostIds: '',
  content: new Map(),
  cluster: undefined,
  settings: null,
  editingSettings: false,
  token: null,
  tokenDeadline: 0,
  renewing: false,
  refreshes: 0,
  /** The first refresh after signing in shows the live token if generation is on. */
  firstSync: true,
  /** Counts Generate / Stop actions (twice each: start and end); see syncToken. */
  tokenOps: 0,
  tokenBusy: false,
  timers: [],
  live: null
}

// ---------------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor (status, code, message, body) {
    super(message)
    this.status = status
    this.code = code
    this.body = body
  }
}

async function api (method, path, body) {
  const headers = { authorization: `Bearer ${state.secret}` }
  if (body !== undefined) headers['content-type'] = 'application/json'
  let res
  try {
    res = await fetch(path, { method, headers, cache: 'no-store', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
  } catch {
    throw new ApiError(0, 'UNREACHABLE', 'the agent does not answer; is it running?')
  }
  const text = await res.text()
  let json
  try { json = text === '' ? undefined : JSON.parse(text) } catch {}
  if (!res.ok) {
    if (res.status === 401 && state.running) signOut('The agent did not accept the secret: it changes each time the agent restarts. Sign in again.')
    throw new ApiError(res.status, json?.code ?? `HTTP_${res.status}`, json?.message ?? `the agent answered with HTTP status ${res.status}`, json)
  }
  return json
}

/** "the token was already used" → "The token was already used." */
function sentence (text) {
  const s = String(text ?? '').trim()
  if (s === '') return ''
  return s[0].toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? '' : '.')
}

/** What to do next, for the refusals an operator meets while linking. */
const HINTS = {
  TOKEN_CORRUPT: 'Copy the whole token again.',
  TOKEN_TAMPERED: 'Copy the token again from the leader.',
  TOKEN_EXPIRED: 'Generate a new token on the leader.',
  TOKEN_USED: 'Each token links one host: generate a new one on the leader.',
  TOKEN_REVOKED: 'Generate a new token on the leader.',
  TOKEN_BURNED: 'Generate a new token on the leader.',
  TOKEN_UNKNOWN: 'Generate a new token on the leader.',
  LEADER_REFUSED: 'Token generation may have been stopped on the leader: generate a new token there.',
  LEADER_UNREACHABLE: 'Check that the leader runs and that this host can reach its address.',
  ALREADY_LINKED: 'Unlink this host from its group first.',
  ALREADY_MEMBER: 'Nothing to do: this host is already in that group.'
}

/** Shows an error as a sentence after `what` ("Linking failed."), with its code for support. */
function showError (el, what, err) {
  el.replaceChildren()
  const msg = err instanceof ApiError ? err.message : String(err?.message ?? err)
  const hint = err instanceof ApiError ? HINTS[err.code] : undefined
  el.append(`${what} ${sentence(msg)}${hint != null ? ` ${hint}` : ''}`)
  if (err instanceof ApiError && /^[A-Z_0-9]+$/.test(err.code)) {
    const code = document.createElement('code')
    code.className = 'code'
    code.textContent = err.code
    el.append(' ', code)
  }
}

function clear (...els) { for (const el of els) el.replaceChildren() }

function say (el, text) { el.textContent = text }

/** A status that goes stale: shown, then cleared after a while unless replaced meanwhile. */
function note (el, text) {
  say(el, text)
  setTimeout(() => { if (el.textContent === text) el.textContent = '' }, 15_000)
}

// ---------------------------------------------------------------------------------------------
// Signing in and out

function showLogin (message) {
  $('app').hidden = true
  $('whoami').hidden = true
  $('live').hidden = true
  $('sign-out').hidden = true
  $('login').hidden = false
  say($('login-error'), message ?? '')
  $('secret').value = ''
  $('secret').focus()
}

function signOut (message) {
  stop()
  state.secret = null
  sessionStorage.removeItem(SECRET_KEY)
  showLogin(message)
}

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  const secret = $('secret').value.trim()
  if (secret === '') { say($('login-error'), 'Paste the API secret first.'); return }
  if (!/^[\x21-\x7e]+$/.test(secret)) { say($('login-error'), 'That is not an API secret: it has spaces or characters a secret never has. Copy it again.'); return }
  state.secret = secret
  try {
    await api('GET', '/v1/edgelink/status')
  } catch (err) {
    state.secret = null
    if (err.status === 401) say($('login-error'), 'The agent did not accept this secret. Check that it is the current one: it changes each time the agent restarts.')
    else showError($('login-error'), 'Could not sign in.', err)
    return
  }
  sessionStorage.setItem(SECRET_KEY, secret)
  await start()
})

$('sign-out').addEventListener('click', () => { signOut('Signed out. This tab no longer holds the secret.') })

async function start () {
  $('login').hidden = true
  $('app').hidden = false
  $('sign-out').hidden = false
  $('live').hidden = false
  state.running = true
  state.refreshes = 0
  state.firstSync = true
  await refresh()
  if (!state.running) return
  // A tab in the background does not poll; it catches up when it is shown again.
  state.timers.push(setInterval(() => { if (!document.hidden) void refresh() }, REFRESH_MS))
  state.timers.push(setInterval(tick, 250))
  void follow()
}

function stop () {
  state.running = false
  for (const t of state.timers) clearInterval(t)
  state.timers = []
  state.live?.abort()
  state.live = null
  uploadXhr?.abort()
  hideToken()
  state.status = null
  state.hosts = []
  state.hostIds = ''
  state.content.clear()
  state.cluster = undefined
  state.settings = null
}

// ---------------------------------------------------------------------------------------------
// Refresh: the source of truth. Events in between only make updates faster.

let inflight = null
let queued = null

/**
 * One refresh at a time: a call during one queues a single follow-up (full if any caller asked
 * for full), and resolves once that follow-up is done, so `await refresh()` after an action
 * always sees state read after the action.
 */
function refresh (full = false) {
  if (!state.running) return Promise.resolve()
  if (inflight == null) {
    inflight = readState(full).finally(() => {
      inflight = null
      if (queued != null) {
        const q = queued
        queued = null
        q.resolve(refresh(q.full))
      }
    })
    return inflight
  }
  if (queued == null) {
    let resolve
    const promise = new Promise(r => { resolve = r })
    queued = { full, promise, resolve }
  } else {
    queued.full ||= full
  }
  return queued.promise
}

async function readState (full) {
  const ops = state.tokenOps
  try {
    const [status, hosts] = await Promise.all([api('GET', '/v1/edgelink/status'), api('GET', '/v1/edgelink/hosts')])
    // A cluster created or deleted elsewhere changes the whole page: read everything now.
    const slow = full || state.refreshes % SLOW_EVERY === 0 || status.cluster !== state.status?.cluster
    state.refreshes++
    state.status = status
    const before = state.hostIds
    state.hosts = hosts
    state.hostIds = hosts.map(h => h.id).sort().join(',')
    renderWhoami()
    renderHosts()
    await syncToken(before !== state.hostIds && before !== '', ops)
    if (slow) {
      const [content, cluster, settings] = await Promise.all([
        api('GET', '/v1/edgelink/content'),
        // status.cluster names the cluster or is null: no 404 to ask for when there is none.
        status.cluster == null ? Promise.resolve(null) : api('GET', '/v1/edgelink/cluster').catch(err => { if (err.code === 'NO_CLUSTER') return null; throw err }),
        state.editingSettings ? Promise.resolve(state.settings) : api('GET', '/v1/edgelink/settings')
      ])
      state.content = new Map(content.map(c => [c.id, c]))
      state.cluster = cluster
      state.settings = settings
      renderContent()
      renderCluster()
      if (!state.editingSettings) renderSettings()
    }
    clear($('hosts-error'))
  } catch (err) {
    if (state.running && err.status !== 401) showError($('hosts-error'), 'Could not refresh.', err)
  }
}

/** Several events at once cause one refresh. */
let soonTimer
let soonFull = false
function refreshSoon (full = false) {
  soonFull ||= full
  if (soonTimer != null) return
  soonTimer = setTimeout(() => {
    const f = soonFull
    soonTimer = undefined
    soonFull = false
    void refresh(f)
  }, 150)
}

// ---------------------------------------------------------------------------------------------
// Live events: SSE read through fetch() so that the request carries the Authorization header.

async function follow () {
  while (state.running) {
    const ac = new AbortController()
    state.live = ac
    try {
      const res = await fetch('/v1/edgelink/events', {
        headers: { authorization: `Bearer ${state.secret}`, accept: 'text/event-stream' },
        cache: 'no-store',
        signal: ac.signal
      })
      if (res.status === 401) { signOut('The agent did not accept the secret: it changes each time the agent restarts. Sign in again.'); return }
      if (!res.ok || res.body == null) throw new Error(`HTTP ${res.status}`)
      setLive(true)
      refreshSoon(true) // whatever happened between the last refresh and the subscription
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      let buf = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        // Lines may end in CRLF or CR too; a CR at the very end may be half of a CRLF: keep it.
        buf = (buf + value).replace(/\r\n|\r(?!$)/g, '\n')
        let end
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, end)
          buf = buf.slice(end + 2)
          dispatch(frame)
        }
        if (buf.length > 4 * 1024 * 1024) break // not an event stream we understand
      }
    } catch {}
    if (!state.running || ac.signal.aborted) return
    setLive(false)
    await new Promise(resolve => setTimeout(resolve, RECONNECT_MS))
  }
}

function dispatch (frame) {
  let event = 'message'
  const data = []
  for (const line of frame.split('\n')) {
    if (line === '' || line.startsWith(':')) continue
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
    if (field === 'event') event = value
    else if (field === 'data') data.push(value)
  }
  if (data.length === 0) return
  let payload
  try { payload = JSON.parse(data.join('\n')) } catch { return }
  onEvent(event, payload)
}

function onEvent (event, data) {
  switch (event) {
    case 'host:health': {
      const i = state.hosts.findIndex(h => h.id === data?.id)
      if (i >= 0) { state.hosts[i] = { ...state.hosts[i], ...data, self: state.hosts[i].self }; renderHosts() }
      refreshSoon()
      break
    }
    case 'content:progress': {
      const row = state.content.get(data?.id)
      if (row != null && typeof data.bytes === 'number' && typeof data.totalBytes === 'number') {
        row.haveBytes = data.bytes
        row.percent = data.totalBytes === 0 ? 100 : Math.floor(data.bytes * 100 / data.totalBytes)
        renderContent()
      }
      break
    }
    case 'content:added':
    case 'content:complete':
      if (typeof data?.id === 'string') { state.content.set(data.id, data); renderContent() }
      refreshSoon(true)
      break
    case 'content:removed':
      state.content.delete(data?.id)
      renderContent()
      refreshSoon(true)
      break
    case 'content:import':
      showImport(data)
      break
    default:
      // Membership, settings and cluster events, should the stream carry them: read everything.
      if (/^(host:|link:|token:|roster$|settings$|cluster)/.test(event)) refreshSoon(true)
  }
}

function setLive (on) {
  $('live').classList.toggle('on', on)
  say($('live-text'), on ? 'Live' : 'Reconnecting…')
}

// ---------------------------------------------------------------------------------------------
// Header

function selfRow () { return state.hosts.find(h => h.self) }

function renderWhoami () {
  const st = state.status
  if (st == null) return
  const self = selfRow()
  const name = self?.config?.name ?? 'This host'
  const role = st.role == null ? 'not linked' : st.role
  const group = state.hosts.length > 1 ? ` · group of ${state.hosts.length} hosts` : ''
  const cluster = st.cluster != null ? ` · cluster ${st.cluster}` : ''
  say($('whoami'), `${name} · ${role}${group}${cluster}`)
  $('whoami').title = `Host ID ${st.id}, edgelink ${st.version}`
  $('whoami').hidden = false
}

// ---------------------------------------------------------------------------------------------
// Linked Edge Hosts

const shortId = (id) => `…${id.slice(-12)}`
const cap = (s) => s === '' ? s : s[0].toUpperCase() + s.slice(1)
const NODE_ROLES = { init: 'control plane (init)', controlplane: 'control plane', worker: 'worker' }

function hostName (h) { return h?.config?.name || shortId(h?.id ?? '') }

function ago (ms, self) {
  if (self) return 'now'
  if (!ms) return 'never'
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000))
  if (s < 3) return 'now'
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`
  return new Date(ms).toLocaleString()
}

/** May this page unlink `row`? The leader unlinks followers; a follower only itself. */
function mayUnlink (row) {
  const me = state.status
  if (me?.role == null || row.role !== 'follower') return false
  return me.role === 'leader' ? !row.self : row.self
}

function setCell (td, text, title) {
  if (td.textContent !== text) td.textContent = text
  if (title != null) td.title = title
  else td.removeAttribute('title')
}

function renderHosts () {
  const rows = [...state.hosts].sort((a, b) =>
    (a.role === b.role ? 0 : a.role === 'leader' ? -1 : 1) || hostName(a).localeCompare(hostName(b)) || a.id.localeCompare(b.id))
  const tbody = $('hosts').tBodies[0]
  const existing = new Map([...tbody.rows].map(tr => [tr.dataset.id, tr]))
  rows.forEach((h, i) => {
    let tr = existing.get(h.id)
    existing.delete(h.id)
    if (tr == null) tr = hostRow(h.id)
    if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] ?? null)
    const [name, id, ip, role, status, content, health, seen, actions] = tr.cells
    name.querySelector('.name').textContent = hostName(h)
    name.querySelector('.you').hidden = !h.self
    setCell(id.firstChild, shortId(h.id), h.id)
    setCell(ip, h.ip || '—', h.addrs?.join('\n'))
    const nodeRole = NODE_ROLES[h.nodeRole]
    setCell(role, cap(h.role) + (nodeRole != null ? ` · ${nodeRole}` : ''))
    setCell(status, h.status)
    setCell(content, h.contentSyncStatus)
    content.className = h.contentSyncStatus === 'Synced' ? 'ok' : 'pending'
    const failing = h.config?.failing?.length > 0 ? ` (${h.config.failing.join(', ')})` : ''
    const badge = health.firstChild
    setCell(badge, h.health + failing)
    badge.className = `badge ${h.health.toLowerCase()}`
    setCell(seen, ago(h.lastSeen, h.self), h.lastSeen ? new Date(h.lastSeen).toLocaleString() : undefined)
    const btn = actions.firstChild
    btn.hidden = !mayUnlink(h)
    btn.disabled = h.status === 'In-Use'
    btn.title = h.status === 'In-Use' ? 'Assigned to a cluster: remove it from the cluster first' : ''
    btn.setAttribute('aria-label', `Unlink ${hostName(h)}`)
  })
  for (const tr of existing.values()) tr.remove()
  $('hosts-empty').hidden = rows.length > 0
  $('hosts').hidden = rows.length === 0
  renderLinkButtons()
}

function hostRow (id) {
  const tr = document.createElement('tr')
  tr.dataset.id = id
  const th = document.createElement('th')
  th.scope = 'row'
  const name = document.createElement('span')
  name.className = 'name'
  const you = document.createElement('span')
  you.className = 'you'
  you.textContent = 'this host'
  th.append(name, ' ', you)
  tr.append(th)
  for (let i = 0; i < 7; i++) tr.append(document.createElement('td'))
  const code = document.createElement('code')
  tr.cells[1].append(code)
  const badge = document.createElement('span')
  tr.cells[6].append(badge)
  tr.append(actionCell('Unlink', () => { void unlink(tr.dataset.id) }))
  return tr
}

function renderLinkButtons () {
  const st = state.status
  if (st == null) return
  const followers = state.hosts.filter(h => h.role === 'follower').length
  const leaderHere = st.role === 'leader'
  const canGenerate = st.role !== 'follower'
  const canLink = st.role == null || (leaderHere && followers === 0 && st.cluster == null)
  $('generate').disabled = !canGenerate
  $('link-open').disabled = !canLink
  let hint = ''
  if (st.role == null) hint = 'Generate a token to lead a group, or link this device to a group whose leader gave you a token.'
  else if (st.role === 'follower') hint = 'This host is a follower: link tokens are generated on the leader.'
  else if (!canLink) hint = 'This host leads a group with followers, so it cannot link to another group.'
  say($('hosts-hint'), hint)
  // Content, settings and clusters are the leader's (with a cluster: every control-plane host's).
  const follower = st.role === 'follower'
  const why = follower ? 'Only the leader may do this (with a cluster: a control-plane host)' : ''
  $('settings-edit').disabled = follower
  for (const el of [$('settings-edit'), $('content-form').querySelector('button[type=submit]'), $('content-file')]) el.title = why
  uploadControls()
  for (const btn of $('content').querySelectorAll('td.actions button')) { btn.disabled = follower; btn.title = why }
  if (follower && state.editingSettings) editSettings(false)
}

async function unlink (id) {
  const row = state.hosts.find(h => h.id === id)
  if (row == null) return
  const name = hostName(row)
  const leaving = row.self
  const ok = await confirmAction(
    leaving ? 'Unlink this host?' : `Unlink ${name}?`,
    leaving
      ? 'This host leaves the group and becomes idle. It can then link to any group with a new token.'
      : `${name} leaves the group and becomes idle: its connections close and the group refuses it from now on. It can link again with a new token.`,
    'Unlink')
  if (!ok) return
  clear($('hosts-error'))
  note($('hosts-status'), `Unlinking ${name}…`)
  try {
    await api('POST', `${UNLINK}?peerId=${encodeURIComponent(id)}`)
    note($('hosts-status'), leaving ? 'This host was unlinked and is idle now.' : `${name} was unlinked.`)
  } catch (err) {
    clear($('hosts-status'))
    showError($('hosts-error'), `Could not unlink ${name}.`, err)
  }
  await refresh()
}

// ---------------------------------------------------------------------------------------------
// Link token: generate, count down, renew, copy, stop

function showToken (t) {
  state.token = t.token
  state.tokenDeadline = Date.now() + Math.max(0, Number(t.remainingTime) || 0) * 1000
  $('token-value').value = t.token
  $('token-panel').hidden = false
  tick()
}

function hideToken () {
  state.token = null
  $('token-value').value = ''
  $('token-panel').hidden = true
}

function tick () {
  if (state.token == null) return
  const left = Math.max(0, Math.ceil((state.tokenDeadline - Date.now()) / 1000))
  const text = left > 0
    ? `Expires in ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`
    : 'Expired; getting a fresh token…'
  if ($('token-countdown').textContent !== text) $('token-countdown').textContent = text
  $('token-countdown').classList.toggle('soon', left <= 15)
  if (left === 0) void renewToken()
}

/** Shows the leader's live token; without `show`, only while one is shown (not after a stop). */
async function renewToken (show = false) {
  if (state.renewing || state.tokenBusy || (state.token == null && !show)) return
  state.renewing = true
  try {
    showToken(await api('POST', `${LINK}/generate-token`))
  } catch (err) {
    hideToken()
    showError($('hosts-error'), 'Could not get a fresh link token.', err)
  } finally {
    state.renewing = false
  }
}

/**
 * After a refresh: token generation stopped elsewhere hides the token; a new member means the
 * shown token may have been used, and the leader has replaced it; a page opened while generation
 * is on shows the live token.
 */
async function syncToken (membersChanged, ops) {
  const st = state.status
  const first = state.firstSync
  state.firstSync = false
  // A Generate or Stop click since this refresh asked for the status: the status may predate it,
  // and acting on it could undo a stop. The next refresh decides.
  if (st == null || ops !== state.tokenOps || state.tokenBusy) return
  if (!st.tokenGeneration || st.role === 'follower') {
    if (state.token != null) { hideToken(); note($('hosts-status'), 'Token generation is off.') }
    return
  }
  if (state.token != null ? membersChanged : first) await renewToken(true)
}

/** Runs a Generate or Stop action, marking it for {@link syncToken}. */
async function tokenAction (fn) {
  state.tokenOps++
  state.tokenBusy = true
  try {
    await fn()
  } finally {
    state.tokenBusy = false
    state.tokenOps++
  }
}

$('generate').addEventListener('click', async () => {
  clear($('hosts-error'), $('hosts-status'))
  $('generate').disabled = true
  await tokenAction(async () => {
    try {
      showToken(await api('POST', `${LINK}/generate-token`))
      note($('hosts-status'), 'Token generated. Copy it and paste it on the host to link.')
      $('token-value').focus()
      $('token-value').select()
    } catch (err) {
      showError($('hosts-error'), 'Could not generate a link token.', err)
    } finally {
      $('generate').disabled = false
    }
  })
  await refresh()
})

$('copy').addEventListener('click', async () => {
  const token = $('token-value').value
  if (token === '') return
  let copied = false
  try {
    await navigator.clipboard.writeText(token)
    copied = true
  } catch {
    // Without clipboard permission: select the text and ask for a copy the old way.
    $('token-value').select()
    try { copied = document.execCommand('copy') } catch {}
  }
  if (copied) {
    $('copy').textContent = 'Copied'
    note($('hosts-status'), 'The link token is on the clipboard.')
    setTimeout(() => { $('copy').textContent = 'Copy' }, 2000)
  } else {
    $('token-value').select()
    note($('hosts-status'), 'The browser did not allow copying: the token is selected, press Ctrl+C.')
  }
})

$('stop').addEventListener('click', async () => {
  clear($('hosts-error'))
  await tokenAction(async () => {
    try {
      await api('POST', '/v1/edgelink/token/stop')
      hideToken()
      note($('hosts-status'), 'Token generation stopped: no token of this host works any more.')
      $('generate').focus()
    } catch (err) {
      showError($('hosts-error'), 'Could not stop token generation.', err)
    }
  })
  await refresh()
})

// ---------------------------------------------------------------------------------------------
// Link this device to another

const linkDialog = $('link-dialog')

$('link-open').addEventListener('click', () => {
  $('link-token').value = ''
  clear($('link-status'), $('link-error'))
  $('link-token').disabled = false
  $('link-confirm').hidden = false
  $('link-confirm').disabled = false
  $('link-cancel').textContent = 'Cancel'
  linkDialog.showModal()
  $('link-token').focus()
})

$('link-cancel').addEventListener('click', () => { linkDialog.close() })

$('link-form').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  const token = $('link-token').value.trim()
  clear($('link-status'), $('link-error'))
  if (token === '') { say($('link-error'), 'Paste the link token from the leader first.'); $('link-token').focus(); return }
  $('link-confirm').disabled = true
  $('link-token').disabled = true
  say($('link-status'), 'Linking: In progress…')
  try {
    const status = await api('POST', LINK, { token })
    if (status.status !== 'Completed') throw new ApiError(200, status.errorCode ?? 'LINK_FAILED', status.errorMessage ?? `the link ended ${status.status}`)
    const n = status.peers.length
    say($('link-status'), `Linked: Completed. This host is a follower in a group of ${n} host${n === 1 ? '' : 's'}.`)
    $('link-confirm').hidden = true
    $('link-cancel').textContent = 'Close'
    $('link-cancel').focus()
  } catch (err) {
    clear($('link-status'))
    showError($('link-error'), 'Linking failed.', err)
    $('link-token').disabled = false
    $('link-confirm').disabled = false
    $('link-token').focus()
  }
  await refresh(true)
})

// ---------------------------------------------------------------------------------------------
// Confirmation dialog

function confirmAction (title, text, action) {
  const dialog = $('confirm-dialog')
  say($('confirm-title'), title)
  say($('confirm-text'), text)
  say($('confirm-ok'), action)
  return new Promise(resolve => {
    const done = (ok) => {
      $('confirm-form').removeEventListener('submit', onOk)
      $('confirm-cancel').removeEventListener('click', onCancel)
      dialog.removeEventListener('close', onCancel)
      if (dialog.open) dialog.close()
      resolve(ok)
    }
    const onOk = (ev) => { ev.preventDefault(); done(true) }
    const onCancel = () => { done(false) }
    $('confirm-form').addEventListener('submit', onOk)
    $('confirm-cancel').addEventListener('click', onCancel)
    dialog.addEventListener('close', onCancel)
    dialog.showModal()
    $('confirm-cancel').focus()
  })
}

// ---------------------------------------------------------------------------------------------
// Content

function bytes (n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = Number(n) || 0
  let u = 0
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++ }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`
}

const KINDS = { 'agent-image': 'Agent image', 'provider-image': 'Provider image', bundle: 'Content bundle', 'cluster-definition': 'Cluster definition', 'oci-layout': 'OCI image layout', file: 'File' }

function renderContent () {
  const rows = [...state.content.values()].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
  const tbody = $('content').tBodies[0]
  const existing = new Map([...tbody.rows].map(tr => [tr.dataset.id, tr]))
  rows.forEach((c, i) => {
    let tr = existing.get(c.id)
    existing.delete(c.id)
    if (tr == null) tr = contentRowEl(c.id)
    if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] ?? null)
    const [name, kind, size, have, id, actions] = tr.cells
    setCell(name, c.name)
    setCell(kind, KINDS[c.kind] ?? c.kind)
    setCell(size, bytes(c.size))
    const percent = c.complete ? 100 : Math.min(99, Math.max(0, Number(c.percent) || 0))
    const bar = have.querySelector('progress')
    bar.value = percent
    bar.setAttribute('aria-label', `${c.name}: ${percent}% on this host`)
    have.querySelector('.pct').textContent = c.complete ? 'Complete' : `${percent}%`
    setCell(id.firstChild, c.id.slice(0, 12), c.id)
    actions.firstChild.setAttribute('aria-label', `Remove ${c.name}`)
    actions.firstChild.disabled = state.status?.role === 'follower'
  })
  for (const tr of existing.values()) tr.remove()
  $('content-empty').hidden = rows.length > 0
  $('content').hidden = rows.length === 0
}

function contentRowEl (id) {
  const tr = document.createElement('tr')
  tr.dataset.id = id
  const th = document.createElement('th')
  th.scope = 'row'
  tr.append(th)
  for (let i = 0; i < 4; i++) tr.append(document.createElement('td'))
  const bar = document.createElement('progress')
  bar.max = 100
  const pct = document.createElement('span')
  pct.className = 'pct'
  tr.cells[3].className = 'have'
  tr.cells[3].append(bar, ' ', pct)
  tr.cells[4].append(document.createElement('code'))
  tr.append(actionCell('Remove', () => { void removeContent(tr.dataset.id) }))
  return tr
}

/** A table cell with one small destructive button (Unlink, Remove). */
function actionCell (label, onClick) {
  const td = document.createElement('td')
  td.className = 'actions'
  const btn = document.createElement('button')
  btn.type = 'button'
  btn.className = 'small danger'
  btn.textContent = label
  btn.addEventListener('click', onClick)
  td.append(btn)
  return td
}

async function removeContent (id) {
  const c = state.content.get(id)
  if (c == null) return
  if (!await confirmAction(`Remove ${c.name}?`, 'It is removed from every host of the group, and each host frees the space it used.', 'Remove')) return
  clear($('content-error'))
  try {
    await api('DELETE', `/v1/edgelink/content/${encodeURIComponent(id)}`)
    note($('content-status'), `${c.name} was removed from the group.`)
  } catch (err) {
    showError($('content-error'), `Could not remove ${c.name}.`, err)
  }
  await refresh(true)
}

/**
 * The import or upload this page runs, if any: `key` is what its `content:import` events carry
 * (the path, or `upload:<name>`), `phase` is `path` (the agent reads a path), `sending` (the file
 * travels from this browser; the request's own progress is shown) or `importing` (the agent has
 * the file and imports it).
 */
let importing = null
/** The XMLHttpRequest sending a file, while there is one. */
let uploadXhr = null

function showImport (p) {
  if (importing == null || p?.path !== importing.key || importing.phase === 'sending') return
  if (importing.phase === 'importing' && !importing.started) {
    // The agent reports receiving and importing under one key: a receipt event may still be on
    // its way when the import starts. The import's first report is below 100%.
    if (!(p.bytes < p.totalBytes)) return
    importing.started = true
  }
  const verb = importing.phase === 'importing' ? 'Importing ' : ''
  showProgress(`${verb}${p.name}`, p.bytes, p.totalBytes)
}

function showProgress (what, done, total) {
  const pct = total > 0 ? Math.min(100, Math.floor(done * 100 / total)) : 0
  $('import-progress').hidden = false
  $('import-progress').value = pct
  say($('import-text'), `${what}: ${bytes(done)} of ${bytes(total)} (${pct}%)`)
}

/** Upload controls are off while one runs, and on followers (see renderHosts). */
function uploadControls () {
  const off = importing != null || state.status?.role === 'follower'
  $('content-form').querySelector('button[type=submit]').disabled = off
  $('content-file').disabled = off
}

function endImport () {
  importing = null
  uploadXhr = null
  $('import-progress').hidden = true
  $('upload-stop').hidden = true
  clear($('import-text'))
  uploadControls()
}

$('content-form').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  if (importing != null) return
  const path = $('content-path').value.trim()
  const kind = $('content-kind').value
  const name = $('content-name').value.trim()
  clear($('content-error'), $('content-status'))
  if (!path.startsWith('/')) { say($('content-error'), 'Give the absolute path of the file or directory on this host, starting with /.'); $('content-path').focus(); return }
  importing = { key: path.replace(/\/+$/, '') || '/', phase: 'path' }
  uploadControls()
  say($('import-text'), 'Reading…')
  try {
    const info = await api('POST', '/v1/edgelink/content', { path, ...(kind !== '' ? { kind } : {}), ...(name !== '' ? { name } : {}) })
    note($('content-status'), `${info.manifest?.name ?? name ?? 'The content'} was uploaded; every linked host is fetching it.`)
    $('content-form').reset()
  } catch (err) {
    showError($('content-error'), 'Upload failed.', err)
  } finally {
    endImport()
  }
  await refresh(true)
})

// A file from this computer: choosing it sends it, as the raw body of one request.
$('content-file').addEventListener('change', async () => {
  const input = $('content-file')
  const file = input.files?.[0]
  if (file == null || importing != null) return
  const kind = $('content-kind').value
  const name = $('content-name').value.trim() || file.name
  clear($('content-error'), $('content-status'))
  const refuse = (text) => { say($('content-error'), text); input.value = ''; $('content-kind').focus() }
  if (kind === 'oci-layout') { refuse('An OCI image layout is a directory, which a browser cannot send: put it on this host and give its path below.'); return }
  if (name.length > 256) { refuse('The file name is longer than 256 characters: give a shorter name first.'); return }
  importing = { key: `upload:${name}`, phase: 'sending', started: false }
  uploadControls()
  $('upload-stop').textContent = 'Stop sending'
  $('upload-stop').hidden = false
  showProgress(`Sending ${name}`, 0, file.size)
  try {
    const info = await sendFile(file, name, kind)
    note($('content-status'), `${info.manifest?.name ?? name} was uploaded; every linked host is fetching it.`)
    $('content-form').reset()
  } catch (err) {
    if (err?.code === 'STOPPED') note($('content-status'), `The upload of ${name} was stopped; the agent keeps nothing of it.`)
    else showError($('content-error'), `Upload of ${name} failed.`, err)
  } finally {
    input.value = ''
    endImport()
  }
  await refresh(true)
})

$('upload-stop').addEventListener('click', () => { uploadXhr?.abort() })

/**
 * POST /v1/edgelink/content/upload with the file as the body. XMLHttpRequest rather than fetch():
 * only it reports how much of a request body has gone out.
 */
function sendFile (file, name, kind) {
  return new Promise((resolve, reject) => {
    const q = new URLSearchParams({ name })
    if (kind !== '') q.set('kind', kind)
    const xhr = new XMLHttpRequest()
    uploadXhr = xhr
    xhr.open('POST', `/v1/edgelink/content/upload?${q}`)
    xhr.setRequestHeader('authorization', `Bearer ${state.secret}`)
    xhr.setRequestHeader('content-type', 'application/octet-stream')
    xhr.upload.addEventListener('progress', (e) => {
      if (importing?.phase === 'sending') showProgress(`Sending ${name}`, e.loaded, e.lengthComputable ? e.total : file.size)
    })
    xhr.upload.addEventListener('load', () => {
      if (importing == null) return
      importing.phase = 'importing'
      $('upload-stop').textContent = 'Stop importing'
      $('import-progress').removeAttribute('value') // indeterminate until the agent reports
      say($('import-text'), `${name} arrived; the agent is importing it…`)
    })
    xhr.addEventListener('load', () => {
      let json
      try { json = xhr.responseText === '' ? undefined : JSON.parse(xhr.responseText) } catch {}
      if (xhr.status >= 200 && xhr.status < 300) { resolve(json); return }
      if (xhr.status === 401 && state.running) signOut('The agent did not accept the secret: it changes each time the agent restarts. Sign in again.')
      reject(new ApiError(xhr.status, json?.code ?? `HTTP_${xhr.status}`, json?.message ?? `the agent answered with HTTP status ${xhr.status}`, json))
    })
    xhr.addEventListener('error', () => { reject(new ApiError(0, 'UNREACHABLE', 'the connection to the agent broke off during the upload')) })
    xhr.addEventListener('abort', () => { reject(new ApiError(0, 'STOPPED', 'the upload was stopped')) })
    xhr.send(file)
  })
}

// ---------------------------------------------------------------------------------------------
// Settings

const LIST_SETTINGS = ['ntpServers', 'noProxy', 'sshKeys']
const TEXT_SETTINGS = ['httpProxy', 'httpsProxy', 'registryMirror']
const SETTING_LABELS = {
  ntpServers: 'NTP servers',
  httpProxy: 'HTTP proxy',
  httpsProxy: 'HTTPS proxy',
  noProxy: 'No proxy',
  registryMirror: 'Registry mirror',
  sshKeys: 'SSH keys',
  caCertificates: 'CA certificates',
  values: 'Values'
}

function renderSettings () {
  const s = state.settings
  const dl = $('settings-view')
  dl.replaceChildren()
  if (s == null) return
  for (const [key, label] of Object.entries(SETTING_LABELS)) {
    const v = s[key]
    let text
    if (key === 'caCertificates') text = v.length === 0 ? '' : `${v.length} certificate${v.length === 1 ? '' : 's'}`
    else if (key === 'sshKeys') text = v.length === 0 ? '' : `${v.length} key${v.length === 1 ? '' : 's'}`
    else if (key === 'values') text = Object.entries(v).map(([k, x]) => `${k}=${x}`).join(', ')
    else text = Array.isArray(v) ? v.join(', ') : v
    const dt = document.createElement('dt')
    dt.textContent = label
    const dd = document.createElement('dd')
    dd.textContent = text === '' ? 'Not set' : text
    if (text === '') dd.className = 'unset'
    dl.append(dt, dd)
  }
}

function editSettings (on) {
  state.editingSettings = on
  $('settings-form').hidden = !on
  $('settings-view').hidden = on
  $('settings-edit').hidden = on
  if (!on) { renderSettings(); return }
  const s = state.settings ?? {}
  for (const k of LIST_SETTINGS) $(`set-${k}`).value = (s[k] ?? []).join('\n')
  for (const k of TEXT_SETTINGS) $(`set-${k}`).value = s[k] ?? ''
  $('set-caCertificates').value = (s.caCertificates ?? []).join('\n\n')
  $('set-values').value = Object.entries(s.values ?? {}).map(([k, v]) => `${k}=${v}`).join('\n')
  $('set-ntpServers').focus()
}

$('settings-edit').addEventListener('click', () => { clear($('settings-status'), $('settings-error')); editSettings(true) })
$('settings-cancel').addEventListener('click', () => { editSettings(false); $('settings-edit').focus() })

$('settings-form').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  clear($('settings-status'), $('settings-error'))
  const lines = (id) => $(id).value.split('\n').map(l => l.trim()).filter(l => l !== '')
  const body = {}
  for (const k of LIST_SETTINGS) body[k] = lines(`set-${k}`)
  for (const k of TEXT_SETTINGS) body[k] = $(`set-${k}`).value.trim()
  body.caCertificates = $('set-caCertificates').value.split(/\n\s*\n/).map(c => c.trim()).filter(c => c !== '')
  body.values = {}
  for (const line of lines('set-values')) {
    const eq = line.indexOf('=')
    if (eq <= 0) { say($('settings-error'), `Each value needs the form key=value; “${line.slice(0, 60)}” has no key.`); $('set-values').focus(); return }
    body.values[line.slice(0, eq).trim()] = line.slice(eq + 1).trim()
  }
  try {
    state.settings = await api('PUT', '/v1/edgelink/settings', body)
    editSettings(false)
    note($('settings-status'), 'Settings saved; every host of the group receives them.')
    $('settings-edit').focus()
  } catch (err) {
    showError($('settings-error'), 'The settings were not saved.', err)
  }
})

// ---------------------------------------------------------------------------------------------
// Cluster

function renderCluster () {
  const c = state.cluster
  const follower = state.status?.role === 'follower'
  $('cluster-view').hidden = c == null
  $('cluster-none').hidden = c != null
  $('cluster-form').hidden = c != null || follower
  $('cluster-delete').hidden = c == null || follower
  if (c == null) { renderClusterPicks(); return }
  const facts = $('cluster-facts')
  facts.replaceChildren()
  const byId = new Map(state.hosts.map(h => [h.id, hostName(h)]))
  for (const [label, value] of [['Name', c.name], ['Virtual IP', c.vip || 'Not set'], ['Profile', c.profile || 'Not set'], ['Created by', byId.get(c.createdBy) ?? shortId(c.createdBy)]]) {
    const dt = document.createElement('dt')
    dt.textContent = label
    const dd = document.createElement('dd')
    dd.textContent = value
    facts.append(dt, dd)
  }
  const tbody = $('cluster-pools').tBodies[0]
  tbody.replaceChildren()
  for (const p of c.pools) {
    const tr = document.createElement('tr')
    const th = document.createElement('th')
    th.scope = 'row'
    th.textContent = p.name
    const kind = document.createElement('td')
    kind.textContent = p.controlPlane ? 'Control plane' : 'Workers'
    const hosts = document.createElement('td')
    hosts.textContent = p.hosts.map(id => byId.get(id) ?? shortId(id)).join(', ') || 'None'
    tr.append(th, kind, hosts)
    tbody.append(tr)
  }
}

/** One select per host (Not in the cluster / Control plane / Worker), kept across refreshes. */
function renderClusterPicks () {
  const box = $('cluster-hosts')
  const keep = new Map([...box.querySelectorAll('select')].map(s => [s.dataset.id, s.value]))
  const ids = state.hosts.map(h => h.id).join(',')
  if (box.dataset.ids === ids) return
  box.dataset.ids = ids
  box.replaceChildren()
  if (state.hosts.length === 0) {
    const p = document.createElement('p')
    p.className = 'help'
    p.textContent = 'Link hosts first: a cluster is made of linked hosts.'
    box.append(p)
    return
  }
  for (const h of state.hosts) {
    const div = document.createElement('div')
    div.className = 'field'
    const label = document.createElement('label')
    const sel = document.createElement('select')
    sel.id = `pool-${h.id}`
    sel.dataset.id = h.id
    label.htmlFor = sel.id
    label.textContent = `${hostName(h)}${h.self ? ' (this host)' : ''}`
    for (const [value, text] of [['', 'Not in the cluster'], ['cp', 'Control plane'], ['worker', 'Worker']]) {
      const o = document.createElement('option')
      o.value = value
      o.textContent = text
      sel.append(o)
    }
    sel.value = keep.get(h.id) ?? (h.self ? 'cp' : '')
    div.append(label, sel)
    box.append(div)
  }
}

$('cluster-form').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  clear($('cluster-status'), $('cluster-error'))
  const name = $('cluster-name').value.trim()
  if (name === '') { say($('cluster-error'), 'Give the cluster a name.'); $('cluster-name').focus(); return }
  const picks = [...$('cluster-hosts').querySelectorAll('select')]
  const controlPlane = picks.filter(s => s.value === 'cp').map(s => s.dataset.id)
  const workers = picks.filter(s => s.value === 'worker').map(s => s.dataset.id)
  const vip = $('cluster-vip').value.trim()
  const profile = $('cluster-profile').value.trim()
  try {
    await api('POST', '/v1/edgelink/cluster', { name, controlPlane, workers, ...(vip !== '' ? { vip } : {}), ...(profile !== '' ? { profile } : {}) })
    note($('cluster-status'), `Cluster ${name} created.`)
    $('cluster-form').reset()
    delete $('cluster-hosts').dataset.ids // rebuilt with this host preselected next time
  } catch (err) {
    showError($('cluster-error'), 'The cluster was not created.', err)
  }
  await refresh(true)
})

$('cluster-delete').addEventListener('click', async () => {
  const name = state.cluster?.name ?? 'the cluster'
  if (!await confirmAction(`Delete cluster ${name}?`, 'Every host becomes Ready again and stays linked; this host becomes the single leader.', 'Delete cluster')) return
  clear($('cluster-status'), $('cluster-error'))
  try {
    await api('DELETE', '/v1/edgelink/cluster')
    note($('cluster-status'), `Cluster ${name} deleted. Every host is Ready again.`)
  } catch (err) {
    showError($('cluster-error'), `Could not delete cluster ${name}.`, err)
  }
  await refresh(true)
})

// ---------------------------------------------------------------------------------------------

document.addEventListener('visibilitychange', () => { if (!document.hidden) void refresh(true) })

if (state.secret != null) void start()
else showLogin()
