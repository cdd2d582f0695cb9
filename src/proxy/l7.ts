// The L7 data plane: an HTTP/1.1 listener and a TLS listener. WebSocket handshakes are checked in a fixed order
// (handshake.ts, then route, Origin, subprotocol, limits, endpoint), the request head is written to the backend
// on a raw socket, the backend's response head is read back, and after a 101 the two sockets become a tunnel
// owned by the TunnelRegistry. Plain HTTP requests are proxied over keep-alive upstream connections.
//
// Requests from clients are parsed only by Node's own strict parser (llhttp): ambiguous requests (conflicting
// Content-Length/Transfer-Encoding, obs-fold) never reach this code.
//
// [issue 12] Before HTTP sees a connection, front.ts takes off its PROXY header (--proxy-protocol) and, on the TLS
// listener with --enable-ssl-passthrough, passes ssl-passthrough hosts to l4.ts. At the edge, each request's real
// client is resolved (client-address.ts: the PROXY source, or a trusted hop's X-Forwarded-For/X-Real-IP); plain
// HTTP requests then go through the same edge policy as handshakes (edge-checks.ts: redirect, source ranges, rate,
// CORS preflight, external auth), in the order upgrade.ts numbers, and a body over maxRequestBodyBytes is refused.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { ErrorCodes, WsgateError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { RateLimitedLog } from '../log/rate-limit.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { EMPTY_TABLE, type HttpRoute, type PassthroughRoute, type RoutingTable } from '../model/table.ts';
import type { CertificateStore } from '../tls/cert-store.ts';
import { Affinity, generatedAffinityKey } from './affinity.ts';
import { ExternalAuthClient } from './auth.ts';
import type { Balancer } from './balancer.ts';
import { peerAddress, resolveClient, type ClientAddress, type ProxyProtocolIn, type TrustedProxies } from './client-address.ts';
import { EdgeChecks, PASS, type EdgeVerdict } from './edge-checks.ts';
import { installFront } from './front.ts';
import { HandshakeFront, isWebSocketUpgrade as upgradesToWebSocket, type RequestHead } from './handshake-front.ts';
import { RateLimiter } from './rate.ts';
import { clientIP, forwardHeaders, type ForwardInfo } from './forward.ts';
import { HttpForwarder } from './http-forward.ts';
import { REJECTIONS, rejectionResponse, type Rejection, validateHandshake } from './handshake.ts';
import type { ConnectionLimits } from './limits.ts';
import { normalizeHost, normalizeTarget, type NormalizeOptions, type TargetRejection } from './normalize.ts';
import { Router } from './router.ts';
import type { TunnelRegistry } from './registry.ts';
import { Upgrade, type UpgradeDeps, type UpgradeRequest } from './upgrade.ts';
import { modifyHeaders, redirectLocation, rewriteRequest } from './filters.ts';
import { keepAliveOnListener } from './listener-keepalive.ts';
import { ListenerPorts } from './listener-ports.ts';

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
  /** How request-targets are normalised before routing (normalize.ts; default: reject encoded slashes and `\`). */
  readonly normalize?: NormalizeOptions;
  // [issue 12]
  /** --proxy-protocol: connections start with a PROXY header (client-address.ts). */
  readonly proxyProtocol?: ProxyProtocolIn;
  /** --trusted-proxies: hops whose X-Forwarded-For/X-Real-IP are believed. */
  readonly trustedProxies?: TrustedProxies;
  /** The affinity cookie's key (--affinity-key-file); default: one made now, good for this process only. */
  readonly affinityKey?: Buffer;
  /** Request rates (a worker's asks the primary); default: counted in this process. */
  readonly rate?: RateLimiter;
  /** The port clients reach HTTPS on, for redirects (--redirect-https-port; default 443). */
  readonly redirectHttpsPort?: number;
  /** --enable-ssl-passthrough: ssl-passthrough hosts' TLS goes here instead of being terminated. */
  readonly passthrough?: (socket: Socket, head: Buffer, route: PassthroughRoute) => void;
  /** [issue 14] The address Gateway API listener ports bind (default 0.0.0.0; the tunnels' --tunnel-host). */
  readonly listenerHost?: string;
}

/** A request as wsgate routes and forwards it, normalised once at the edge (normalize.ts). */
type EdgeRequest =
  | {
      readonly ok: true;
      /** Normalised host name, without port; undefined for a request with no Host (HTTP/1.0). */
      readonly host: string | undefined;
      readonly path: string;
      /** The request-target the backend receives: origin-form, normalised path, the query as received. */
      readonly target: string;
      /** The Host the backend receives instead of the client's (absolute-form requests). */
      readonly hostHeader: string | undefined;
    }
  | { readonly ok: false; readonly rejection: TargetRejection };

