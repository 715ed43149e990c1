/**
 * Every agent setting, declared once: its flag, its environment variable, its default and the
 * help text commander renders. Commands build their options from this table, so a setting
 * cannot drift between `--help`, the environment and the code that reads it.
 */
import { homedir } from 'node:os'
import { isIP } from 'node:net'
import { join } from 'node:path'
import { InvalidArgumentError, Option } from 'commander'
// options.ts, not index.ts: CLI calls that only talk to the API should not load libp2p.
import { DEFAULTS } from '../lib/options.ts'

/** The agent's resolved settings, as commander hands them to an action. */
export interface AgentConfig {
  dataDir: string
  listen: string
  api: string
  advertise: string[]
  name?: string
  logLevel: string
  uploadRate: number
}

/** `<data-dir>/api.json`: where the running agent's API is and the secret it wants. */
export const API_FILE = 'api.json'

/** What api.json holds. Written 0600: the secret grants full control of the host. */
export interface ApiFile {
  url: string
  token: string
  /** The agent's process id, so a reader can tell a fresh file from one left by a crash. */
  pid: number
}

interface Setting {
  flags: string
  env: string
  help: string
  /** The value when neither the flag nor the variable is set; undefined lets the library decide. */
  default?: unknown
  /** How the default reads in `--help` when the value itself would mislead (computed, or left to the library). */
  defaultText?: string
  parse?: (value: string, previous: any) => unknown
  choices?: string[]
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']

/** `$XDG_STATE_HOME/edgelink`, else `~/.local/state/edgelink` (the XDG base-directory default). */
export function defaultDataDir (env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_STATE_HOME
  return xdg != null && xdg !== '' ? join(xdg, 'edgelink') : join(homedir(), '.local', 'state', 'edgelink')
}

/** `HOST:PORT` or `[v6]:PORT` → parts; commander turns the thrown error into a usage error (exit 2). */
export function parseHostPort (value: string): { host: string, port: number } {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(value) ?? /^([^:[\]]+):(\d{1,5})$/.exec(value)
  const port = Number(m?.[2])
  if (m == null || port > 65535) throw new InvalidArgumentError(`expected HOST:PORT, got "${value}"`)
  return { host: m[1], port }
}

function hostPort (value: string): string {
  parseHostPort(value)
  return value
}

/** Repeatable and comma-separated, so `--advertise a --advertise b` and `EDGELINK_ADVERTISE=a,b` agree. */
function ipList (value: string, previous: string[] | undefined): string[] {
  const ips = value.split(',').map(s => s.trim()).filter(s => s !== '')
  for (const ip of ips) if (isIP(ip) === 0) throw new InvalidArgumentError(`not an IP address: "${ip}"`)
  return [...(previous ?? []), ...ips]
}

const SIZE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }

/**
 * Bytes, optionally with a binary suffix: `4194304`, `4M`, `4MiB` and `4m` are all 4 MiB. A
 * usage error (exit 2) for anything else, so a typo never means "unlimited".
 */
export function parseBytes (value: string): number {
  const m = /^(\d+)\s*(?:([kmgKMG])(?:i?B)?)?$/.exec(value.trim())
  const n = m == null ? NaN : Number(m[1]) * SIZE_UNITS[(m[2] ?? '').toUpperCase()]
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected a number of bytes such as 4194304 or 4M, got "${value}"`)
  return n
}

const SETTINGS = {
  dataDir: {
    flags: '--data-dir <dir>',
    env: 'EDGELINK_DATA_DIR',
    help: 'directory for the host key, the store and api.json (the agent\'s API address and secret)',
    default: defaultDataDir(),
    defaultText: '$XDG_STATE_HOME/edgelink or ~/.local/state/edgelink'
  },
  listen: {
    flags: '--listen <host:port>',
    env: 'EDGELINK_LISTEN',
    help: 'mesh address other hosts connect to; listen on one exact address when the host has interfaces the mesh must not use',
    default: DEFAULTS.listen[0],
    parse: hostPort
  },
  api: {
    flags: '--api <host:port>',
    env: 'EDGELINK_API',
    help: 'address of the local HTTP API (port 0 picks a free port); keep it on loopback: it speaks plain HTTP',
    default: `127.0.0.1:${DEFAULTS.apiPort}`,
    parse: hostPort
  },
  advertise: {
    flags: '--advertise <ip>',
    env: 'EDGELINK_ADVERTISE',
    help: 'IP other hosts should dial, put in tokens and the roster (repeat or comma-separate for several)',
    default: [],
    defaultText: 'the listen address, or every non-loopback interface address when listening on 0.0.0.0',
    parse: ipList
  },
  name: {
    flags: '--name <name>',
    env: 'EDGELINK_NAME',
    help: 'name shown for this host in the hosts table',
    defaultText: 'the OS hostname'
  },
  logLevel: {
    flags: '--log-level <level>',
    env: 'EDGELINK_LOG_LEVEL',
    help: 'log level (logs go to stderr: pretty on a terminal, JSON lines otherwise)',
    default: 'info',
    choices: LOG_LEVELS
  },
  uploadRate: {
    flags: '--upload-rate <bytes>',
    env: 'EDGELINK_UPLOAD_RATE',
    help: 'most content bytes per second this host sends to all peers together (K, M, G suffixes are powers of 1024; 0 for no limit); leaves room on a link shared with other traffic',
    default: 0,
    defaultText: '0 (no limit)',
    parse: parseBytes
  }
} satisfies Record<keyof AgentConfig, Setting>

export type SettingName = keyof typeof SETTINGS

/** A fresh commander Option for one setting (commander options cannot be shared between commands). */
export function option (name: SettingName): Option {
  const s: Setting = SETTINGS[name]
  // commander shows "(default: …)" only for defined values; say who decides an undefined one.
  const help = s.default === undefined && s.defaultText != null ? `${s.help} (default: ${s.defaultText})` : s.help
  const opt = new Option(s.flags, help).env(s.env)
  if (s.parse != null) opt.argParser(s.parse)
  if (s.choices != null) opt.choices(s.choices)
  if (s.default !== undefined) opt.default(s.default, s.defaultText)
  return opt
}

/** The environment variables the table reads, for tests and `--help`. */
export const ENV_VARS = Object.values(SETTINGS).map(s => s.env)
