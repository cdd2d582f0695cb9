// Plain HTTP through a route: the app's pages, socket.io's polling, server-sent events. Requests go to the backend
// over keep-alive connections with their bodies streamed both ways. WebSocket handshakes never come here (upgrade.ts).
//
// The numbered life of one exchange:
//  1. pick an endpoint; none ready → 503;
//  2. send the request; a refused connect is retried on another endpoint when the request has no body (a body
//     already streamed cannot be replayed), a connect timeout answers 504, other connect failures 502;
//  3. wait for the response head at most responseHeaderTimeoutSeconds (504, counted by phase), and, when the route
//     has idleTimeoutSeconds, abort an exchange with no byte either way for that long;
//  4. relay the response; the client going away aborts the backend request, and is logged as 499 and counted as
//     a client abort, never as an upstream error.
// [issue 12] A rule with backendTLS sends it over TLS (backend-tls.ts; a certificate error is a 502 with reason
// upstream_tls_error); a Cookie rule prefers the affinity cookie's endpoint and sets the cookie on the response
// (affinity.ts); over TLS the response gets the rule's HSTS; CORS headers go on responses to allowed origins
// (cors.ts); a body over maxRequestBodyBytes is cut and answered 413 when nothing was answered yet.
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { RateLimitedLog } from '../log/rate-limit.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Backend, HttpRoute } from '../model/table.ts';
import { modifyHeaders } from './filters.ts';
import type { Affinity } from './affinity.ts';
import { isTlsError, requestOptions, serverName } from './backend-tls.ts';
import type { Balancer, HashInput, Pick } from './balancer.ts';
import { responseCorsHeaders } from './cors.ts';
import { hstsHeader } from './redirect.ts';
import { clientIP, responseHeaders } from './forward.ts';
import { REJECTIONS } from './handshake.ts';
import { CLIENT_CLOSED_REQUEST, type Outcome } from './outcomes.ts';
import { connectFailure } from './upstream.ts';

export interface HttpForwarderDeps {
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Lines clients can cause (one per request), rate-limited. */
  readonly rlog: RateLimitedLog;
  readonly balancer: Balancer;
  /** [issue 12] The affinity cookie's key. */
  readonly affinity: Affinity;
}

/** Distinct endpoints tried for a request without a body before it fails with 502. */
const MAX_ATTEMPTS = 3;

/** What the access log and the metrics say about one request. */
export interface RequestInfo {
  readonly method: string;
  /** The normalised host routed on. */
  readonly host: string | undefined;
  /** The normalised path routed on. */
  readonly path: string;
  /** The request-target sent to the backend (normalised path, query as received). */
  readonly target: string;
  readonly clientIP: string;
  /** [issue 12] The listener's protocol: HSTS and the cookie's Secure over TLS. */
  readonly proto?: 'http' | 'https';
}

/** One client request on its way through a route. */
interface Exchange {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly route: HttpRoute;
  readonly headers: readonly string[];
  readonly info: RequestInfo;
  /** The request may be sent again to another endpoint (it has no body). */
  readonly retryable: boolean;
  readonly tried: Set<string>;
  readonly startedAt: number;
  /** What the endpoint is picked by; with a Cookie rule, the cookie's endpoint as `preferred`. */
  readonly hash: HashInput;
  /** [issue 14] The backends this exchange may use (balancer.backendsFor: one of a weightPerBackend route's). */
  readonly backends: readonly Backend[];
  attempts: number;
  /** The body went over maxRequestBodyBytes (413). */
  bodyTooLarge: boolean;
  /** A TLS failure's OpenSSL reason, for the log line. */
  detail: string | undefined;
  proxyReq: http.ClientRequest | undefined;
  pick: Pick | undefined;
  /** The response head has been relayed (its status is the one logged). */
  status: number | undefined;
  /** The line has been logged and the request counted. */
  finished: boolean;
}

function timeoutError(message: string, code: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(message);
  e.code = code;
  return e;
}

const RESPONSE_HEADER_TIMEOUT = 'WSGATE_RESPONSE_HEADER_TIMEOUT';
const IDLE_TIMEOUT = 'WSGATE_IDLE_TIMEOUT';
const BODY_TOO_LARGE = 'WSGATE_BODY_TOO_LARGE';

export class HttpForwarder {
  readonly #d: HttpForwarderDeps;
  /** Keep-alive connections to backends for plain HTTP; WebSocket tunnels never use it. */
  readonly #agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 30_000, maxFreeSockets: 64, scheduling: 'lifo' });
  /** [issue 12] The same for https:// backends; it pools per server name, CA and verification setting. */
  readonly #tlsAgent = new https.Agent({ keepAlive: true, keepAliveMsecs: 30_000, maxFreeSockets: 64, scheduling: 'lifo' });

