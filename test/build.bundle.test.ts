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

describe('agent bundle (dist/agent/edgelink.mjs)', function () {
  this.timeout(60_000)

  /**
   * Starts the bundle as `edgelink agent` on 127.0.0.1 with a probe that prints the internal
   * modules Node loaded once the mesh is up; resolves with them, or with the agent's stderr when
   * it exits first.
   */
  async function agentModules (): Promise<{ modules?: string[], stderr: string }> {
    const dir = await mkdtemp(join(tmpdir(), 'edgelink-bundle-'))
    try {
      await writeFile(join(dir, 'probe.mjs'), 'process.once("SIGUSR2", () => { process._rawDebug("MODULES " + JSON.stringify(process.moduleLoadList)) })\n')
      const child = execFile(process.execPath, ['--import', join(dir, 'probe.mjs'), CLI, 'agent', '--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0', '--name', 'probe', '--log-level', 'warn'])
      let stderr = ''
      let asked = false
      let modules: string[] | undefined
      return await new Promise((resolve, reject) => {
        const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`the agent neither started nor exited: ${stderr}`)) }, 45_000)
        child.stderr?.on('data', (d: Buffer) => {
          stderr += d.toString()
          // The agent's start banner (on stderr): the mesh is up.
          if (!asked && /Mesh: \/ip4\/127\.0\.0\.1\//.test(stderr)) { asked = true; child.kill('SIGUSR2') }
          const line = stderr.split('\n').find(l => l.startsWith('MODULES ') && l.endsWith(']'))
          if (line != null && modules == null) {
            modules = JSON.parse(line.slice('MODULES '.length))
            child.kill('SIGTERM')
          }
        })
        child.once('exit', () => { clearTimeout(timer); resolve({ modules, stderr }) })
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
    const { modules, stderr } = await agentModules()
    expect(modules, stderr).to.be.an('array').that.includes('NativeModule http')
    expect(modules!.filter(m => /undici/.test(m))).to.deep.equal([])
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
