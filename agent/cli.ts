/**
 * `edgelink`: the agent daemon and the commands that drive it. Exit codes: 0 done, 1 refused or
 * failed (one line on stderr: `edgelink: <message> (<CODE>)`), 2 usage error.
 *
 * Only `agent` loads the library and libp2p; the other commands talk to the running agent over
 * its API and start fast.
 */
import { realpathSync } from 'node:fs'
import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import type { HostRow } from '../lib/types.ts'
import { CONTENT_KINDS } from '../lib/content/types.ts'
import type { ContentRow } from './content.ts'
import { VERSION } from '../lib/version.ts'
import { AgentClient, CliError } from './client.ts'
import { ConfigFileError, option, resolveAgentConfig, settingsHelp, type AgentConfig } from './config.ts'
import { bytes, clusterSummary, contentAdded, contentTable, hostsTable, json, linkedSummary, settingsTable, shortContentId, startBanner, statusLines, watchHeader } from './output.ts'
import { ProgressView } from './progress.ts'
import { loginUrl } from './ui.ts'

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
  $ edgelink hosts --json | jq '.[] | {id, role, health}'
  $ edgelink hosts --watch --interval 1000   # redraws in place on a terminal; Ctrl-C stops
  $ edgelink hosts --watch --json >> log     # one JSON array per line`,
  settingsGet: `
Examples:
  $ edgelink settings get
  $ edgelink settings get --json | jq .ntpServers`,
  settingsSet: `
Keys: ntpServers, noProxy, caCertificates, sshKeys (comma-separated lists), httpProxy, httpsProxy,
registryMirror, values.KEY (free-form). An empty value clears the key. Only the leader may set
settings, or, while a cluster exists, any of its control-plane hosts. An unknown key or a bad
value exits 1 with INVALID_ARGUMENT and changes nothing.

Examples:
  $ edgelink settings set ntpServers=10.0.0.1,10.0.0.2 httpProxy=http://proxy:3128
  $ edgelink settings set values.site=north noProxy=`,
  clusterCreate: `
The control plane needs an odd number of hosts and must include this host (the leader); every
host must be linked, Ready and Healthy. IDs may be the tails \`edgelink hosts\` shows.

Examples:
  $ edgelink cluster create --name edge-a --control-plane …3f9aQx2LmN7p
  $ edgelink cluster create --name edge-a --control-plane h1id,h2id,h3id --worker h4id --vip 10.0.0.100`,
  clusterShow: `
Examples:
  $ edgelink cluster show
  $ edgelink cluster show --json | jq '.pools[].hosts'`,
  clusterScale: `
The control plane must stay odd. Removed hosts are Ready again.

Examples:
  $ edgelink cluster scale --add-worker …Qx2LmN7p
  $ edgelink cluster scale --remove …Qx2LmN7p --add-control-plane h4id,h5id`,
  clusterDelete: `
Every host becomes Ready again, still linked, and this host becomes the group's single leader.

Examples:
  $ edgelink cluster delete`,
  leaderTransfer: `
Run it on the leader; HOST_ID must be another member of the group. Exits 0 once HOST_ID leads.

Examples:
  $ edgelink leader transfer …3f9aQx2LmN7p`,
  status: `
Examples:
  $ edgelink status
  $ edgelink status --json | jq -r .role`,
  contentAdd: `
PATH is a regular file or an OCI image layout directory (oci-layout, index.json, blobs/) on this
machine: the agent reads it itself, so run the command on the agent's host (a relative PATH is
resolved against the current directory). Only the leader may add content, or, while a cluster
exists, a control-plane host. A progress bar shows the import on a terminal.

Examples:
  $ edgelink content add ./bundle.tar --kind bundle --name edge-bundle-1.4
  $ skopeo copy docker-archive:app.tar oci:/tmp/app:1.0 && edgelink content add /tmp/app`,
  contentLs: `
Examples:
  $ edgelink content ls
  $ edgelink content ls --json | jq '.[] | {name, percent}'`,
  contentExport: `
Single-file content is written to DEST (or into DEST when it is a directory); an OCI layout
becomes the directory DEST, which must not exist or be empty. Either comes back byte-identical.

Examples:
  $ edgelink content export 3f9a1c7e02bd /srv/bundle.tar
  $ edgelink content export 3f9a1c7e02bd /tmp/app && skopeo inspect oci:/tmp/app:1.0`,
  contentRm: `
Removes the content from the whole group (same hosts as \`content add\`); every host frees
the chunks no other content uses.

Examples:
  $ edgelink content rm 3f9a1c7e02bd`,
  contentWait: `
With ID, waits until this host holds that content complete, also while its announcement is
still on the way; without ID, until every content this host knows of is complete. Exits 0 when
complete, 1 with TIMEOUT when --timeout passes first. Progress bars on a terminal, a line every
few seconds on a pipe.

Examples:
  $ edgelink content wait 3f9a1c7e02bd --timeout 600
  $ edgelink content wait && echo "every content is here"`
}

