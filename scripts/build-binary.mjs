#!/usr/bin/env node
/**
 * `npm run build:binary`: dist/bin/edgelink, one linux-x64 executable that runs the edgelink CLI
 * (agent, token, link, hosts, ...) on a machine without Node.js, as a Node.js single executable
 * application (SEA).
 *
 * 1. esbuild bundles scripts/sea-main.mjs, that is dist/agent/cli.js and everything it imports,
 *    into one CommonJS file. Rewrites on the way (plugins below): the CLI's "am I the main
 *    module" guard goes (sea-main.mjs calls main()); classic-level's native binding is loaded
 *    from an asset (scripts/sea-runtime.cjs); the Local UI's uiAssets() serves embedded files.
 * 2. The Node.js of node_modules/.bin/node (24) turns the bundle into a SEA blob with a V8 code
 *    cache and the assets: classic-level's prebuilt linux-x64 addon and agent/ui/'s files.
 * 3. A copy of that same node binary, without its debug symbols, gets the blob injected with
 *    postject; a smoke test runs it with an empty environment before it replaces dist/bin/edgelink.
 *
 * Usage: node scripts/build-binary.mjs [--if-stale] [--no-strip] [--out FILE]
 *   --if-stale  rebuild only when the bundle, the assets or the node binary changed
 *   --no-strip  keep node's symbol tables (about 20 MB more)
 *   --out FILE  default dist/bin/edgelink
 * Reads dist/: run `npm run build` first.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import * as esbuild from 'esbuild'
import postject from 'postject'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const RUNTIME = join(ROOT, 'scripts', 'sea-runtime.cjs')
const ENTRY = join(ROOT, 'scripts', 'sea-main.mjs')
const CLI_JS = join(ROOT, 'dist', 'agent', 'cli.js')
const UI_JS = join(ROOT, 'dist', 'agent', 'ui.js')
const UI_DIR = join(ROOT, 'agent', 'ui')
const ADDON = join(ROOT, 'node_modules', 'classic-level', 'prebuilds', 'linux-x64', 'classic-level.node')
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'
/** Same V8 flags as bin/edgelink: a 1 MiB young generation and no TurboFan (see bin/edgelink). */
const EXEC_ARGV = ['--max-semi-space-size=1', '--max-opt=2']

class BuildError extends Error {}

const sha256 = (data) => createHash('sha256').update(data).digest('hex')
const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`

/** The real node binary behind node_modules/.bin/node (a symlink), checked to be Node >= 22. */
function nodeBinary () {
  const link = join(ROOT, 'node_modules', '.bin', 'node')
  if (!existsSync(link)) throw new BuildError(`${link} is missing: run \`npm install\` (the \`node\` devDependency provides Node 24)`)
  const file = realpathSync(link)
  const r = spawnSync(file, ['-p', 'JSON.stringify([process.version, process.platform, process.arch])'], { encoding: 'utf8' })
  if (r.status !== 0) throw new BuildError(`${file} does not run: ${r.stderr || r.error}`)
  const [version, platform, arch] = JSON.parse(r.stdout)
  if (Number(version.slice(1).split('.')[0]) < 22) throw new BuildError(`${file} is Node ${version}; libp2p needs 22 or newer`)
  if (platform !== 'linux' || arch !== 'x64') throw new BuildError(`${file} is for ${platform}-${arch}; this build makes linux-x64 executables only`)
  const st = statSync(file)
  return { file, version, identity: `${file}:${version}:${st.size}:${st.mtimeMs}` }
}