  constructor(deps: HttpForwarderDeps) {
    this.#d = deps;
  }

  /**
   * Sends the request to an endpoint of the route, with `headers` (already the forwarded set) and the body streamed.
   * @param retryable The request has no body, so it may be sent to another endpoint when one refuses.
   */
  forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    route: HttpRoute,
    headers: readonly string[],
    info: RequestInfo,
    retryable: boolean,
  ): void {
    let hash = hashInput(info.clientIP, req, info.target);
    const lb = route.policy.loadBalancing;
    if (lb.policy === 'Cookie') {
      const preferred = this.#d.affinity.endpointOf(hash.cookie?.(lb.cookie.name), route.backends);
      if (preferred !== undefined) hash = { ...hash, preferred };
    }
    // [issue 14] A weightPerBackend route's backend for this exchange; an invalid backendRef's share answers 500.
    const backends = this.#d.balancer.backendsFor(route);
    const x: Exchange = {
      req,
      res,
      route,
      headers,
      info,
      retryable,
      tried: new Set(),
      startedAt: performance.now(),
      hash,
      backends: backends === 'invalid' ? [] : backends,
      bodyTooLarge: false,
      detail: undefined,
      attempts: 0,
      proxyReq: undefined,
      pick: undefined,
      status: undefined,
      finished: false,
    };
    // The client going away aborts the backend request: an abort, never an upstream error.
    res.once('close', () => {
      if (res.writableFinished) return;
      x.proxyReq?.destroy();
      this.#finish(x, x.status ?? CLIENT_CLOSED_REQUEST, 'client_abort');
    });
    if (backends === 'invalid') return this.#answer(x, 500, REJECTIONS.invalid_backend.message);
    // [issue 14] An HTTPRoute's timeouts.request bounds the whole exchange (plain HTTP only: tunnels never come here).
    const limit = route.requestTimeoutSeconds ?? 0;
    if (limit > 0) {
      const timer = setTimeout(() => {
        if (x.finished) return;
        this.#d.metrics.httpUpstreamTimeouts.inc({ route: route.route, phase: 'request' });
        x.proxyReq?.destroy();
        if (res.headersSent) this.#abortResponse(x, 'upstream_error');
        else this.#answer(x, 504, REJECTIONS.upstream_timeout.message);
      }, limit * 1000);
      res.once('close', () => clearTimeout(timer));
    }
    this.#attempt(x);
  }

  #attempt(x: Exchange): void {
    const { balancer, metrics } = this.#d;
    const { route, req, res } = x;
    const pick = balancer.pick(route.id, x.backends, route.policy.loadBalancing, x.hash, x.tried);
    if (!pick) {
      const status = x.tried.size === 0 ? 503 : 502;
      return this.#answer(x, status, status === 503 ? REJECTIONS.no_endpoint.message : REJECTIONS.upstream_refused.message);
    }
    x.tried.add(pick.key);
    x.attempts++;
    x.pick = pick;
    balancer.acquire(pick.key);
    let released = false;
    const release = (): void => {
      if (!released) {
        released = true;
        balancer.release(pick.key);
      }
    };
    const common = {
      host: pick.endpoint.address,
      port: pick.endpoint.port,
      method: req.method,
      path: x.info.target,
      headers: x.headers as string[],
      setHost: false,
    };
    // [issue 12] https:// backends.
    const tls = route.policy.backendTLS;
    const tlsOptions = tls.enabled ? requestOptions(tls, pick.backend) : undefined;
    if (tlsOptions instanceof Error) {
      release();
      x.detail = `backend TLS: ${tlsOptions.code}`;
      this.#d.rlog.warn({ route: route.route, backend: pick.key, code: tlsOptions.code, error: tlsOptions.message }, 'backend TLS handshake failed');
      this.#d.metrics.upstreamConnectErrors.inc({ route: route.route, reason: 'tls' });
      return this.#answer(x, 502, REJECTIONS.upstream_tls_error.message);
    }
    const proxyReq =
      tlsOptions === undefined ? http.request({ ...common, agent: this.#agent }) : https.request({ ...common, ...tlsOptions, agent: this.#tlsAgent });
    x.proxyReq = proxyReq;
    let connected = false;
    let connectTimer: NodeJS.Timeout | undefined;
    let headerTimer: NodeJS.Timeout | undefined;
    proxyReq.on('socket', (s: Socket) => {
      if (!s.connecting) {
        connected = true;
        return;
      }
      connectTimer = setTimeout(
        () => proxyReq.destroy(timeoutError('connect timeout', 'ETIMEDOUT')),
        route.policy.connectTimeoutSeconds * 1000,
      );
      s.once('connect', () => {
        connected = true;
        clearTimeout(connectTimer);
      });
    });
    // 3. The response head must follow the request within responseHeaderTimeoutSeconds.
    const headerTimeoutMs = route.policy.responseHeaderTimeoutSeconds * 1000;
    if (headerTimeoutMs > 0) {
      proxyReq.once('finish', () => {
        headerTimer = setTimeout(
          () => proxyReq.destroy(timeoutError('no response head in time', RESPONSE_HEADER_TIMEOUT)),
          headerTimeoutMs,
        );
      });
    }
    const idleMs = route.policy.idleTimeoutSeconds * 1000;
    if (idleMs > 0) {
      // Re-armed by Node on every read and write of the backend socket: plain HTTP is not the tunnel hot path.
      proxyReq.setTimeout(idleMs, () => proxyReq.destroy(timeoutError('no byte either way in time', IDLE_TIMEOUT)));
    }
    proxyReq.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      clearTimeout(headerTimer);
      release();
      if (x.finished) return;
      if (err.code === RESPONSE_HEADER_TIMEOUT || err.code === IDLE_TIMEOUT) {
        const phase = err.code === RESPONSE_HEADER_TIMEOUT ? 'response_header' : 'idle';
        metrics.httpUpstreamTimeouts.inc({ route: route.route, phase });
        if (res.headersSent) return this.#abortResponse(x, 'upstream_error');
        return this.#answer(x, 504, REJECTIONS.upstream_timeout.message);
      }
      if (res.headersSent) return this.#abortResponse(x, 'upstream_error');
      if (err.code === BODY_TOO_LARGE) return this.#answer(x, 413, REJECTIONS.body_too_large.message);
      // [issue 12] A backend whose TLS fails: 502, with the reason in the log line.
      if (isTlsError(err)) {
        x.detail = `backend TLS: ${err.code ?? err.message}`;
        this.#d.rlog.warn(
          { route: route.route, backend: pick.key, code: err.code, error: err.message, serverName: serverName(tls, pick.backend) },
          'backend TLS handshake failed',
        );
        metrics.upstreamConnectErrors.inc({ route: route.route, reason: 'tls' });
        return this.#answer(x, 502, REJECTIONS.upstream_tls_error.message);
      }
      // A keep-alive socket the backend had closed: the request never reached it, send it again.
      if (proxyReq.reusedSocket && err.code === 'ECONNRESET' && x.retryable && x.attempts < MAX_ATTEMPTS * 2) {
        x.tried.delete(pick.key);
        return this.#attempt(x);
      }
      if (!connected) {
        const reason = connectFailure(err);
        metrics.upstreamConnectErrors.inc({ route: route.route, reason });
        if (reason === 'refused' && x.retryable && x.tried.size < MAX_ATTEMPTS && !res.destroyed) return this.#attempt(x);
        if (reason === 'timeout') return this.#answer(x, 504, REJECTIONS.upstream_timeout.message);
      }
      this.#answer(x, 502, REJECTIONS.upstream_refused.message);
    });
    proxyReq.on('response', (pres) => {
      clearTimeout(connectTimer);
      clearTimeout(headerTimer);
      x.status = pres.statusCode ?? 502;
      res.writeHead(x.status, pres.statusMessage, this.#withEdgeHeaders(x, pick, responseHeaders(pres.rawHeaders)));
      pres.pipe(res);
      pres.on('error', () => this.#abortResponse(x, 'upstream_error'));
      res.once('finish', () => {
        release();
        this.#finish(x, x.status!, 'completed');
      });
      res.once('close', release);
    });
    // [issue 12] A body over the rule's limit is cut: 413 when nothing was answered yet.
    const maxBody = route.policy.maxRequestBodyBytes;
    if (maxBody > 0 && x.attempts === 1) {
      let seen = 0;
      const count = (chunk: Buffer): void => {
        seen += chunk.length;
        if (seen <= maxBody) return;
        x.req.removeListener('data', count);
        x.bodyTooLarge = true;
        x.req.unpipe();
        x.proxyReq?.destroy(timeoutError('request body too large', BODY_TOO_LARGE));
      };
      x.req.on('data', count);
    }
    x.req.pipe(proxyReq);
  }

  /** [issue 12] The affinity cookie, HSTS and CORS headers a proxied response gets. */
  #withEdgeHeaders(x: Exchange, pick: Pick, headers: string[]): string[] {
    const p = x.route.policy;
    const lb = p.loadBalancing;
    if (lb.policy === 'Cookie') {
      const cookie = this.#d.affinity.setCookie(lb.cookie, pick.key, x.hash.preferred, x.route.path, x.info.proto === 'https');
      if (cookie !== undefined) headers.push('Set-Cookie', cookie);
    }
    if (x.info.proto === 'https') {
      const hsts = hstsHeader(p.hsts);
      if (hsts !== undefined) headers.push('Strict-Transport-Security', hsts);
    }
    if (p.cors.allowOrigins.length > 0) {
      const origin = x.req.headers.origin;
      headers.push(...responseCorsHeaders(p.cors, typeof origin === 'string' ? origin : undefined));
    }
    // [issue 14] An HTTPRoute rule's ResponseHeaderModifier (filters.ts).
    const mod = x.route.filters?.responseHeaders;
    return mod === undefined ? headers : modifyHeaders(headers, mod);
  }

  /** The backend failed after the response head was relayed: the client connection goes, it cannot be told. */
  #abortResponse(x: Exchange, outcome: Outcome): void {
    this.#finish(x, x.status ?? 502, outcome);
    x.res.destroy();
  }

  /** wsgate's own answer within an exchange (502, 503, 504): the backend side failed. */
  #answer(x: Exchange, status: number, message: string): void {
    if (x.res.headersSent || x.res.destroyed) {
      x.res.destroy();
      return;
    }
    this.#finish(x, status, 'upstream_error');
    writePlain(x.res, status, message);
  }

  /** Logs the request and counts it, once. */
  #finish(x: Exchange, status: number, outcome: Outcome): void {
    if (x.finished) return;
    x.finished = true;
    const route = x.route.route;
    this.#d.metrics.httpRequests.inc({ route, code: String(status) });
    this.#d.rlog.info(
      {
        route,
        host: x.info.host,
        path: x.info.path,
        method: x.info.method,
        status,
        client: x.info.clientIP,
        backend: x.pick?.key,
        durationMs: Math.round(performance.now() - x.startedAt),
        outcome,
        ...(x.bodyTooLarge ? { reason: 'body_too_large' } : {}),
        ...(x.detail !== undefined ? { reason: 'upstream_tls_error', detail: x.detail } : {}),
      },
      'request',
    );
  }

  /** wsgate's own answer before any route (404, a refused handshake), counted like a proxied one. */
  respond(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    status: number,
    message: string,
    route: string,
    extra?: Readonly<Record<string, string>>,
    path?: string,
    /** What exactly was wrong with a refused request (a stable reason of normalize.ts or outcomes.ts), for the log line. */
    detail?: string,
    /** [issue 12] The real client (client-address.ts); default the socket's peer. */
    client?: string,
    /** [issue 12] Why wsgate refused it (outcomes.ts REJECT_REASONS), for the log line. */
    reason?: string,
  ): void {
    this.#d.metrics.httpRequests.inc({ route, code: String(status) });
    this.#d.rlog.info(
      {
        route,
        host: req.headers.host,
        path: path ?? req.url,
        method: req.method,
        status,
        ...(reason !== undefined ? { reason } : {}),
        ...(detail !== undefined ? { detail } : {}),
        client: client ?? clientIP(req.socket.remoteAddress),
      },
      'request',
    );
    if (res.headersSent) {
      res.destroy();
      return;
    }
    writePlain(res, status, message, extra);
  }

  close(): void {
    this.#agent.destroy();
    this.#tlsAgent.destroy();
  }
}

function writePlain(res: http.ServerResponse, status: number, message: string, extra?: Readonly<Record<string, string>>): void {
  if (status === 204) {
    res.writeHead(status, { ...extra });
    res.end();
    return;
  }
  const body = `${message}\n`;
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

export function hashInput(ip: string, req: { readonly url?: string | undefined; readonly headers: http.IncomingHttpHeaders }, target?: string): HashInput {
  return {
    clientIP: ip,
    // [issue 12] ingress-nginx's upstream-hash-by: $arg_NAME.
    query: (name) => {
      const t = target ?? req.url ?? '';
      const q = t.indexOf('?');
      return q < 0 ? undefined : (new URLSearchParams(t.slice(q + 1)).get(name) ?? undefined);
    },
    header: (name) => {
      const v = req.headers[name.toLowerCase()];
      return Array.isArray(v) ? v.join(',') : v;
    },
    cookie: (name) => {
      const c = req.headers.cookie;
      if (!c) return undefined;
      for (const part of c.split(';')) {
        const eq = part.indexOf('=');
        if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
      }
      return undefined;
    },
  };
}
