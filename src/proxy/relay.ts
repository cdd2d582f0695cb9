// The byte relay between the two sockets of a tunnel: every chunk read from one side is written to the other,
// with backpressure (a side whose peer has not taken the last chunk stops reading) and half-close (one side's end
// of reads becomes end() on the other's writes).
//
// Reads go into memory wsgate owns instead of a fresh allocation per chunk. Node's stream sockets allocate a new
// backing store for every read (64 KiB, then shrunk), so a busy tunnel makes garbage at the rate it relays, and a
// process under load holds tens of MB of it between collections, whatever its connections' buffers. Node can read
// into a caller's buffer instead (the `onread` option of net.Socket); for sockets wsgate did not construct (an
// accepted client, a TLS socket) the same switch is made on the socket itself (see USER_BUFFERS). The scheme, after
// HAProxy's dynamic buffers:
//  1. every quiet socket reads into one shared landing buffer;
//  2. the first chunk that lands there is copied into a buffer of the pool, which that socket reads into from then
//     on, so the landing buffer is free again before anything else can read;
//  3. a chunk is written to the peer straight from that buffer; if the write does not complete at once, the socket
//     stops reading until it has (the buffer is not reused while the kernel may still read it);
//  4. the sweep gives a buffer back to the pool when its socket has read nothing since the last sweep.
// An idle tunnel therefore holds no buffer, and a busy one at most one per direction. Where the switch is not
// available (another Node version), the relay falls back to 'data' events; /debug says which is in use.
import type { Socket } from 'node:net';
import net from 'node:net';
import type { WsSession } from './ws-session.ts';

/**
 * Size of a read buffer: HAProxy's default tune.bufsize. A busy direction holds one (plus what its peer's socket
 * has queued), so a flood from a client that does not read costs tens of KB, not MB.
 */
export const READ_BUFFER_BYTES = 16 * 1024;
/**
 * Read buffers of L4 tunnels: bulk transfers, no frame tracking, so fewer and larger reads pay (a read and a write
 * per 64 KiB instead of per 16 KiB).
 */
export const BULK_READ_BUFFER_BYTES = 64 * 1024;
/** Free buffers kept for reuse; more than this go to the garbage collector. */
const POOL_MAX = 64;

/**
 * The internal symbols through which net.Socket reads into a caller's buffer (lib/net.js, `onread` option):
 * found on a socket by their descriptions, and used only if they behave as expected (checked by a probe at load).
 */
interface UserBufferSymbols {
  readonly kBuffer: symbol;
  readonly kBufferCb: symbol;
}

interface UserBufferHandle {
  useUserBuffer(buf: Uint8Array): void;
}

function findUserBufferSymbols(): UserBufferSymbols | undefined {
  if (process.env['WSGATE_STREAM_RELAY'] === '1') return undefined;
  const probe = new net.Socket();
  const syms = Object.getOwnPropertySymbols(probe);
  const kBuffer = syms.find((s) => s.description === 'kBuffer');
  const kBufferCb = syms.find((s) => s.description === 'kBufferCb');
  probe.destroy();
  if (!kBuffer || !kBufferCb) return undefined;
  return { kBuffer, kBufferCb };
}

/** How reads reach the relay in this process: `user-buffer` (pooled, reused memory) or `stream` ('data' events). */
const USER_BUFFERS = findUserBufferSymbols();
export const RELAY_MODE: 'user-buffer' | 'stream' = USER_BUFFERS ? 'user-buffer' : 'stream';

/** The shared landing buffers, one per read-buffer size: a socket never reads more than its own buffer holds. */
const LANDING = new Map<number, Buffer>([
  [READ_BUFFER_BYTES, Buffer.allocUnsafe(READ_BUFFER_BYTES)],
  [BULK_READ_BUFFER_BYTES, Buffer.allocUnsafe(BULK_READ_BUFFER_BYTES)],
]);
const pools = new Map<number, Buffer[]>([
  [READ_BUFFER_BYTES, []],
  [BULK_READ_BUFFER_BYTES, []],
]);
let buffersOut = 0;

function acquire(size: number): Buffer {
  buffersOut++;
  return pools.get(size)!.pop() ?? Buffer.allocUnsafe(size);
}

