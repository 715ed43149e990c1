/**
 * The mesh's stream muxer: @libp2p/yamux with every data frame at most {@link MAX_FRAME_DATA}
 * bytes, so that a frame and its header fit one Noise message.
 *
 * @libp2p/yamux 8 sends a stream's data in frames as large as the peer's receive window allows:
 * every window update resets the stream's message size to the window, and the window grows to
 * 16 MiB. The receiving muxer hands a frame to its stream only once the whole frame is in, and
 * returns the window (a WINDOW_UPDATE) only then. So with a grown window a sender puts 1 MiB or
 * more into one frame, the reader sees none of it until the last byte is in (0.34 s for 1 MiB on a
 * quarter of a 100 Mbit/s cable), and the sender, its window spent in that one frame, sends nothing
 * more on the stream until the update's round trip. A chunk whose last bytes miss a frame waits
 * for the whole next one: in the swarm benchmark each follower's first two chunks arrived together,
 * ~0.3 s after the first was sent, and every relay started that much later.
 *
 * With frames of at most one Noise message the bytes reach the reader as they arrive. The wire
 * format is unchanged: any Yamux peer reads these frames.
 *
 * The stock stream also answers every data frame with a WINDOW_UPDATE of its own: with frames
 * capped, one small frame back, one Noise message and one socket write, per 64 KiB received. On a
 * fast link those writes cost the receiver more than anything but decryption (15 % of a content
 * receiver's event loop on loopback). {@link deferWindowUpdates} returns the window once at least
 * half of it is used, as hashicorp/yamux (Go) does: the sender always holds at least half a window,
 * and a sender that used all of it is always answered.
 */
import { yamux, type YamuxMuxerInit } from '@libp2p/yamux'
import { StreamState } from '@libp2p/yamux/stream'

/** Largest Noise transport message (65535 bytes) less its tag (16) and a Yamux frame header (12). */
export const MAX_FRAME_DATA = 65535 - 16 - 12

type Factory = ReturnType<ReturnType<typeof yamux>>
type Muxer = ReturnType<Factory['createStreamMuxer']>

/**
 * Caps the frames `stream` sends at `cap` data bytes. The muxer keeps setting the stream's message
 * size to what the window allows; the cap keeps the smaller of the two.
 */
export function capFrames<T extends { maxMessageSize?: number }> (stream: T, cap = MAX_FRAME_DATA): T {
  let size = Math.min(stream.maxMessageSize ?? cap, cap)
  Object.defineProperty(stream, 'maxMessageSize', {
    get: () => size,
    set: (value: number) => { size = Math.min(value, cap) },
    configurable: true,
    enumerable: true
  })
  return stream
}

/** The Yamux stream fields and method {@link deferWindowUpdates} reads and wraps. */
interface WindowedStream {
  state: number
  recvWindow: number
  recvWindowCapacity: number
  sendWindowUpdate: () => void
}

/**
 * The stream states in which a window update carries no flag (@libp2p/yamux's getSendFlags).
 * Init and SYNReceived owe the peer a SYN or ACK, and Paused withholds updates on purpose; those
 * go to the stock method.
 */
const PLAIN_STATES = new Set<number>([StreamState.SYNSent, StreamState.Established, StreamState.Finished])

/**
 * Makes `stream` send a WINDOW_UPDATE only once the peer has used at least half of the receive
 * window; then, and for an update that carries a SYN or ACK flag or a paused stream, the stock
 * method runs (window growth included). Throws if the stream lacks the fields this relies on.
 */
export function deferWindowUpdates<T> (stream: T): T {
  const s = stream as unknown as WindowedStream
  if (typeof s.sendWindowUpdate !== 'function' || typeof s.recvWindow !== 'number' || typeof s.recvWindowCapacity !== 'number' || typeof s.state !== 'number') {
    throw new Error('@libp2p/yamux streams no longer have sendWindowUpdate/recvWindow/recvWindowCapacity/state: window updates cannot be deferred')
  }
  const send = s.sendWindowUpdate
  s.sendWindowUpdate = function (this: WindowedStream) {
    if (PLAIN_STATES.has(this.state) && this.recvWindow - this.recvWindowCapacity < this.recvWindow / 2) return
    send.call(this)
  }
  return stream
}

/**
 * `yamux(init)` whose muxers cap every stream's frames (inbound and outbound) with
 * {@link capFrames} and defer its window updates with {@link deferWindowUpdates}.
 */
export function meshYamux (init: YamuxMuxerInit = {}): ReturnType<typeof yamux> {
  const make = yamux(init)
  return () => {
    const factory: Factory = make()
    const create = factory.createStreamMuxer.bind(factory)
    factory.createStreamMuxer = (conn): Muxer => {
      const muxer = create(conn)
      // Every stream, opened here or by the peer, is made by this one method.
      const m = muxer as unknown as { _newStream?: (...args: unknown[]) => { maxMessageSize?: number } }
      const newStream = m._newStream
      if (typeof newStream !== 'function') throw new Error('@libp2p/yamux no longer makes streams through _newStream: frames cannot be capped')
      m._newStream = (...args: unknown[]) => deferWindowUpdates(capFrames(newStream.apply(muxer, args)))
      return muxer
    }
    return factory
  }
}
