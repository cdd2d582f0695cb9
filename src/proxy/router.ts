// Finds the route for a request: the host's own routes, then those of the wildcard hosts that cover it, then the
// routes for every host (`*`, where an Ingress defaultBackend lives). Within a host the table is already sorted by
// precedence, so the first route whose path matches wins. A Router is built once per table and never changes.
// [issue 14] A Gateway API listener port's router: wildcards cover any number of labels (the longest suffix first),
// and a route with a `match` (method, headers, query parameters: route-match.ts) must match those too.
import type { HttpRoute, RoutingTable, VirtualHost } from '../model/table.ts';
import { lazyQuery, requestMatches, type MatchInput } from './route-match.ts';

export class Router {
  readonly table: Pick<RoutingTable, 'virtualHosts'>;
  readonly #exact = new Map<string, VirtualHost>();
  /** `*.example.com` keyed by `example.com`. */
  readonly #wildcard = new Map<string, VirtualHost>();
  readonly #any: VirtualHost | undefined;
  readonly #anyDepth: boolean;

  /** [o.wildcardAnyDepth=false] `*.` covers any number of labels (Gateway API) rather than exactly one (Ingress). */
  constructor(table: Pick<RoutingTable, 'virtualHosts'>, o: { wildcardAnyDepth?: boolean } = {}) {
    this.table = table;
    this.#anyDepth = o.wildcardAnyDepth === true;
    let any: VirtualHost | undefined;
    for (const vh of table.virtualHosts) {
      if (vh.hostname === '*') any = vh;
      else if (vh.hostname.startsWith('*.')) this.#wildcard.set(vh.hostname.slice(2), vh);
      else this.#exact.set(vh.hostname, vh);
    }
    this.#any = any;
  }

  /**
   * @param name The host name, normalised (normalize.ts normalizeHost: lower case, no port, no trailing dot);
   *   undefined for a request without a host. @param path The normalised path, without the query.
   * @param req The method, headers and target, for routes with a `match` (a route with one never matches without it).
   */
  find(name: string | undefined, path: string, req?: MatchInput): HttpRoute | undefined {
    const ctx: MatchContext = { path, req, query: undefined };
    if (name) {
      const exact = this.#exact.get(name);
      const hit = exact && match(exact, ctx);
      if (hit) return hit;
      // Ingress: *.example.com matches a.example.com, not a.b.example.com. Gateway API: both, the longest suffix first.
      for (let dot = name.indexOf('.'); dot > 0; dot = this.#anyDepth ? name.indexOf('.', dot + 1) : -1) {
        const wild = this.#wildcard.get(name.slice(dot + 1));
        const whit = wild && match(wild, ctx);
        if (whit) return whit;
      }
    }
    return this.#any && match(this.#any, ctx);
  }
}

interface MatchContext {
  readonly path: string;
  readonly req: MatchInput | undefined;
  query: (() => URLSearchParams) | undefined;
}

function match(vh: VirtualHost, ctx: MatchContext): HttpRoute | undefined {
  const path = ctx.path;
  for (const r of vh.routes) {
    if (r.pathType === 'Exact') {
      if (path !== r.path) continue;
    } else if (!(r.path === '/' || path === r.path || (path.startsWith(r.path) && path.charCodeAt(r.path.length) === 47))) {
      continue;
    }
    if (r.match === undefined) return r;
    if (ctx.req === undefined) continue;
    ctx.query ??= lazyQuery(ctx.req.target);
    if (requestMatches(r.match, ctx.req, ctx.query)) return r;
  }
  return undefined;
}
