import { chmod, mkdir, open, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { EdgelinkError } from './errors.ts'

export const IDENTITY_FILE = 'identity.key'

/** Creates `dir` (0700) if missing and tightens it if it is readable by others. */
export async function ensurePrivateDir (dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const st = await stat(dir)
  if ((st.mode & 0o077) !== 0) await chmod(dir, 0o700)
}

/**
 * Loads this host's Ed25519 key from `<dataDir>/identity.key`, creating it (0600) on first use.
 * The host id is the libp2p peer id of this key, so it must survive restarts.
 */
export async function loadOrCreateIdentity (dataDir: string): Promise<PrivateKey> {
  await ensurePrivateDir(dataDir)
  const file = join(dataDir, IDENTITY_FILE)
  try {
    const st = await stat(file)
    if ((st.mode & 0o077) !== 0) await chmod(file, 0o600)
    const bytes = await readFile(file)
    if (bytes.length > 4096) throw new EdgelinkError('STORE_ERROR', `${file} is not a host key`)
    const key = privateKeyFromProtobuf(bytes)
    if (key.type !== 'Ed25519') throw new EdgelinkError('STORE_ERROR', `${file} is not an Ed25519 key`)
    return key
  } catch (err: any) {
    if (err?.code !== 'ENOENT') {
      if (err instanceof EdgelinkError) throw err
      throw new EdgelinkError('STORE_ERROR', `cannot read the host key ${file}: ${err?.message ?? err}`, { cause: err })
    }
  }
  const key = await generateKeyPair('Ed25519')
  // 'wx' fails if another process created the file meanwhile, so two keys can never race.
  const fh = await open(file, 'wx', 0o600)
  try {
    await fh.writeFile(privateKeyToProtobuf(key))
    await fh.sync()
  } finally {
    await fh.close()
  }
  return key
}
