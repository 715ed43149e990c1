/**
 * The Local UI: one page the agent serves at `/`, three plain files under `agent/ui/` (no build
 * step). The files hold no secret, so they are served without the bearer; the page asks for the
 * secret (or takes it once from `#token=` in the address, see {@link loginUrl}) and sends it on
 * every API call, like the CLI.
 *
 * {@link uiAssets} is the only place that knows where the files live: a build that embeds them
 * (a single binary) replaces that one function.
 */
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { API_FILE, type ApiFile } from './config.ts'

export interface UiAsset { type: string, body: Buffer }

/** URL path → file under agent/ui/. `/` is the page; nothing else is served. */
export const UI_FILES: Readonly<Record<string, { file: string, type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' }
}

/**
 * Where agent/ui/ is: next to this module when it runs from the source tree (agent/ui.ts), two
 * levels up when it runs compiled (dist/agent/ui.js → agent/ui/). The package must ship agent/ui.
 */
const CANDIDATE_DIRS = [new URL('./ui/', import.meta.url), new URL('../../agent/ui/', import.meta.url)]

let cached: Map<string, UiAsset> | undefined

/**
 * The UI's files by URL path, read once. Throws when they are not found, naming where it looked;
 * the routes turn that into a 404 so an agent without its UI still serves its API.
 */
export function uiAssets (): Map<string, UiAsset> {
  if (cached != null) return cached
  const tried: string[] = []
  for (const dir of CANDIDATE_DIRS) {
    const path = fileURLToPath(dir)
    tried.push(path)
    try {
      const assets = new Map<string, UiAsset>()
      for (const [url, { file, type }] of Object.entries(UI_FILES)) assets.set(url, { type, body: readFileSync(join(path, file)) })
      cached = assets
      return assets
    } catch {}
  }
  throw new Error(`the Local UI's files are missing (looked in ${tried.join(', ')})`)
}

/**
 * What the browser may do with the page: scripts, styles and API calls from this origin only,
 * no framing (clickjacking), no referrer (the address may still hold `#token=` for a moment; a
 * fragment is never sent, but nothing else should leak either).
 */
const UI_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache'
}

/**
 * Registers `GET /` and `GET /ui/*` for the files of {@link UI_FILES}. Their routes carry
 * `config.public`, which the API's auth hook lets through; every data call stays authenticated.
 */
export function uiRoutes (app: FastifyInstance): void {
  for (const url of Object.keys(UI_FILES)) {
    app.get(url, { config: { public: true } }, async (_req, reply) => {
      let asset: UiAsset | undefined
      try {
        asset = uiAssets().get(url)
      } catch (err) {
        return await reply.code(404).send({ code: 'NOT_FOUND', message: String((err as Error).message) })
      }
      return await reply.headers({ ...UI_HEADERS, 'content-type': asset!.type }).send(asset!.body)
    })
  }
}

/** True for the UI's static routes (see {@link uiRoutes}); the auth hook skips them. */
export function isPublicRoute (config: unknown): boolean {
  return (config as { public?: unknown } | undefined)?.public === true
}

/**
 * `edgelink ui`: the page's address with the secret in the fragment, which the browser keeps to
 * itself (never sent to the server, so never in a log); the page stores it for the tab's session
 * and removes it from the address bar at once. The caller checks first that the agent answers.
 */
export async function loginUrl (dataDir: string): Promise<string> {
  const api = JSON.parse(await readFile(join(dataDir, API_FILE), 'utf8')) as ApiFile
  return `${api.url}/#token=${encodeURIComponent(api.token)}`
}
