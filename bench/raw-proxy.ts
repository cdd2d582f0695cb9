// The bench's `node-raw` target (issue 13): what a WebSocket session costs a Node process that never makes a
// net.Socket. It measures the design the closing note proposes for the handshake path, before anyone builds it:
//  1. connections are accepted on a raw libuv TCP handle (Node's tcp_wrap binding), read with the handle's own
//     `onread` into Node's shared read buffer;
//  2. the request head is parsed by llhttp (Node's HTTPParser, as wsgate's handshake-front.ts does), never by hand;
//  3. the backend is connected with a raw handle, the head written with one write request, the answer parsed by
//     llhttp as well (as backend-response.ts does);
//  4. the 101 is written to the client, then both descriptors go to wsgate's native relay (native/relay.c, the
//     same addon and the same `add` call as native-relay.ts), and both handles are closed.
// No routing, checks, metrics or log: a floor, like node-min, never a product. It trusts its one backend, and takes
// its writes (a head, a 101: a few hundred bytes on loopback) as done at once, where a product would hand the
// descriptors over only once they were.
//   node bench/raw-proxy.ts <listen port> <backend port>
// Node internals it relies on (process.binding: tcp_wrap, stream_wrap; _http_common's HTTPParser) are those of the
// pinned Node; a Node that changes them fails this target's correctness checks in the bench, loudly.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const [listenPort, backendPort] = process.argv.slice(2).map(Number);
if (!Number.isInteger(listenPort) || !Number.isInteger(backendPort)) {
  process.stderr.write('usage: node bench/raw-proxy.ts <listen port> <backend port>\n');
  process.exit(2);
}

const require = createRequire(import.meta.url);
interface ReqWrap {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each request kind calls back with its own arguments
  oncomplete: (...args: any[]) => void;
  handle?: RawHandle;
  async?: boolean;
}
interface RawHandle {
  fd: number;
  onread: (ab: ArrayBuffer | undefined) => void;
  onconnection: (err: number, h: RawHandle | undefined) => void;
  bind(ip: string, port: number): number;
  listen(backlog: number): number;
  connect(req: ReqWrap, ip: string, port: number): number;
  readStart(): number;
  readStop(): number;
  setNoDelay(on: boolean): number;
  writeBuffer(req: ReqWrap, b: Uint8Array): number;
  writeLatin1String(req: ReqWrap, s: string): number;
  close(cb?: () => void): void;
  [k: symbol]: unknown;
}
// process.binding: the only way to a raw handle (deprecated, and absent from @types/node; see above).
const binding = (process as unknown as { binding(name: string): unknown }).binding.bind(process);
const tcp = binding('tcp_wrap') as {
  TCP: new (type: number) => RawHandle;
  TCPConnectWrap: new () => ReqWrap;
  constants: { SOCKET: number; SERVER: number };
};
const sw = binding('stream_wrap') as {
  WriteWrap: new () => ReqWrap;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
};
const { HTTPParser } = require('_http_common') as {
  HTTPParser: {
    new (): Parser;
    REQUEST: number;
    RESPONSE: number;
    kOnHeaders: number;
    kOnHeadersComplete: number;
    kOnBody: number;
    kOnMessageComplete: number;
    kLenientNone: number;
  };
};
interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(b: Uint8Array): number | Error;
  free(): void;
  remove(): void;
  [k: number]: unknown;
  session?: Session | undefined;
}
interface Addon {
  init(counters: ArrayBuffer, onClose: (slot: number, reason: number, err: number) => void): number;
  add(slot: number, clientFd: number, upstreamFd: number, headUp: Buffer | undefined, headDown: Buffer | undefined): void;
  ref(keep: boolean): void;
}
const addon = require(fileURLToPath(new URL('../native/build/Release/wsgate_relay.node', import.meta.url))) as Addon;
const freeSlots: number[] = [];
let nextSlot = 0;
const slotCount = addon.init(new ArrayBuffer(65_536 * 16), (slot) => freeSlots.push(slot));
addon.ref(true);

const { streamBaseState, kReadBytesOrError, kArrayBufferOffset } = sw;

interface Session {
  client: RawHandle;
  up: RawHandle | undefined;
  parser: Parser | undefined;
  /** Bytes after the request head, for the backend. */
  rest: Buffer | undefined;
  head: string;
  /** The backend's answer head is complete; `switched`: it was a 101. */
  answered: boolean;
  switched: boolean;
  done: boolean;
}
const SESSION = Symbol('session');

