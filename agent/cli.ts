/**
 * `edgelink`: the agent daemon and the commands that drive it. Exit codes: 0 done, 1 refused or
 * failed (one line on stderr: `edgelink: <message> (<CODE>)`), 2 usage error.
 *
 * Only `agent` loads the library and libp2p; the other commands talk to the running agent over
 * its API and start fast.
 */
import { realpathSync } from 'node:fs'
import { Argument, Command, CommanderError } from 'commander'
import { VERSION } from '../lib/version.ts'
import { AgentClient, CliError } from './client.ts'
import { option, type AgentConfig } from './config.ts'
import { hostsTable, json, linkedSummary, startBanner } from './output.ts'

const EXAMPLES = {
  agent: `
Examples:
  $ edgelink agent --listen 10.0.0.1:7400 --name edge-1
  $ EDGELINK_ADVERTISE=203.0.113.7 edgelink agent --data-dir /var/lib/edgelink`,
  token: `
Examples:
  $ edgelink token                  # on the leader; prints only the token
  $ ssh edge-2 edgelink link "$(edgelink token)"
  $ edgelink token stop             # every live token stops working`,
  link: `
Examples:
  $ edgelink link elk1...           # the token printed by \`edgelink token\` on the leader
  $ edgelink link "$TOKEN" --json`,
  unlink: `
Examples:
  $ edgelink unlink …3f9aQx2LmN7p   # on the leader; the ID tail shown by \`edgelink hosts\` is enough
  $ edgelink unlink "$(edgelink hosts --json | jq -r '.[] | select(.self) | .id')"   # on a follower: leave`,
  hosts: `
Examples:
  $ edgelink hosts
  $ edgelink hosts --json | jq '.[] | {id, role, health}'`
}

interface Io { out: (s: string) => void, err: (s: string) => void }

const stdio: Io = {
  out: s => { process.stdout.write(s) },
  err: s => { process.stderr.write(s) }
}

export function buildProgram (io: Io = stdio): Command {
  const program = new Command('edgelink')
    .description('Link air-gapped edge hosts into a group over a members-only libp2p mesh.')
    .version(VERSION)
    // Usage errors must be told apart from refusals: throw, and main() turns them into exit 2.
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
  program.addHelpText('after', `
Start \`edgelink agent\` on every host, run \`edgelink token\` on the one that should lead, then
\`edgelink link <token>\` on each other host. \`edgelink hosts\` shows the group.`)

  program.command('agent')
    .description('run the agent: the mesh host and its local HTTP API (stop with SIGTERM or Ctrl-C)')
    .addOption(option('dataDir'))
    .addOption(option('listen'))
    .addOption(option('api'))
    .addOption(option('advertise'))
    .addOption(option('name'))
    .addOption(option('logLevel'))
    .addHelpText('after', EXAMPLES.agent)
    .action(async (opts: AgentConfig) => { await runAgent(opts, io) })

  program.command('token')
    .description('print a live link token (starts token generation, and a group led by this host, if needed)')
    .addArgument(new Argument('[action]', '"stop" stops token generation: every live token dies').choices(['stop']))
    .addOption(option('dataDir'))
    .option('--json', 'print the token object (token, interval, remainingTime, expiresAt, tokenId)')
    .addHelpText('after', EXAMPLES.token)
    .action(async (action: string | undefined, opts: { dataDir: string, json?: boolean }) => {
      const client = await AgentClient.open(opts.dataDir)
      if (action === 'stop') {
        const res = await client.stopTokenGeneration()
        if (opts.json === true) io.out(json(res))
        else io.err('Token generation stopped; no token works any more.\n')
        return
      }
      const t = await client.generateToken()
      if (opts.json === true) {
        io.out(json(t))
      } else {
        // Only the token on stdout, so `$(edgelink token)` is the token.
        io.out(`${t.token}\n`)
        io.err(`valid for ${t.remainingTime}s; paste it into \`edgelink link <token>\` on each other host\n`)
      }
    })

  program.command('link')
    .description('link this host to the group of the leader that issued TOKEN (exits 0 once Completed)')
    .argument('<token>', 'link token from `edgelink token` on the leader')
    .addOption(option('dataDir'))
    .option('--json', 'print the LinkStatus')
    .addHelpText('after', EXAMPLES.link)
    .action(async (token: string, opts: { dataDir: string, json?: boolean }) => {
      const client = await AgentClient.open(opts.dataDir)
      let status
      try {
        status = await client.link(token)
      } catch (err) {
        if (opts.json === true && err instanceof CliError && err.body != null) io.out(json(err.body))
        throw err
      }
      if (opts.json === true) io.out(json(status))
      else io.out(linkedSummary(status))
      if (status.status !== 'Completed') throw new CliError(`link ended ${status.status}`, status.errorCode)
    })

  program.command('unlink')
    .description('unlink a follower: on the leader any follower, on a follower only itself')
    .argument('<host-id>', 'host id (or its unique tail, as `edgelink hosts` shows it)')
    .addOption(option('dataDir'))
    .addHelpText('after', EXAMPLES.unlink)
    .action(async (hostId: string, opts: { dataDir: string }) => {
      const client = await AgentClient.open(opts.dataDir)
      const id = await resolveHostId(client, hostId)
      const status = await client.unlink(id)
      io.out(`Unlinked ${id}. ${status.peers.length} host${status.peers.length === 1 ? '' : 's'} left in the group.\n`)
    })

  program.command('hosts')
    .description('show the Linked Edge Hosts table')
    .addOption(option('dataDir'))
    .option('--json', 'print the rows as the API returns them')
    .addHelpText('after', EXAMPLES.hosts)
    .action(async (opts: { dataDir: string, json?: boolean }) => {
      const rows = await (await AgentClient.open(opts.dataDir)).hosts()
      io.out(opts.json === true ? json(rows) : hostsTable(rows))
    })

  return program
}

