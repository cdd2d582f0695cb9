// A WebSocket tunnel through a test gateway between two raw `net` peers: the test writes frames (or anything) on
// either socket and reads exactly what wsgate relayed. For the frame-aware relay (issue 10): what wsgate passes,
// injects or swallows is visible byte for byte.
import type net from 'node:net';
import { once } from 'node:events';
import {
  closeOf,
  decodeFrame,
  handshake,
  httpHead,
  rawConnect,
  readUntil,
  switchingProtocols,
  type Frame,
  type RawBackend,
} from './l7-peers.ts';

/** Collects everything a socket reads, and lets a test wait for a given amount or a given frame. */
export class Collector {
  readonly #chunks: Buffer[] = [];
  #length = 0;
  #waiters: (() => void)[] = [];
  ended = false;
  closed = false;

  constructor(socket: net.Socket, initial: Buffer = Buffer.alloc(0)) {
    if (initial.length > 0) this.#add(initial);
    socket.on('data', (c: Buffer) => this.#add(c));
    socket.once('end', () => {
      this.ended = true;
      this.#wake();
    });
    socket.once('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  #add(c: Buffer): void {
    this.#chunks.push(c);
    this.#length += c.length;
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  get length(): number {
    return this.#length;
  }

  bytes(): Buffer {
    if (this.#chunks.length > 1) {
      const all = Buffer.concat(this.#chunks);
      this.#chunks.length = 0;
      this.#chunks.push(all);
    }
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  /** The frames received so far (a trailing incomplete frame is left out). */
  frames(): Frame[] {
    const out: Frame[] = [];
    let buf = this.bytes();
    for (;;) {
      const f = decodeFrame(buf);
      if (!f) return out;
      out.push(f);
      buf = buf.subarray(f.size);
    }
  }

  /** Resolves once `predicate` holds; rejects when the stream ends first (with what was received). */
  async until(predicate: (c: Collector) => boolean, what: string): Promise<void> {
    while (!predicate(this)) {
      if (this.ended || this.closed) throw new Error(`socket ${this.closed ? 'closed' : 'ended'} before ${what}; received ${this.#length} bytes`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Resolves once the peer has ended the stream (FIN) or the socket has closed. */
  async untilEnded(): Promise<void> {
    await this.until((c) => c.ended || c.closed, 'the end').catch(() => undefined);
  }
}

export interface RawTunnel {
  readonly client: net.Socket;
  readonly backend: net.Socket;
  /** What the client receives after the 101. */
  readonly atClient: Collector;
  /** What the backend receives after the request head. */
  readonly atBackend: Collector;
  /** The request head the backend received. */
  readonly requestHead: string;
}

/**
 * Opens a WebSocket through wsgate (listening on `port`) from a raw client to the raw backend `backend`. With
 * `extensions`, the client offers it and the backend's 101 accepts it (e.g. 'permessage-deflate'), so that wsgate
 * allows the RSV bits it explains.
 */
export async function openRawTunnel(
  port: number,
  backend: RawBackend,
  o: { extensions?: string; host?: string; path?: string } = {},
): Promise<RawTunnel> {
  const client = await rawConnect(port, true);
  client.setNoDelay(true);
  const headers: Record<string, string> = o.extensions ? { 'Sec-WebSocket-Extensions': o.extensions } : {};
  client.write(handshake({ host: o.host ?? 'example.test', path: o.path ?? '/', headers }));
  const peer = await backend.accepted.shift();
  peer.socket.setNoDelay(true);
  peer.socket.write(switchingProtocols(peer.head, o.extensions ? [`Sec-WebSocket-Extensions: ${o.extensions}`] : []));
  const { value: head, rest } = await readUntil(client, httpHead);
  if (!head.startsWith('HTTP/1.1 101')) throw new Error(`no 101: ${head}`);
  return {
    client,
    backend: peer.socket,
    atClient: new Collector(client, rest),
    atBackend: new Collector(peer.socket, peer.rest),
    requestHead: peer.head,
  };
}

/**
 * Writes `chunks` one write at a time, each after the previous one was handed to the kernel. Stops early (without
 * an error) if the socket is closed meanwhile: wsgate may end a tunnel in the middle.
 */
export async function writeChunks(socket: net.Socket, chunks: readonly Buffer[]): Promise<void> {
  for (const c of chunks) {
    if (socket.destroyed || socket.writableEnded) return;
    if (!socket.write(c)) await Promise.race([once(socket, 'drain'), once(socket, 'close')]);
    // One event-loop turn between writes: Nagle is off, so each lands as its own segment and, most of the time,
    // as its own read in wsgate (the point of cutting them).
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Ends both raw sockets and waits until they have closed. */
export async function closeRawTunnel(t: RawTunnel): Promise<void> {
  t.client.destroy();
  t.backend.destroy();
  await Promise.all([closeOf(t.client), closeOf(t.backend)]);
}
