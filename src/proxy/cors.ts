// CORS answered by wsgate (issue 12: ingress-nginx's enable-cors and cors-*), for plain HTTP: socket.io's polling
// from another origin needs it before the upgrade. Off while cors.allowOrigins is empty.
//   - A preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered 204 by wsgate, before external
//     auth (a preflight carries no credentials), with the allowed methods, headers and max age when the origin is
//     allowed, and without any Access-Control-* header when it is not (the browser then refuses).
//   - Any other response to an allowed origin gets Access-Control-Allow-Origin (the origin itself, with Vary: Origin,
//     unless the list is `*` and credentials are not allowed), -Allow-Credentials and -Expose-Headers.
// WebSocket handshakes are not subject to CORS (browsers send Origin; allowedOrigins checks it).
import type { IncomingHttpHeaders } from 'node:http';
import type { Cors } from '../model/table.ts';

function allowedOrigin(c: Cors, origin: string | undefined): string | undefined {
  if (origin === undefined || c.allowOrigins.length === 0) return undefined;
  if (c.allowOrigins.includes('*')) return c.allowCredentials ? origin : '*';
  return c.allowOrigins.includes(origin.toLowerCase()) ? origin : undefined;
}

/** The headers of wsgate's 204 to a preflight, or undefined when the request is not one (or CORS is off). */
export function preflightHeaders(c: Cors, method: string, headers: IncomingHttpHeaders): Record<string, string> | undefined {
  if (c.allowOrigins.length === 0 || method !== 'OPTIONS') return undefined;
  const origin = headers.origin;
  if (origin === undefined || headers['access-control-request-method'] === undefined) return undefined;
  const allowed = allowedOrigin(c, origin);
  if (allowed === undefined) return {};
  const asked = headers['access-control-request-headers'];
  return {
    'Access-Control-Allow-Origin': allowed,
    ...(allowed !== '*' ? { Vary: 'Origin' } : {}),
    'Access-Control-Allow-Methods': c.allowMethods.join(', '),
    ...(c.allowHeaders.length > 0
      ? { 'Access-Control-Allow-Headers': c.allowHeaders.join(', ') }
      : typeof asked === 'string'
        ? { 'Access-Control-Allow-Headers': asked }
        : {}),
    ...(c.allowCredentials ? { 'Access-Control-Allow-Credentials': 'true' } : {}),
    'Access-Control-Max-Age': String(c.maxAgeSeconds),
  };
}

/** Headers added to a proxied response ([name, value, ...]); empty when CORS is off or the origin is not allowed. */
export function responseCorsHeaders(c: Cors, origin: string | undefined): string[] {
  const allowed = allowedOrigin(c, origin);
  if (allowed === undefined) return [];
  const out = ['Access-Control-Allow-Origin', allowed];
  if (allowed !== '*') out.push('Vary', 'Origin');
  if (c.allowCredentials) out.push('Access-Control-Allow-Credentials', 'true');
  if (c.exposeHeaders.length > 0) out.push('Access-Control-Expose-Headers', c.exposeHeaders.join(', '));
  return out;
}
