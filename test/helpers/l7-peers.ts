// Real peers for L7 proxy tests: `ws` backends and clients, raw `net` backends and clients, a tiny WebSocket frame
// codec for raw peers, and waits on events (never sleeps). Everything listens on 127.0.0.1, port 0.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type ClientOptions, type RawData, type ServerOptions } from 'ws';

/** A FIFO whose shift() waits for the next item: events are never missed between two awaits. */
export class Queue<T> {
  readonly #items: T[] = [];
  readonly #waiters: ((v: T) => void)[] = [];

  push(v: T): void {
    const w = this.#waiters.shift();
    if (w) w(v);
    else this.#items.push(v);
  }

  shift(): Promise<T> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift()!);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  get length(): number {
    return this.#items.length;
  }
}

export interface Message {
  readonly data: Buffer;
  readonly isBinary: boolean;
}

function toBuffer(d: RawData): Buffer {
  if (Buffer.isBuffer(d)) return d;
  if (Array.isArray(d)) return Buffer.concat(d);
  return Buffer.from(d);
}

export interface BackendConnection {
  readonly ws: WebSocket;
  readonly req: http.IncomingMessage;
  readonly messages: Queue<Message>;
  /** Resolves with the close code and reason the backend saw. */
  readonly closed: Promise<{ code: number; reason: string }>;
}

export interface WsBackend {
  readonly server: WebSocketServer;
  readonly port: number;
  readonly connections: Queue<BackendConnection>;
  /** TCP connections accepted so far. */
  readonly tcpConnections: () => number;
  close(): Promise<void>;
}

/** A `ws` WebSocketServer that echoes every message (same type) unless `echo` is false. */
export async function startWsBackend(opts: Omit<ServerOptions, 'port' | 'server'> & { echo?: boolean } = {}): Promise<WsBackend> {
  const { echo = true, ...serverOpts } = opts;
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, ...serverOpts });
  await once(server, 'listening');
  const connections = new Queue<BackendConnection>();
  let tcp = 0;
  // ws exposes its http.Server as `_server` only; counting there is the only way to see TCP accepts.
  const httpServer = (server as unknown as { _server: http.Server })._server;
  httpServer.on('connection', () => tcp++);
  server.on('connection', (ws, req) => {
    const messages = new Queue<Message>();
    ws.on('message', (data, isBinary) => {
      const buf = toBuffer(data);
      messages.push({ data: buf, isBinary });
      if (echo) ws.send(buf, { binary: isBinary });
    });
    ws.on('error', () => {});
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    connections.push({ ws, req, messages, closed });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    connections,
    tcpConnections: () => tcp,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of server.clients) c.terminate();
        server.close(() => resolve());
      }),
  };
}

export interface Client {
  readonly ws: WebSocket;
  /** The 101 response (its socket is the client's TLS or TCP socket). */
  readonly response: http.IncomingMessage;
  readonly messages: Queue<Message>;
  readonly closed: Promise<{ code: number; reason: string }>;
}

/** Opens a `ws` client and waits for 'open'; rejects on 'error' or an unexpected response (with its status). */
export async function openClient(
  url: string,
  protocols?: string | string[],
  opts: ClientOptions & { servername?: string } = {},
): Promise<Client> {
  const ws = new WebSocket(url, protocols ?? [], opts);
  const messages = new Queue<Message>();
  ws.on('message', (data, isBinary) => messages.push({ data: toBuffer(data), isBinary }));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  let response: http.IncomingMessage | undefined;
  ws.once('upgrade', (res) => (response = res));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      reject(new Error(`unexpected response ${res.statusCode}`));
      res.resume();
      ws.terminate();
    });
  });
  ws.on('error', () => {});
  return { ws, response: response!, messages, closed };
}

/** Sends a message and returns the next one received: with an echoing backend, the echo. */
export async function roundTrip(c: Client, data: string | Buffer): Promise<Message> {
  const next = c.messages.shift();
  c.ws.send(data, { binary: typeof data !== 'string' });
  return next;
}

export async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    (server as net.Server & { closeAllConnections?: () => void }).closeAllConnections?.();
  });
}

