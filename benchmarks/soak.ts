/**
 * Soak benchmark: a linked group of real agent processes left running while the CPUs are loaded,
 * counting every time a host that never stopped is shown `Unreachable` by another (a false
 * failure). The issue's target is none over ten minutes.
 *
 *   npm run bench:soak -- [--hosts 10] [--duration 600] [--load 2] [--preset lan]
 *
 * - Hosts: `edgelink agent` processes as bin/edgelink runs them (dist/agent/edgelink.mjs with the
 *   agent's Node flags), each on its own loopback IP, linked through the HTTP API as an operator
 *   would, with the default (`lan`) timings.
 * - Memory: each agent's RSS once the group has been healthy and idle for `--idle` seconds, before
 *   the load starts (the group-state issue's target: ≤ 80 MB per idle host).
 * - Load: `--load` busy-looping Node processes (default: one per core) at the agents' priority,
 *   started once the group is healthy and stopped at the end.
 * - Watch: every agent's event stream (`GET /v1/edgelink/events`); each `host:health` event that
 *   says `Unreachable` is a false failure (nothing is killed or cut during the run). Each agent's
 *   own view is also polled (`GET /v1/edgelink/hosts`) every 5 s, to catch what the stream missed.
 *
 * Prints one JSON object on stdout (also benchmarks/results/soak-latest.json) and a line a minute
 * on stderr. Exits 0 whether or not the target is met (`pass` says), 1 when the run itself fails.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import type { ParseArgsOptionsConfig } from 'node:util'
import { AgentClient } from '../agent/client.ts'
import { AGENT_NODE_FLAGS, agentEnv, environment, loopbackIp, mb, packageRoot, parseBenchArgs, procMemory, sleep, TempDirs, writeResult } from './lib.ts'

export interface SoakOptions {
  hosts: number
  /** Seconds the loaded group runs. */
  durationS: number
  /** Busy-looping processes loading the CPUs. */
  load: number
  preset: 'lan' | 'test'
  /** Seconds the healthy group sits idle before each agent's RSS is read. */
  idleS: number
}
export const SOAK_DEFAULTS: SoakOptions = { hosts: 10, durationS: 600, load: cpus().length, preset: 'lan', idleS: 10 }
/** RSS per idle agent, MB (the group-state issue's target). */
export const RSS_TARGET_MB = 80

interface Agent {
  name: string
  proc: ChildProcess
  /** The agent's own API client (agent/client.ts), as the CLI uses it. */
  client: AgentClient
  id: string
  /** The last 4000 characters the agent wrote to stderr. */
  stderr: () => string
}

interface FalseFailure { observer: string, subject: string, at_s: number, via: 'event' | 'poll' }

export interface SoakResult {
  benchmark: 'soak'
  environment: Record<string, unknown>
  config: SoakOptions & { timings: string }
  formation_ms: number
  duration_s: number
  loadavg_during: number[]
  health_events: number
  false_unreachable: number
  false_failures: FalseFailure[]
  polls: number
  /** Each agent's memory after the idle wait, MB: resident (anonymous + pages of files, the node binary's mostly). */
  idle_rss_mb: { mean: number, max: number, min: number, anon_mean: number, file_mean: number }
  target: { false_unreachable: 0, idle_rss_mb: number }
  /** Every agent's idle RSS within the target. */
  rss_pass: boolean
  pass: boolean
}

/** What bin/edgelink runs. */
const CLI = (): string => join(packageRoot(), 'dist', 'agent', 'edgelink.mjs')

