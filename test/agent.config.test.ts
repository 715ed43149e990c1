/**
 * The agent as a daemon: settings from flags, EDGELINK_* variables and the config file (with
 * their precedence), JSON logs without secrets, a clean stop on SIGINT, and the systemd unit in
 * examples/. Real agent processes on their own loopback IPs.
 */
import { strict as assert } from 'node:assert'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, readFile, stat, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { FILE_KEYS, option, type SettingName } from '../agent/config.ts'
import { decodeToken } from '../lib/index.ts'
import { loopbackIp, waitFor } from './helpers.ts'
import { AgentProc, cleanEnv, cli, CLI, expectRefusal, fleetHooks, freePort, ROOT, run, waitForGroup } from './agent.procs.ts'

/** An agent started with exactly these arguments and variables (plus its data dir). */
class ConfiguredAgent extends AgentProc {
  private readonly extraArgs: string[]
  private readonly extraEnv: Record<string, string>

  constructor (name: string, dataDir: string, args: string[], env: Record<string, string> = {}) {
    super({ name, ip: '127.0.0.1', port: 0, dataDir })
    this.extraArgs = args
    this.extraEnv = env
  }

  override get args (): string[] { return ['agent', '--data-dir', this.dataDir, ...this.extraArgs] }
  override get env (): NodeJS.ProcessEnv { return cleanEnv(this.extraEnv) }

  /** Stops with `signal` (not SIGKILL unless it hangs) and resolves with the exit code. */
  async signal (signal: NodeJS.Signals): Promise<number | null> {
    const child = this.child!
    const exited = new Promise<number | null>(resolve => { child.once('exit', code => { resolve(code) }) })
    child.kill(signal)
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 15_000)
    try {
      return await exited
    } finally {
      clearTimeout(timer)
    }
  }
}

interface Printed { file: string | null, settings: Record<string, unknown>, sources: Record<string, string> }

async function printConfig (args: string[], env: Record<string, string> = {}): Promise<Printed> {
  const r = await run(process.execPath, [CLI, 'agent', '--print-config', ...args], cleanEnv(env))
  expect(r.code, r.stderr).to.equal(0)
  return JSON.parse(r.stdout)
}

/** A value for every setting a file may hold, as a flag / variable takes it and as the agent resolves it. */
function sampleSettings (dir: string): Record<string, { text: string, json: unknown, resolved: unknown }> {
  return {
    dataDir: { text: join(dir, 'data'), json: join(dir, 'data'), resolved: join(dir, 'data') },
    listen: { text: '127.0.7.1:7401', json: '127.0.7.1:7401', resolved: '127.0.7.1:7401' },
    api: { text: '127.0.0.1:5999', json: '127.0.0.1:5999', resolved: '127.0.0.1:5999' },
    advertise: { text: '127.0.7.1,127.0.7.2', json: ['127.0.7.1', '127.0.7.2'], resolved: ['127.0.7.1', '127.0.7.2'] },
    name: { text: 'edge-7', json: 'edge-7', resolved: 'edge-7' },
    logLevel: { text: 'debug', json: 'debug', resolved: 'debug' },
    uploadRate: { text: '4M', json: '4M', resolved: 4 * 1024 * 1024 },
    apiSecretFile: { text: join(dir, 'secret'), json: join(dir, 'secret'), resolved: join(dir, 'secret') },
    metricsSecretFile: { text: join(dir, 'metrics-secret'), json: join(dir, 'metrics-secret'), resolved: join(dir, 'metrics-secret') },
    preset: { text: 'test', json: 'test', resolved: 'test' }
  }
}

