/**
 * Every agent setting, declared once: its flag, its environment variable, its default and the
 * help text commander renders. Commands build their options from this table, so a setting
 * cannot drift between `--help`, the environment and the code that reads it.
 */
import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { isIP } from 'node:net'
import { join, resolve } from 'node:path'
import { InvalidArgumentError, Option, type Command } from 'commander'
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
  /** A file holding the API bearer secret; without it the agent makes a random one at each start. */
  apiSecretFile?: string
  metricsSecretFile?: string
  /** The config file given with `--config` / `EDGELINK_CONFIG` (never read from a file itself). */
  config?: string
  preset: 'lan' | 'test'
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
  /** False for settings a config file cannot hold. */
  inFile?: boolean
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
  },
  apiSecretFile: {
    flags: '--api-secret-file <file>',
    env: 'EDGELINK_API_SECRET_FILE',
    help: 'read the API bearer secret from this file (16 to 1024 printable characters; the file must not be readable by group or others) instead of making a new one at each start: for clients that keep the secret, such as a Prometheus scrape of /metrics',
    defaultText: 'a new random secret at each start'
  },
  metricsSecretFile: {
    flags: '--metrics-secret-file <file>',
    env: 'EDGELINK_METRICS_SECRET_FILE',
    help: 'a second bearer secret, read from this file (same rules as --api-secret-file), that is good for GET /metrics and nothing else: give a Prometheus scrape this one rather than the API secret',
    defaultText: 'none (only the API secret reads /metrics)'
  },
  config: {
    flags: '--config <file>',
    env: 'EDGELINK_CONFIG',
    help: 'JSON file of settings (see below); flags and EDGELINK_* variables override it',
    defaultText: '<data-dir>/edgelink.json, if it exists',
    inFile: false
  },
  preset: { flags: '--preset <name>', env: 'EDGELINK_PRESET', help: 'timing preset: lan, or test (heartbeat, failure detection, anti-entropy and elections in about a second, for test beds)', default: 'lan', choices: ['lan', 'test'] }
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

// ------------------------------------------------------------------ the config file

/** The config file read when neither `--config` nor `EDGELINK_CONFIG` names one (if it exists). */
export const CONFIG_FILE = 'edgelink.json'

/** Keys a config file may hold: the settings' names as in {@link AgentConfig}. */
export const FILE_KEYS = (Object.keys(SETTINGS) as SettingName[]).filter(k => (SETTINGS[k] as Setting).inFile !== false)

/** Where a setting's value came from, highest precedence first. */
export type SettingSource = 'flag' | 'env' | 'file' | 'default'

/** A config file that cannot be used: a usage error (exit 2) naming the file and the key. */
export class ConfigFileError extends Error {
  override readonly name = 'ConfigFileError'
}

/**
 * Reads a config file: a JSON object whose keys are setting names (`listen`, `uploadRate`, …) and
 * whose values are what the flag takes — a string; for `advertise` also a list of strings, for
 * `uploadRate` also a number of bytes — checked by the flags' own parsers. An unknown key or a
 * wrong type is refused naming the key, so a typo never silently means the default. Resolves
 * undefined when the file does not exist and is not `required`.
 */
export async function readConfigFile (file: string, opts: { required: boolean, allowDataDir: boolean }): Promise<Partial<AgentConfig> | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err: any) {
    if (err?.code === 'ENOENT' && !opts.required) return undefined
    throw new ConfigFileError(`config file ${file}: ${err?.code === 'ENOENT' ? 'no such file' : String(err?.message ?? err)}`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err: any) {
    throw new ConfigFileError(`config file ${file}: not valid JSON: ${String(err?.message ?? err)}`)
  }
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigFileError(`config file ${file}: expected a JSON object of settings`)
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(raw)) {
    const bad = (why: string): ConfigFileError => new ConfigFileError(`config file ${file}: "${key}" ${why}`)
    if (!(FILE_KEYS as string[]).includes(key)) throw bad(`is not a setting (known: ${FILE_KEYS.join(', ')})`)
    if (key === 'dataDir' && !opts.allowDataDir) throw bad('cannot be set in the data dir\'s own config file; keep the file elsewhere and name it with --config')
    try {
      out[key] = fileValue(SETTINGS[key as SettingName], value)
    } catch (err: any) {
      throw bad(err instanceof TypeError ? err.message : `is invalid: ${String(err?.message ?? err)}`)
    }
  }
  return out as Partial<AgentConfig>
}