async function startAgent (name: string, dataDir: string, preset: string): Promise<Agent> {
  const ip = loopbackIp()
  const proc = spawn(process.execPath, [...AGENT_NODE_FLAGS, CLI(), 'agent', '--data-dir', dataDir, '--listen', `${ip}:0`, '--advertise', ip, '--api', '127.0.0.1:0', '--name', name, '--log-level', 'warn', '--preset', preset], { env: agentEnv(), stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  proc.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
  const end = Date.now() + 60_000
  for (;;) {
    if (proc.exitCode != null) throw new Error(`${name} exited ${proc.exitCode}: ${stderr}`)
    try {
      const f = JSON.parse(await readFile(join(dataDir, 'api.json'), 'utf8'))
      if (f.pid === proc.pid) {
        const client = await AgentClient.open(dataDir)
        return { name, proc, client, id: (await client.status()).id, stderr: () => stderr }
      }
    } catch {}
    if (Date.now() > end) throw new Error(`${name} did not start: ${stderr}`)
    await sleep(100)
  }
}

/** Follows an agent's event stream until `signal` aborts, reconnecting when it drops. */
async function follow (a: Agent, signal: AbortSignal, onEvent: (event: string, data: any) => void): Promise<void> {
  while (!signal.aborted) {
    try {
      await (await a.client.events(onEvent, signal)).closed
    } catch {}
    if (!signal.aborted) await sleep(500)
  }
}

export async function run (o: SoakOptions, log: (line: string) => void = line => { process.stderr.write(line + '\n') }): Promise<SoakResult> {
  const dirs = new TempDirs()
  const agents: Agent[] = []
  const burners: ChildProcess[] = []
  const ac = new AbortController()
  try {
    log(`soak: ${o.hosts} agents, ${o.durationS} s, ${o.load} busy-looping processes, preset ${o.preset}`)
    const t0 = Date.now()
    for (let i = 0; i < o.hosts; i++) agents.push(await startAgent(`s${i}`, await dirs.make(), o.preset))
    const [leader, ...followers] = agents
    for (const f of followers) {
      const { token } = await leader.client.generateToken()
      const st = await f.client.link(token)
      if (st.status !== 'Completed') throw new Error(`${f.name} did not link: ${JSON.stringify(st)}`)
    }
    const healthy = async (): Promise<boolean> => {
      for (const a of agents) {
        const rows = await a.client.hosts()
        if (rows.length !== o.hosts || rows.some(r => r.health !== 'Healthy')) return false
      }
      return true
    }
    const formEnd = Date.now() + 120_000
    while (!(await healthy())) {
      if (Date.now() > formEnd) throw new Error('the group did not become healthy within 120 s')
      await sleep(500)
    }
    const formationMs = Date.now() - t0
    log(`soak: group of ${o.hosts} healthy after ${formationMs} ms; idle ${o.idleS} s, then RSS`)
    await sleep(o.idleS * 1000)
    const mem = agents.map(a => procMemory(a.proc.pid!))
    const avg = (xs: number[]): number => mb(xs.reduce((p, x) => p + x, 0) / xs.length)
    const rss = mem.map(m => m.rss)
    const idleRss = { mean: avg(rss), max: mb(Math.max(...rss)), min: mb(Math.min(...rss)), anon_mean: avg(mem.map(m => m.anon)), file_mean: avg(mem.map(m => m.file)) }
    log(`soak: RSS per idle agent mean ${idleRss.mean} MB, max ${idleRss.max} MB (target ${RSS_TARGET_MB}); loading the CPUs`)

    const names = new Map(agents.map(a => [a.id, a.name]))
    const falses: FalseFailure[] = []
    let events = 0
    const start = Date.now()
    const at = (): number => Math.round((Date.now() - start) / 100) / 10
    for (const a of agents) {
      void follow(a, ac.signal, (event, data) => {
        if (event !== 'host:health') return
        events++
        if (data?.health === 'Unreachable') falses.push({ observer: a.name, subject: names.get(data.id) ?? data.id, at_s: at(), via: 'event' })
      })
    }
    for (let i = 0; i < o.load; i++) burners.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }))

    const loads: number[] = []
    let polls = 0
    let nextLog = start + 60_000
    while (Date.now() - start < o.durationS * 1000) {
      await sleep(5_000)
      loads.push(loadavg()[0])
      for (const a of agents) {
        try {
          const rows = await a.client.hosts()
          polls++
          for (const r of rows) {
            if (r.health !== 'Unreachable') continue
            const subject = names.get(r.id) ?? r.id
            // Counted once per episode: the event of the same episode may already be in.
            const seen = falses.some(f => f.observer === a.name && f.subject === subject && at() - f.at_s < 10)
            if (!seen) falses.push({ observer: a.name, subject, at_s: at(), via: 'poll' })
          }
        } catch {}
      }
      if (Date.now() >= nextLog) {
        log(`soak: ${Math.round((Date.now() - start) / 1000)} s, load ${loadavg()[0].toFixed(1)}, false Unreachable so far ${falses.length}`)
        nextLog += 60_000
      }
    }
    for (const a of agents) if (a.proc.exitCode != null) throw new Error(`${a.name} exited during the run: ${a.stderr()}`)
    return {
      benchmark: 'soak',
      environment: environment(),
      config: { ...o, timings: o.preset === 'lan' ? 'statusInterval 1 s, failureTimeout 3.5 s, disconnectGrace 1 s' : 'test preset' },
      formation_ms: formationMs,
      duration_s: Math.round((Date.now() - start) / 1000),
      loadavg_during: [Math.min(...loads), Math.max(...loads)].map(x => Math.round(x * 10) / 10),
      health_events: events,
      false_unreachable: falses.length,
      false_failures: falses.slice(0, 50),
      polls,
      idle_rss_mb: idleRss,
      target: { false_unreachable: 0, idle_rss_mb: RSS_TARGET_MB },
      pass: falses.length === 0,
      rss_pass: idleRss.max <= RSS_TARGET_MB
    }
  } finally {
    ac.abort()
    for (const b of burners) b.kill('SIGKILL')
    await Promise.allSettled(agents.map(async a => {
      if (a.proc.exitCode != null) return
      const exited = new Promise(resolve => a.proc.once('exit', resolve))
      a.proc.kill('SIGTERM')
      await Promise.race([exited, sleep(10_000).then(() => a.proc.kill('SIGKILL'))])
    }))
    await dirs.cleanup()
  }
}

