// [issue 14] What a Gateway API rule's filters do to a request and its response (RouteFilters in src/model/table.ts).
// Pure functions over the flat [name, value, ...] header lists forward.ts builds and the request's path; l7.ts,
// upgrade.ts and http-forward.ts call them at one point each:
//   - RequestRedirect: the answer itself (status and Location), before any backend is tried;
//   - URLRewrite: the request-target and Host the backend receives;
//   - RequestHeaderModifier: the headers the backend receives (after X-Forwarded-*: a rule may set those too);
//   - ResponseHeaderModifier: the headers of a plain HTTP response (not of a 101: a tunnel's head is relayed as the
//     backend wrote it).
import type { HeaderModifier, HttpRoute, PathModifier, RequestRedirect, UrlRewrite } from '../model/table.ts';

/**
 * Applies set (replacing every header of that name), add (appended: the backend sees the old and the new values)
 * and remove, names compared case-insensitively, to a flat header list. Returns a new list.
 */
export function modifyHeaders(headers: readonly string[], m: HeaderModifier): string[] {
  const drop = new Set(m.remove);
  for (const [name] of m.set) drop.add(name.toLowerCase());
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (!drop.has(headers[i]!.toLowerCase())) out.push(headers[i]!, headers[i + 1]!);
  }
  for (const [name, value] of m.set) out.push(name, value);
  for (const [name, value] of m.add) out.push(name, value);
  return out;
}

/**
 * The path with a PathModifier applied. ReplacePrefixMatch replaces the part the rule's prefix matched (whole path
 * elements, so what is left is empty or starts with `/`): prefix /a, replacement /b: /a/c → /b/c, /a → /b;
 * replacement /: /a/c → /c, /a → /.
 */
export function modifyPath(path: string, m: PathModifier, routePath: string): string {
  if (m.type === 'ReplaceFullPath') return m.value;
  const rest = routePath === '/' ? path : path.slice(routePath.length);
  const head = m.value.endsWith('/') ? m.value.slice(0, -1) : m.value;
  const out = head + (rest === '' || rest.startsWith('/') ? rest : `/${rest}`);
  return out === '' ? '/' : out;
}

/** The query of a request-target (with its `?`), or ''. */
function queryOf(target: string): string {
  const at = target.indexOf('?');
  return at < 0 ? '' : target.slice(at);
}

/** What a redirect is computed from. */
export interface RedirectInput {
  readonly scheme: 'http' | 'https';
  /** The request's host name (normalised, no port); undefined for a request without one. */
  readonly host: string | undefined;
  /** The listener's port. */
  readonly port: number;
  /** The normalised path the request was routed on. */
  readonly path: string;
  /** The request-target as it would be sent on (its query is kept). */
  readonly target: string;
}

/**
 * The Location of a RequestRedirect, as the Gateway API says: the request's scheme, host, path and query unless the
 * filter replaces them; the port the filter names, else the new scheme's well-known port when it changes the
 * scheme, else the listener's; a port that is the scheme's well-known one is left out.
 */
export function redirectLocation(r: RequestRedirect, route: HttpRoute, req: RedirectInput): string {
  const scheme = r.scheme ?? req.scheme;
  const host = r.hostname ?? req.host ?? '';
  const port = r.port ?? (r.scheme !== undefined ? (scheme === 'https' ? 443 : 80) : req.port);
  const path = r.path === undefined ? req.path : modifyPath(req.path, r.path, route.path);
  const wellKnown = (scheme === 'http' && port === 80) || (scheme === 'https' && port === 443);
  const authority = wellKnown ? host : `${host}:${port}`;
  return `${scheme}://${authority}${path}${queryOf(req.target)}`;
}

/**
 * The request-target and Host header a URLRewrite sends on: the path replaced (the query kept) and the host name
 * when the rewrite names one. Returns the headers changed in place of the Host.
 */
export function rewriteRequest(
  w: UrlRewrite,
  route: HttpRoute,
  path: string,
  target: string,
  headers: string[],
): { target: string; headers: string[] } {
  const newTarget = w.path === undefined ? target : modifyPath(path, w.path, route.path) + queryOf(target);
  if (w.hostname === undefined) return { target: newTarget, headers };
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    out.push(headers[i]!, headers[i]!.toLowerCase() === 'host' ? w.hostname : headers[i + 1]!);
  }
  return { target: newTarget, headers: out };
}
