// The L7 data plane: an HTTP/1.1 listener and a TLS listener. WebSocket handshakes are checked in a fixed order
// (handshake.ts, then route, Origin, subprotocol, limits, endpoint), the request head is written to the backend
// on a raw socket, the backend's response head is read back, and after a 101 the two sockets become a tunnel
// owned by the TunnelRegistry. Plain HTTP requests are proxied over keep-alive upstream connections.
//
// Requests from clients are parsed only by Node's own strict parser (llhttp): ambiguous requests (conflicting
// Content-Length/Transfer-Encoding, obs-fold) never reach this code.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { ErrorCodes, WsgateError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { EMPTY_TABLE, type HttpRoute, type RoutingTable } from '../model/table.ts';
import type { CertificateStore } from '../tls/cert-store.ts';
import type { Balancer } from './balancer.ts';
import { clientIP, forwardHeaders, type ForwardInfo, requestHead } from './forward.ts';
import { hashInput, HttpForwarder } from './http-forward.ts';
import {
  negotiateProtocols,
  originAllowed,
  REJECTIONS,
  rejectionResponse,
  type Rejection,
  validateHandshake,
} from './handshake.ts';
import type { ConnectionLimits } from './limits.ts';
import { parseResponseHead } from './response-head.ts';
import { Router, pathOf } from './router.ts';
import type { TunnelRegistry } from './tunnel.ts';
import { connectUpstream, type Upstream } from './upstream.ts';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface L7Deps {
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly registry: TunnelRegistry;
  readonly balancer: Balancer;
  readonly limits: ConnectionLimits;
  /** Serves the TLS listener's certificates; required when an HTTPS address is given. */
  readonly certificates?: CertificateStore;
  /** A request head, and a backend's answer to a handshake, must arrive within this (ms). Default 10000. */
  readonly handshakeTimeoutMs?: number;
  /** Bind with SO_REUSEPORT, so that several worker processes share each port (default false). */
  readonly reusePort?: boolean;
}

interface Listener {
  readonly server: http.Server;
  readonly proto: 'http' | 'https';
  port: number;
}

function noop(): void {}

export class L7Proxy {
  readonly #d: L7Deps;
  readonly #handshakeTimeoutMs: number;
  readonly #listeners: Listener[] = [];
  readonly #http: HttpForwarder;
  #router = new Router(EMPTY_TABLE);

  constructor(deps: L7Deps) {
    this.#d = deps;
    this.#handshakeTimeoutMs = deps.handshakeTimeoutMs ?? 10_000;
    this.#http = new HttpForwarder(deps);
  }

  /** Swaps the routing table. Handshakes already past route lookup keep the route they found. */
  update(table: RoutingTable): void {
    this.#router = new Router(table);
  }

  get router(): Router {
    return this.#router;
  }