/** A port on 127.0.0.1 where nothing listens (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await closeServer(s);
  return port;
}

export interface RawResponse {
  readonly status: number;
  readonly statusLine: string;
  /** Lower-case names; repeated headers joined with ', '. */
  readonly headers: Record<string, string>;
  readonly rawHead: string;
  readonly body: Buffer;
}

/** Parses the first HTTP/1.1 response head in `buf`; undefined until the blank line has arrived. */
export function parseResponse(buf: Buffer): RawResponse | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const rawHead = buf.toString('latin1', 0, end);
  const [statusLine = '', ...lines] = rawHead.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const c = l.indexOf(':');
    const k = l.slice(0, c).toLowerCase();
    const v = l.slice(c + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  return { status: Number(statusLine.split(' ')[1]), statusLine, headers, rawHead, body: buf.subarray(end + 4) };
}

/**
 * Writes `request` on a fresh TCP connection and collects everything until the server closes the connection.
 * Resolves only after 'close': a test that awaits it has also checked that the server closed the socket.
 */
export async function rawExchange(port: number, request: string | Buffer): Promise<RawResponse & { all: Buffer }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(request);
  await once(socket, 'close');
  const all = Buffer.concat(chunks);
  const res = parseResponse(all);
  if (!res) throw new Error(`no complete response head before close: ${JSON.stringify(all.toString('latin1'))}`);
  return { ...res, all };
}

/**
 * Writes `request` on a fresh TCP connection. `response` resolves once a whole response (head and a
 * Content-Length body) has arrived; `closed` resolves when the server has closed the connection. Awaiting
 * `response` first lets a test fail on a wrong answer with a clear message rather than by waiting for a close.
 */
export async function rawRequest(port: number, request: string | Buffer): Promise<{ response: Promise<RawResponse>; closed: Promise<void>; socket: net.Socket }> {
  const socket = await rawConnect(port);
  const closed = once(socket, 'close').then(() => undefined);
  const response = readUntil(socket, (buf) => {
    const r = parseResponse(buf);
    if (!r) return undefined;
    const len = Number(r.headers['content-length'] ?? 0);
    if (r.body.length < len) return undefined;
    return { value: { ...r, body: r.body.subarray(0, len) }, used: buf.length };
  }).then((r) => r.value);
  socket.write(request);
  return { response, closed, socket };
}

