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
