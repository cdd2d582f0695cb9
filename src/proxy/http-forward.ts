// Plain HTTP through a route: the app's pages, socket.io's polling. Requests go to the backend over keep-alive
// connections with their bodies streamed both ways; a request without a body is retried on another endpoint when
// one refuses. WebSocket handshakes never come here (l7.ts).
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { HttpRoute } from '../model/table.ts';
import type { Balancer, HashInput } from './balancer.ts';
import { clientIP, responseHeaders } from './forward.ts';
import { REJECTIONS } from './handshake.ts';

export interface HttpForwarderDeps {
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly balancer: Balancer;
}

export class HttpForwarder {
  readonly #d: HttpForwarderDeps;
  /** Keep-alive connections to backends for plain HTTP; WebSocket tunnels never use it. */
  readonly #agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 30_000, maxFreeSockets: 64, scheduling: 'lifo' });

  constructor(deps: HttpForwarderDeps) {
    this.#d = deps;
  }

  /**
   * Sends the request to an endpoint of the route, with `headers` (already the forwarded set) and the body streamed;
   * `attemptsLeft` endpoints are tried while they refuse, which only a request without a body may do.
   */
  forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    route: HttpRoute,
    headers: string[],
    ip: string,
    attemptsLeft: number,
    tried: Set<string> = new Set(),
    startedAt: number = performance.now(),
  ): void {
    const { balancer, metrics } = this.#d;
    const pick = balancer.pick(route.id, route.backends, route.policy.loadBalancing, hashInput(ip, req), tried);
    if (!pick) {
      const status = tried.size === 0 ? 503 : 502;
      return this.respond(req, res, status, status === 503 ? REJECTIONS.no_endpoint.message : REJECTIONS.upstream_refused.message, route.route);
    }
    tried.add(pick.key);
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
      path: req.url,
      headers,
      setHost: false,
      agent: this.#agent,
    });
    let connectTimer: NodeJS.Timeout | undefined;
    proxyReq.on('socket', (s: Socket) => {
      if (!s.connecting) return;
      connectTimer = setTimeout(() => {
        const e: NodeJS.ErrnoException = new Error('connect timeout');
        e.code = 'ETIMEDOUT';
        proxyReq.destroy(e);
      }, route.policy.connectTimeoutSeconds * 1000);
      s.once('connect', () => clearTimeout(connectTimer));
    });
    proxyReq.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      release();
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const refused = err.code === 'ECONNREFUSED';
      metrics.upstreamConnectErrors.inc({
        route: route.route,
        reason: refused ? 'refused' : err.code === 'ETIMEDOUT' ? 'timeout' : err.code === 'ECONNRESET' ? 'reset' : 'other',
      });
      if (refused && attemptsLeft > 1 && !req.destroyed) {
        return this.forward(req, res, route, headers, ip, attemptsLeft - 1, tried, startedAt);
      }
      const status = err.code === 'ETIMEDOUT' ? 504 : 502;
      this.respond(req, res, status, status === 504 ? REJECTIONS.upstream_timeout.message : REJECTIONS.upstream_refused.message, route.route);
    });
    proxyReq.on('response', (pres) => {
      clearTimeout(connectTimer);
      res.writeHead(pres.statusCode ?? 502, pres.statusMessage, responseHeaders(pres.rawHeaders));
      pres.pipe(res);
      pres.on('error', () => res.destroy());
      res.once('close', () => {
        release();
        metrics.httpRequests.inc({ route: route.route, code: String(pres.statusCode ?? 502) });
        this.#d.log.info(
          {
            route: route.route,
            client: ip,
            backend: pick.key,
            method: req.method,
            status: pres.statusCode,
            durationMs: Math.round(performance.now() - startedAt),
            completed: res.writableFinished,
          },
          'request',
        );
      });
    });
    // The client going away aborts the backend request.
    res.once('close', () => {
      if (!res.writableFinished) proxyReq.destroy();
    });
    req.pipe(proxyReq);
  }

  /** wsgate's own answer (404, 502, 503, 504, a refused handshake), counted like a proxied one. */
  respond(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    status: number,
    message: string,
    route: string,
    extra?: Readonly<Record<string, string>>,
  ): void {
    this.#d.metrics.httpRequests.inc({ route, code: String(status) });
    this.#d.log.info({ route, client: clientIP(req.socket.remoteAddress), method: req.method, status }, 'request');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = `${message}\n`;
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...extra });
    res.end(body);
  }

  close(): void {
    this.#agent.destroy();
  }
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
