// WebSocket handshake checks (RFC 6455 §4.2.1), in one place and a fixed order. Pure: takes the request method and
// headers, returns either what the proxy needs or the rejection to send. Each rejection has its own status, a
// message for the client, and a stable reason used as the metric label.
import type { IncomingHttpHeaders } from 'node:http';
import type { RejectReason } from './outcomes.ts';

/** The L7 reasons of the one vocabulary (outcomes.ts) that wsgate answers itself, with a status of its own. */
export type L7RejectReason = Exclude<
  RejectReason,
  'backend_refused_upgrade' | 'hello_timeout' | 'bad_client_hello' | 'bad_proxy_header' | 'proxy_not_trusted'
>;

export interface Rejection {
  readonly status: number;
  readonly reason: L7RejectReason;
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export const REJECTIONS = {
  method_not_allowed: { status: 405, reason: 'method_not_allowed', message: 'WebSocket handshakes must use GET', headers: { Allow: 'GET' } },
  bad_upgrade: { status: 400, reason: 'bad_upgrade', message: 'Upgrade header must be "websocket"' },
  bad_connection: { status: 400, reason: 'bad_connection', message: 'Connection header must include "Upgrade"' },
  bad_key: { status: 400, reason: 'bad_key', message: 'Sec-WebSocket-Key must be 16 bytes, base64-encoded' },
  bad_version: { status: 400, reason: 'bad_version', message: 'Sec-WebSocket-Version header is missing or malformed' },
  unsupported_version: {
    status: 426,
    reason: 'unsupported_version',
    message: 'Unsupported WebSocket version; this server speaks version 13',
    headers: { 'Sec-WebSocket-Version': '13' },
  },
  no_route: { status: 404, reason: 'no_route', message: 'No route for this host and path' },
  origin_not_allowed: { status: 403, reason: 'origin_not_allowed', message: 'Origin not allowed' },
  subprotocol_not_allowed: { status: 400, reason: 'subprotocol_not_allowed', message: 'None of the offered subprotocols is allowed' },
  over_limit: { status: 429, reason: 'over_limit', message: 'Too many connections', headers: { 'Retry-After': '1' } },
  no_endpoint: { status: 503, reason: 'no_endpoint', message: 'No ready backend endpoint' },
  upstream_refused: { status: 502, reason: 'upstream_refused', message: 'Backend refused the connection' },
  upstream_timeout: { status: 504, reason: 'upstream_timeout', message: 'Backend did not answer in time' },
  upstream_bad_response: { status: 502, reason: 'upstream_bad_response', message: 'Backend sent an invalid response' },
  bad_request: { status: 400, reason: 'bad_request', message: 'Bad request' },
  handshake_timeout: { status: 408, reason: 'handshake_timeout', message: 'Request head not received in time' },
  upstream_tls_error: { status: 502, reason: 'upstream_tls_error', message: 'Backend TLS handshake failed' },
  // Edge policy (issue 12). The redirect, auth and rate answers get their status and headers per request
  // (redirect.ts, auth.ts, rate.ts) from these.
  source_denied: { status: 403, reason: 'source_denied', message: 'Forbidden' },
  https_redirect: { status: 308, reason: 'https_redirect', message: 'Moved to HTTPS' },
  https_required: { status: 426, reason: 'https_required', message: 'Use wss:// (TLS) for this route' },
  rate_limited: { status: 429, reason: 'rate_limited', message: 'Too many requests', headers: { 'Retry-After': '1' } },
  auth_denied: { status: 401, reason: 'auth_denied', message: 'Unauthorized' },
  auth_unavailable: { status: 503, reason: 'auth_unavailable', message: 'Authentication service unavailable' },
  body_too_large: { status: 413, reason: 'body_too_large', message: 'Request body too large' },
  // Gateway API (issue 14): a redirect's status and Location are set per rule (filters.ts).
  route_redirect: { status: 302, reason: 'route_redirect', message: 'Moved' },
  invalid_backend: { status: 500, reason: 'invalid_backend', message: 'No valid backend for this route' },
} as const satisfies Record<L7RejectReason, Rejection>;

export interface ValidHandshake {
  readonly ok: true;
  readonly key: string;
  /** Offered subprotocols, in order; empty when none. */
  readonly protocols: readonly string[];
  readonly origin: string | undefined;
}

const KEY_RE = /^[+/0-9A-Za-z]{21}[AQgw]==$/;
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Steps 1–4 of the fixed order: method, Upgrade, Connection, key, version. Route-dependent checks follow. */
export function validateHandshake(method: string | undefined, headers: IncomingHttpHeaders): ValidHandshake | Rejection {
  if (method !== 'GET') return REJECTIONS.method_not_allowed;
  if (!hasToken(headers.upgrade, 'websocket')) return REJECTIONS.bad_upgrade;
  if (!hasToken(headers.connection, 'upgrade')) return REJECTIONS.bad_connection;
  const key = headers['sec-websocket-key'];
  if (typeof key !== 'string' || !KEY_RE.test(key.trim())) return REJECTIONS.bad_key;
  const version = headers['sec-websocket-version'];
  if (typeof version !== 'string' || !/^\s*\d{1,3}\s*$/.test(version)) return REJECTIONS.bad_version;
  if (Number(version) !== 13) return REJECTIONS.unsupported_version;
  const protocols: string[] = [];
  const offered = headers['sec-websocket-protocol'];
  if (offered !== undefined) {
    for (const p of offered.split(',')) {
      const t = p.trim();
      if (!TOKEN_RE.test(t) || protocols.includes(t)) return REJECTIONS.bad_request;
      protocols.push(t);
    }
  }
  const origin = headers.origin ?? headers['sec-websocket-origin'];
  return { ok: true, key: key.trim(), protocols, origin: typeof origin === 'string' ? origin : undefined };
}

/** True when `allowed` is empty or holds the origin (case-insensitive, exact scheme://host[:port]). */
export function originAllowed(origin: string | undefined, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true;
  if (origin === undefined) return false;
  const o = origin.toLowerCase();
  for (const a of allowed) if (a === '*' || a.toLowerCase() === o) return true;
  return false;
}

/**
 * The subprotocols to forward: all offered when `allowed` is empty, else those allowed (order of the client's offer).
 * Undefined means reject: the client offered some and none is allowed.
 */
export function negotiateProtocols(offered: readonly string[], allowed: readonly string[]): readonly string[] | undefined {
  if (allowed.length === 0 || offered.length === 0) return offered;
  const kept = offered.filter((p) => allowed.includes(p));
  return kept.length > 0 ? kept : undefined;
}

function hasToken(value: string | string[] | undefined, token: string): boolean {
  if (value === undefined) return false;
  const v = Array.isArray(value) ? value.join(',') : value;
  for (const part of v.split(',')) if (part.trim().toLowerCase() === token) return true;
  return false;
}

/** A complete HTTP/1.1 response that ends the connection, as ws's abortHandshake writes it. */
export function rejectionResponse(r: Rejection): string {
  const body = r.message;
  let head = `HTTP/1.1 ${r.status} ${STATUS_TEXT[r.status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  if (r.headers) for (const [k, v] of Object.entries(r.headers)) head += `${k}: ${v}\r\n`;
  return `${head}\r\n${body}`;
}

const STATUS_TEXT: Record<number, string> = {
  301: 'Moved Permanently',
  302: 'Found',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};
