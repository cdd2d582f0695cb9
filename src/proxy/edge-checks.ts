// The edge policy of a route rule (issue 12), checked for every WebSocket handshake (upgrade.ts, steps 4–7) and every
// plain HTTP request (l7.ts), in this fixed order, after the route is found and before any connection slot or
// backend is taken:
//   4. the HTTPS redirect (redirect.ts): plain-HTTP listener only; a redirect, or 426 for a handshake;
//   5. the source ranges (access.ts): 403 source_denied;
//   6. the request rate per client IP (rate.ts): 429 rate_limited with Retry-After;
//   7. external auth (auth.ts): 401/403 auth_denied, or 500/503 auth_unavailable; a CORS preflight of a rule with
//      cors is answered just before (cors.ts: it carries no credentials, so auth would refuse it).
// Cheap local checks come first and the ones that cost a round trip (the rate with workers, the auth sub-request)
// last, so that a refused client never costs an auth request. A rule with none of these set passes synchronously,
// without allocating (PASS).
import type { IncomingHttpHeaders } from 'node:http';
import type { HttpRoute } from '../model/table.ts';
import { sourceAllowed } from './access.ts';
import type { ExternalAuthClient } from './auth.ts';
import { preflightHeaders } from './cors.ts';
import { REJECTIONS, type Rejection } from './handshake.ts';
import type { RateLimiter } from './rate.ts';
import { httpsRedirect } from './redirect.ts';

export interface EdgeDeps {
  readonly rate: RateLimiter;
  readonly auth: ExternalAuthClient;
  /** Whether the TLS listener has a certificate for a host (IfTLS redirects). */
  readonly hasCertificate: (host: string) => boolean;
  /** The port clients reach HTTPS on, for Location (--redirect-https-port, default 443). */
  readonly httpsPort: number;
}

export interface EdgeRequest {
  readonly route: HttpRoute;
  readonly proto: 'http' | 'https';
  /** The normalised host routed on. */
  readonly host: string | undefined;
  /** The Host as the client sent it (or the absolute-form authority), for the auth service. */
  readonly hostHeader: string | undefined;
  readonly target: string;
  readonly method: string;
  readonly clientIP: string;
  readonly headers: IncomingHttpHeaders;
  readonly webSocket: boolean;
}

export type EdgeVerdict =
  /**
   * `headers`: set on the upstream request (from the auth service's answer). `preflight`: a CORS preflight wsgate
   * answers itself, 204 with these headers.
   */
  | { readonly ok: true; readonly headers: readonly (readonly [string, string])[]; readonly preflight?: Readonly<Record<string, string>> }
  /** `detail`: for the log line (the auth failure, the redirect target). */
  | { readonly ok: false; readonly rejection: Rejection; readonly detail?: string };

export const PASS: EdgeVerdict = Object.freeze({ ok: true, headers: Object.freeze([]) });

export class EdgeChecks {
  readonly #d: EdgeDeps;

  constructor(deps: EdgeDeps) {
    this.#d = deps;
  }

  /** Steps 4–7 for one request; a Promise only when the rate asks the primary or an auth service is asked. */
  check(r: EdgeRequest): EdgeVerdict | Promise<EdgeVerdict> {
    const p = r.route.policy;
    // 4. The HTTPS redirect.
    if (p.httpsRedirect.mode !== 'Never') {
      const redirect = httpsRedirect({
        policy: p.httpsRedirect,
        proto: r.proto,
        host: r.host,
        target: r.target,
        webSocket: r.webSocket,
        hasCertificate: this.#d.hasCertificate,
        httpsPort: this.#d.httpsPort,
      });
      if (redirect !== undefined) return { ok: false, rejection: redirect, detail: redirect.headers?.['Location'] ?? 'wss:// required' };
    }
    // 5. The source ranges.
    if (!sourceAllowed(r.clientIP, p.allowedSourceRanges, p.deniedSourceRanges)) return { ok: false, rejection: REJECTIONS.source_denied };
    // 6. The request rate.
    if (p.rateLimit.requestsPerSecond > 0) {
      const wait = this.#d.rate.take(r.route.id, r.clientIP, p.rateLimit.requestsPerSecond, p.rateLimit.burst);
      if (typeof wait === 'number') {
        if (wait > 0) return rateLimited(wait);
      } else {
        return wait.then((w) => (w > 0 ? rateLimited(w) : this.#auth(r)));
      }
    }
    // 7. External auth.
    return this.#auth(r);
  }

  #auth(r: EdgeRequest): EdgeVerdict | Promise<EdgeVerdict> {
    if (!r.webSocket && r.route.policy.cors.allowOrigins.length > 0) {
      const preflight = preflightHeaders(r.route.policy.cors, r.method, r.headers);
      if (preflight !== undefined) return { ok: true, headers: [], preflight };
    }
    const auth = r.route.policy.externalAuth;
    if (auth.url === '') return PASS;
    return this.#d.auth
      .check(auth, { method: r.method, target: r.target, host: r.hostHeader, proto: r.proto, clientIP: r.clientIP, headers: r.headers })
      .then((v): EdgeVerdict => {
        switch (v.kind) {
          case 'allow':
            return v.headers.length === 0 ? PASS : { ok: true, headers: v.headers };
          case 'deny':
            return {
              ok: false,
              rejection: { ...REJECTIONS.auth_denied, status: v.status, message: v.status === 401 ? 'Unauthorized' : 'Forbidden', headers: v.headers },
              detail: `auth service answered ${v.status}`,
            };
          case 'error':
            return { ok: false, rejection: { ...REJECTIONS.auth_unavailable, status: v.status }, detail: `auth service: ${v.why}` };
        }
      });
  }
}

function rateLimited(seconds: number): EdgeVerdict {
  return { ok: false, rejection: { ...REJECTIONS.rate_limited, headers: { 'Retry-After': String(seconds) } } };
}