interface Io {
  out: (s: string) => void
  err: (s: string) => void
  /** True when stdout is a terminal: `hosts --watch` redraws in place instead of appending. */
  isTTY?: boolean
  /** True when stderr is a terminal: progress is drawn as bars on process.stderr instead of printed as lines. */
  errIsTTY?: boolean
}

const stdio: Io = {
  out: s => { process.stdout.write(s) },
  err: s => { process.stderr.write(s) },
  isTTY: process.stdout.isTTY === true,
  errIsTTY: process.stderr.isTTY === true
}

/** Repeatable and comma-separated: `--worker a,b --worker c` is a, b, c. */
function commaList (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(',').map(s => s.trim()).filter(s => s !== '')]
}

/** Repeatable `KEY=VALUE` into a map. */
function keyValue (value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const eq = value.indexOf('=')
  if (eq <= 0) throw new InvalidArgumentError(`expected KEY=VALUE, got "${value}"`)
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) }
}

function seconds (value: string): number {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 7 * 86_400) throw new InvalidArgumentError('expected seconds, more than 0 and at most 604800')
  return n
}

function contentName (value: string): string {
  if (value === '' || value.length > 256) throw new InvalidArgumentError('expected a name of 1 to 256 characters')
  return value
}

function milliseconds (value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 100 || n > 3_600_000) throw new InvalidArgumentError('expected whole milliseconds between 100 and 3600000')
  return n
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
    .addOption(option('uploadRate'))
    .addOption(option('preset'))
    .addOption(option('apiSecretFile'))
    .addOption(option('metricsSecretFile'))
    .addOption(option('config'))
    .option('--print-config', 'print the resulting settings and where each came from (flag, env, file, default) as JSON, and exit')
    .addHelpText('after', settingsHelp() + '\n' + EXAMPLES.agent)
    .action(async (opts: { printConfig?: boolean }, cmd: Command) => {
      let resolved: Awaited<ReturnType<typeof resolveAgentConfig>>
      try {
        resolved = await resolveAgentConfig(cmd)
      } catch (err) {
        // A bad config file is a usage error like a bad flag: exit 2, never a half-configured agent.
        if (err instanceof ConfigFileError) cmd.error(`error: ${err.message}`, { exitCode: 2, code: 'edgelink.configFile' })
        throw err
      }
      const { printConfig: _, ...config } = resolved.config as AgentConfig & { printConfig?: boolean }
      if (opts.printConfig === true) {
        io.out(json({ file: resolved.file ?? null, settings: config, sources: resolved.sources }))
        return
      }
      await runAgent(config, io)
    })

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
    .option('--json', 'print the LinkStatus')
    .addHelpText('after', EXAMPLES.unlink)
    .action(async (hostId: string, opts: { dataDir: string, json?: boolean }) => {
      const client = await AgentClient.open(opts.dataDir)
      const [[id]] = await resolveHostIds(client, [hostId])
      const status = await client.unlink(id)
      if (opts.json === true) io.out(json(status))
      else io.out(`Unlinked ${id}. ${status.peers.length} host${status.peers.length === 1 ? '' : 's'} left in the group.\n`)
    })

  program.command('hosts')
    .description('show the Linked Edge Hosts table')
    .addOption(option('dataDir'))
    .option('--json', 'print the rows as the API returns them (with --watch: one JSON array per line)')
    .option('--watch', 'poll and redraw until Ctrl-C (clears the screen on a terminal, appends on a pipe)')
    .addOption(new Option('--interval <ms>', 'poll interval for --watch').argParser(milliseconds).default(2000))
    .addHelpText('after', EXAMPLES.hosts)
    .action(async (opts: { dataDir: string, json?: boolean, watch?: boolean, interval: number }) => {
      const client = await AgentClient.open(opts.dataDir)
      if (opts.watch === true) {
        await watchHosts(client, opts.interval, opts.json === true, io)
        return
      }
      const rows = await client.hosts()
      io.out(opts.json === true ? json(rows) : hostsTable(rows))
    })

  const settings = program.command('settings')
    .description('show or change the group\'s host settings (NTP, proxies, CA certificates, SSH keys, registry mirror, values)')
    .addHelpText('after', `
Examples:
  $ edgelink settings get
  $ edgelink settings set ntpServers=ntp1.example,ntp2.example httpsProxy=http://proxy:3128
  $ edgelink settings get --json`)
  settings.command('get')
    .description('show the group\'s settings')
    .addOption(option('dataDir'))
    .option('--json', 'print the settings object')
    .addHelpText('after', EXAMPLES.settingsGet)
    .action(async (opts: { dataDir: string, json?: boolean }) => {
      const s = await (await AgentClient.open(opts.dataDir)).settings()
      io.out(opts.json === true ? json(s) : settingsTable(s))
    })
  settings.command('set')
    .description('change settings for the whole group and print the result')
    .argument('<assignments...>', 'KEY=VALUE pairs')
    .addOption(option('dataDir'))
    .option('--json', 'print the resulting settings object')
    .addHelpText('after', EXAMPLES.settingsSet)
    .action(async (assignments: string[], opts: { dataDir: string, json?: boolean }) => {
      const s = await (await AgentClient.open(opts.dataDir)).setSettings(assignments)
      io.out(opts.json === true ? json(s) : settingsTable(s))
    })

  const cluster = program.command('cluster')
    .description('create, show, scale or delete the group\'s cluster (edgelink assigns roles; it does not install Kubernetes)')
    .addHelpText('after', `
Examples:
  $ edgelink cluster create --name edge --control-plane 3f9aQx,7LmN7p,Q2x9Zk --worker 8kT1aB --vip 10.0.0.100
  $ edgelink cluster show
  $ edgelink cluster scale --add-worker 5yHq2W
  $ edgelink cluster delete`)
  cluster.command('create')
    .description('create the cluster from linked, Ready hosts (on the leader)')
    .requiredOption('--name <name>', 'cluster name: lowercase letters, digits and dashes')
    .requiredOption('--control-plane <ids>', 'control-plane host IDs, comma-separated or repeated (an odd number, this host among them)', commaList)
    .option('--worker <ids>', 'worker host IDs, comma-separated or repeated', commaList)
    .option('--vip <ip>', 'control-plane endpoint (virtual IP)')
    .option('--profile <profile>', 'cluster profile name, for the agent that provisions the cluster')
    .option('--variable <key=value>', 'profile variable (repeatable)', keyValue)
    .option('--label <key=value>', 'node label for every host (repeatable)', keyValue)
    .option('--taint <taint>', 'taint for the control-plane hosts, comma-separated or repeated', commaList)
    .addOption(option('dataDir'))
    .option('--json', 'print the cluster definition')
    .addHelpText('after', EXAMPLES.clusterCreate)
    .action(async (opts: { name: string, controlPlane: string[], worker?: string[], vip?: string, profile?: string, variable?: Record<string, string>, label?: Record<string, string>, taint?: string[], dataDir: string, json?: boolean }) => {
      const client = await AgentClient.open(opts.dataDir)
      const [controlPlane, workers] = await resolveHostIds(client, opts.controlPlane, opts.worker ?? [])
      const c = await client.createCluster({
        name: opts.name,
        controlPlane,
        ...(workers.length > 0 ? { workers } : {}),
        ...(opts.vip != null ? { vip: opts.vip } : {}),
        ...(opts.profile != null ? { profile: opts.profile } : {}),
        ...(opts.variable != null ? { variables: opts.variable } : {}),
        ...(opts.label != null ? { labels: opts.label } : {}),
        ...(opts.taint != null ? { taints: opts.taint } : {})
      })
      io.out(opts.json === true ? json(c) : clusterSummary(c, await client.hosts()))
    })
  cluster.command('show')
    .description('show the cluster and its hosts (exits 1 with NO_CLUSTER when there is none)')
    .addOption(option('dataDir'))
    .option('--json', 'print the cluster definition')
    .addHelpText('after', EXAMPLES.clusterShow)
    .action(async (opts: { dataDir: string, json?: boolean }) => {
      const client = await AgentClient.open(opts.dataDir)
      const c = await client.cluster()
      io.out(opts.json === true ? json(c) : clusterSummary(c, await client.hosts()))
    })
  cluster.command('scale')
    .description('add hosts to or remove hosts from the cluster (on a control-plane host)')
    .option('--add-worker <ids>', 'hosts to add as workers, comma-separated or repeated', commaList)
    .option('--add-control-plane <ids>', 'hosts to add to the control plane, comma-separated or repeated', commaList)
    .option('--remove <ids>', 'hosts to take out of the cluster, comma-separated or repeated', commaList)
    .addOption(option('dataDir'))
    .option('--json', 'print the new cluster definition')
    .addHelpText('after', EXAMPLES.clusterScale)
    .action(async (opts: { addWorker?: string[], addControlPlane?: string[], remove?: string[], dataDir: string, json?: boolean }, cmd: Command) => {
      if (opts.addWorker == null && opts.addControlPlane == null && opts.remove == null) {
        cmd.error('error: give at least one of --add-worker, --add-control-plane, --remove')
      }
      const client = await AgentClient.open(opts.dataDir)
      const [addWorkers, addControlPlane, remove] = await resolveHostIds(client, opts.addWorker ?? [], opts.addControlPlane ?? [], opts.remove ?? [])
      const c = await client.scaleCluster({
        ...(addWorkers.length > 0 ? { addWorkers } : {}),
        ...(addControlPlane.length > 0 ? { addControlPlane } : {}),
        ...(remove.length > 0 ? { remove } : {})
      })
      io.out(opts.json === true ? json(c) : clusterSummary(c, await client.hosts()))
    })
  cluster.command('delete')
    .description('delete the cluster (on a control-plane host): all hosts Ready, this host leads')
    .addOption(option('dataDir'))
    .option('--json', 'print { deleted: <name> }')
    .addHelpText('after', EXAMPLES.clusterDelete)
    .action(async (opts: { dataDir: string, json?: boolean }) => {
      const res = await (await AgentClient.open(opts.dataDir)).deleteCluster()
      io.out(opts.json === true ? json(res) : `Cluster ${res.deleted ?? ''} deleted. Every host is Ready; this host leads the group.\n`)
    })

  program.command('leader')
    .description('hand the group\'s leadership to another host')
    .addHelpText('after', `
Examples:
  $ edgelink leader transfer 7LmN7p`)
    .command('transfer')
    .description('make HOST_ID the leader (run on the leader)')
    .argument('<host-id>', 'host id (or its unique tail, as `edgelink hosts` shows it)')
    .addOption(option('dataDir'))
    .option('--json', 'print the hosts rows after the transfer')
    .addHelpText('after', EXAMPLES.leaderTransfer)
    .action(async (hostId: string, opts: { dataDir: string, json?: boolean }) => {
      const client = await AgentClient.open(opts.dataDir)
      const [[id]] = await resolveHostIds(client, [hostId])
      const rows = await client.transferLeadership(id)
      io.out(opts.json === true ? json(rows) : `Leadership transferred to ${id}.\n`)
    })

  program.command('status')
    .description('summarise this host: id, group, role, node role, cluster, health, token generation, addresses, version')
    .addOption(option('dataDir'))
    .option('--json', 'print the status object')
    .addHelpText('after', EXAMPLES.status)
    .action(async (opts: { dataDir: string, json?: boolean }) => {
      const st = await (await AgentClient.open(opts.dataDir)).status()
      io.out(opts.json === true ? json(st) : statusLines(st))
    })

  program.command('ui')
    .description('print a sign-in link to this host\'s Local UI (the link holds the API secret)')
    .addOption(option('dataDir'))
    .addHelpText('after', `
The secret is in the address's fragment (after #), which the browser never sends; the page keeps
it for the tab's session and removes it from the address bar. Whoever has the link controls the host.

Examples:
  $ edgelink ui
  $ xdg-open "$(edgelink ui)"`)
    .action(async (opts: { dataDir: string }) => {
      await (await AgentClient.open(opts.dataDir)).status() // the agent answers: api.json is not stale
      io.out(`${await loginUrl(opts.dataDir)}\n`)
    })

  const content = program.command('content')
    .description('add, list, export and remove content every host of the group syncs (files and OCI image layouts)')
    .addHelpText('after', `
Examples:
  $ edgelink content add ./provider-image.tar --kind provider-image
  $ edgelink content ls
  $ edgelink content wait
  $ edgelink content export 3f9a1c ./out/`)
  content.command('add')
    .description('import a file or an OCI image layout on this host and announce it to the group (leader, or control plane with a cluster)')
    .argument('<path>', 'file or OCI layout directory on this machine (relative to the current directory)')
    .addOption(new Option('--kind <kind>', 'what the content is').choices(CONTENT_KINDS))
    .addOption(new Option('--name <name>', 'name shown in `content ls`').argParser(contentName))
    .addOption(option('dataDir'))
    .option('--json', 'print the ContentInfo')
    .addHelpText('after', EXAMPLES.contentAdd)
    .action(async (path: string, opts: { kind?: typeof CONTENT_KINDS[number], name?: string, dataDir: string, json?: boolean }) => {
      const client = await AgentClient.open(opts.dataDir)
      const abs = resolve(path)
      const view = new ProgressView(io)
      const stop = new AbortController()
      // Progress is a nicety: without the event stream the import runs the same, silently.
      await client.events((event, data) => {
        if (event === 'content:import' && data?.path === abs) view.update('import', { label: `importing ${String(data.name)}`, bytes: data.bytes, total: data.totalBytes })
      }, stop.signal).catch(() => {})
      let info
      try {
        info = await client.addContent({ path: abs, ...(opts.kind != null ? { kind: opts.kind } : {}), ...(opts.name != null ? { name: opts.name } : {}) })
      } finally {
        stop.abort()
        view.stop()
      }
      io.out(opts.json === true ? json(info) : contentAdded(info))
    })
  content.command('ls')
    .description('list the group\'s content and how much of each this host holds')
    .addOption(option('dataDir'))
    .option('--json', 'print the rows as the API returns them')
    .addHelpText('after', EXAMPLES.contentLs)
    .action(async (opts: { dataDir: string, json?: boolean }) => {
      const client = await AgentClient.open(opts.dataDir)
      const rows = await client.contentList()
      if (opts.json === true) {
        io.out(json(rows))
        return
      }
      const names = new Map((await client.hosts().catch(() => [])).map(r => [r.id, r.config.name]))
      io.out(contentTable(rows, names))
    })
  content.command('export')
    .description('write complete content back, byte-identical: a file, or an OCI layout directory')
    .argument('<id>', 'content id, or a unique prefix of 6 or more digits')
    .argument('<dest>', 'file or directory to write on this machine (relative to the current directory)')
    .option('--overwrite', 'replace an existing file (single-file content)')
    .addOption(option('dataDir'))
    .option('--json', 'print { id, path }')
    .addHelpText('after', EXAMPLES.contentExport)
    .action(async (id: string, dest: string, opts: { overwrite?: boolean, dataDir: string, json?: boolean }) => {
      const client = await AgentClient.open(opts.dataDir)
      const res = await client.exportContent(id, { dest: resolve(dest), ...(opts.overwrite === true ? { overwrite: true } : {}) })
      io.out(opts.json === true ? json(res) : `Exported ${shortContentId(res.id)} to ${res.path}.\n`)
    })
  content.command('rm')
    .description('remove content from the group: every host frees its chunks (leader, or control plane with a cluster)')
    .argument('<id>', 'content id, or a unique prefix of 6 or more digits')
    .addOption(option('dataDir'))
    .option('--json', 'print { removed, name }')
    .addHelpText('after', EXAMPLES.contentRm)
    .action(async (id: string, opts: { dataDir: string, json?: boolean }) => {
      const res = await (await AgentClient.open(opts.dataDir)).removeContent(id)
      io.out(opts.json === true ? json(res) : `Removed ${res.name} (${shortContentId(res.removed)}) from the group.\n`)
    })
  content.command('wait')
    .description('wait until this host holds ID (or every content it knows of) complete')
    .argument('[id]', 'content id, or a unique prefix of 6 or more digits')
    .addOption(new Option('--timeout <seconds>', 'give up after this long: exit 1 with TIMEOUT').argParser(seconds))
    .addOption(option('dataDir'))
    .option('--json', 'print the content rows once complete')
    .addHelpText('after', EXAMPLES.contentWait)
    .action(async (id: string | undefined, opts: { timeout?: number, dataDir: string, json?: boolean }) => {
      const client = await AgentClient.open(opts.dataDir)
      const rows = await waitForContent(client, id, opts.timeout, io)
      if (opts.json === true) io.out(json(rows))
      else if (rows.length === 0) io.out('Nothing to wait for: this host knows of no content.\n')
      else io.out(rows.map(r => `${r.name} (${shortContentId(r.id)}) is complete here: ${bytes(r.size)}.\n`).join(''))
    })

  return program
}