interface Listener {
  readonly server: http.Server;
  /** [issue 13] Reads each connection's first head: WebSocket handshakes skip http.Server (handshake-front.ts). */
  readonly front: HandshakeFront;
  readonly proto: 'http' | 'https';
  port: number;
  /** Its accepted connections inherit TCP keepalive from the listening socket (listener-keepalive.ts). */
  keepAliveInherited: boolean;
  /** [issue 14] A Gateway API listener port routes with its own table (listener-ports.ts); absent = the main one. */
  readonly router?: () => Router;
}

export class L7Proxy {
  readonly #d: L7Deps;
  readonly #handshakeTimeoutMs: number;
  readonly #listeners: Listener[] = [];
  readonly #http: HttpForwarder;
  readonly #upgradeDeps: UpgradeDeps;
  /** Lines clients can cause, rate-limited. */
  readonly #rlog: RateLimitedLog;
  #router = new Router(EMPTY_TABLE);
  /** [issue 12] ssl-passthrough hosts of the live table, by hostname (exact or `*.`). */
  #passthrough: ReadonlyMap<string, PassthroughRoute> = new Map();
  readonly #edge: EdgeChecks;
  readonly #auth = new ExternalAuthClient();
  readonly #rate: RateLimiter;
  /** [issue 14] Gateway API HTTP and HTTPS listener ports, each with its own router. */
  readonly ports: ListenerPorts;

