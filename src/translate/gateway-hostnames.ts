// [issue 14] Hostnames as the Gateway API matches them. A `*.` wildcard is a suffix match of one label or more:
// `*.example.com` matches `a.example.com` and `a.b.example.com`, never `example.com` (unlike Ingress, where it
// covers exactly one label). A route's hostnames are intersected with its listener's: what is left is what the
// route serves on that listener, and nothing left means the route does not attach there.
import { ANY_HOST, isWildcard } from './hostnames.ts';

/** `name` (exact, or a wildcard's suffix part) is covered by the wildcard `pattern` (`*.example.com`). */
export function wildcardCovers(pattern: string, name: string): boolean {
  const suffix = pattern.slice(1); // `.example.com`
  return name.length > suffix.length && name.endsWith(suffix);
}

/** Whether a request or ClientHello for `name` (exact) matches `hostname` (exact, `*.` wildcard, or `*`). */
export function hostnameMatches(hostname: string, name: string): boolean {
  if (hostname === ANY_HOST) return true;
  return isWildcard(hostname) ? wildcardCovers(hostname, name) : hostname === name;
}

/**
 * The hostnames a route serves on a listener: the route's hostnames that the listener's covers, and the listener's
 * own where a route wildcard covers it (the more specific of the two). [`*`] when neither names any; the listener's
 * when only it does; empty when they do not intersect.
 */
export function intersectHostnames(listener: string | undefined, route: readonly string[]): string[] {
  if (route.length === 0) return [listener ?? ANY_HOST];
  if (listener === undefined) return [...route];
  const out: string[] = [];
  const add = (h: string): void => {
    if (!out.includes(h)) out.push(h);
  };
  for (const r of route) {
    if (r === listener) add(r);
    else if (isWildcard(listener) && !isWildcard(r)) {
      if (wildcardCovers(listener, r)) add(r);
    } else if (isWildcard(listener) && isWildcard(r)) {
      if (wildcardCovers(listener, r.slice(2))) add(r);
      else if (wildcardCovers(r, listener.slice(2))) add(listener);
    } else if (isWildcard(r) && wildcardCovers(r, listener)) add(listener);
  }
  return out;
}