/** How often `content wait` asks for the whole state; events in between wake it early. */
const WAIT_POLL = 2_000

/**
 * `content wait`: follows the agent's event stream for progress (and to wake up when a content
 * completes or arrives), and polls the content list as the source of truth, so a missed event or
 * a lost stream only delays the answer. Resolves with the rows waited for once complete.
 */
async function waitForContent (client: AgentClient, id: string | undefined, timeout: number | undefined, io: Io): Promise<ContentRow[]> {
  const deadline = timeout != null ? Date.now() + timeout * 1000 : Infinity
  const stop = new AbortController()
  const view = new ProgressView(io)
  let wake = (): void => {}
  const matches = (cid: string): boolean => id == null || cid === id || (id.length >= 6 && cid.startsWith(id))
  const onEvent = (event: string, data: any): void => {
    if (event === 'content:progress' && typeof data?.id === 'string' && matches(data.id)) {
      view.update(data.id, { label: String(data.name || shortContentId(data.id)), bytes: data.bytes, total: data.totalBytes, rate: data.rate, eta: data.eta })
    }
    if (event === 'content:complete' || event === 'content:added' || event === 'content:removed') wake()
  }
  // The stream, reconnected while waiting (an agent restart); polling carries on meanwhile.
  void (async () => {
    while (!stop.signal.aborted) {
      try {
        const { closed } = await client.events(onEvent, stop.signal)
        wake() // anything between the last poll and the subscription
        await closed
      } catch {}
      await sleep(1_000, undefined, { signal: stop.signal }).catch(() => {})
    }
  })()

  let seen = false
  let announced = false
  let last: ContentRow[] = []
  try {
    for (let first = true; ; first = false) {
      let rows: ContentRow[] | undefined
      try {
        rows = await client.contentList(stop.signal)
      } catch (err: any) {
        if (first) throw err
        io.err(`edgelink: ${String(err?.message ?? err)}${err?.code != null ? ` (${String(err.code)})` : ''}; still waiting
`)
      }
      if (rows != null) {
        const target = rows.filter(r => matches(r.id))
        if (id != null && target.length > 1) throw new CliError(`content id ${id} is ambiguous: it matches ${target.length} contents`, 'INVALID_ARGUMENT')
        if (id != null && target.length === 0) {
          if (seen) throw new CliError(`content ${id} was removed from the group`, 'UNKNOWN_CONTENT')
          if (!announced) io.err(`content ${id} is not known on this host yet; waiting for it to be announced
`)
          announced = true
        } else {
          seen = true
          last = target
          for (const r of target) view.update(r.id, { label: r.name || shortContentId(r.id), bytes: r.haveBytes, total: r.totalBytes })
          if (target.every(r => r.complete)) return target
        }
      }
      const left = deadline - Date.now()
      if (left <= 0) {
        const behind = last.filter(r => !r.complete)
        const what = behind.length === 0 ? `content ${id ?? ''} was never announced to this host` : behind.map(r => `${r.name} ${r.percent}%`).join(', ')
        throw new CliError(`not complete after ${timeout}s: ${what}`, 'TIMEOUT')
      }
      await new Promise<void>(resolve => {
        const timer = setTimeout(done, Math.min(WAIT_POLL, left))
        function done (): void { clearTimeout(timer); wake = () => {}; resolve() }
        wake = done
      })
    }
  } finally {
    stop.abort()
    view.stop()
  }
}

