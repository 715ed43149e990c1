'use strict'
/**
 * Runtime support for the single executable (dist/bin/edgelink), bundled into it by
 * scripts/build-binary.mjs. Two things a single file cannot do by itself:
 *
 * - Native addons (classic-level's LevelDB binding) cannot be loaded from inside the executable.
 *   The build ships the `.node` file as an asset; {@link loadAddon} writes it once to a private
 *   directory, named by its SHA-256, and loads it from there with `process.dlopen`, on first
 *   use ({@link lazyAddon}).
 * - The Local UI's files (agent/ui/) are assets too; {@link uiAssetsFromSea} serves them from
 *   memory instead of from a directory next to the code.
 */
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const sea = require('node:sea')

/**
 * Directories to try for the addon, best first: `$EDGELINK_NATIVE_DIR` alone when set, else
 * `$XDG_CACHE_HOME/edgelink/native` (or `~/.cache/edgelink/native`), then
 * `<tmpdir>/edgelink-<uid>/native` (for hosts whose home is read-only or missing).
 */
function candidateDirs () {
  const env = process.env
  if (env.EDGELINK_NATIVE_DIR != null && env.EDGELINK_NATIVE_DIR !== '') return [path.resolve(env.EDGELINK_NATIVE_DIR)]
  const dirs = []
  let cache = env.XDG_CACHE_HOME != null && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : undefined
  if (cache == null) {
    try { cache = path.join(os.homedir(), '.cache') } catch {}
  }
  if (cache != null) dirs.push(path.join(cache, 'edgelink', 'native'))
  dirs.push(path.join(os.tmpdir(), `edgelink-${process.getuid()}`, 'native'))
  return dirs
}

/**
 * Makes `dir` (mode 0700 where created) and checks that only we, or root, can change what is in
 * it: it is ours and writable by nobody else, and every directory above it belongs to us or root
 * and is not writable by others unless sticky (/tmp). Anyone who could write there could make us
 * load their code.
 */
function privateDir (dir) {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  const real = fs.realpathSync(dir)
  const uid = process.getuid()
  const st = fs.statSync(real)
  if (!st.isDirectory()) throw new Error(`${real} is not a directory`)
  if (st.uid !== uid) throw new Error(`${real} belongs to uid ${st.uid}, not to ${uid}`)
  if ((st.mode & 0o022) !== 0) throw new Error(`${real} is writable by others`)
  for (let d = path.dirname(real); ; d = path.dirname(d)) {
    const up = fs.statSync(d)
    if (up.uid !== uid && up.uid !== 0) throw new Error(`${d} belongs to uid ${up.uid}`)
    if ((up.mode & 0o022) !== 0 && (up.mode & 0o1000) === 0) throw new Error(`${d} is writable by others`)
    if (path.dirname(d) === d) break
  }
  return real
}

/** True when `file` is a regular file of ours holding exactly `bytes` (never follows a symlink). */
function holds (file, bytes) {
  let fd
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
  } catch {
    return false
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile() || st.uid !== process.getuid() || st.size !== bytes.length) return false
    const have = Buffer.allocUnsafe(bytes.length)
    let off = 0
    while (off < have.length) {
      const n = fs.readSync(fd, have, off, have.length - off, off)
      if (n === 0) return false
      off += n
    }
    return have.equals(bytes)
  } finally {
    fs.closeSync(fd)
  }
}

/** Writes `bytes` to `file` through a fresh 0600 temp file and a rename: readers never see half. */
function writeOnce (file, bytes) {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600)
  try {
    let off = 0
    while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off)
    fs.fsyncSync(fd)
  } catch (err) {
    fs.closeSync(fd)
    fs.rmSync(tmp, { force: true })
    throw err
  }
  fs.closeSync(fd)
  try {
    fs.renameSync(tmp, file)
  } catch (err) {
    fs.rmSync(tmp, { force: true })
    throw err
  }
}

/**
 * The exports of the native addon shipped as asset `key` (its SHA-256 is `sha256`, computed at
 * build time). The file `<dir>/<name>-<sha256 prefix>.node` is written only when it is missing or
 * differs from the asset, so every later start reuses it.
 */
function loadAddon (key, sha256) {
  if (!sea.isSea()) throw new Error(`the native addon ${key} is an asset of the single executable; this code runs only inside it`)
  const bytes = Buffer.from(sea.getRawAsset(key))
  const name = `${path.basename(key, '.node')}-${sha256.slice(0, 16)}.node`
  const failures = []
  for (const candidate of candidateDirs()) {
    try {
      const file = path.join(privateDir(candidate), name)
      if (!holds(file, bytes)) writeOnce(file, bytes)
      const mod = { exports: {} }
      process.dlopen(mod, file, os.constants.dlopen.RTLD_NOW)
      return mod.exports
    } catch (err) {
      // A read-only home, a noexec /tmp (dlopen fails there): try the next place.
      failures.push(`${candidate}: ${err?.message ?? err}`)
    }
  }
  throw new Error(`cannot load the native addon ${key} (set EDGELINK_NATIVE_DIR to a private directory on an exec-mounted file system); tried ${failures.join('; ')}`)
}

/**
 * {@link loadAddon}, deferred to the first use of one of the addon's exports: every command
 * imports the library, but only the agent opens a database, so `edgelink --version` or
 * `edgelink hosts` neither write nor load the addon, and a failure to load it is reported by the
 * agent (as the error of opening its store) instead of crashing every command at start.
 */
function lazyAddon (key, sha256) {
  let real
  const load = () => (real ??= loadAddon(key, sha256))
  return new Proxy({}, {
    get: (_, prop) => load()[prop],
    has: (_, prop) => prop in load(),
    ownKeys: () => Reflect.ownKeys(load()),
    getOwnPropertyDescriptor: (_, prop) => {
      const d = Reflect.getOwnPropertyDescriptor(load(), prop)
      return d == null ? d : { ...d, configurable: true }
    }
  })
}

let uiCache

/**
 * The Local UI's files from the executable's assets (`ui/<file>`), in the shape agent/ui.ts's
 * `uiAssets()` returns: URL path → { type, body }. Throws like it when a file is missing.
 */
function uiAssetsFromSea (files) {
  if (uiCache != null) return uiCache
  const assets = new Map()
  for (const [url, { file, type }] of Object.entries(files)) {
    let body
    try {
      body = Buffer.from(sea.getAsset(`ui/${file}`))
    } catch {
      throw new Error(`the Local UI's file ${file} is not in this executable`)
    }
    assets.set(url, { type, body })
  }
  uiCache = assets
  return assets
}

module.exports = { lazyAddon, loadAddon, uiAssetsFromSea }