export const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** A WebSocket handshake request head; `extra` lines are appended as given (each without CRLF). */
export function handshake(o: { path?: string; host?: string; method?: string; headers?: Record<string, string>; omit?: string[] } = {}): string {
  const h: Record<string, string> = {
    Host: o.host ?? 'example.test',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': KEY,
    'Sec-WebSocket-Version': '13',
    ...o.headers,
  };
  for (const k of o.omit ?? []) delete h[k];
  let s = `${o.method ?? 'GET'} ${o.path ?? '/'} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(h)) s += `${k}: ${v}\r\n`;
  return `${s}\r\n`;
}

/** Encodes one WebSocket frame; client frames (mask true) are masked as RFC 6455 requires. */
export function encodeFrame(opcode: number, payload: Buffer | string, mask: boolean, fin = true): Buffer {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const len = p.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = (mask ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  if (!mask) return Buffer.concat([head, p]);
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  key.copy(head, 2 + ext);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = p[i]! ^ key[i & 3]!;
  return Buffer.concat([head, masked]);
}

export interface Frame {
  readonly fin: boolean;
  readonly opcode: number;
  readonly payload: Buffer;
  /** Bytes of `buf` the frame took. */
  readonly size: number;
}

/** Decodes the first frame of `buf` (masked or not); undefined when incomplete. */
export function decodeFrame(buf: Buffer): Frame | undefined {
  if (buf.length < 2) return undefined;
  const masked = (buf[1]! & 0x80) !== 0;
  let len = buf[1]! & 0x7f;
  let off = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    len = Number(buf.readBigUInt64BE(2));
    off = 10;
  }
  const keyOff = off;
  if (masked) off += 4;
  if (buf.length < off + len) return undefined;
  const payload = Buffer.from(buf.subarray(off, off + len));
  if (masked) for (let i = 0; i < len; i++) payload[i] = payload[i]! ^ buf[keyOff + (i & 3)]!;
  return { fin: (buf[0]! & 0x80) !== 0, opcode: buf[0]! & 0x0f, payload, size: off + len };
}

/** Reads from a socket until `parse` returns a value; bytes after it are kept in the returned `rest`. */
export function readUntil<T>(socket: net.Socket, parse: (buf: Buffer) => { value: T; used: number } | undefined, initial: Buffer = Buffer.alloc(0)): Promise<{ value: T; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = initial;
    const check = (): boolean => {
      const r = parse(buf);
      if (!r) return false;
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      resolve({ value: r.value, rest: buf.subarray(r.used) });
      return true;
    };
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      check();
    };
    const onClose = (): void => reject(new Error(`socket closed before the expected bytes; got ${JSON.stringify(buf.toString('latin1'))}`));
    if (check()) return;
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

/** Parser for readUntil: an HTTP head through its blank line. */
export function httpHead(buf: Buffer): { value: string; used: number } | undefined {
  const end = buf.indexOf('\r\n\r\n');
  return end < 0 ? undefined : { value: buf.toString('latin1', 0, end + 4), used: end + 4 };
}

/** Parser for readUntil: one WebSocket frame. */
export function frame(buf: Buffer): { value: Frame; used: number } | undefined {
  const f = decodeFrame(buf);
  return f ? { value: f, used: f.size } : undefined;
}

/**
 * Waits until `predicate` holds on `times` consecutive checks (eventual consistency, as gateway-api's
 * AwaitConvergence): for state that changes without an event the test can subscribe to.
 */
export async function converge(predicate: () => boolean | Promise<boolean>, what: string, times = 3, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let streak = 0;
  while (streak < times) {
    streak = (await predicate()) ? streak + 1 : 0;
    if (performance.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The Sec-WebSocket-Accept value for a key (RFC 6455 §4.2.2). */
export function acceptFor(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

export interface RawPeer {
  readonly socket: net.Socket;
  /** The request head, through its blank line, exactly as received. */
  readonly head: string;
  /** Bytes received after the head in the same reads. */
  readonly rest: Buffer;
}

export interface RawBackend {
  readonly port: number;
  /** Connections whose request head has arrived; the test writes the answer. */
  readonly accepted: Queue<RawPeer>;
  /** TCP connections accepted so far (with or without a head). */
  readonly tcpConnections: () => number;
  close(): Promise<void>;
}

/** A raw `net` backend: reads each connection's request head and hands the socket to the test. */
export async function startRawBackend(): Promise<RawBackend> {
  const sockets = new Set<net.Socket>();
  const accepted = new Queue<RawPeer>();
  let tcp = 0;
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    tcp++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    readUntil(socket, httpHead).then(
      ({ value, rest }) => accepted.push({ socket, head: value, rest }),
      () => {},
    );
  });
  const port = await listen(server);
  return {
    port,
    accepted,
    tcpConnections: () => tcp,
    close: () => {
      for (const s of sockets) s.destroy();
      return closeServer(server);
    },
  };
}

/** A 101 answer to a raw request head (its Sec-WebSocket-Key), with optional extra header lines. */
export function switchingProtocols(requestHead: string, extraLines: readonly string[] = []): string {
  const m = /^sec-websocket-key:\s*(\S+)\s*$/im.exec(requestHead);
  if (!m) throw new Error('request head without Sec-WebSocket-Key');
  return [
    'HTTP/1.1 101 Switching Protocols',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Accept: ${acceptFor(m[1]!)}`,
    ...extraLines,
    '',
    '',
  ].join('\r\n');
}

/** A connected raw TCP client; with allowHalfOpen (default false) it stays writable after the server's FIN. */
export async function rawConnect(port: number, allowHalfOpen = false): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen });
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

/**
 * Stops a test gateway: closes its tunnels first, then the gateway. Gateway.stop() on its own waits for open
 * tunnels before closing them (see l7-lifecycle.test.ts), so an after() hook with a tunnel still closing would hang.
 */
export async function stopGateway(gw: { gateway: { registry: { closeAll(): Promise<void> } }; close(): Promise<void> }): Promise<void> {
  await gw.gateway.registry.closeAll();
  await gw.close();
}

/** Resolves on the socket's 'close', whatever error came before it (events.once would reject on 'error'). */
export function closeOf(socket: net.Socket): Promise<void> {
  return socket.destroyed && socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}
