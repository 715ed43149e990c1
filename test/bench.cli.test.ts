/**
 * The benchmark scripts' command lines, as real processes (dist/benchmarks/*.js): `--help` prints
 * the script's usage and runs nothing; a flag the script does not know, or a missing value, is a
 * one-line `error:` on stderr with exit code 2, no stack trace. The flags are checked against the
 * parseArgs options each script exports (importing a script does not run it: its main is behind
 * `import.meta.main`), so a flag added to a script but not to its help fails here.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect } from 'chai'
import * as content from '../benchmarks/content.ts'
import * as exchange from '../benchmarks/exchange.ts'
import * as group from '../benchmarks/group.ts'
import * as link from '../benchmarks/link.ts'
import * as run from '../benchmarks/run.ts'
import * as soak from '../benchmarks/soak.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SCRIPTS: Record<string, { USAGE: string, CLI_OPTIONS: Record<string, { type: 'string' | 'boolean' }> }> = { run, link, group, content, exchange, soak }
const NPM_SCRIPTS: Record<string, string> = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts

function bench (name: string, ...args: string[]): { code: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'benchmarks', `${name}.js`), ...args], { encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** The help's option entries: flag names (help included) → the entry's text, continuation lines joined. */
function optionEntries (help: string): Map<string, string> {
  const lines = help.split('\n')
  const start = lines.indexOf('options:')
  expect(start, 'an `options:` section').to.be.greaterThan(-1)
  const entries = new Map<string, string>()
  let current: string | undefined
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '') break
    const m = /^ {2}(?:-\w, )?--([a-z][\w-]*)\b/.exec(line)
    if (m != null) {
      expect(entries.has(m[1]), `--${m[1]} listed once`).to.equal(false)
      current = m[1]
      entries.set(current, line)
    } else {
      expect(current, `continuation line before any option: ${line}`).to.not.equal(undefined)
      entries.set(current!, entries.get(current!)! + ' ' + line.trim())
    }
  }
  return entries
}

describe('benchmark scripts: command line', function () {
  this.timeout(60_000)

  for (const [name, mod] of Object.entries(SCRIPTS)) {
    describe(`benchmarks/${name}`, () => {
      it('--help prints the usage on stdout, exits 0 and runs nothing', () => {
        const r = bench(name, '--help')
        expect(r.code, r.stderr).to.equal(0)
        expect(r.stderr).to.equal('')
        expect(r.stdout).to.equal(mod.USAGE)
        expect(r.stdout).to.match(/^usage: /)
        expect(r.stdout).to.include(`node dist/benchmarks/${name}.js`)
        // The npm form, when package.json has a script for this benchmark.
        for (const [script, command] of Object.entries(NPM_SCRIPTS)) {
          if (command.endsWith(`node dist/benchmarks/${name}.js`)) expect(r.stdout).to.include(`npm run ${script}`)
        }
        expect(r.stdout).to.match(/stdout/).and.match(/stderr/)
        expect(bench(name, '-h').stdout).to.equal(r.stdout)
      })

      it('--help lists every flag of the parseArgs options, each with its default, and no other', () => {
        const entries = optionEntries(bench(name, '--help').stdout)
        const flags = Object.keys(mod.CLI_OPTIONS)
        expect(flags).to.not.be.empty
        for (const f of flags) {
          expect(entries.has(f), `--${f} in the help of ${name}`).to.equal(true)
          expect(entries.get(f), `--${f}'s default`).to.include('default')
        }
        expect([...entries.keys()].sort()).to.deep.equal([...flags, 'help'].sort())
        expect(entries.get('help')).to.match(/^ {2}-h, --help\b/)
      })

      it('an unknown flag: `error:` and a pointer to --help on stderr, exit 2, no stack trace', () => {
        const r = bench(name, '--no-such-flag')
        expect(r.code, r.stderr).to.equal(2)
        expect(r.stdout).to.equal('')
        expect(r.stderr).to.match(/^error: .*--no-such-flag/)
        expect(r.stderr).to.include('--help')
        expect(r.stderr).to.not.match(/^\s+at /m)
        expect(r.stderr.trim().split('\n')).to.have.length(1)
      })

      it('a string flag without its value: `error:`, exit 2, no stack trace', () => {
        const flag = Object.entries(mod.CLI_OPTIONS).find(([, o]) => o.type === 'string')?.[0]
        expect(flag, 'a string option').to.not.equal(undefined)
        const r = bench(name, `--${flag!}`)
        expect(r.code, r.stderr).to.equal(2)
        expect(r.stdout).to.equal('')
        expect(r.stderr).to.match(new RegExp(`^error: .*--${flag!}.*argument missing`))
        expect(r.stderr).to.include('--help')
        expect(r.stderr).to.not.match(/^\s+at /m)
      })
    })
  }

  it('benchmarks/run: an unknown part is refused the same way, before anything runs', () => {
    const r = bench('run', '--only', 'group,bogus')
    expect(r.code, r.stderr).to.equal(2)
    expect(r.stdout).to.equal('')
    expect(r.stderr).to.match(/^error: unknown part\(s\) bogus; parts: link, group/)
    expect(r.stderr).to.include('--help')
  })
})

describe('content benchmark: --host-sysctl', () => {
  it('takes comma-separated net.…=number settings and refuses anything else', () => {
    expect(content.parseHostSysctl('')).to.deep.equal([])
    expect(content.parseHostSysctl('net.ipv4.tcp_notsent_lowat=131072, net.ipv4.tcp_wmem=4096 16384 262144')).to.deep.equal(['net.ipv4.tcp_notsent_lowat=131072', 'net.ipv4.tcp_wmem=4096 16384 262144'])
    for (const bad of ['kernel.panic=1', 'net.ipv4.tcp_notsent_lowat=lots', 'net.ipv4.x=1;reboot', 'net.ipv4.x']) {
      expect(() => content.parseHostSysctl(bad), bad).to.throw(/--host-sysctl/)
    }
  })

  it('a bad setting on the command line exits 2 before anything runs', function () {
    this.timeout(60_000)
    const r = bench('content', '--only', 'netns', '--host-sysctl', 'kernel.panic=1')
    expect(r.code, r.stderr).to.equal(2)
    expect(r.stdout).to.equal('')
    expect(r.stderr).to.match(/^error: --host-sysctl: "kernel\.panic=1" is not a net\.…=number setting \(see --help\)/)
  })
})

describe('group benchmark: flags of a process of several hosts', () => {
  it('gives each host the agent\'s young generation: --max-semi-space-size times the hosts, other flags as they are', () => {
    expect(group.flagsForHosts(['--max-semi-space-size=1', '--no-opt'], 7)).to.deep.equal(['--max-semi-space-size=7', '--no-opt'])
    expect(group.flagsForHosts(['--max-semi-space-size=2'], 1)).to.deep.equal(['--max-semi-space-size=2'])
    expect(group.flagsForHosts([], 7)).to.deep.equal([])
  })
})
