// HTTP→HTTPS redirects and HSTS (issue 12). A route's httpsRedirect says when a request on the plain HTTP listener is
// sent to HTTPS: Never, IfTLS (its host has a certificate on the TLS listener: ingress-nginx's default for an Ingress
// with TLS) or Always. Plain HTTP gets the redirect status (308 by default, so that the method and body are kept;
// 301/302/307 where the route says) with Location. A WebSocket handshake is never redirected silently: browsers do
// not follow redirects of a handshake, so by default it gets 426 with a message naming the wss:// URL; with
// webSocket: Redirect it gets the same redirect as plain HTTP (for clients that follow it, and as ingress-nginx does).
import type { Hsts, HttpsRedirect } from '../model/table.ts';
import { REJECTIONS, type Rejection } from './handshake.ts';

export interface RedirectRequest {
  readonly policy: HttpsRedirect;
  /** The listener the request came in on: only 'http' is ever redirected. */
  readonly proto: 'http' | 'https';
  /** The normalised host (no port); a request without one is not redirected (there is nowhere to send it). */
  readonly host: string | undefined;
  /** The request-target as the backend would get it (origin-form, normalised path, query as received). */
  readonly target: string;
  readonly webSocket: boolean;
  /** Whether the TLS listener has a certificate for this host (not the default one). */
  readonly hasCertificate: (host: string) => boolean;
  /** The port clients reach HTTPS on (--redirect-https-port; 443 is left out of the URL). */
  readonly httpsPort: number;
}

/** The redirect (or 426) a request gets, or undefined when it goes on. */
export function httpsRedirect(r: RedirectRequest): Rejection | undefined {
  const { policy } = r;
  if (r.proto !== 'http' || policy.mode === 'Never' || r.host === undefined) return undefined;
  if (policy.mode === 'IfTLS' && !r.hasCertificate(r.host)) return undefined;
  const authority = `${r.host.includes(':') ? `[${r.host}]` : r.host}${r.httpsPort === 443 ? '' : `:${r.httpsPort}`}`;
  if (r.webSocket && policy.webSocket === 'Reject') {
    return { ...REJECTIONS.https_required, message: `This route needs TLS: connect to wss://${authority}${r.target}` };
  }
  return {
    status: policy.statusCode,
    reason: 'https_redirect',
    message: REJECTIONS.https_redirect.message,
    headers: { Location: `https://${authority}${r.target}` },
  };
}

/** The Strict-Transport-Security value, or undefined when HSTS is off (maxAgeSeconds 0). Only sent over TLS. */
export function hstsHeader(h: Hsts): string | undefined {
  if (h.maxAgeSeconds <= 0) return undefined;
  return `max-age=${h.maxAgeSeconds}${h.includeSubDomains ? '; includeSubDomains' : ''}${h.preload ? '; preload' : ''}`;
}
