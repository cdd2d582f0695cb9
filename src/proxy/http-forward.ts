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
import http from 'node:http';
import type { Socket } from 'node:net';
import type { RateLimitedLog } from '../log/rate-limit.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { HttpRoute } from '../model/table.ts';
import type { Balancer, HashInput, Pick } from './balancer.ts';
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
  attempts: number;
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

export class HttpForwarder {
  readonly #d: HttpForwarderDeps;
  /** Keep-alive connections to backends for plain HTTP; WebSocket tunnels never use it. */
  readonly #agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 30_000, maxFreeSockets: 64, scheduling: 'lifo' });

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
    const x: Exchange = {
      req,
      res,
      route,
      headers,
      info,
      retryable,
      tried: new Set(),
      startedAt: performance.now(),
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
    this.#attempt(x);
  }

  #attempt(x: Exchange): void {
    const { balancer, metrics } = this.#d;
    const { route, req, res } = x;
    const pick = balancer.pick(route.id, route.backends, route.policy.loadBalancing, hashInput(x.info.clientIP, req), x.tried);
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
    const proxyReq = http.request({
      host: pick.endpoint.address,
      port: pick.endpoint.port,
      method: req.method,
      path: x.info.target,
      headers: x.headers as string[],
      setHost: false,
      agent: this.#agent,
    });
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
      res.writeHead(x.status, pres.statusMessage, responseHeaders(pres.rawHeaders));
      pres.pipe(res);
      pres.on('error', () => this.#abortResponse(x, 'upstream_error'));
      res.once('finish', () => {
        release();
        this.#finish(x, x.status!, 'completed');
      });
      res.once('close', release);
    });
    x.req.pipe(proxyReq);
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
    /** What exactly was wrong with a refused request (a stable reason of normalize.ts), for the log line. */
    detail?: string,
  ): void {
    this.#d.metrics.httpRequests.inc({ route, code: String(status) });
    this.#d.rlog.info(
      {
        route,
        host: req.headers.host,
        path: path ?? req.url,
        method: req.method,
        status,
        ...(detail !== undefined ? { detail } : {}),
        client: clientIP(req.socket.remoteAddress),
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
  }
}

function writePlain(res: http.ServerResponse, status: number, message: string, extra?: Readonly<Record<string, string>>): void {
  const body = `${message}\n`;
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

export function hashInput(ip: string, req: http.IncomingMessage): HashInput {
  return {
    clientIP: ip,
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