function release(buf: Buffer): void {
  buffersOut--;
  const pool = pools.get(buf.length)!;
  if (pool.length < POOL_MAX) pool.push(buf);
}

/** Read buffers held by sockets now, and free in the pools (for /debug and tests). */
export function relayBuffers(): { inUse: number; pooled: number } {
  let pooled = 0;
  for (const p of pools.values()) pooled += p.length;
  return { inUse: buffersOut, pooled };
}

const PEER = Symbol('wsgate.relay.peer');
/** The socket's own read buffer from the pool, or undefined while it reads into the landing buffer. */
const OWN = Symbol('wsgate.relay.own');
/** The socket stopped reading until its peer has taken the last chunk. */
const WAITING = Symbol('wsgate.relay.waiting');
/** bytesRead at the last sweep, to tell a quiet socket. */
const SEEN = Symbol('wsgate.relay.seen');
/** The size of this side's own read buffer (READ_BUFFER_BYTES, or BULK_READ_BUFFER_BYTES for L4). */
const SIZE = Symbol('wsgate.relay.size');
/** Called when the peer has taken a chunk: resumes this socket (one function per socket, made once). */
const WRITTEN = Symbol('wsgate.relay.written');
/** The WebSocket session that chunks go through (L7 tunnels with inspectFrames), or undefined: a byte pipe. */
const SESSION = Symbol('wsgate.relay.session');
/** This side is the client (its chunks go through the session's client→backend tracker). */
const IS_CLIENT = Symbol('wsgate.relay.isClient');
/** The session holds part of this side's last chunk until a message token returns: no reading meanwhile. */
const THROTTLED = Symbol('wsgate.relay.throttled');

interface RelaySocket extends Socket {
  [PEER]: Socket;
  [OWN]: Buffer | undefined;
  [WAITING]: boolean;
  [THROTTLED]: boolean;
  [SEEN]: number;
  [WRITTEN]: () => void;
  [SESSION]: WsSession | undefined;
  [IS_CLIENT]: boolean;
  [SIZE]: number;
  _handle: UserBufferHandle | null;
}

/**
 * Joins two connected sockets (allowHalfOpen) into a relay both ways: the client and the backend. With a
 * session, every chunk goes through its frame trackers (ws-session.ts). Both sockets are resumed.
 */
export function joinRelay(client: Socket, upstream: Socket, session?: WsSession, bulk = false): void {
  const size = bulk ? BULK_READ_BUFFER_BYTES : READ_BUFFER_BYTES;
  joinSide(client as RelaySocket, upstream, session, true, size);
  joinSide(upstream as RelaySocket, client, session, false, size);
  client.resume();
  upstream.resume();
}

function joinSide(side: RelaySocket, peer: Socket, session: WsSession | undefined, isClient: boolean, size: number): void {
  side[PEER] = peer;
  side[SIZE] = size;
  side[OWN] = undefined;
  side[WAITING] = false;
  side[THROTTLED] = false;
  side[SESSION] = session;
  side[IS_CLIENT] = isClient;
  side[SEEN] = side.bytesRead;
  side[WRITTEN] = () => peerTookChunk(side);
  // Chunks read before the relay began (still in the stream's buffer) arrive as 'data' events, first.
  side.on('data', sideOnData);
  side.on('drain', sideOnDrain);
  if (side.readableEnded) peer.end();
  else side.on('end', sideOnEnd);
  const handle = side._handle;
  if (USER_BUFFERS && handle && typeof handle.useUserBuffer === 'function') {
    const s = side as unknown as Record<symbol, unknown>;
    const landing = LANDING.get(size)!;
    s[USER_BUFFERS.kBuffer] = landing;
    s[USER_BUFFERS.kBufferCb] = sideOnRead;
    handle.useUserBuffer(landing);
  }
}

// Stream mode, and chunks buffered before the relay began: a side whose peer's buffer is full stops reading until
// that peer drains.
function sideOnData(this: RelaySocket, chunk: Buffer): void {
  if (!relayChunk(this, chunk, 0) || this[PEER].writableNeedDrain) this.pause();
}

