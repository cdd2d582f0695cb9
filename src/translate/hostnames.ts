// Hostnames as routes and tunnels name them: exact DNS names, `*.` wildcards, and `*` (any host, for routes that name
// no host). Everything is lower-cased here, once, so that the rest of translation compares plain strings.

/** The virtual host of routes that apply to every hostname. */
export const ANY_HOST = '*';

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** True for an RFC 1123 DNS name (lower case, no trailing dot, at most 253 characters). */
export function isDnsName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && name.split('.').every((label) => LABEL.test(label));
}

/**
 * Lower-cases and checks a hostname as written in a route (`chat.example.com` or `*.example.com`).
 * Returns undefined when it is neither; a bare `*` is refused too: a route that wants every host names none.
 */
export function normalizeHostname(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const name = value.toLowerCase();
  if (name.startsWith('*.')) return isDnsName(name.slice(2)) ? name : undefined;
  return isDnsName(name) ? name : undefined;
}

export function isWildcard(hostname: string): boolean {
  return hostname.startsWith('*.');
}

function hostnameRank(hostname: string): number {
  if (hostname === ANY_HOST) return 2;
  return isWildcard(hostname) ? 1 : 0;
}

/**
 * The order of RoutingTable.virtualHosts (and of a certificate's hostnames): exact names first (sorted), then
 * wildcards with the longest suffix first, then `*`. The data plane looks a request's host up in that order:
 * exact host, then the matching wildcard, then `*`, trying each one's routes in turn.
 */
export function compareHostnames(a: string, b: string): number {
  const rank = hostnameRank(a) - hostnameRank(b);
  if (rank !== 0) return rank;
  if (isWildcard(a) && a.length !== b.length) return b.length - a.length;
  return compareStrings(a, b);
}

/** Code-unit order, never locale order: the output must not depend on the machine it is built on. */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

/**
 * The first name two SNI sets share, if any. An exact name and a wildcard that covers it do not overlap here: at
 * connect time the exact name wins, as it does for HTTP virtual hosts.
 */
export function sharedHostname(a: readonly string[], b: readonly string[]): string | undefined {
  const other = new Set(b);
  return a.find((name) => other.has(name));
}
