// External auth (issue 12: ingress-nginx's auth-url): before a WebSocket handshake or a plain HTTP request goes
// upstream, a sub-request asks an auth service whether it may.
//
// The sub-request (method externalAuth.method, GET by default, no body) carries:
//   - the request's credentials: Authorization and Cookie, and the headers named in externalAuth.requestHeaders;
//   - what was asked: X-Original-URL (scheme://host/target), X-Original-Method, X-Original-URI, and the
//     X-Forwarded-Host/-Proto/-Uri/-Method/-For and X-Real-IP of the real client (client-address.ts);
//   - never Upgrade, Connection or any other hop-by-hop header, whatever requestHeaders says: an auth service that
//     sees `Upgrade: websocket` may try to upgrade its own answer (haproxy-ingress #1236, authentik #1969).
// The answer:
//   - 2xx: the request goes on, with the answer's headers named in externalAuth.responseHeaders set on the upstream
//     request (replacing any the client sent under those names: a client cannot claim an identity);
//   - 401 or 403: that status goes to the client (with the service's WWW-Authenticate on a 401);
//   - anything else, a connection failure, or no answer within timeoutSeconds: failureStatus (503 by default; an
//     Ingress's auth-url: 500, as ingress-nginx answers).
// Answers are not cached unless externalAuth.cacheSeconds says so; then a 2xx, 401 or 403 is reused for that long
// for an identical sub-request (same URL, method and headers: credentials, target and client included), per process.
import http from 'node:http';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import type { ExternalAuth } from '../model/table.ts';

export interface AuthRequest {
  readonly method: string;
  /** The request-target as the backend gets it. */
  readonly target: string;
  /** The Host the client sent (or the absolute-form authority). */
  readonly host: string | undefined;
  readonly proto: 'http' | 'https';
  readonly clientIP: string;
  readonly headers: IncomingHttpHeaders;
}

export type AuthVerdict =
  /** `headers`: [name, value] pairs to set on the upstream request. */
  | { readonly kind: 'allow'; readonly headers: readonly (readonly [string, string])[] }
  | { readonly kind: 'deny'; readonly status: 401 | 403; readonly headers: Readonly<Record<string, string>> }
  /** `why`: for the log line (`status 502`, `timeout`, `ECONNREFUSED`). */
  | { readonly kind: 'error'; readonly status: 500 | 503; readonly why: string };

// Never sent to the auth service (RFC 9110 §7.6.1 and the de-facto ones), whatever requestHeaders names.
const NEVER = new Set(['connection', 'upgrade', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'host', 'content-length']);
const MAX_CACHED = 10_000;

export class ExternalAuthClient {
  readonly #httpAgent = new http.Agent({ keepAlive: true, maxFreeSockets: 16 });
  readonly #httpsAgent = new https.Agent({ keepAlive: true, maxFreeSockets: 16 });
  readonly #cache = new Map<string, { readonly until: number; readonly verdict: AuthVerdict }>();

  /** Asks the auth service about `r`. Never rejects: every failure is an `error` verdict. */
  check(auth: ExternalAuth, r: AuthRequest): Promise<AuthVerdict> {
    const headers = subRequestHeaders(auth, r);
    const key = auth.cacheSeconds > 0 ? JSON.stringify([auth.url, auth.method, headers]) : undefined;
    if (key !== undefined) {
      const hit = this.#cache.get(key);
      if (hit !== undefined && hit.until > performance.now()) return Promise.resolve(hit.verdict);
      this.#cache.delete(key);
    }
    return this.#ask(auth, headers).then((verdict) => {
      if (key !== undefined && verdict.kind !== 'error') this.#remember(key, verdict, auth.cacheSeconds);
      return verdict;
    });
  }

  #remember(key: string, verdict: AuthVerdict, seconds: number): void {
    const now = performance.now();
    if (this.#cache.size >= MAX_CACHED) {
      for (const [k, v] of this.#cache) if (v.until <= now) this.#cache.delete(k);
      // Still full of live answers: the oldest go (a Map iterates in insertion order).
      for (const k of this.#cache.keys()) {
        if (this.#cache.size < MAX_CACHED) break;
        this.#cache.delete(k);
      }
    }
    this.#cache.set(key, { until: now + seconds * 1000, verdict });
  }

  #ask(auth: ExternalAuth, headers: readonly string[]): Promise<AuthVerdict> {
    return new Promise((resolve) => {
      const url = new URL(auth.url);
      const secure = url.protocol === 'https:';
      const fail = (why: string): void => resolve({ kind: 'error', status: auth.failureStatus, why });
      let req: http.ClientRequest;
      try {
        req = (secure ? https : http).request(url, {
          method: auth.method,
          // A raw header list gets no default headers from Node: the auth service's own Host goes first.
          headers: ['Host', url.host, ...headers],
          agent: secure ? this.#httpsAgent : this.#httpAgent,
          timeout: auth.timeoutSeconds * 1000,
        });
      } catch (err) {
        fail(err instanceof Error ? err.message : String(err));
        return;
      }
      req.on('timeout', () => req.destroy(Object.assign(new Error('no answer in time'), { code: 'TIMEOUT' })));
      req.on('error', (err: NodeJS.ErrnoException) => fail(err.code === 'TIMEOUT' ? 'timeout' : (err.code ?? err.message)));
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        // The body means nothing here; read it so that the connection can be reused.
        res.resume();
        if (status >= 200 && status < 300) {
          const copied: [string, string][] = [];
          for (const name of auth.responseHeaders) {
            const v = res.headers[name];
            if (v !== undefined) copied.push([name, Array.isArray(v) ? v.join(', ') : v]);
          }
          resolve({ kind: 'allow', headers: copied });
          return;
        }
        if (status === 401 || status === 403) {
          const challenge = res.headers['www-authenticate'];
          const extra: Record<string, string> = status === 401 && typeof challenge === 'string' ? { 'WWW-Authenticate': challenge } : {};
          resolve({ kind: 'deny', status, headers: extra });
          return;
        }
        fail(`status ${status}`);
      });
      req.end();
    });
  }

  close(): void {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
    this.#cache.clear();
  }
}

/** The sub-request's headers, as a flat [name, value, ...] list (see the top of this file). */
export function subRequestHeaders(auth: ExternalAuth, r: AuthRequest): string[] {
  const out: string[] = [];
  const copy = (name: string): void => {
    if (NEVER.has(name)) return;
    const v = r.headers[name];
    if (v === undefined) return;
    out.push(name, Array.isArray(v) ? v.join(name === 'cookie' ? '; ' : ', ') : v);
  };
  copy('authorization');
  copy('cookie');
  for (const name of auth.requestHeaders) if (name !== 'authorization' && name !== 'cookie') copy(name);
  const host = r.host ?? '';
  const url = `${r.proto}://${host}${r.target}`;
  out.push(
    'X-Original-URL', url,
    'X-Original-Method', r.method,
    'X-Original-URI', r.target,
    'X-Auth-Request-Redirect', r.target,
    'X-Forwarded-Host', host,
    'X-Forwarded-Proto', r.proto,
    'X-Forwarded-Uri', r.target,
    'X-Forwarded-Method', r.method,
    'X-Forwarded-For', r.clientIP,
    'X-Real-IP', r.clientIP,
  );
  return out;
}