/**
 * Every host-id argument goes through here: the table shows `…<tail>`, so a full id or any
 * unique tail names a host. One hosts call for all the lists; an unmatched id passes through for
 * the library to refuse (UNKNOWN_HOST), an ambiguous tail is refused here.
 */
async function resolveHostIds (client: AgentClient, ...lists: string[][]): Promise<string[][]> {
  if (lists.every(l => l.length === 0)) return lists
  const rows = await client.hosts()
  const one = (given: string): string => {
    const tail = given.replace(/^\u2026/, '') // a leading … (as `edgelink hosts` shows IDs)
    if (tail === '' || rows.some(r => r.id === tail)) return tail
    const matches = rows.filter(r => r.id.endsWith(tail))
    if (matches.length > 1) throw new CliError(`"${given}" matches ${matches.length} hosts; give more of the ID`, 'INVALID_ARGUMENT')
    return matches.length === 1 ? matches[0].id : tail
  }
  return lists.map(l => l.map(one))
}

/**
 * `hosts --watch`: poll the API and redraw. Ctrl-C (or SIGTERM) ends it with exit 0. The first
 * poll failing is an error like any command's; later failures (an agent restarting) are reported
 * on stderr and polling goes on.
 */
async function watchHosts (client: AgentClient, interval: number, asJson: boolean, io: Io): Promise<void> {
  const stop = new AbortController()
  const onSignal = (): void => { stop.abort() }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    for (let first = true; !stop.signal.aborted; first = false) {
      let rows: HostRow[] | undefined
      try {
        rows = await client.hosts(stop.signal)
      } catch (err: any) {
        if (stop.signal.aborted) break
        if (first) throw err
        io.err(`edgelink: ${String(err?.message ?? err)}${err?.code != null ? ` (${String(err.code)})` : ''}; still polling\n`)
      }
      if (rows != null) {
        if (asJson) io.out(JSON.stringify(rows) + '\n')
        else io.out(`${io.isTTY === true ? '\x1b[H\x1b[2J' : first ? '' : '\n'}${watchHeader(interval)}${hostsTable(rows)}`)
      }
      await sleep(interval, undefined, { signal: stop.signal }).catch(() => {})
    }
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
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
let pipeGuard = false

/** `edgelink hosts | head`: a reader that goes away ends the command quietly (exit 0), not with a stack trace. */
function exitOnClosedPipe (): void {
  if (pipeGuard) return
  pipeGuard = true
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0)
      throw err
    })
  }
}

export async function main (argv: string[], io: Io = stdio): Promise<number> {
  if (io === stdio) exitOnClosedPipe()
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
