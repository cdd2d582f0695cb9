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
import { RateLimitedLog } from '../log/rate-limit.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { EMPTY_TABLE, type RoutingTable } from '../model/table.ts';
import type { CertificateStore } from '../tls/cert-store.ts';
import type { Balancer } from './balancer.ts';
import { clientIP, forwardHeaders, type ForwardInfo } from './forward.ts';
import { HttpForwarder } from './http-forward.ts';
import { REJECTIONS, rejectionResponse, type Rejection, validateHandshake } from './handshake.ts';
import type { ConnectionLimits } from './limits.ts';
import { normalizeHost, normalizeTarget, type NormalizeOptions, type TargetRejection } from './normalize.ts';
import { Router } from './router.ts';
import type { TunnelRegistry } from './registry.ts';
import { Upgrade, type UpgradeDeps, type UpgradeRequest } from './upgrade.ts';

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
  readonly proto: 'http' | 'https';
  port: number;
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

  constructor(deps: L7Deps) {
    this.#d = deps;
    this.#handshakeTimeoutMs = deps.handshakeTimeoutMs ?? 10_000;
    this.#rlog = new RateLimitedLog(deps.log, deps.metrics.logLinesSuppressed);
    this.#http = new HttpForwarder({ ...deps, rlog: this.#rlog });
    this.#upgradeDeps = {
      metrics: deps.metrics,
      rlog: this.#rlog,
      registry: deps.registry,
      balancer: deps.balancer,
      limits: deps.limits,
      handshakeTimeoutMs: this.#handshakeTimeoutMs,
    };
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
    // A client that half-closes after its request (printf ... | nc -N) still gets its response: its FIN ends the
    // request stream, not the exchange (Node's default aborts the request and ends the socket).
    (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
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
    const e = this.#edge(req);
    const r: UpgradeRequest = e.ok
      ? { req, target: e.target, path: e.path, host: e.host, hostHeader: e.hostHeader }
      : { req, target: req.url ?? '/', path: req.url ?? '/', host: req.headers.host, invalid: e.rejection };
    new Upgrade(this.#upgradeDeps, socket, head, r).start(r, this.#router, l);
  }

  /**
   * Normalises the request-target and the host (normalize.ts). An absolute-form target (`GET http://a.test/x`)
   * is routed by its authority, whatever the Host header says, and the backend receives origin-form with that
   * authority as Host (RFC 9112 §3.2.2): one rule, so a Host header can never send a request where its target
   * does not point.
   */
  #edge(req: http.IncomingMessage): EdgeRequest {
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
    const e = this.#edge(req);
    if (!e.ok) {
      const r = e.rejection;
      return this.#http.respond(req, res, r.status, r.message, '', { Connection: 'close' }, undefined, r.reason);
    }
    const route = this.#router.find(e.host, e.path);
    if (!route) return this.#http.respond(req, res, 404, REJECTIONS.no_route.message, '', undefined, e.path);
    const ip = clientIP(req.socket.remoteAddress);
    const info: ForwardInfo = { clientIP: ip, proto: l.proto, port: l.port, ...(e.hostHeader ? { host: e.hostHeader } : {}) };
    const headers = forwardHeaders(req.rawHeaders, info, false);
    if (req.headers['transfer-encoding'] !== undefined) headers.push('Transfer-Encoding', 'chunked');
    // Only a request without a body can be retried on another endpoint: a body already sent cannot be replayed.
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    const request = { method: req.method ?? '', host: e.host, path: e.path, target: e.target, clientIP: ip };
    this.#http.forward(req, res, route, headers, request, !hasBody);
  }
}

function isWebSocketUpgrade(req: http.IncomingMessage): boolean {
  const u = req.headers.upgrade;
  return u !== undefined && /(^|,)\s*websocket\s*(,|$)/i.test(u);
}

