#!/usr/bin/env node
/**
 * The last step of `npm run build` (after tsc): the agent as one ES module, which bin/edgelink
 * runs, and the group benchmark's host process bundled the same way.
 *
 *   dist/agent/edgelink.mjs             dist/agent/cli.js and everything it imports
 *   dist/benchmarks/group-host.bundle.mjs  dist/benchmarks/group-host.js, likewise
 *
 * Why: an idle agent's memory. Node keeps every loaded module's source text and module record;
 * the ~1000 files under dist/ and node_modules that the agent imports held ~6 MB more of V8's heap
 * than one bundle of the code actually reached, and a bundle with comments and whitespace removed
 * is pure ASCII, which V8 stores at one byte per character (a comment with one non-Latin-1
 * character makes the whole source two bytes per character).
 *
 * Identifiers are not mangled and names are kept (`keepNames`), so stack traces name the
 * functions; `node dist/agent/cli.js` runs the same agent unbundled, with file and line numbers.
 *
 * Two things the bundle loads only when first used, for the same reason (see `lazyBuiltins` and
 * `lazyWasm`): Node built-in modules that dependencies require at load time but the agent rarely or
 * never calls (Fastify's HTTP/2, HTTPS and DNS; commander's child processes), and the WebAssembly
 * ciphers @chainsafe/libp2p-noise instantiates when it loads (lib/noise-crypto.ts uses Node's).
 * And one thing it does not load at all (`ordinalSort`): ICU's collation data, which libp2p's
 * peer store brings in by sorting strings with `localeCompare`.
 *
 * Usage: node scripts/bundle.mjs
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** One ES module from `entry` (a file under dist/), with `require` available for CommonJS dependencies. */
export async function bundle (entry, outfile) {
  const result = await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    // The LevelDB binding finds its native addon next to its own package: keep it a package.
    external: ['classic-level'],
    // Bundled CommonJS dependencies call require(): give the module one.
    banner: { js: "import { createRequire as __edgelinkCreateRequire } from 'node:module'; const require = __edgelinkCreateRequire(import.meta.url);" },
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
    legalComments: 'none',
    charset: 'ascii',
    plugins: [lazyBuiltins(LAZY_BUILTINS), lazyWasm(), ordinalSort(ORDINAL_SORT)],
    logLevel: 'silent'
  })
  if (result.warnings.length > 0) {
    throw new Error(`esbuild warned bundling ${entry}:\n${result.warnings.map(w => `  ${w.location?.file ?? ''}:${w.location?.line ?? ''} ${w.text}`).join('\n')}`)
  }
  // esbuild escapes non-ASCII in strings but not in every regular expression: one such character
  // would double the memory V8 holds the source in (see the file comment).
  const text = readFileSync(outfile, 'latin1')
  const at = text.search(/[^\x00-\x7f]/)
  if (at >= 0) {
    throw new Error(`${outfile} is not ASCII at offset ${at} (…${text.slice(Math.max(0, at - 60), at + 20)}…): write the character as an escape (\\uXXXX) in the source`)
  }
}

/**
 * Built-in modules a CommonJS dependency's `require()` gets as a stand-in that loads the real
 * module on first use. Each is required at load time by a dependency that calls it only in a mode
 * the agent does not use: Fastify (HTTP/2 and HTTPS servers, and a DNS lookup of a listen host
 * name) and commander (subcommands that are executables). HTTP/2 and HTTPS bring TLS with them:
 * ~4.5 MB of an idle agent's resident memory, measured in a bare Node 24 process. ES module imports
 * are left as they are (esbuild copies an imported CommonJS module's properties at import time).
 */
export const LAZY_BUILTINS = ['http2', 'https', 'dns', 'child_process']

/** An esbuild plugin: `require('node:X')` (or `require('X')`) of a module in `names` gets a stand-in that loads X when a property is first read. */
export function lazyBuiltins (names) {
  const filter = new RegExp(`^(node:)?(${names.join('|')})$`)
  return {
    name: 'lazy-builtins',
    setup (build) {
      build.onResolve({ filter }, args => {
        // The stand-in's own require of the real module stays what it is: a Node built-in.
        if (args.kind !== 'require-call' || args.namespace === 'lazy-builtin') return undefined
        return { path: args.path.replace(/^node:/, ''), namespace: 'lazy-builtin' }
      })
      build.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, args => ({
        loader: 'js',
        contents: `let real
const load = () => (real ??= require(${JSON.stringify(`node:${args.path}`)}))
module.exports = new Proxy({}, {
  get: (_, key) => load()[key],
  set: (_, key, value) => { load()[key] = value; return true },
  has: (_, key) => key in load(),
  ownKeys: () => Reflect.ownKeys(load()),
  getOwnPropertyDescriptor: (_, key) => {
    const d = Reflect.getOwnPropertyDescriptor(load(), key)
    return d == null ? d : { ...d, configurable: true }
  }
})
`
      }))
    }
  }
}

/**
 * An esbuild plugin: @chainsafe/libp2p-noise's crypto module gets stand-ins for
 * @chainsafe/as-chacha20poly1305 and @chainsafe/as-sha256 that load (and instantiate) the real
 * WebAssembly modules on first use. The library instantiates both when it loads, for its cipher of
 * messages under 1200 bytes; the mesh's ciphers (lib/noise-crypto.ts) never call them, and an
 * instantiated WebAssembly module brought ~10 MB of the V8 compilers' pages and memory into an idle
 * process (a bare Node 24 process importing both: 46 → 57 MB resident).
 */
