import { isIPv4, isIPv6 } from 'node:net'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { EdgelinkError } from './errors.ts'

/** `HOST:PORT`, `[v6]:PORT` or a multiaddr → a TCP multiaddr string. */
export function listenToMultiaddr (addr: string): string {
  if (addr.startsWith('/')) {
    try { return multiaddr(addr).toString() } catch (err) { throw new EdgelinkError('INVALID_ARGUMENT', `not a multiaddr: ${addr}`, { cause: err }) }
  }
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(addr) ?? /^([^:]+):(\d+)$/.exec(addr)
  const port = Number(m?.[2])
  if (m == null || !Number.isInteger(port) || port > 65535) throw new EdgelinkError('INVALID_ARGUMENT', `expected HOST:PORT, got "${addr}"`)
  return ipPort(m[1], port)
}

/** A TCP multiaddr for an IP and port. */
export function ipPort (ip: string, port: number): string {
  if (isIPv4(ip)) return `/ip4/${ip}/tcp/${port}`
  if (isIPv6(ip)) return `/ip6/${ip}/tcp/${port}`
  throw new EdgelinkError('INVALID_ARGUMENT', `not an IP address: "${ip}"`)
}

/** The IP and port of a TCP multiaddr, or undefined for other kinds. */
export function ipPortOf (ma: Multiaddr | string): { ip: string, port: number } | undefined {
  try {
    const parts = multiaddr(ma.toString()).getComponents()
    const ip = parts.find(p => p.name === 'ip4' || p.name === 'ip6')?.value
    const port = parts.find(p => p.name === 'tcp')?.value
    return ip == null || port == null ? undefined : { ip, port: Number(port) }
  } catch {
    return undefined
  }
}

export function isLoopback (ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1'
}

export function isWildcard (ip: string): boolean {
  return ip === '0.0.0.0' || ip === '::'
}

/** Drops `/p2p/…` from a multiaddr string. */
export function withoutPeer (ma: Multiaddr): string {
  const s = ma.toString()
  const i = s.indexOf('/p2p/')
  return i === -1 ? s : s.slice(0, i)
}
