// [issue 14] What a Gateway API rule matches beyond host and path: the method, headers and query parameters of a
// request (RequestMatch in src/model/table.ts), all of them. Pure, and cheap when a rule has nothing to match: the
// router only calls it for routes that carry a `match`.
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestMatch } from '../model/table.ts';

/** What a request offers to a match: read once per request, only when some candidate route has a `match`. */
export interface MatchInput {
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  /** The request-target as received (the query is read from it). */
  readonly target: string;
}

/**
 * Whether the request has everything `m` asks for. A header with several values (Node joins repeated headers with
 * `, `) must equal the value as joined; a query parameter given twice is matched by its first value, as the
 * Gateway API says of repeated names.
 */
export function requestMatches(m: RequestMatch, r: MatchInput, query: () => URLSearchParams): boolean {
  if (m.method !== undefined && r.method !== m.method) return false;
  for (const h of m.headers) {
    const v = r.headers[h.name];
    const value = Array.isArray(v) ? v.join(', ') : v;
    if (value !== h.value) return false;
  }
  if (m.queryParams.length > 0) {
    const q = query();
    for (const p of m.queryParams) if (q.get(p.name) !== p.value) return false;
  }
  return true;
}

/** The query of a request-target, parsed (decoded, `+` as space) the first time it is asked for. */
export function lazyQuery(target: string): () => URLSearchParams {
  let parsed: URLSearchParams | undefined;
  return () => {
    if (parsed === undefined) {
      const at = target.indexOf('?');
      parsed = new URLSearchParams(at < 0 ? '' : target.slice(at + 1));
    }
    return parsed;
  };
}