/** The command line's options (parseArgs, node:util); every one is in USAGE. */
export const CLI_OPTIONS = {
  hosts: { type: 'string', default: String(SOAK_DEFAULTS.hosts) },
  duration: { type: 'string', default: String(SOAK_DEFAULTS.durationS) },
  load: { type: 'string', default: String(SOAK_DEFAULTS.load) },
  preset: { type: 'string', default: SOAK_DEFAULTS.preset },
  idle: { type: 'string', default: String(SOAK_DEFAULTS.idleS) }
} satisfies ParseArgsOptionsConfig

export const USAGE = `usage: npm run bench:soak -- [options]
       node dist/benchmarks/soak.js [options]     (after npm run build)

Soak benchmark: a linked group of real \`edgelink agent\` processes (dist/agent/edgelink.mjs with the
agent's Node flags, as bin/edgelink runs it), each on its own loopback IP, left running while
busy-looping processes load the CPUs, counting every time a host that never stopped is shown
Unreachable by another (a false failure), from every agent's event stream and from polling every
agent's host list every 5 s. Before the load, each agent's RSS once the group has sat idle.

options:
  --hosts N          agent processes in the group (default ${SOAK_DEFAULTS.hosts})
  --duration S       seconds the loaded group runs (default ${SOAK_DEFAULTS.durationS})
  --load N           busy-looping Node processes loading the CPUs (default: one per core, ${SOAK_DEFAULTS.load} here)
  --preset NAME      the agents' timings preset: lan or test; anything else means lan
                     (default ${SOAK_DEFAULTS.preset})
  --idle S           seconds the healthy group sits idle before RSS is read (default ${SOAK_DEFAULTS.idleS})
  -h, --help         print this help and exit

Output: one JSON object on stdout (also written to benchmarks/results/soak-latest.json); progress,
a line a minute, on stderr.

Targets: no false Unreachable over ten minutes (the default --duration); RSS per idle agent
≤ ${RSS_TARGET_MB} MB.

Exits 0 whether or not the targets are met (\`pass\` and \`rss_pass\` in the JSON say so), 1 when the run itself
fails, 2 on a bad command line.
`

async function main (): Promise<void> {
  const { values } = parseBenchArgs(USAGE, { options: CLI_OPTIONS })
  const preset = values.preset === 'test' ? 'test' : 'lan'
  const result = await run({ hosts: Number(values.hosts), durationS: Number(values.duration), load: Number(values.load), preset, idleS: Number(values.idle) })
  process.stdout.write(JSON.stringify(result, null, 2) + '\n')
  process.stderr.write(`soak: ${result.false_unreachable} false Unreachable over ${result.duration_s} s at load ${result.loadavg_during.join('–')} (target 0): ${result.pass ? 'met' : 'missed'}\n`)
  process.stderr.write(`soak: RSS per idle agent mean ${result.idle_rss_mb.mean} MB, max ${result.idle_rss_mb.max} MB (target ${RSS_TARGET_MB}): ${result.rss_pass ? 'met' : 'missed'}\n`)
  process.stderr.write(`written ${await writeResult('soak', result)}\n`)
}

if (import.meta.main) {
  main().catch(err => { process.stderr.write(`soak benchmark failed: ${err?.stack ?? err}\n`); process.exitCode = 1 })
}