export function lazyWasm () {
  const STAND_INS = {
    '@chainsafe/as-chacha20poly1305': real => `let impl
const load = () => (impl ??= (() => { const m = require(${JSON.stringify(real)}); return new m.ChaCha20Poly1305(m.newInstance()) })())
export function newInstance () { return undefined }
export class ChaCha20Poly1305 {
  seal (...args) { return load().seal(...args) }
  open (...args) { return load().open(...args) }
}
`,
    '@chainsafe/as-sha256': real => `export function digest (data) { return require(${JSON.stringify(real)}).digest(data) }
`
  }
  return {
    name: 'lazy-wasm',
    setup (build) {
      build.onResolve({ filter: /^@chainsafe\/as-(chacha20poly1305|sha256)$/ }, async args => {
        if (args.namespace === 'lazy-wasm' || !/[\\/]@chainsafe[\\/]libp2p-noise[\\/]/.test(args.importer)) return undefined
        const real = await build.resolve(args.path, { kind: 'require-call', resolveDir: args.resolveDir })
        if (real.errors.length > 0) return { errors: real.errors }
        return { path: args.path, namespace: 'lazy-wasm', pluginData: { real: real.path, resolveDir: args.resolveDir } }
      })
      build.onLoad({ filter: /.*/, namespace: 'lazy-wasm' }, args => ({
        loader: 'js',
        resolveDir: args.pluginData.resolveDir,
        contents: STAND_INS[args.path](args.pluginData.real)
      }))
    }
  }
}

/**
 * Files whose `localeCompare` sorts {@link ordinalSort} rewrites, each with how many it must find.
 * libp2p's peer store and peer records sort protocols, metadata keys and addresses with
 * `a.localeCompare(b)` only to give records one order and to compare them; the first such call
 * makes V8 build an ICU collator, which touches ~2 MB of the ICU data inside the Node binary and
 * allocates ~1 MB more: 2.9 MB of a process's resident memory, measured in a bare Node 24 process
 * (42.7 → 45.6 MB), and every host makes that call as soon as it records its own addresses.
 */
export const ORDINAL_SORT = {
  '@libp2p/peer-store/dist/src/utils/to-peer-pb.js': 2,
  '@libp2p/peer-store/dist/src/utils/dedupe-addresses.js': 1,
  '@libp2p/peer-record/dist/src/peer-record/utils.js': 1
}

/** `X.localeCompare(Y)` where X and Y are property paths, optionally ending in a call without arguments. */
const LOCALE_COMPARE = /([\w$]+(?:\.[\w$]+)*(?:\(\))?)\.localeCompare\(([\w$]+(?:\.[\w$]+)*(?:\(\))?)\)/g

/**
 * An esbuild plugin: in each file of `files` (paths under node_modules), `X.localeCompare(Y)`
 * becomes an ordinal (UTF-16 code unit) comparison. Those sorts only need some total order, the
 * same in every process running this bundle. The build fails if a file no longer has exactly the
 * expected number of such calls, or has any other `localeCompare` left: a dependency update has
 * changed the code and the rewrite must be looked at again.
 */
export function ordinalSort (files) {
  const entries = Object.entries(files)
  // Only these files reach the callback: esbuild tests the filter in Go, not every module in JS.
  const escape = s => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replaceAll('/', '[\\\\/]')
  const filter = new RegExp(`[\\\\/]node_modules[\\\\/](${entries.map(([file]) => escape(file)).join('|')})$`)
  return {
    name: 'ordinal-sort',
    setup (build) {
      build.onLoad({ filter }, args => {
        const path = args.path.replaceAll('\\', '/')
        const [file, expected] = entries.find(([f]) => path.endsWith('/node_modules/' + f))
        let found = 0
        const contents = readFileSync(args.path, 'utf8').replace(LOCALE_COMPARE, (_, a, b) => { found++; return `__edgelinkOrdinal(${a}, ${b})` })
        const left = contents.includes('localeCompare')
        if (found !== expected || left) {
          return { errors: [{ text: `${file}: expected ${expected} localeCompare sort(s) to rewrite, found ${found}${left ? ' and others left' : ''}; see ORDINAL_SORT in scripts/bundle.mjs` }] }
        }
        return { loader: 'js', contents: contents + '\nfunction __edgelinkOrdinal (a, b) { return a < b ? -1 : a > b ? 1 : 0 }\n' }
      })
    }
  }
}

export const BUNDLES = [
  { entry: join(ROOT, 'dist', 'agent', 'cli.js'), outfile: join(ROOT, 'dist', 'agent', 'edgelink.mjs') },
  { entry: join(ROOT, 'dist', 'benchmarks', 'group-host.js'), outfile: join(ROOT, 'dist', 'benchmarks', 'group-host.bundle.mjs') }
]

if (process.argv[1] != null && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    for (const { entry, outfile } of BUNDLES) {
      if (!existsSync(entry)) throw new Error(`${entry} is missing: tsc runs first (npm run build)`)
      await bundle(entry, outfile)
    }
  } catch (err) {
    process.stderr.write(`bundle: ${err.message}\n`)
    process.exitCode = 1
  }
}