describe('agent settings: flags, EDGELINK_* variables and the config file', function () {
  this.timeout(60_000)
  const fleet = fleetHooks()

  it('`agent --help` tells where the config file is, its keys and the precedence', async () => {
    const r = await cli('agent', '--help')
    expect(r.code).to.equal(0)
    expect(r.stdout).to.include('--config <file>').and.include('EDGELINK_CONFIG').and.include('<data-dir>/edgelink.json')
    expect(r.stdout).to.match(/a flag wins over its EDGELINK_\* variable, which wins over the config file, which wins\s+over the default/)
    for (const key of FILE_KEYS) expect(r.stdout).to.include(key)
  })

  it('takes every setting from a flag, from its variable and from the config file alike', async () => {
    const dir = await fleet.dir()
    const samples = sampleSettings(dir)
    // The table above must cover every setting a file may hold: a new setting fails here until added.
    expect(Object.keys(samples).sort()).to.deep.equal([...FILE_KEYS].sort())
    const keys = FILE_KEYS as SettingName[]
    const expected = Object.fromEntries(keys.map(k => [k, samples[k].resolved]))

    const flags = keys.flatMap(k => [option(k).long!, samples[k].text])
    const byFlag = await printConfig(flags)
    expect(byFlag.settings).to.deep.include(expected)
    for (const k of keys) expect(byFlag.sources[k], k).to.equal('flag')

    const env = Object.fromEntries(keys.map(k => [option(k).envVar!, samples[k].text]))
    const byEnv = await printConfig([], env)
    expect(byEnv.settings).to.deep.include(expected)
    for (const k of keys) expect(byEnv.sources[k], k).to.equal('env')

    const file = join(dir, 'all.json')
    await writeFile(file, JSON.stringify(Object.fromEntries(keys.map(k => [k, samples[k].json]))))
    const byFile = await printConfig(['--config', file])
    expect(byFile.file).to.equal(file)
    expect(byFile.settings).to.deep.include(expected)
    for (const k of keys) expect(byFile.sources[k], k).to.equal('file')
    // The file named by the variable reads the same.
    expect((await printConfig([], { EDGELINK_CONFIG: file })).settings).to.deep.include(expected)
  })

  it('applies flag > variable > file > default, and reads <data-dir>/edgelink.json by default', async () => {
    const dir = await fleet.dir()
    await writeFile(join(dir, 'edgelink.json'), JSON.stringify({ listen: '127.0.7.3:1', name: 'from-file', logLevel: 'warn', uploadRate: 1000 }))
    const p = await printConfig(['--data-dir', dir, '--listen', '127.0.7.3:3'], { EDGELINK_LISTEN: '127.0.7.3:2', EDGELINK_NAME: 'from-env' })
    expect(p.file).to.equal(join(dir, 'edgelink.json'))
    expect(p.settings).to.include({ listen: '127.0.7.3:3', name: 'from-env', logLevel: 'warn', uploadRate: 1000, api: '127.0.0.1:5080' })
    expect(p.sources).to.include({ listen: 'flag', name: 'env', logLevel: 'file', uploadRate: 'file', api: 'default', dataDir: 'flag' })
    // No file in the data dir: defaults, and no file reported.
    const empty = await printConfig(['--data-dir', await fleet.dir()])
    expect(empty.file).to.equal(null)
    expect(empty.sources).to.include({ listen: 'default', logLevel: 'default' })
  })

  it('a running agent follows the precedence: flag over variable over file, and keeps a secret from a file', async () => {
    const dir = await fleet.dir()
    const ip = loopbackIp()
    const [filePort, flagPort] = [await freePort(ip), await freePort(ip)]
    const secret = `s3cr3t-${randomBytes(24).toString('hex')}`
    const secretFile = join(await fleet.dir(), 'api-secret')
    await writeFile(secretFile, `${secret}\n`, { mode: 0o600 })
    await writeFile(join(dir, 'edgelink.json'), JSON.stringify({
      listen: `${ip}:${filePort}`, advertise: [ip], api: '127.0.0.1:0', name: 'from-file', logLevel: 'warn', apiSecretFile: secretFile
    }))
    const a = new ConfiguredAgent('precedence', dir, ['--listen', `${ip}:${flagPort}`], { EDGELINK_NAME: 'from-env' })
    fleet.agents.push(a)
    await a.start()
    const st = (await a.api('GET', '/v1/edgelink/status')).body
    expect(st.addrs).to.deep.equal([`/ip4/${ip}/tcp/${flagPort}/p2p/${st.id}`]) // the flag, not the file
    expect((await a.cli('token')).code).to.equal(0)
    expect((await a.hosts())[0].config.name).to.equal('from-env') // the variable, not the file
    expect(a.stderr).to.include('edgelink agent running.').and.not.include('"level":30') // the file's warn
    expect((await a.apiFile()).token).to.equal(secret)
    // A scraper holding the secret keeps working across a restart.
    const scrape = async (): Promise<number> => (await fetch(new URL('/metrics', (await a.apiFile()).url), { headers: { authorization: `Bearer ${secret}` } })).status
    expect(await scrape()).to.equal(200)
    expect(await a.stop()).to.equal(0)
    await a.start()
    expect(await scrape()).to.equal(200)
    expect(a.stderr).to.not.include(secret)
  })

  it('refuses a bad config file with exit 2 and a message naming the key, before starting anything', async () => {
    const cases: Array<[string, RegExp]> = [
      ['{"listen": "127.0.0.1:0", "lisen": "x"}', /"lisen" is not a setting \(known: dataDir, listen/],
      ['{"uploadRate": true}', /"uploadRate" must be a whole number/],
      ['{"uploadRate": -5}', /"uploadRate" must be a whole number/],
      ['{"uploadRate": "fast"}', /"uploadRate" is invalid: expected a number of bytes/],
      ['{"advertise": [1, 2]}', /"advertise" must be a string or a list of strings/],
      ['{"advertise": "not-an-ip"}', /"advertise" is invalid: not an IP address/],
      ['{"logLevel": "loud"}', /"logLevel" is invalid: expected one of trace, debug/],
      ['{"api": 5080}', /"api" must be a string/],
      ['{"name": ""}', /"name" must not be empty/],
      ['{"config": "/etc/other.json"}', /"config" is not a setting/],
      ['{"dataDir": "/elsewhere"}', /"dataDir" cannot be set in the data dir's own config file/],
      ['["listen"]', /expected a JSON object of settings/],
      ['{"listen": ', /not valid JSON/]
    ]
    // Each case in a data dir of its own, all at once: every one is a whole agent process.
    await Promise.all(cases.map(async ([text, message]) => {
      const dir = await fleet.dir()
      const file = join(dir, 'edgelink.json')
      await writeFile(file, text)
      const r = await run(process.execPath, [CLI, 'agent', '--data-dir', dir, '--api', '127.0.0.1:0', '--listen', '127.0.0.1:0'], cleanEnv(), 30_000)
      expect(r.code, `${text}: ${r.stderr}`).to.equal(2)
      expect(r.stderr.split('\n')[0], text).to.match(message).and.include(`config file ${file}: `)
      await assert.rejects(stat(join(dir, 'api.json')), { code: 'ENOENT' })
    }))
    const dir = await fleet.dir()
    const missing = await run(process.execPath, [CLI, 'agent', '--print-config', '--config', join(dir, 'nope.json')], cleanEnv())
    expect(missing.code).to.equal(2)
    expect(missing.stderr).to.include(`config file ${join(dir, 'nope.json')}: no such file`)
  })

  it('refuses an API secret file others can read, or one that is not one line of 16 to 1024 characters', async () => {
    const dir = await fleet.dir()
    const secretFile = join(dir, 'secret')
    for (const [content, mode, why] of [['a'.repeat(32), 0o644, 'readable by group or others'], ['short', 0o600, 'expected one line'], ['has a space in it somewhere', 0o600, 'expected one line']] as const) {
      await writeFile(secretFile, content)
      await chmod(secretFile, mode)
      const r = await run(process.execPath, [CLI, 'agent', '--data-dir', dir, '--api', '127.0.0.1:0', '--listen', '127.0.0.1:0', '--api-secret-file', secretFile], cleanEnv(), 20_000)
      expectRefusal(r, 'INVALID_ARGUMENT')
      expect(r.stderr).to.include(why)
      await assert.rejects(stat(join(dir, 'api.json')), { code: 'ENOENT' })
    }
  })
})

describe('agent daemon: JSON logs without secrets, SIGINT, the systemd unit', function () {
  this.timeout(60_000)
  const fleet = fleetHooks()

  it('logs JSON lines on a pipe, never the API secret or a link token, and stops cleanly on SIGINT with nothing lost', async () => {
    const agents: ConfiguredAgent[] = []
    for (const name of ['log-1', 'log-2']) {
      const ip = loopbackIp()
      const a = new ConfiguredAgent(name, await fleet.dir(), ['--listen', `${ip}:${await freePort(ip)}`, '--advertise', ip, '--api', '127.0.0.1:0', '--name', name, '--log-level', 'trace'])
      fleet.agents.push(a)
      agents.push(a)
    }
    const [leader, follower] = agents
    await Promise.all(agents.map(async a => { await a.start() }))
    const secrets = [(await leader.apiFile()).token, (await follower.apiFile()).token]
    const t = await leader.cli('token', '--json')
    expect(t.code, t.stderr).to.equal(0)
    const token: string = JSON.parse(t.stdout).token
    const otp = Buffer.from(decodeToken(token).otp)
    const l = await follower.cli('link', token)
    expect(l.code, l.stderr).to.equal(0)
    const ids = [await leader.id(), await follower.id()]
    await waitForGroup(agents, ids, ids[0])
    const s = await leader.cli('settings', 'set', 'values.site=north')
    expect(s.code, s.stderr).to.equal(0)
    await waitFor(async () => (await follower.api('GET', '/v1/edgelink/settings')).body.values.site === 'north', 10_000, 'settings on the follower')

    // SIGINT (Ctrl-C) on the follower: exit 0, api.json removed, the reason logged.
    expect(await follower.signal('SIGINT')).to.equal(0)
    const firstLog = follower.stderr
    await assert.rejects(stat(join(follower.dataDir, 'api.json')), { code: 'ENOENT' })
    const stopping = follower.stderr.split('\n').filter(x => x.startsWith('{')).map(x => JSON.parse(x)).find(x => x.msg === 'stopping')
    expect(stopping).to.include({ signal: 'SIGINT', level: 30 })
    // Nothing lost: back without a token, same id, same group, the settings still there.
    await follower.start()
    expect(await follower.id()).to.equal(ids[1])
    await waitForGroup(agents, ids, ids[0])
    expect((await follower.api('GET', '/v1/edgelink/settings')).body.values).to.deep.equal({ site: 'north' })
    secrets.push((await follower.apiFile()).token)
    expect(await leader.signal('SIGTERM')).to.equal(0)

    const logs = [leader.stderr, firstLog, follower.stderr]
    let jsonLines = 0
    for (const log of logs) {
      const lines = log.split('\n').filter(x => x !== '')
      const banner = lines.findIndex(x => x.startsWith('edgelink agent running.'))
      expect(banner, log).to.be.greaterThan(0)
      lines.forEach((line, i) => {
        if (!line.startsWith('{')) {
          // The start banner is the only text that is not a log line: one block of a few lines.
          expect(i - banner, line).to.be.within(0, 6)
          return
        }
        const entry = JSON.parse(line)
        expect(entry.level, line).to.be.a('number')
        expect(entry.msg, line).to.be.a('string')
        expect(entry.time, line).to.be.a('number')
        jsonLines++
      })
      for (const secret of [...secrets, token, otp.toString('hex'), otp.toString('base64url'), otp.toString('base64')]) {
        expect(log.includes(secret), `a secret in the log:\n${log}`).to.equal(false)
      }
    }
    expect(jsonLines).to.be.greaterThan(10) // trace level: the host talked
  })

  it('examples/edgelink.service: every ExecStart flag is an agent flag, the command line parses, the sandbox is set', async () => {
    const unitText = await readFile(join(ROOT, 'examples/edgelink.service'), 'utf8')
    const unit = parseUnit(unitText)
    const svc = unit.Service
    const execStart = svc.ExecStart
    expect(execStart).to.have.length(1)
    const [bin, command, ...args] = execStart[0].split(/\s+/)
    expect(bin).to.match(/\/edgelink$/)
    expect(command).to.equal('agent')
    const help = (await cli('agent', '--help')).stdout
    const flags = args.filter(a => a.startsWith('--'))
    expect(flags.length).to.be.greaterThan(0)
    for (const flag of flags) expect(help, flag).to.match(new RegExp(`^\\s+${flag}( <[a-z:-]+>)?\\s`, 'm'))

    // The command line, with systemd's directories filled in, is one the real CLI accepts.
    const dir = await fleet.dir()
    const env = { STATE_DIRECTORY: join(dir, 'state'), CONFIGURATION_DIRECTORY: join(dir, 'etc') }
    await mkdir(env.CONFIGURATION_DIRECTORY)
    await writeFile(join(env.CONFIGURATION_DIRECTORY, 'edgelink.json'), JSON.stringify({ listen: '127.0.7.9:7400' }))
    const expanded = args.map(a => a.replace(/\$\{(\w+)\}/g, (_, v: keyof typeof env) => env[v]))
    const p = await printConfig(expanded)
    expect(p.settings).to.include({ dataDir: env.STATE_DIRECTORY, listen: '127.0.7.9:7400' })
    expect(p.file).to.equal(join(env.CONFIGURATION_DIRECTORY, 'edgelink.json'))

    // Hardening and lifecycle.
    const one = (k: string): string | undefined => svc[k]?.at(-1)
    expect(one('User')).to.be.a('string').and.not.equal('root')
    expect(one('StateDirectory')).to.equal('edgelink')
    for (const [k, v] of Object.entries({ NoNewPrivileges: 'yes', ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', CapabilityBoundingSet: '', Restart: 'on-failure', KillSignal: 'SIGTERM' })) {
      expect(one(k), k).to.equal(v)
    }
    expect(one('RestrictAddressFamilies')!.split(/\s+/)).to.include.members(['AF_INET', 'AF_INET6', 'AF_UNIX'])
    // Longer than the agent's own 15 s limit, so the agent reports a slow stop itself.
    expect(Number(/^(\d+)s$/.exec(one('TimeoutStopSec') ?? '')?.[1])).to.be.greaterThan(15)
    expect(one('RestartPreventExitStatus')).to.equal('2')

    // systemd's own checks, where systemd is installed: with the real launcher in ExecStart.
    const analyze = await promisify(execFile)('systemd-analyze', ['--version']).then(() => true, () => false)
    if (analyze) {
      const copy = join(dir, 'edgelink.service')
      await writeFile(copy, unitText.replace(bin, join(ROOT, 'bin/edgelink')))
      const verify = await run('systemd-analyze', ['verify', copy])
      expect(verify.code, verify.stderr).to.equal(0)
      expect(verify.stderr.trim(), verify.stderr).to.equal('')
      // Exposure 0–10 as systemd rates it (×10 here): at most 2.0 ("OK"). --offline needs systemd 250+.
      const security = await run('systemd-analyze', ['security', '--offline=yes', '--threshold=20', copy])
      if (!/unrecognized option|Unknown option/i.test(security.stderr)) expect(security.code, security.stdout + security.stderr).to.equal(0)
    }
  })
})

/** The unit file as section → key → values (repeated keys keep every value; `\` continues a line). */
function parseUnit (text: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {}
  let section = ''
  for (const raw of text.replace(/\\\n/g, ' ').split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const sec = /^\[(\w+)\]$/.exec(line)
    if (sec != null) {
      section = sec[1]
      out[section] ??= {}
      continue
    }
    const eq = line.indexOf('=')
    if (eq < 0 || section === '') throw new Error(`not a unit line: ${line}`)
    const key = line.slice(0, eq)
    ;(out[section][key] ??= []).push(line.slice(eq + 1))
  }
  return out
}