const pool: Parser[] = [];
function parser(type: number, s: Session): Parser {
  let p = pool.pop();
  if (p === undefined) {
    p = new HTTPParser();
    p[HTTPParser.kOnHeaders] = () => {};
    p[HTTPParser.kOnHeadersComplete] = onHeadersComplete;
    p[HTTPParser.kOnBody] = () => {};
    p[HTTPParser.kOnMessageComplete] = () => {};
  }
  p.initialize(type, {}, 0, HTTPParser.kLenientNone);
  p.session = s;
  return p;
}
function release(s: Session): void {
  const p = s.parser;
  if (p === undefined) return;
  s.parser = undefined;
  p.session = undefined;
  p.remove();
  p.free();
  pool.push(p);
}

// A request: the head the backend gets (rebuilt from llhttp's pairs, as wsgate's forward.ts does). A response: whether
// it is a 101.
function onHeadersComplete(this: Parser, _maj: number, _min: number, headers: string[], _method: number, url: string, status: number): number {
  const s = this.session!;
  if (s.up === undefined) {
    let head = `GET ${url} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    s.head = head + '\r\n';
  } else {
    s.answered = true;
    s.switched = status === 101;
  }
  return 2;
}

function end(s: Session): void {
  if (s.done) return;
  s.done = true;
  release(s);
  s.client.close();
  s.up?.close();
}

function write(h: RawHandle, data: Uint8Array | string): boolean {
  const req = new sw.WriteWrap();
  req.handle = h;
  req.oncomplete = noop;
  req.async = false;
  return (typeof data === 'string' ? h.writeLatin1String(req, data) : h.writeBuffer(req, data)) === 0;
}
function noop(): void {}

function clientOnRead(this: RawHandle, ab: ArrayBuffer | undefined): void {
  const s = this[SESSION] as Session;
  const n = streamBaseState[kReadBytesOrError]!;
  if (n < 0 || ab === undefined) return end(s);
  const chunk = Buffer.from(ab, streamBaseState[kArrayBufferOffset], n);
  s.parser ??= parser(HTTPParser.REQUEST, s);
  const ret = s.parser.execute(chunk);
  if (typeof ret !== 'number') return end(s);
  if (s.head === '') return;
  this.readStop();
  release(s);
  if (ret < n) s.rest = Buffer.from(chunk.subarray(ret));
  const up = new tcp.TCP(tcp.constants.SOCKET);
  s.up = up;
  up[SESSION] = s;
  const req = new tcp.TCPConnectWrap();
  req.oncomplete = upOnConnect;
  if (up.connect(req, '127.0.0.1', backendPort!) !== 0) end(s);
}

function upOnConnect(this: ReqWrap, status: number, up: RawHandle): void {
  const s = up[SESSION] as Session;
  if (status !== 0 || s.done) return end(s);
  up.setNoDelay(true);
  if (!write(up, s.rest === undefined ? s.head : Buffer.concat([Buffer.from(s.head, 'latin1'), s.rest]))) return end(s);
  s.parser = parser(HTTPParser.RESPONSE, s);
  up.onread = upOnRead;
  up.readStart();
}

function upOnRead(this: RawHandle, ab: ArrayBuffer | undefined): void {
  const s = this[SESSION] as Session;
  const n = streamBaseState[kReadBytesOrError]!;
  if (n < 0 || ab === undefined || s.parser === undefined) return end(s);
  const chunk = Buffer.from(ab, streamBaseState[kArrayBufferOffset], n);
  const ret = s.parser.execute(chunk);
  if (typeof ret !== 'number') return end(s);
  // A head that continues in the next read: wait for it. Anything but a 101 ends the session: a floor needs no
  // refusal path.
  if (!s.answered) return;
  if (!s.switched) return end(s);
  this.readStop();
  release(s);
  // The 101 and anything after it, as read, go to the client; then both descriptors to the relay.
  if (!write(s.client, ret === n ? chunk : chunk.subarray(0, ret))) return end(s);
  const down = ret < n ? Buffer.from(chunk.subarray(ret)) : undefined;
  const slot = freeSlots.pop() ?? (nextSlot < slotCount ? nextSlot++ : undefined);
  if (slot === undefined) return end(s);
  addon.add(slot, s.client.fd, this.fd, undefined, down);
  end(s);
}

const server = new tcp.TCP(tcp.constants.SERVER);
if (server.bind('127.0.0.1', listenPort!) !== 0 || server.listen(4096) !== 0) {
  process.stderr.write(`cannot listen on 127.0.0.1:${listenPort}\n`);
  process.exit(1);
}
server.onconnection = (err, client) => {
  if (err !== 0 || client === undefined) return;
  client.setNoDelay(true);
  const s: Session = { client, up: undefined, parser: undefined, rest: undefined, head: '', answered: false, switched: false, done: false };
  client[SESSION] = s;
  client.onread = clientOnRead;
  client.readStart();
};
