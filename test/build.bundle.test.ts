/**
 * The agent bundle (`npm run build` → dist/agent/edgelink.mjs, scripts/bundle.mjs), which
 * bin/edgelink runs and the agent tests drive: what it loads, and the build's own refusals.
 * The agent tests (agent.*.test.ts) run every CLI and daemon process through this same bundle.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { CLI, ROOT } from './agent.procs.ts'

const BUNDLER = join(ROOT, 'scripts', 'bundle.mjs')

/**
 * A preload that counts WebAssembly modules compiled (`globalThis.wasmModules`) and calls of
 * `String.prototype.localeCompare` (`globalThis.localeCompares`: each can build an ICU collator).
 */
const WASM_PROBE = `globalThis.wasmModules = 0
const W = globalThis.WebAssembly
W.Module = new Proxy(W.Module, { construct (t, a, n) { globalThis.wasmModules++; return Reflect.construct(t, a, n) } })
for (const f of ['compile', 'instantiate']) { const g = W[f]; W[f] = (...a) => { globalThis.wasmModules++; return g(...a) } }
globalThis.localeCompares = 0
const lc = String.prototype.localeCompare
String.prototype.localeCompare = function (...a) { globalThis.localeCompares++; return lc.apply(this, a) }
`

describe('agent bundle (dist/agent/edgelink.mjs)', function () {
  this.timeout(60_000)

  /**
   * Starts the bundle as `edgelink agent` on 127.0.0.1 with a probe that prints the internal
   * modules Node loaded and the WebAssembly modules compiled once the mesh is up; resolves with
   * them, or with the agent's stderr when it exits first.
   */
  async function agentModules (): Promise<{ modules?: string[], wasmModules?: number, localeCompares?: number, stderr: string }> {
    const dir = await mkdtemp(join(tmpdir(), 'edgelink-bundle-'))
    try {
      await writeFile(join(dir, 'probe.mjs'), WASM_PROBE + 'process.once("SIGUSR2", () => { process._rawDebug("MODULES " + JSON.stringify({ modules: process.moduleLoadList, wasmModules: globalThis.wasmModules, localeCompares: globalThis.localeCompares })) })\n')
      const child = execFile(process.execPath, ['--import', join(dir, 'probe.mjs'), CLI, 'agent', '--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0', '--name', 'probe', '--log-level', 'warn'])
      let stderr = ''
      let asked = false
      let loaded: { modules: string[], wasmModules: number, localeCompares: number } | undefined
      return await new Promise((resolve, reject) => {
        const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`the agent neither started nor exited: ${stderr}`)) }, 45_000)
        child.stderr?.on('data', (d: Buffer) => {
          stderr += d.toString()
          // The agent's start banner (on stderr): the mesh is up.
          if (!asked && /Mesh: \/ip4\/127\.0\.0\.1\//.test(stderr)) { asked = true; child.kill('SIGUSR2') }
          const line = stderr.split('\n').find(l => l.startsWith('MODULES ') && l.endsWith('}'))
          if (line != null && loaded == null) {
            loaded = JSON.parse(line.slice('MODULES '.length))
            child.kill('SIGTERM')
          }
        })
        child.once('exit', () => { clearTimeout(timer); resolve({ ...loaded, stderr }) })
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  it('is ASCII, so V8 holds its source at one byte per character', async () => {
    const text = await readFile(CLI, 'latin1')
    expect(text.search(/[^\x00-\x7f]/)).to.equal(-1)
  })

  it('runs the agent without Node\'s bundled undici (an ES import of node:http would load it)', async () => {
    const { modules, wasmModules, localeCompares, stderr } = await agentModules()
    expect(modules, stderr).to.be.an('array').that.includes('NativeModule http')
    expect(modules!.filter(m => /undici/.test(m))).to.deep.equal([])
    // Nor HTTP/2, HTTPS and TLS (Fastify requires them at load; lazyBuiltins), nor a WebAssembly
    // module (@chainsafe/libp2p-noise's ciphers; lazyWasm): the mesh is up and no module compiled.
    expect(modules!.filter(m => /^NativeModule (http2|https|tls)$/.test(m))).to.deep.equal([])
    expect(wasmModules).to.equal(0)
    // Nor ICU's collation data: the peer store's sorts are ordinal in the bundle (ordinalSort),
    // and it has recorded the host's own addresses by now.
    expect(localeCompares).to.equal(0)
  })

  it('rewrites the peer store\'s localeCompare sorts as ordinal ones, and refuses to build when their count changes', async () => {
    const dir = await mkdtemp(join(ROOT, 'dist', 'bundle-test-'))
    try {
      const file = '@libp2p/peer-record/dist/src/peer-record/utils.js'
      // By path: the package's exports map does not export this file.
      await writeFile(join(dir, 'entry.js'), `export { arrayEquals } from ${JSON.stringify(join(ROOT, 'node_modules', file))}\n`)
      const esbuild = await import('esbuild')
      const { ordinalSort, ORDINAL_SORT } = await import(BUNDLER) as { ordinalSort: (files: Record<string, number>) => any, ORDINAL_SORT: Record<string, number> }
      expect(ORDINAL_SORT[file]).to.equal(1)
      const build = async (files: Record<string, number>): Promise<void> => {
        await esbuild.build({ entryPoints: [join(dir, 'entry.js')], outfile: join(dir, 'out.mjs'), bundle: true, platform: 'node', format: 'esm', plugins: [ordinalSort(files)], logLevel: 'silent' })
      }
      let err: Error | undefined
      await build({ [file]: 2 }).catch((e: Error) => { err = e })
      expect(err?.message).to.include(`${file}: expected 2 localeCompare sort(s) to rewrite, found 1`)
      await build({ [file]: 1 })
      const out = await readFile(join(dir, 'out.mjs'), 'utf8')
      expect(out).to.not.include('localeCompare')
      // Same members in another order are still equal; different members are not.
      const { arrayEquals } = await import(join(dir, 'out.mjs')) as { arrayEquals: (a: unknown[], b: unknown[]) => boolean }
      const m = (s: string): { toString: () => string, equals: (o: { toString: () => string }) => boolean } => ({ toString: () => s, equals: o => o.toString() === s })
      expect(arrayEquals([m('/ip4/10.0.0.2'), m('/ip4/10.0.0.10'), m('/dns/B')], [m('/dns/B'), m('/ip4/10.0.0.10'), m('/ip4/10.0.0.2')])).to.equal(true)
      expect(arrayEquals([m('/ip4/10.0.0.2'), m('/dns/b')], [m('/ip4/10.0.0.2'), m('/dns/B')])).to.equal(false)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('loads a lazy built-in and the Noise library\'s WebAssembly ciphers on first use, and they work', async () => {
    // Under the package root, so that esbuild resolves the packages as the agent's build does.
    const dir = await mkdtemp(join(ROOT, 'dist', 'bundle-test-'))
    try {
      await writeFile(join(dir, 'entry.js'), [
        "import { asCrypto, nodeCrypto } from '@chainsafe/libp2p-noise/crypto'",
        "const http2 = require('node:http2')",
        'export { asCrypto, nodeCrypto, http2 }',
        ''
      ].join('\n'))
      await writeFile(join(dir, 'probe.mjs'), WASM_PROBE)
      const { bundle } = await import(BUNDLER) as { bundle: (entry: string, outfile: string) => Promise<void> }
      await bundle(join(dir, 'entry.js'), join(dir, 'out.mjs'))
      const script = `
        const { asCrypto, nodeCrypto, http2 } = await import(${JSON.stringify(join(dir, 'out.mjs'))})
        const loaded = () => process.moduleLoadList.includes('NativeModule http2')
        const r = { http2Before: loaded(), wasmBefore: globalThis.wasmModules }
        r.status = http2.constants.HTTP2_HEADER_STATUS
        r.http2After = loaded()
        const k = new Uint8Array(32).fill(7), n = new Uint8Array(12), ad = new Uint8Array(3), pt = new Uint8Array(100).fill(9)
        const ours = Buffer.from(asCrypto.chaCha20Poly1305Encrypt(pt, n, ad, k))
        r.sameBytes = ours.equals(Buffer.from(nodeCrypto.chaCha20Poly1305Encrypt(pt, n, ad, k).subarray()))
        r.opens = Buffer.from(asCrypto.chaCha20Poly1305Decrypt(ours, n, ad, k)).equals(pt)
        r.hashes = Buffer.from(asCrypto.hashSHA256(pt)).equals(Buffer.from(nodeCrypto.hashSHA256(pt)))
        r.wasmAfter = globalThis.wasmModules
        process.stdout.write(JSON.stringify(r))`
      const out = await new Promise<string>((resolve, reject) => {
        execFile(process.execPath, ['--import', join(dir, 'probe.mjs'), '--input-type=module', '-e', script], (err, stdout, stderr) => { err != null ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout) })
      })
      const r = JSON.parse(out)
      expect(r).to.deep.include({ http2Before: false, wasmBefore: 0, status: ':status', http2After: true, sameBytes: true, opens: true, hashes: true })
      expect(r.wasmAfter).to.be.at.least(2)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('the build refuses a bundle that is not ASCII, naming the place', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edgelink-bundle-'))
    try {
      // esbuild escapes non-ASCII in strings but keeps it in this regular expression.
      await writeFile(join(dir, 'entry.js'), 'export const strip = (s) => s.replace(/^\u2026/, "")\n')
      const { bundle } = await import(BUNDLER) as { bundle: (entry: string, outfile: string) => Promise<void> }
      let err: Error | undefined
      await bundle(join(dir, 'entry.js'), join(dir, 'out.mjs')).catch((e: Error) => { err = e })
      expect(err?.message).to.match(/out\.mjs is not ASCII at offset \d+ .*replace/)
      // And an ASCII source bundles.
      await writeFile(join(dir, 'entry.js'), 'export const strip = (s) => s.replace(/^\\u2026/, "")\n')
      await bundle(join(dir, 'entry.js'), join(dir, 'out.mjs'))
      expect((await import(join(dir, 'out.mjs'))).strip('\u2026abc')).to.equal('abc')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