  async listen(httpAddr: ListenAddress | undefined, httpsAddr: ListenAddress | undefined): Promise<void> {
    const timeouts: http.ServerOptions = {
      // A client that has not sent its whole head in time is closed with 408 (slowloris).
      headersTimeout: this.#handshakeTimeoutMs,
      // 0: a plain request's body may stream for as long as it needs; upgraded sockets are not tracked at all.
      requestTimeout: 0,
      connectionsCheckingInterval: Math.min(1000, this.#handshakeTimeoutMs),
      keepAliveTimeout: 60_000,
      insecureHTTPParser: false,
      joinDuplicateHeaders: false,
      // Only WebSocket upgrades leave the HTTP server. Others (h2c, as curl --http2 offers) are served as plain
      // HTTP/1.1, ignoring the Upgrade, as RFC 9110 §7.8 allows.
      shouldUpgradeCallback: isWebSocketUpgrade,
    };
    if (httpAddr) {
      await this.#listen(http.createServer(timeouts), 'http', httpAddr);
    }
    if (httpsAddr) {
      const certs = this.#d.certificates;
      if (!certs) throw new Error('an HTTPS listener needs a certificate store');
      const server = https.createServer({
        ...timeouts,
        // The default certificate as the server's own (clients without SNI), the rest chosen by SNI.
        ...certs.serverOptions(),
        handshakeTimeout: this.#handshakeTimeoutMs,
      });
      await this.#listen(server, 'https', httpsAddr);
    }
  }

  addresses(): { http?: AddressInfo; https?: AddressInfo } {
    const out: { http?: AddressInfo; https?: AddressInfo } = {};
    for (const l of this.#listeners) out[l.proto] = l.server.address() as AddressInfo;
    return out;
  }

  /** Stops accepting and closes idle keep-alive connections. Tunnels belong to the registry and are left alone. */
  close(): Promise<void> {
    for (const l of this.#listeners) {
      // close() stops accepting now. Its callback would wait for every accepted socket, upgraded tunnels included
      // (nodejs/node#53536); those belong to the registry, which the gateway drains next.
      l.server.close();
      l.server.closeIdleConnections();
    }
    this.#listeners.length = 0;
    this.#http.close();
    return Promise.resolve();
  }

  async #listen(server: http.Server, proto: 'http' | 'https', addr: ListenAddress): Promise<void> {
    const l: Listener = { server, proto, port: addr.port };
    server.on('request', (req, res) => this.#onRequest(req, res, l));
    server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => this.#onUpgrade(req, socket, head, l));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.#onClientError(err, socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(new WsgateError(ErrorCodes.LISTEN, `cannot listen on ${addr.host}:${addr.port} (${proto})`, { cause: err })),
      );
      server.listen({ host: addr.host, port: addr.port, reusePort: this.#d.reusePort === true }, () => resolve());
    });
    server.on('error', (err) => this.#d.log.error({ err, proto }, 'listener error'));
    l.port = (server.address() as AddressInfo).port;
    this.#listeners.push(l);
  }

  // --- WebSocket handshakes -------------------------------------------------------------------------------------

  #onUpgrade(req: http.IncomingMessage, socket: Socket, head: Buffer, l: Listener): void {
    const startedAt = performance.now();
    // Errors before the tunnel exists end the handshake through 'close'; the tunnel adds its own handlers.
    socket.on('error', noop);
    const readBase = socket.bytesRead - head.length;

    // 1. The request itself (method, Upgrade, Connection, key, version).
    const v = validateHandshake(req.method, req.headers);
    if (!('ok' in v)) return this.#reject(socket, v, '');
    // 2. The route, chosen from the table current now; a later swap does not change it.
    const route = this.#router.find(req.headers.host, pathOf(req.url));
    if (!route) return this.#reject(socket, REJECTIONS.no_route, '');
    const policy = route.policy;
    // 3. Origin, then subprotocols.
    if (!originAllowed(v.origin, policy.allowedOrigins)) return this.#reject(socket, REJECTIONS.origin_not_allowed, route.route);
    const protocols = negotiateProtocols(v.protocols, policy.subprotocols);
    if (!protocols) return this.#reject(socket, REJECTIONS.subprotocol_not_allowed, route.route);
    // 4. Limits: a Promise when several workers share the pod's limits (limits.ts); unlimited routes answer at once.
    const ip = clientIP(socket.remoteAddress);
    const admitted = this.#d.limits.tryAcquire(route.id, ip, policy.maxConnections, policy.maxConnectionsPerClient);
    if (admitted === false) return this.#reject(socket, REJECTIONS.over_limit, route.route);
    if (admitted !== true) {
      void admitted.then((ok) => {
        if (!ok) return this.#reject(socket, REJECTIONS.over_limit, route.route);
        if (socket.destroyed) return this.#d.limits.release(route.id, ip);
        this.#connect(req, socket, head, l, route, ip, protocols, startedAt, readBase);
      });
      return;
    }
    this.#connect(req, socket, head, l, route, ip, protocols, startedAt, readBase);
  }

  /** 5. An endpoint that accepts the connection (a limit slot is held). */
  #connect(
    req: http.IncomingMessage, socket: Socket, head: Buffer, l: Listener, route: HttpRoute, ip: string,
    protocols: readonly string[], startedAt: number, readBase: number,
  ): void {
    const policy = route.policy;
    const releaseLimit = (): void => this.#d.limits.release(route.id, ip);
    const info: ForwardInfo = { clientIP: ip, proto: l.proto, port: l.port };
    const headers = forwardHeaders(req.rawHeaders, info, true, policy.subprotocols.length > 0 ? protocols : undefined);
    const target = req.url ?? '/';
    connectUpstream(
      {
        routeId: route.id,
        route: route.route,
        backends: route.backends,
        loadBalancing: policy.loadBalancing,
        hashInput: hashInput(ip, req),
        connectTimeoutSeconds: policy.connectTimeoutSeconds,
      },
      this.#d.balancer,
      this.#d.metrics,
    ).then(
      (up) => {
        if (socket.destroyed) {
          up.socket.destroy();
          this.#d.balancer.release(up.pick.key);
          releaseLimit();
          return;
        }
        up.socket.on('error', noop);
        // One write for the head and the bytes that came with it. Header bytes are latin1 as llhttp read them.
        const requestBytes = requestHead('GET', target, headers);
        if (head.length > 0) up.socket.write(Buffer.concat([Buffer.from(requestBytes, 'latin1'), head]));
        else up.socket.write(requestBytes, 'latin1');
        this.#awaitResponse(socket, up, route, ip, startedAt, readBase, releaseLimit);
      },
      (err: unknown) => {
        releaseLimit();
        const code = err instanceof WsgateError ? err.code : undefined;
        const r =
          code === ErrorCodes.NO_ENDPOINT
            ? REJECTIONS.no_endpoint
            : code === ErrorCodes.UPSTREAM_TIMEOUT
              ? REJECTIONS.upstream_timeout
              : REJECTIONS.upstream_refused;
        this.#reject(socket, r, route.route);
      },
    );
  }

