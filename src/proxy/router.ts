// Finds the route for a request: the host's own routes, then those of the wildcard hosts that cover it, then the
// routes for every host (`*`, where an Ingress defaultBackend lives). Within a host the table is already sorted by
// precedence, so the first route whose path matches wins. A Router is built once per table and never changes.
import type { HttpRoute, RoutingTable, VirtualHost } from '../model/table.ts';

export class Router {
  readonly table: RoutingTable;
  readonly #exact = new Map<string, VirtualHost>();
  /** `*.example.com` keyed by `example.com`. */
  readonly #wildcard = new Map<string, VirtualHost>();
  readonly #any: VirtualHost | undefined;

  constructor(table: RoutingTable) {
    this.table = table;
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
   */
  find(name: string | undefined, path: string): HttpRoute | undefined {
    if (name) {
      const exact = this.#exact.get(name);
      const hit = exact && match(exact, path);
      if (hit) return hit;
      // Wildcards cover exactly one label, as in Ingress: *.example.com matches a.example.com, not a.b.example.com.
      const dot = name.indexOf('.');
      if (dot > 0) {
        const wild = this.#wildcard.get(name.slice(dot + 1));
        const whit = wild && match(wild, path);
        if (whit) return whit;
      }
    }
    return this.#any && match(this.#any, path);
  }
}

function match(vh: VirtualHost, path: string): HttpRoute | undefined {
  for (const r of vh.routes) {
    if (r.pathType === 'Exact') {
      if (path === r.path) return r;
    } else if (r.path === '/' || path === r.path || (path.startsWith(r.path) && path.charCodeAt(r.path.length) === 47)) {
      return r;
    }
  }
  return undefined;
}