  constructor(deps: L7Deps) {
    this.#d = deps;
    this.#handshakeTimeoutMs = deps.handshakeTimeoutMs ?? 10_000;
    this.#rlog = new RateLimitedLog(deps.log, deps.metrics.logLinesSuppressed);
    const affinity = new Affinity(deps.affinityKey ?? generatedAffinityKey());
    this.#rate = deps.rate ?? new RateLimiter();
    const certs = deps.certificates;
    this.#edge = new EdgeChecks({
      rate: this.#rate,
      auth: this.#auth,
      // A host has TLS when the listener has a certificate for it other than the default one.
      hasCertificate: (host) => certs !== undefined && certs.contextFor(host) !== certs.defaultContext(),
      httpsPort: deps.redirectHttpsPort ?? 443,
    });
    this.#http = new HttpForwarder({ ...deps, rlog: this.#rlog, affinity });
    this.ports = new ListenerPorts({
      log: deps.log,
      serve: async (proto, port, router, tls) => {
        const server = proto === 'https' ? https.createServer({ ...this.#serverOptions(), ...tls, handshakeTimeout: this.#handshakeTimeoutMs }) : http.createServer(this.#serverOptions());
        await this.#listen(server, proto, { host: deps.listenerHost ?? '0.0.0.0', port }, router, false);
        return server;
      },
    });
    this.#upgradeDeps = {
      metrics: deps.metrics,
      rlog: this.#rlog,
      registry: deps.registry,
      balancer: deps.balancer,
      limits: deps.limits,
      handshakeTimeoutMs: this.#handshakeTimeoutMs,
      edge: this.#edge,
      affinity,
    };
  }

  /** Swaps the routing table. Handshakes already past route lookup keep the route they found. */
  update(table: RoutingTable): void {
    this.#router = new Router(table);
    this.#passthrough = new Map((table.passthrough ?? []).map((p) => [p.hostname, p]));
  }

  get router(): Router {
    return this.#router;
  }

  /** The options every L7 server gets. */
  #serverOptions(): http.ServerOptions {
    return {
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
  }

  async listen(httpAddr: ListenAddress | undefined, httpsAddr: ListenAddress | undefined): Promise<void> {
    const timeouts = this.#serverOptions();
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
      l.front.closeIdle();
    }
    this.#listeners.length = 0;
    this.#http.close();
    this.#auth.close();
    if (this.#d.rate === undefined) this.#rate.stop();
    return this.ports.close();
  }

  async #listen(server: http.Server, proto: 'http' | 'https', addr: ListenAddress, router?: () => Router, main = true): Promise<void> {
    const front = new HandshakeFront({
      onUpgrade: (req, socket, head) => this.#onUpgrade(req, socket, head, l),
      onClientError: (err, socket) => this.#onClientError(err, socket),
      headersTimeoutMs: this.#handshakeTimeoutMs,
      checkIntervalMs: Math.min(1000, this.#handshakeTimeoutMs),
    });
    const l: Listener = { server, front, proto, port: addr.port, keepAliveInherited: false, ...(router !== undefined ? { router } : {}) };
    // A client that half-closes after its request (printf ... | nc -N) still gets its response: its FIN ends the
    // request stream, not the exchange (Node's default aborts the request and ends the socket).
    (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    server.on('request', (req, res) => this.#onRequest(req, res, l));
    server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => this.#onUpgrade(req, socket, head, l));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.#onClientError(err, socket));
    // [issue 13] The first request head of every connection (a TLS one's once decrypted), before http.Server.
    front.install(server, proto === 'https' ? 'secureConnection' : 'connection');
    // [issue 12] PROXY header in, and ssl-passthrough on the TLS listener (front.ts), before that.
    const passthrough = this.#d.passthrough;
    installFront(server, {
      ...(this.#d.proxyProtocol !== undefined ? { proxyProtocol: this.#d.proxyProtocol } : {}),
      ...(proto === 'https' && passthrough !== undefined
        ? { passthrough: { find: (name: string) => this.#passthroughFor(name), take: passthrough, helloTimeoutMs: this.#handshakeTimeoutMs } }
        : {}),
      onRefused: (socket, reason, why) => {
        this.#d.metrics.handshakeRejections.inc({ route: '', reason });
        this.#d.metrics.connectionsTotal.inc({ route: '', layer: 'l7', outcome: 'rejected' });
        this.#rlog.info({ reason, detail: why, client: clientIP(socket.remoteAddress), proto }, 'connection refused');
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(new WsgateError(ErrorCodes.LISTEN, `cannot listen on ${addr.host}:${addr.port} (${proto})`, { cause: err })),
      );
      server.listen({ host: addr.host, port: addr.port, reusePort: this.#d.reusePort === true }, () => resolve());
    });
    server.on('error', (err) => this.#d.log.error({ err, proto }, 'listener error'));
    l.port = (server.address() as AddressInfo).port;
    keepAliveOnListener(server, (yes) => (l.keepAliveInherited = yes));
    if (main) this.#listeners.push(l);
  }

  // --- WebSocket handshakes -------------------------------------------------------------------------------------

  #onUpgrade(req: RequestHead, socket: Socket, head: Buffer, l: Listener): void {
    const e = this.#normalized(req);
    const c = this.#client(req, socket);
    const r: UpgradeRequest = e.ok
      ? { req, target: e.target, path: e.path, host: e.host, hostHeader: e.hostHeader, clientIP: c.client, peerIP: c.peer }
      : { req, target: req.url ?? '/', path: req.url ?? '/', host: req.headers.host, invalid: e.rejection, clientIP: c.client, peerIP: c.peer };
    new Upgrade(this.#upgradeDeps, socket, head, r).start(r, l.router?.() ?? this.#router, l);
  }

  /** [issue 12] The request's real client (client-address.ts). */
  #client(req: RequestHead, socket: Socket): ClientAddress {
    return resolveClient(peerAddress(socket).address, req.headers, this.#d.trustedProxies);
  }

  /** [issue 12] The ssl-passthrough route of a server name: exact, then a `*.` wildcard of one label. */
  #passthroughFor(name: string): PassthroughRoute | undefined {
    const exact = this.#passthrough.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    return dot > 0 ? this.#passthrough.get(`*${name.slice(dot)}`) : undefined;
  }

  /**
   * Normalises the request-target and the host (normalize.ts). An absolute-form target (`GET http://a.test/x`)
   * is routed by its authority, whatever the Host header says, and the backend receives origin-form with that
   * authority as Host (RFC 9112 §3.2.2): one rule, so a Host header can never send a request where its target
   * does not point.
   */
  #normalized(req: RequestHead): EdgeRequest {
    const t = normalizeTarget(req.url ?? '/', this.#d.normalize);
    if (!t.ok) return { ok: false, rejection: t };
    const rawHost = t.authority ?? req.headers.host;
    let host: string | undefined;
    if (rawHost !== undefined) {
      const h = normalizeHost(rawHost);
      if (!h.ok) return { ok: false, rejection: h };
      host = h.hostname;
    }
    return {
      ok: true,
      host,
      path: t.path,
      target: t.changed ? t.path + t.query : (req.url ?? '/'),
      hostHeader: t.authority,
    };
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
          ? REJECTIONS.handshake_timeout
          : REJECTIONS.bad_request;
    this.#d.metrics.handshakeRejections.inc({ route: '', reason: r.reason });
    this.#rlog.info(
      { code: err.code, status: r.status, reason: r.reason, client: clientIP(socket.remoteAddress) },
      'malformed request',
    );
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
    const e = this.#normalized(req);
    if (!e.ok) {
      const r = e.rejection;
      return this.#http.respond(req, res, r.status, r.message, '', { Connection: 'close' }, undefined, r.reason);
    }
    const router = l.router?.() ?? this.#router;
    const route = router.find(e.host, e.path, { method: req.method ?? '', headers: req.headers, target: e.target });
    if (!route) return this.#http.respond(req, res, 404, REJECTIONS.no_route.message, '', undefined, e.path);
    const c = this.#client(req, req.socket);
    // [issue 12] The edge policy (edge-checks.ts), steps 4–7 of upgrade.ts's order.
    const verdict = this.#edge.check({
      route,
      proto: l.proto,
      host: e.host,
      hostHeader: e.hostHeader ?? req.headers.host,
      target: e.target,
      method: req.method ?? '',
      clientIP: c.client,
      headers: req.headers,
      webSocket: false,
    });
    if (verdict === PASS || !(verdict instanceof Promise)) return this.#proxy(req, res, route, e, c, l, verdict);
    void verdict.then(
      (v) => this.#proxy(req, res, route, e, c, l, v),
      () => this.#proxy(req, res, route, e, c, l, { ok: false, rejection: REJECTIONS.auth_unavailable }),
    );
  }

  /** A routed request after the edge policy: refused, answered (a CORS preflight), or forwarded. */
  #proxy(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    route: HttpRoute,
    e: Extract<EdgeRequest, { ok: true }>,
    c: ClientAddress,
    l: Listener,
    verdict: EdgeVerdict,
  ): void {
    if (res.destroyed) return;
    if (!verdict.ok) {
      const r = verdict.rejection;
      return this.#http.respond(req, res, r.status, r.message, route.route, r.headers, e.path, verdict.detail, c.client, r.reason);
    }
    // A CORS preflight wsgate answers itself (cors.ts).
    if (verdict.preflight !== undefined) return this.#http.respond(req, res, 204, '', route.route, verdict.preflight, e.path, 'CORS preflight', c.client);
    const max = route.policy.maxRequestBodyBytes;
    if (max > 0 && Number(req.headers['content-length'] ?? 0) > max) {
      const r = REJECTIONS.body_too_large;
      return this.#http.respond(req, res, r.status, r.message, route.route, { Connection: 'close' }, e.path, undefined, c.client, r.reason);
    }
    const info: ForwardInfo = {
      clientIP: c.client,
      peerIP: c.peer,
      proto: l.proto,
      port: l.port,
      ...(e.hostHeader ? { host: e.hostHeader } : {}),
    };
    // [issue 14] A Gateway API rule's redirect or fixed answer, else its rewrite and header changes (filters.ts).
    const f = route.filters;
    if (f?.directStatus !== undefined) {
      return this.#http.respond(req, res, f.directStatus, REJECTIONS.invalid_backend.message, route.route, undefined, e.path, undefined, c.client, 'invalid_backend');
    }
    if (f?.redirect !== undefined) {
      const location = redirectLocation(f.redirect, route, { scheme: l.proto, host: e.host, port: l.port, path: e.path, target: e.target });
      return this.#http.respond(req, res, f.redirect.statusCode, '', route.route, { Location: location }, e.path, undefined, c.client, 'route_redirect');
    }
    let headers = forwardHeaders(req.rawHeaders, info, false, undefined, verdict.headers);
    let target = e.target;
    if (f?.rewrite !== undefined) ({ target, headers } = rewriteRequest(f.rewrite, route, e.path, target, headers));
    if (f?.requestHeaders !== undefined) headers = modifyHeaders(headers, f.requestHeaders);
    if (req.headers['transfer-encoding'] !== undefined) headers.push('Transfer-Encoding', 'chunked');
    // Only a request without a body can be retried on another endpoint: a body already sent cannot be replayed.
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    const request = { method: req.method ?? '', host: e.host, path: e.path, target, clientIP: c.client, proto: l.proto };
    this.#http.forward(req, res, route, headers, request, !hasBody);
  }
}

function isWebSocketUpgrade(req: http.IncomingMessage): boolean {
  return upgradesToWebSocket(req.headers.upgrade);
}