  /** 6. The backend's answer: a 101 makes a tunnel; anything else is relayed to the client as it is. */
  #awaitResponse(
    client: Socket,
    up: Upstream,
    route: HttpRoute,
    ip: string,
    startedAt: number,
    readBase: number,
    releaseLimit: () => void,
  ): void {
    const upstream = up.socket;
    let buf: Buffer | undefined;
    let done = false;
    const release = (): void => {
      this.#d.balancer.release(up.pick.key);
      releaseLimit();
    };
    const finish = (): void => {
      done = true;
      clearTimeout(timer);
      upstream.removeListener('data', onData);
      upstream.removeListener('close', onUpstreamClose);
      upstream.removeListener('end', onUpstreamClose);
      client.removeListener('close', onClientClose);
    };
    const fail = (r: Rejection): void => {
      if (done) return;
      finish();
      upstream.destroy();
      release();
      this.#reject(client, r, route.route);
    };
    const onUpstreamClose = (): void => fail(REJECTIONS.upstream_refused);
    const onClientClose = (): void => {
      if (done) return;
      finish();
      upstream.destroy();
      release();
      this.#d.metrics.connectionsTotal.inc({ route: route.route, layer: 'l7', outcome: 'client_error' });
    };
    const timer = setTimeout(() => fail(REJECTIONS.upstream_timeout), this.#handshakeTimeoutMs);
    const onData = (chunk: Buffer): void => {
      buf = buf ? Buffer.concat([buf, chunk]) : chunk;
      const parsed = parseResponseHead(buf);
      if (parsed === 'need-more') return;
      if (parsed === 'invalid') return fail(REJECTIONS.upstream_bad_response);
      finish();
      // Nothing more is read from the backend until the tunnel's pipe resumes it.
      upstream.pause();
      if (parsed.status === 101) {
        const writtenBase = client.bytesWritten + parsed.raw.length;
        // The 101 as received, and in the same write the backend's first frames if they shared its read: they
        // belong to the client (h2o#1272).
        client.write(parsed.rest.length > 0 ? buf : parsed.raw);
        client.setKeepAlive(true, 60_000);
        // The tunnel brings its own error handlers; these placeholders would stay for its whole life.
        client.removeListener('error', noop);
        upstream.removeListener('error', noop);
        this.#d.metrics.handshakeDuration.observe({ route: route.route }, (performance.now() - startedAt) / 1000);
        this.#d.registry.open({
          route: route.route,
          layer: 'l7',
          client,
          upstream,
          clientAddress: ip,
          backend: up.pick.key,
          idleTimeoutMs: route.policy.idleTimeoutSeconds * 1000,
          clientReadBase: readBase,
          clientWrittenBase: writtenBase,
          startedAt,
          // The registry gives the slot and the endpoint back when the tunnel ends.
          routeId: route.id,
        });
        return;
      }
      this.#relayRefusal(client, upstream, parsed, route.route, release);
    };
    upstream.on('data', onData);
    // allowHalfOpen: a backend that sends FIN without an answer gives 'end', not 'close'.
    upstream.once('end', onUpstreamClose);
    upstream.once('close', onUpstreamClose);
    client.once('close', onClientClose);
  }

  /** A backend that answers a handshake with anything but 101: the client gets that answer, then both close. */
  #relayRefusal(
    client: Socket,
    upstream: Socket,
    head: { raw: Buffer; rest: Buffer; status: number; contentLength: number | undefined },
    route: string,
    release: () => void,
  ): void {
    this.#d.metrics.handshakeRejections.inc({ route, reason: 'backend_refused_upgrade' });
    this.#d.metrics.connectionsTotal.inc({ route, layer: 'l7', outcome: 'rejected' });
    this.#d.log.info({ route, status: head.status }, 'backend refused the upgrade');
    let released = false;
    const end = (): void => {
      if (!released) {
        released = true;
        release();
      }
      upstream.destroy();
      client.end();
      client.once('finish', () => client.destroy());
    };
    client.write(head.raw);
    upstream.once('end', end);
    upstream.once('close', end);
    client.once('close', end);
    if (head.contentLength !== undefined) {
      let remaining = head.contentLength;
      const relay = (b: Buffer): void => {
        const part = b.length > remaining ? b.subarray(0, remaining) : b;
        remaining -= part.length;
        if (part.length > 0) client.write(part);
        if (remaining <= 0) end();
      };
      relay(head.rest);
      if (remaining > 0) {
        upstream.on('data', relay);
        upstream.resume();
      }
      return;
    }
    // Chunked or close-delimited: relay until the backend closes.
    if (head.rest.length > 0) client.write(head.rest);
    upstream.pipe(client, { end: false });
  }

  /** Every handshake refusal ends here: one complete response with Connection: close, then the socket goes. */
  #reject(socket: Socket, r: Rejection, route: string): void {
    this.#d.metrics.handshakeRejections.inc({ route, reason: r.reason });
    this.#d.metrics.connectionsTotal.inc({ route, layer: 'l7', outcome: 'rejected' });
    this.#d.log.info({ route, status: r.status, reason: r.reason, client: clientIP(socket.remoteAddress) }, 'handshake rejected');
    if (socket.destroyed) return;
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    socket.once('finish', () => socket.destroy());
    socket.end(rejectionResponse(r));
  }

  #onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const r: Rejection =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? { status: 431, reason: 'bad_request', message: 'Request header fields too large' }
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? { status: 408, reason: 'bad_request', message: 'Request head not received in time' }
          : { status: 400, reason: 'bad_request', message: 'Bad request' };
    const reason = r.status === 408 ? 'handshake_timeout' : 'bad_request';
    this.#d.metrics.handshakeRejections.inc({ route: '', reason });
    this.#d.log.info({ code: err.code, reason, client: clientIP(socket.remoteAddress) }, 'malformed request');
    socket.once('finish', () => socket.destroy());
    socket.end(rejectionResponse(r));
  }

  // --- plain HTTP ---------------------------------------------------------------------------------------------

  #onRequest(req: http.IncomingMessage, res: http.ServerResponse, l: Listener): void {
    // An incomplete WebSocket handshake (Upgrade without Connection: upgrade) gets the handshake's own answer.
    // A WebSocket handshake that did not qualify as an upgrade (no Connection: upgrade, or another Upgrade token
    // with a Sec-WebSocket-Key) gets the handshake's own answer; an h2c offer is simply served as HTTP/1.1.
    if (isWebSocketUpgrade(req) || req.headers['sec-websocket-key'] !== undefined) {
      const v = validateHandshake(req.method, req.headers);
      if (!('ok' in v)) {
        this.#d.metrics.handshakeRejections.inc({ route: '', reason: v.reason });
        this.#d.metrics.connectionsTotal.inc({ route: '', layer: 'l7', outcome: 'rejected' });
        return this.#http.respond(req, res, v.status, v.message, '', { ...v.headers, Connection: 'close' });
      }
    }
    const route = this.#router.find(req.headers.host, pathOf(req.url));
    if (!route) return this.#http.respond(req, res, 404, REJECTIONS.no_route.message, '');
    const ip = clientIP(req.socket.remoteAddress);
    const info: ForwardInfo = { clientIP: ip, proto: l.proto, port: l.port };
    const headers = forwardHeaders(req.rawHeaders, info, false);
    if (req.headers['transfer-encoding'] !== undefined) headers.push('Transfer-Encoding', 'chunked');
    // Only a request without a body can be retried on another endpoint: a body already sent cannot be replayed.
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    this.#http.forward(req, res, route, headers, ip, hasBody ? 1 : 3);
  }
}

function isWebSocketUpgrade(req: http.IncomingMessage): boolean {
  const u = req.headers.upgrade;
  return u !== undefined && /(^|,)\s*websocket\s*(,|$)/i.test(u);
}