function sideOnDrain(this: RelaySocket): void {
  const peer = this[PEER] as RelaySocket;
  // In user-buffer mode a paused peer resumes when its chunk has been taken (peerTookChunk), not at 'drain'.
  if (!peer[WAITING] && !peer[THROTTLED]) peer.resume();
}

/**
 * Relays `chunk` from `start` to the side's peer: as it is, or through the WebSocket session. Returns false when
 * the session holds the rest of it (throttled).
 */
function relayChunk(side: RelaySocket, chunk: Buffer, start: number): boolean {
  const session = side[SESSION];
  if (session === undefined) {
    side[PEER].write(start === 0 ? chunk : chunk.subarray(start), side[WRITTEN]);
    return true;
  }
  return session.forward(side[IS_CLIENT], chunk, start, side[PEER], side[WRITTEN]);
}

/**
 * Writes wsgate's own bytes (a ping, a close frame) into `socket`, with the callback of the side whose chunks go
 * into that socket: if that side is waiting for the socket to take its last chunk, it resumes only once this frame,
 * written after it, has gone too.
 */
export function writeInto(socket: Socket, data: Buffer): void {
  const writer = (socket as RelaySocket)[PEER] as RelaySocket | undefined;
  socket.write(data, writer?.[WRITTEN]);
}

/** The session throttles the client: it reads nothing until unthrottleSide(). */
export function throttleSide(side: Socket): void {
  (side as RelaySocket)[THROTTLED] = true;
  side.pause();
}

/** A token returned: the held part of the chunk is relayed, then the side reads again (unless its peer is full). */
export function unthrottleSide(side: Socket, chunk: Buffer, at: number): void {
  const s = side as RelaySocket;
  if (s.destroyed) return;
  if (!relayChunk(s, chunk, at)) return;
  s[THROTTLED] = false;
  if (USER_BUFFERS && s[PEER].writableLength > 0) s[WAITING] = true;
  else if (!s[PEER].writableNeedDrain) s.resume();
}

// Half-close: the end of one side's reads becomes end() on the other's writes.
function sideOnEnd(this: RelaySocket): void {
  this[PEER].end();
}

/** User-buffer mode: `nread` bytes have been read into `buf`. Returning false pauses the socket. */
function sideOnRead(this: RelaySocket, nread: number, buf: Buffer): boolean {
  let own = this[OWN];
  if (buf !== own) {
    // 2. Landed in the shared buffer: this socket gets its own from here on.
    if (own !== undefined) release(own);
    own = acquire(this[SIZE]);
    buf.copy(own, 0, 0, nread);
    this[OWN] = own;
    this._handle?.useUserBuffer(own);
    const s = this as unknown as Record<symbol, unknown>;
    s[USER_BUFFERS!.kBuffer] = own;
  }
  // 3. Written from the buffer itself; reading waits while the peer still holds it (or a message token).
  const going = relayChunk(this, own.subarray(0, nread), 0);
  if (this[PEER].writableLength > 0) this[WAITING] = true;
  return going && !this[WAITING];
}

function peerTookChunk(side: RelaySocket): void {
  // A write that completed at once calls back later too: only the write that emptied the peer's queue resumes.
  if (!side[WAITING] || side[PEER].writableLength > 0) return;
  side[WAITING] = false;
  if (!side.destroyed && !side[THROTTLED]) side.resume();
}

/** 4. Gives a quiet socket's read buffer back to the pool (called by the sweep, once a second). */
export function sweepRelay(side: Socket): void {
  const s = side as RelaySocket;
  const read = s.bytesRead;
  if (s[OWN] !== undefined && !s[WAITING] && !s[THROTTLED] && read === s[SEEN] && s._handle) {
    const own = s[OWN];
    s[OWN] = undefined;
    const landing = LANDING.get(s[SIZE])!;
    s._handle.useUserBuffer(landing);
    (s as unknown as Record<symbol, unknown>)[USER_BUFFERS!.kBuffer] = landing;
    release(own);
  }
  s[SEEN] = read;
}

/** Both sockets have closed: their buffers go back to the pool (no write can still read them). */
export function endRelay(side: Socket): void {
  const s = side as RelaySocket;
  const own = s[OWN];
  if (own !== undefined) {
    s[OWN] = undefined;
    release(own);
  }
}
