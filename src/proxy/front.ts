// What happens to a connection on an L7 listener before HTTP (or TLS) sees it (issue 12), in order:
//  1. --proxy-protocol: the PROXY header is read and taken off (client-address.ts); a connection from outside
//     --trusted-proxies, or without a valid header in time, is closed;
//  2. the HTTPS listener with --enable-ssl-passthrough: the ClientHello is read (sni.ts, never decrypted) and, when
//     its server name is an ssl-passthrough host, the connection becomes an L4 tunnel to that host's backend
//     (l4.ts), the way ingress-nginx does it; otherwise the bytes read go back and TLS is terminated as usual.
// The server's own 'connection' handling (the HTTP parser, or the TLS handshake) then starts with the client's first
// byte. Without either option nothing is installed and connections go straight to the server.
import type net from 'node:net';
import type { PassthroughRoute } from '../model/table.ts';
import { readProxyHeader, type ProxyProtocolIn } from './client-address.ts';
import type { RejectReason } from './outcomes.ts';
import { parseClientHello } from './sni.ts';

export interface FrontOptions {
  readonly proxyProtocol?: ProxyProtocolIn;
  readonly passthrough?: {
    /** The passthrough route for a server name, from the live table. */
    readonly find: (serverName: string) => PassthroughRoute | undefined;
    /** Makes the connection a tunnel to the route's backend, `head` (the ClientHello) first. */
    readonly take: (socket: net.Socket, head: Buffer, route: PassthroughRoute) => void;
    readonly helloTimeoutMs: number;
  };
  /** A connection closed before the server saw it (counted and logged by the caller). */
  readonly onRefused: (socket: net.Socket, reason: Extract<RejectReason, 'bad_proxy_header' | 'proxy_not_trusted' | 'hello_timeout'>, why: string) => void;
}

/** Routes `server`'s new connections through the steps above before its own 'connection' listeners. */
export function installFront(server: net.Server, o: FrontOptions): void {
  if (o.proxyProtocol === undefined && o.passthrough === undefined) return;
  const emit = server.emit.bind(server);
  const hand = (socket: net.Socket): void => {
    emit('connection', socket);
  };
  const afterProxy = (socket: net.Socket): void => {
    if (o.passthrough === undefined) return hand(socket);
    sniff(socket, o.passthrough, hand, (why) => o.onRefused(socket, 'hello_timeout', why));
  };
  server.emit = function (this: net.Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'connection') return emit(event, ...args);
    const socket = args[0] as net.Socket;
    // Errors before the server owns the socket end it; the server adds its own handlers.
    socket.on('error', destroyOnError);
    const next = (): void => {
      socket.removeListener('error', destroyOnError);
      afterProxy(socket);
    };
    if (o.proxyProtocol === undefined) next();
    else {
      readProxyHeader(socket, o.proxyProtocol, (r) => {
        if (r.ok) return next();
        o.onRefused(socket, r.reason, r.why);
        socket.destroy();
      });
    }
    return true;
  } as net.Server['emit'];
}

function destroyOnError(this: net.Socket): void {
  this.destroy();
}

/** Reads the ClientHello; a passthrough host's goes to `take`, anything else back to the TLS server. */
function sniff(socket: net.Socket, p: NonNullable<FrontOptions['passthrough']>, hand: (s: net.Socket) => void, timedOut: (why: string) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  let finished = false;
  const finish = (): void => {
    finished = true;
    clearTimeout(timer);
    socket.removeListener('readable', onReadable);
    socket.removeListener('close', onClose);
  };
  const timer = setTimeout(() => {
    if (finished) return;
    finish();
    timedOut('no ClientHello in time');
    socket.destroy();
  }, p.helloTimeoutMs);
  const onClose = (): void => {
    if (!finished) finish();
  };
  const onReadable = (): void => {
    let chunk: Buffer | null;
    while ((chunk = socket.read() as Buffer | null) !== null) {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const hello = parseClientHello(buf);
      if (hello.state === 'need-more') continue;
      finish();
      const route = hello.state === 'ok' && hello.serverName !== undefined ? p.find(hello.serverName.toLowerCase()) : undefined;
      if (route !== undefined) return p.take(socket, buf, route);
      // Not ours to pass through (or not TLS at all): the TLS server gets every byte, and answers as it would.
      socket.unshift(buf);
      return hand(socket);
    }
  };
  socket.on('readable', onReadable);
  socket.once('close', onClose);
}