/** Replaces exactly one match of `re` in `text` (the build fails loudly when the source changed shape). */
function replaceOnce (text, re, replacement, file, what) {
  const matches = text.match(new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g'))
  if (matches == null || matches.length !== 1) {
    throw new BuildError(`${file}: expected exactly one ${what}, found ${matches?.length ?? 0}; update scripts/build-binary.mjs to the new code`)
  }
  return text.replace(re, replacement)
}

/** The esbuild plugins that adapt three sources to living inside one executable. */
function plugins ({ addonSha, ui }) {
  return [{
    name: 'edgelink-sea',
    setup (build) {
      // The CLI runs itself when it is process.argv[1], with a top-level await, which a CommonJS
      // bundle cannot hold; sea-main.mjs calls main() instead.
      build.onLoad({ filter: /[\\/]dist[\\/]agent[\\/]cli\.js$/ }, (args) => {
        const text = readFileSync(args.path, 'utf8')
        const contents = replaceOnce(text, /^if \([^\n]*import\.meta\.filename[^\n]*\{\n(?:[^\n]*\n)*?\}\n/m, '', args.path, 'main-module guard (`if (... import.meta.filename) { ... }`)')
        return { contents, loader: 'js' }
      })
      // node-gyp-build looks for the addon next to the package on disk; load it from the asset,
      // when the first database opens.
      build.onLoad({ filter: /[\\/]node_modules[\\/]classic-level[\\/]binding\.js$/ }, (args) => ({
        contents: `module.exports = require(${JSON.stringify(RUNTIME)}).lazyAddon('classic-level.node', ${JSON.stringify(addonSha)})\n`,
        loader: 'js',
        resolveDir: dirname(args.path)
      }))
      // agent/ui.ts: "a build that embeds them replaces that one function" (uiAssets).
      build.onLoad({ filter: /[\\/]dist[\\/]agent[\\/]ui\.js$/ }, (args) => {
        if (ui == null) throw new BuildError(`${args.path} is bundled but its UI_FILES could not be read`)
        let contents = readFileSync(args.path, 'utf8')
        contents = replaceOnce(contents, /export function uiAssets\s*\(/, 'function uiAssetsFromDisk(', args.path, '`export function uiAssets(`')
        contents += `\nimport { uiAssetsFromSea as __uiAssetsFromSea } from ${JSON.stringify(RUNTIME)};\nexport function uiAssets() { return __uiAssetsFromSea(UI_FILES); }\n`
        return { contents, loader: 'js' }
      })
    }
  }]
}

/** The Local UI's files (agent/ui/) as SEA assets `ui/<file>`, or undefined when this tree has no UI. */
async function uiAssetFiles () {
  if (!existsSync(UI_JS)) return undefined
  const { UI_FILES } = await import(pathToFileURL(UI_JS).href)
  if (UI_FILES == null || typeof UI_FILES !== 'object') throw new BuildError(`${UI_JS} exports no UI_FILES`)
  const assets = {}
  for (const { file } of Object.values(UI_FILES)) {
    const path = join(UI_DIR, file)
    if (!existsSync(path)) throw new BuildError(`the Local UI file ${path} is missing`)
    assets[`ui/${file}`] = path
  }
  return assets
}

function run (file, args, options = {}) {
  const r = spawnSync(file, args, { encoding: 'utf8', ...options })
  if (r.error != null) throw new BuildError(`${basename(file)} ${args.join(' ')}: ${r.error.message}`)
  if (r.status !== 0) throw new BuildError(`${basename(file)} ${args.join(' ')} exited ${r.status}:\n${r.stdout}${r.stderr}`)
  return r
}

/**
 * Runs `fn` without postject's (LIEF's) harmless "Can't find string offset for section name
 * '.note…'" lines, which node's many ELF notes cause; anything else it warns still shows.
 */
async function quietly (fn) {
  const warn = console.warn
  console.warn = (...args) => { if (!/^warning: Can't find string offset for section name '\.note/.test(String(args[0]))) warn.apply(console, args) }
  try {
    return await fn()
  } finally {
    console.warn = warn
  }
}

/** What was built from which inputs: the inputs' hash and the executable's size and mtime. */
function stampOf (inputs, out) {
  const st = statSync(out)
  return `${inputs} ${st.size} ${st.mtimeMs}\n`
}

function hasStrip () {
  return spawnSync('strip', ['--version'], { stdio: 'ignore' }).status === 0
}

export async function buildBinary ({ out = join(ROOT, 'dist', 'bin', 'edgelink'), ifStale = false, strip = true, log = (s) => { process.stderr.write(s + '\n') } } = {}) {
  const t0 = performance.now()
  if (!existsSync(CLI_JS)) throw new BuildError(`${CLI_JS} is missing: run \`npm run build\` first`)
  if (!existsSync(ADDON)) throw new BuildError(`${ADDON} is missing: classic-level ships it; reinstall dependencies`)
  const node = nodeBinary()
  const addon = readFileSync(ADDON)
  const addonSha = sha256(addon)
  const ui = await uiAssetFiles()
  const work = mkdtempSync(join(tmpdir(), 'edgelink-sea-'))
  try {
    // 1. One CommonJS file.
    const bundle = join(work, 'edgelink.cjs')
    const result = await esbuild.build({
      entryPoints: [ENTRY],
      outfile: bundle,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: `node${node.version.slice(1).split('.')[0]}`,
      legalComments: 'eof',
      // CommonJS has no import.meta: give it what ESM code expects, pointing at the executable.
      define: { 'import.meta.url': '__edgelinkImportMetaUrl', 'import.meta.filename': '__filename', 'import.meta.dirname': '__dirname' },
      banner: { js: 'var __edgelinkImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
      plugins: plugins({ addonSha, ui }),
      logLevel: 'silent'
    }).catch((err) => {
      throw new BuildError(`esbuild failed:\n${(err.errors ?? []).map(e => `  ${e.location?.file ?? ''}:${e.location?.line ?? ''} ${e.text}`).join('\n') || err.message}`)
    })
    // Any import.meta esbuild could not map would be empty at run time: refuse instead.
    if (result.warnings.length > 0) {
      throw new BuildError(`esbuild warned:\n${result.warnings.map(w => `  ${w.location?.file ?? ''}:${w.location?.line ?? ''} ${w.text}`).join('\n')}`)
    }
    const tBundle = performance.now()

    // 2. The SEA blob.
    const assets = { 'classic-level.node': ADDON, ...ui }
    const config = {
      main: basename(bundle), // relative to `work`: stack traces then name edgelink.cjs alone
      output: join(work, 'sea.blob'),
      disableExperimentalSEAWarning: true,
      useSnapshot: false,
      useCodeCache: true,
      execArgv: EXEC_ARGV,
      assets
    }
    const stamp = sha256(JSON.stringify({
      bundle: sha256(readFileSync(bundle)),
      assets: Object.fromEntries(Object.entries(assets).map(([k, f]) => [k, sha256(readFileSync(f))])),
      config: { ...config, main: undefined, output: undefined, assets: undefined },
      node: node.identity,
      strip,
      builder: sha256(readFileSync(fileURLToPath(import.meta.url))) + sha256(readFileSync(RUNTIME))
    }))
    const stampFile = join(dirname(out), `.${basename(out)}.build`)
    if (ifStale && existsSync(out) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stampOf(stamp, out)) {
      log(`${out} is up to date (${mib(statSync(out).size)})`)
      return { out, built: false, size: statSync(out).size, ms: performance.now() - t0 }
    }
    writeFileSync(join(work, 'sea-config.json'), JSON.stringify(config, null, 2))
    // The code cache is made under the V8 flags the binary runs with: V8 rejects a cache made
    // under flags that change code generation (--max-opt does), with a warning at every start.
    run(node.file, [...EXEC_ARGV, '--experimental-sea-config', join(work, 'sea-config.json')], { cwd: work })
    const blob = readFileSync(config.output)
    const tBlob = performance.now()

    // 3. node + blob. The copy sits next to `out` so that the final rename is atomic.
    mkdirSync(dirname(out), { recursive: true })
    const exe = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`)
    try {
      copyFileSync(node.file, exe)
      chmodSync(exe, 0o755)
      const stripped = strip && hasStrip()
      if (stripped) run('strip', ['--strip-all', exe]) // .dynsym stays: addons still find napi_*
      await quietly(async () => { await postject.inject(exe, 'NODE_SEA_BLOB', blob, { sentinelFuse: SEA_FUSE }) })
      const tInject = performance.now()

      // Smoke test with nothing inherited: no PATH, no HOME, no NODE_OPTIONS.
      const { VERSION } = await import(pathToFileURL(join(ROOT, 'dist', 'lib', 'version.js')).href)
      const v = run(exe, ['--version'], { env: {}, cwd: work })
      if (v.stdout.trim() !== VERSION || v.stderr !== '') throw new BuildError(`the executable printed ${JSON.stringify(v.stdout + v.stderr)} for --version, not ${VERSION}`)
      renameSync(exe, out)
      writeFileSync(stampFile, stampOf(stamp, out))
      const size = statSync(out).size
      const ms = performance.now() - t0
      log(`${out}: ${mib(size)} (node ${node.version}${stripped ? ', stripped' : ''}, bundle ${mib(statSync(bundle).size)}, blob ${mib(blob.length)}, ${Object.keys(assets).length} assets) in ${(ms / 1000).toFixed(1)} s ` +
        `(bundle ${((tBundle - t0) / 1000).toFixed(1)} s, blob ${((tBlob - tBundle) / 1000).toFixed(1)} s, inject ${((tInject - tBlob) / 1000).toFixed(1)} s)`)
      return { out, built: true, size, ms }
    } finally {
      rmSync(exe, { force: true })
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

if (process.argv[1] != null && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { 'if-stale': { type: 'boolean' }, 'no-strip': { type: 'boolean' }, out: { type: 'string' } } })
  try {
    await buildBinary({ ifStale: values['if-stale'] === true, strip: values['no-strip'] !== true, ...(values.out != null ? { out: resolve(values.out) } : {}) })
  } catch (err) {
    if (!(err instanceof BuildError)) throw err
    process.stderr.write(`build-binary: ${err.message}\n`)
    process.exitCode = 1
  }
}