/** One config-file value through the setting's own parser; a TypeError names the type expected. */
function fileValue (s: Setting, value: unknown): unknown {
  const parse = (v: string, previous?: unknown): unknown => {
    if (s.choices != null && !s.choices.includes(v)) throw new InvalidArgumentError(`expected one of ${s.choices.join(', ')}, got "${v}"`)
    return s.parse != null ? s.parse(v, previous) : v
  }
  if (Array.isArray(s.default)) {
    const list = typeof value === 'string' ? [value] : value
    if (!Array.isArray(list) || !list.every(v => typeof v === 'string')) throw new TypeError('must be a string or a list of strings')
    return list.reduce<unknown>((acc, v) => parse(v, acc), undefined) ?? []
  }
  if (typeof s.default === 'number') {
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value
    if (typeof value !== 'string') throw new TypeError('must be a whole number ≥ 0 or a string such as "4M"')
    return parse(value)
  }
  if (typeof value !== 'string') throw new TypeError('must be a string')
  if (value === '') throw new TypeError('must not be empty')
  return parse(value)
}

const SOURCES: Record<string, SettingSource> = { cli: 'flag', env: 'env', config: 'file', default: 'default' }

/**
 * Fills every setting neither a flag nor a variable set from the config file (precedence: flag >
 * environment > file > default), and says where each value came from. The file is `--config` /
 * `EDGELINK_CONFIG` (it must exist), else `<data-dir>/edgelink.json` if present. Throws
 * {@link ConfigFileError}.
 */
export async function resolveAgentConfig (cmd: Command): Promise<{ config: AgentConfig, sources: Record<string, SettingSource>, file?: string }> {
  const given = cmd.getOptionValue('config') as string | undefined
  const file = given != null ? resolve(given) : join(cmd.getOptionValue('dataDir') as string, CONFIG_FILE)
  const values = await readConfigFile(file, { required: given != null, allowDataDir: given != null })
  for (const [key, value] of Object.entries(values ?? {})) {
    const source = cmd.getOptionValueSource(key)
    if (source == null || source === 'default') cmd.setOptionValueWithSource(key, value, 'config')
  }
  const sources: Record<string, SettingSource> = {}
  for (const key of Object.keys(SETTINGS)) sources[key] = SOURCES[cmd.getOptionValueSource(key) ?? 'default'] ?? 'default'
  return { config: cmd.opts() as AgentConfig, sources, ...(values != null ? { file } : {}) }
}

/** `edgelink agent --help`: precedence, where the file is, its keys. */
export function settingsHelp (): string {
  return `
Settings: a flag wins over its EDGELINK_* variable, which wins over the config file, which wins
over the default. The config file is JSON, one key per setting, named like the flag in camelCase:
  { "listen": "10.0.0.1:7400", "advertise": ["10.0.0.1"], "uploadRate": "4M", "logLevel": "info" }
Keys: ${wrap(`${FILE_KEYS.join(', ')} (dataDir only in a file named with --config).`, 94, '      ')}
The file is --config / EDGELINK_CONFIG (it must exist), else <data-dir>/edgelink.json if that
exists. An unknown key or a wrong value is a usage error (exit 2) that names the key.
--print-config prints the resulting settings and where each came from.`
}

function wrap (text: string, width: number, indent: string): string {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }
  return [...lines, line].join(`\n${indent}`)
}