/** The table shows `…<tail>`; accept that (or any unique tail) for the full id. */
async function resolveHostId (client: AgentClient, given: string): Promise<string> {
  const tail = given.replace(/^…/, '')
  const rows = await client.hosts()
  if (rows.some(r => r.id === tail)) return tail
  const matches = rows.filter(r => r.id.endsWith(tail))
  return matches.length === 1 ? matches[0].id : tail
}

async function runAgent (config: AgentConfig, io: Io): Promise<void> {
  // Loaded here so that the API commands do not pay for libp2p at start.
  const { createLogger, startAgent } = await import('./daemon.ts')
  const logger = createLogger(config.logLevel)
  const agent = await startAgent(config, logger)
  const { host } = agent
  io.err(startBanner({
    id: host.id,
    mesh: host.multiaddrs.map(String),
    url: agent.url,
    linked: host.isLinked(),
    leader: host.isLeader(),
    hosts: host.hosts().length
  }))
  let stopping = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(1) // a second Ctrl-C: the operator does not want to wait
    stopping = true
    logger.info({ signal }, 'stopping')
    // The host closes connections with timeouts of its own; never hang a service manager.
    setTimeout(() => { logger.error('shutdown took too long'); process.exit(1) }, 15_000).unref()
    agent.stop().then(() => { process.exit(0) }, (err: unknown) => {
      logger.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
}

/** Runs one command line; resolves with the exit code (the agent keeps running after it resolves). */
export async function main (argv: string[], io: Io = stdio): Promise<number> {
  try {
    await buildProgram(io).parseAsync(argv, { from: 'user' })
    return 0
  } catch (err: any) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2
    const code = typeof err?.code === 'string' ? err.code : undefined
    const message = String(err?.message ?? err).split('\n')[0]
    io.err(`edgelink: ${message}${code != null ? ` (${code})` : ''}\n`)
    return 1
  }
}

// Keep the CLI importable (tests build the program in-process) without running it.
if (process.argv[1] != null && realpathSync(process.argv[1]) === import.meta.filename) {
  process.exitCode = await main(process.argv.slice(2))
}
