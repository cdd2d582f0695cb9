// The first request head of an L7 connection, read before http.Server sees the connection (issue 13): a WebSocket
// handshake goes straight to the upgrade path, without the http.Server machinery a connection that only becomes a
// tunnel never uses (its per-connection state and bound closures, the IncomingMessage stream, the ServerResponse
// classes); anything else goes to http.Server with every byte read put back, exactly as if it had arrived there.
//
// The head is parsed by llhttp, Node's own strict parser, through the same `HTTPParser` binding http.Server uses,
// initialised as http.Server initialises it (request mode, the process's max header size, no lenient flags); never
// by hand-written code. The numbered flow, per connection:
//  1. bytes are read until the first head is complete (or llhttp refuses them);
//  2. the head is taken when http.Server would have emitted 'upgrade' for it and L7's shouldUpgradeCallback would
//     have said yes: llhttp's upgrade flag (Upgrade with Connection: upgrade), a method other than CONNECT, and
//     `websocket` among the Upgrade tokens. Only GET is taken here (other methods are refused with 405 by the
//     same upgrade path through http.Server); the bytes after the head go with it, as http.Server's `head` does;
//  3. everything else is handed over untouched: a request that is not such a handshake (plain HTTP, h2c, CONNECT,
//     PRI), a head llhttp refuses (http.Server parses it again and answers as it always did: 400, 431), and a
//     connection whose first bytes are not `GET ` (handed over at once, never parsed twice);
//  4. what http.Server would do itself before a head completes is done here the same way: a head not complete in
//     headersTimeout is answered 408 through the listener's clientError handling (checked every
//     connectionsCheckingInterval, as http.Server checks); a FIN before a complete head ends the connection (400 when
//     bytes had arrived: llhttp's finish() error); a socket error goes to clientError.
// The request object given to the upgrade path carries only what it reads: method, url, headers (built by Node's own
// IncomingMessage header rules: duplicates dropped or joined as http.Server does) and rawHeaders.
import http, { type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { HTTP_METHODS, PARSER_OWNER, ParserPool, type LlhttpParser } from './llhttp.ts';

/** What the upgrade path reads of a request (an IncomingMessage has all of it). */
export interface RequestHead {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
}

export interface HandshakeFrontOptions {
  /** A WebSocket handshake's head, the socket and the bytes that followed the head (http.Server's 'upgrade'). */
  readonly onUpgrade: (req: RequestHead, socket: Socket, head: Buffer) => void;
  /** What http.Server's 'clientError' gets: a socket error, llhttp's error at FIN, or the head timeout. */
  readonly onClientError: (err: NodeJS.ErrnoException, socket: Socket) => void;
  /** http.Server's headersTimeout (ms): the whole head must arrive in this time. */
  readonly headersTimeoutMs: number;
  /** How often pending heads are checked against it (http.Server's connectionsCheckingInterval, ms). */
  readonly checkIntervalMs: number;
}

/** llhttp's index of GET (its method enum, which Node's method tables follow). */
const GET = HTTP_METHODS.indexOf('GET');
/** Header pairs kept in `headers`, as http.Server's parsers keep them (MAX_HEADER_PAIRS in _http_common). */
const MAX_HEADER_PAIRS = 2000;
/** Node's own header rules (duplicates, Set-Cookie, Cookie joined with '; '), with joinDuplicateHeaders off. */
const addHeaderLine = (http.IncomingMessage.prototype as unknown as {
  readonly _addHeaderLine: (this: { joinDuplicateHeaders: boolean }, field: string, value: string, dest: IncomingHttpHeaders) => void;
})._addHeaderLine;
const HEADER_RULES = { joinDuplicateHeaders: false };
const GET_PREFIX = Buffer.from('GET ', 'latin1');

const PENDING = Symbol('wsgate.pendingHeadOfSocket');

/** One connection whose first head is being read. */
interface PendingHead {
  readonly front: HandshakeFront;
  readonly socket: Socket & { [PENDING]?: PendingHead | undefined };
  readonly startedAt: number;
  parser: LlhttpParser<PendingHead> | undefined;
  /** Every byte read so far (handed back to http.Server when the connection is not taken). */
  bytes: Buffer | undefined;
  /** llhttp's slow path: header pairs and url pieces that arrived before the head completed. */
  partHeaders: string[] | undefined;
  partUrl: string;
  /** The head, once complete: taken (a WebSocket handshake) or not. */
  head: RequestHead | undefined;
  take: boolean;
}

function parserOnHeaders(this: LlhttpParser<PendingHead>, headers: string[], url: string): void {
  const p = this[PARSER_OWNER];
  if (p === undefined) return;
  const acc = (p.partHeaders ??= []);
  const room = MAX_HEADER_PAIRS - acc.length;
  if (room >= headers.length) acc.push(...headers);
  else if (room > 0) acc.push(...headers.slice(0, room));
  p.partUrl += url;
}

function parserOnHeadersComplete(
  this: LlhttpParser<PendingHead>,
  _major: number,
  _minor: number,
  rawHeaders: string[] | undefined,
  method: number,
  url: string | undefined,
  _status: number,
  _statusMessage: string,
  upgrade: boolean,
): number {
  const p = this[PARSER_OWNER];
  // Only the first head matters; a pipelined one after it is http.Server's (or the tunnel's) to read.
  if (p === undefined || p.head !== undefined) return 0;
  const raw = rawHeaders ?? p.partHeaders ?? [];
  const target = url ?? p.partUrl;
  p.partHeaders = undefined;
  p.partUrl = '';
  const headers: IncomingHttpHeaders = {};
  const n = Math.min(raw.length, MAX_HEADER_PAIRS);
  for (let i = 0; i < n; i += 2) addHeaderLine.call(HEADER_RULES, raw[i]!, raw[i + 1]!, headers);
  p.head = { method: HTTP_METHODS[method], url: target, headers, rawHeaders: raw };
  p.take = upgrade && method === GET && isWebSocketUpgrade(headers.upgrade);
  // 2: the message has no body and the parser stops here (what http.Server returns for an upgrade).
  return p.take ? 2 : 0;
}

// Pooled (llhttp.ts). Max header size 0: the process's limit (--max-http-header-size, default 16 KiB), as http.Server.
const parsers = new ParserPool<PendingHead>('request', 0, { onHeaders: parserOnHeaders, onHeadersComplete: parserOnHeadersComplete });

/** http.Server's `shouldUpgradeCallback` for L7 listeners: `websocket` among the Upgrade tokens. */
export function isWebSocketUpgrade(upgrade: string | undefined): boolean {
  return upgrade !== undefined && /(^|,)\s*websocket\s*(,|$)/i.test(upgrade);
}

export class HandshakeFront {
  readonly #o: HandshakeFrontOptions;
  readonly #pending = new Set<PendingHead>();
  #timer: NodeJS.Timeout | undefined;
  /** Hands a connection to http.Server (its own listeners of the event this front took over). */
  #hand: ((socket: Socket) => void) | undefined;

  constructor(o: HandshakeFrontOptions) {
    this.#o = o;
  }

  /**
   * Reads the first head of every connection `server` emits as `event` ('connection' for HTTP, 'secureConnection'
   * for HTTPS) before the server's own listeners get it. Install it before installFront (front.ts), whose steps
   * (PROXY header, ssl-passthrough) then run first.
   */
  install(server: http.Server, event: 'connection' | 'secureConnection'): void {
    const emit = server.emit.bind(server);
    this.#hand = (socket) => void emit(event, socket);
    server.emit = ((name: string | symbol, ...args: unknown[]): boolean => {
      if (name !== event) return emit(name as string, ...args);
      this.#accept(args[0] as Socket);
      return true;
    }) as http.Server['emit'];
  }

  /**
   * The listener is closing: connections that have sent nothing yet are closed, as http.Server's
   * closeIdleConnections() closes its own; a head under way may still complete (or time out).
   */
  closeIdle(): void {
    for (const p of this.#pending) {
      if (p.bytes !== undefined) continue;
      this.#finish(p);
      p.socket.destroy();
    }
  }

  #accept(socket: Socket): void {
    const p: PendingHead = {
      front: this,
      socket,
      startedAt: performance.now(),
      parser: undefined,
      bytes: undefined,
      partHeaders: undefined,
      partUrl: '',
      head: undefined,
      take: false,
    };
    (socket as PendingHead['socket'])[PENDING] = p;
    this.#pending.add(p);
    this.#timer ??= setInterval(this.#check, this.#o.checkIntervalMs).unref();
    socket.on('readable', socketOnReadable);
    socket.on('end', socketOnEnd);
    socket.on('error', socketOnError);
    socket.on('close', socketOnClose);
  }

  /** 1–3: the bytes read so far. */
  read(p: PendingHead): void {
    const socket = p.socket;
    let chunk: Buffer | null;
    while ((chunk = socket.read() as Buffer | null) !== null) {
      p.bytes = p.bytes === undefined ? chunk : Buffer.concat([p.bytes, chunk]);
      if (p.parser === undefined) {
        // 3. Not a GET: handed over before any parsing (a shorter start waits for more bytes).
        const n = Math.min(p.bytes.length, GET_PREFIX.length);
        if (p.bytes.compare(GET_PREFIX, 0, n, 0, n) !== 0) return this.#handOver(p);
        if (p.bytes.length < GET_PREFIX.length) continue;
        p.parser = parsers.acquire(p);
        chunk = p.bytes;
      }
      const ret = p.parser.execute(chunk);
      if (p.head !== undefined && p.take && typeof ret === 'number') {
        // 2. llhttp stopped at the end of the head: the rest of this chunk follows it.
        const head = p.head;
        this.#finish(p);
        return this.#o.onUpgrade(head, socket, chunk.subarray(ret));
      }
      // 3. Not a handshake, or not valid HTTP: http.Server reads it all again and answers as it always has.
      if (p.head !== undefined || typeof ret !== 'number') return this.#handOver(p);
    }
  }

  /** 4. The client's FIN before a complete head: what llhttp says of the bytes it had (http.Server's socketOnEnd). */
  ended(p: PendingHead): void {
    // A partial `GET ` prefix has not been parsed yet.
    if (p.parser === undefined && p.bytes !== undefined) {
      p.parser = parsers.acquire(p);
      p.parser.execute(p.bytes);
    }
    const err = p.parser?.finish();
    const socket = this.#leave(p);
    if (err !== undefined) return this.#o.onClientError(err, socket);
    socket.end();
  }

  failed(p: PendingHead, err: Error): void {
    this.#o.onClientError(err, this.#leave(p));
  }

  closed(p: PendingHead): void {
    this.#finish(p);
  }

  readonly #check = (): void => {
    const now = performance.now();
    for (const p of this.#pending) {
      if (now - p.startedAt <= this.#o.headersTimeoutMs) continue;
      const err: NodeJS.ErrnoException = new Error('Request timeout');
      err.code = 'ERR_HTTP_REQUEST_TIMEOUT';
      this.#o.onClientError(err, this.#leave(p));
    }
    if (this.#pending.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  };

  #handOver(p: PendingHead): void {
    const bytes = p.bytes;
    this.#finish(p);
    if (bytes !== undefined) p.socket.unshift(bytes);
    this.#hand!(p.socket);
  }

  /** The connection leaves the front for clientError handling: later errors are ignored, as http.Server does. */
  #leave(p: PendingHead): Socket {
    this.#finish(p);
    p.socket.on('error', noop);
    return p.socket;
  }

  /** This connection leaves the front: listeners, parser and pending entry go. */
  #finish(p: PendingHead): void {
    this.#pending.delete(p);
    const socket = p.socket;
    socket[PENDING] = undefined;
    socket.removeListener('readable', socketOnReadable);
    socket.removeListener('end', socketOnEnd);
    socket.removeListener('error', socketOnError);
    socket.removeListener('close', socketOnClose);
    if (p.parser !== undefined) {
      parsers.release(p.parser);
      p.parser = undefined;
    }
  }
}

type FrontSocket = PendingHead['socket'];

function noop(): void {}

function socketOnReadable(this: FrontSocket): void {
  const p = this[PENDING];
  if (p !== undefined) p.front.read(p);
}

function socketOnEnd(this: FrontSocket): void {
  const p = this[PENDING];
  if (p !== undefined) p.front.ended(p);
}

function socketOnError(this: FrontSocket, err: Error): void {
  const p = this[PENDING];
  if (p !== undefined) p.front.failed(p, err);
  else this.destroy();
}

function socketOnClose(this: FrontSocket): void {
  const p = this[PENDING];
  if (p !== undefined) p.front.closed(p);
}
