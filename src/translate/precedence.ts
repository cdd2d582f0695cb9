// Precedence and conflicts. The kind translators turn objects into claims (one per hostname and rule, or one per
// tunnel); this file decides which claims enter the table and in which order, from explicit keys only, so that
// the order objects arrive in never shows in the result.
//
// HTTP: a claim is (hostname, pathType, path). Two claims on the same triple conflict; the claim of the oldest
// object wins (creationTimestamp, then namespace/name — compareObjects), and within one object the first rule.
// The loser's rule does not serve that hostname; its other rules and hostnames do. An Ingress defaultBackend is a
// fallback: it sorts after every other route of its host and only conflicts with other fallbacks, so an explicit
// `/` route on `*` shadows it without a conflict.
//
// Within a virtual host, routes are sorted: fallbacks last; Exact before Prefix; longer prefix (in path elements)
// first; then the older object, then namespace/name; then path and id (only to make the order total).
// Routes for `*` stay in the `*` virtual host: they are not copied into every named host. The data plane looks up
// exact host → matching wildcard → `*`, trying each virtual host's routes in order, so a request for a named host
// whose routes do not match its path still reaches the `*` routes.
//
// TCP: tunnels on one port conflict when both are plain (no SNI), when one is plain and the other routes by SNI
// (a plain tunnel takes every connection, so it cannot share), or when their SNI sets share a name. Tunnels are
// taken oldest first; a tunnel that conflicts with one already taken does not serve at all.
import type { HttpRoute, PassthroughRoute, TunnelRoute, VirtualHost } from '../model/table.ts';
import { compareObjects, type ObjectReport } from './conditions.ts';
import { ANY_HOST, compareHostnames, compareStrings, sharedHostname } from './hostnames.ts';
import { pathElements } from './paths.ts';

export interface RouteClaim {
  readonly owner: ObjectReport;
  /** The field of the rule that made the claim, for messages (`spec.rules[1]`). */
  readonly field: string;
  readonly hostname: string;
  /** An Ingress defaultBackend: lowest precedence in its host. */
  readonly fallback: boolean;
  /** Position of the claim among its owner's claims, in spec order. */
  readonly seq: number;
  readonly route: HttpRoute;
}

function compareClaimsByOwner(a: RouteClaim, b: RouteClaim): number {
  return compareObjects(a.owner, b.owner) || a.seq - b.seq;
}

function describe(hostname: string, route: HttpRoute): string {
  return `${hostname === ANY_HOST ? 'any host' : hostname} ${route.pathType} ${route.path}`;
}

/** Keeps the winning claim of every (hostname, pathType, path) and tells each loser's owner who won. */
export function resolveRouteConflicts(claims: readonly RouteClaim[]): RouteClaim[] {
  const winners = new Map<string, RouteClaim>();
  const accepted: RouteClaim[] = [];
  for (const claim of [...claims].sort(compareClaimsByOwner)) {
    const key = [claim.hostname, claim.fallback, claim.route.pathType, claim.route.path].join('\0');
    const winner = winners.get(key);
    if (winner === undefined) {
      winners.set(key, claim);
      accepted.push(claim);
      continue;
    }
    const by = winner.owner === claim.owner ? winner.field : `${winner.owner.display} (${winner.field})`;
    const what = claim.fallback ? `the default backend` : describe(claim.hostname, claim.route);
    claim.owner.notAccepted('Conflicted', `${claim.field}: ${what} is already served by ${by}`);
  }
  return accepted;
}

function compareRoutes(a: RouteClaim, b: RouteClaim): number {
  if (a.fallback !== b.fallback) return a.fallback ? 1 : -1;
  if (a.route.pathType !== b.route.pathType) return a.route.pathType === 'Exact' ? -1 : 1;
  return (
    pathElements(b.route.path) - pathElements(a.route.path) ||
    compareObjects(a.owner, b.owner) ||
    compareStrings(a.route.path, b.route.path) ||
    compareStrings(a.route.id, b.route.id)
  );
}

/** Groups accepted claims into virtual hosts, each sorted by precedence, in RoutingTable order. */
export function buildVirtualHosts(claims: readonly RouteClaim[]): VirtualHost[] {
  const byHost = new Map<string, RouteClaim[]>();
  for (const claim of claims) {
    const list = byHost.get(claim.hostname) ?? [];
    list.push(claim);
    byHost.set(claim.hostname, list);
  }
  return [...byHost.entries()]
    .sort(([a], [b]) => compareHostnames(a, b))
    .map(([hostname, list]) => ({ hostname, routes: list.sort(compareRoutes).map((c) => c.route) }));
}

export interface TunnelClaim {
  readonly owner: ObjectReport;
  readonly tunnel: TunnelRoute;
}

/** Takes tunnels oldest first, refusing those that clash with one taken; returns them in RoutingTable order. */
export function resolveTunnels(claims: readonly TunnelClaim[]): TunnelRoute[] {
  const taken: TunnelClaim[] = [];
  for (const claim of [...claims].sort((a, b) => compareObjects(a.owner, b.owner))) {
    const problem = firstClash(claim, taken);
    if (problem === undefined) taken.push(claim);
    else claim.owner.notAccepted('Conflicted', problem);
  }
  return taken
    .sort(
      (a, b) =>
        a.tunnel.port - b.tunnel.port ||
        Number(a.tunnel.sniHostnames.length === 0) - Number(b.tunnel.sniHostnames.length === 0) ||
        compareObjects(a.owner, b.owner),
    )
    .map((c) => c.tunnel);
}

function firstClash(claim: TunnelClaim, taken: readonly TunnelClaim[]): string | undefined {
  const { port, sniHostnames } = claim.tunnel;
  for (const other of taken) {
    if (other.tunnel.port !== port) continue;
    const by = other.owner.display;
    const otherPlain = other.tunnel.sniHostnames.length === 0;
    if (sniHostnames.length === 0 && otherPlain) {
      return `spec.port: port ${port} is already taken by the plain tunnel ${by}`;
    }
    if (sniHostnames.length === 0) {
      return `spec.port: port ${port} already routes by SNI for ${by}; a plain tunnel needs the port to itself`;
    }
    if (otherPlain) {
      return `spec.sniHostnames: port ${port} is already taken by the plain tunnel ${by}, which receives every connection`;
    }
    const shared = sharedHostname(sniHostnames, other.tunnel.sniHostnames);
    if (shared !== undefined) return `spec.sniHostnames: ${shared} on port ${port} is already routed by ${by}`;
  }
  return undefined;
}

/** An Ingress with ssl-passthrough asking for a host on the HTTPS listener. */
export interface PassthroughClaim {
  readonly owner: ObjectReport;
  readonly field: string;
  readonly route: PassthroughRoute;
}

/** One passthrough per hostname: the oldest object's (then namespace/name) wins; sorted as virtual hosts are. */
export function resolvePassthrough(claims: readonly PassthroughClaim[]): PassthroughRoute[] {
  const winners = new Map<string, PassthroughClaim>();
  for (const claim of [...claims].sort((a, b) => compareObjects(a.owner, b.owner) || compareStrings(a.field, b.field))) {
    const held = winners.get(claim.route.hostname);
    if (held === undefined) winners.set(claim.route.hostname, claim);
    else claim.owner.notAccepted('Conflicted', `${claim.field}: ssl-passthrough for ${claim.route.hostname} is already claimed by ${held.owner.display}`);
  }
  return [...winners.values()].sort((a, b) => compareHostnames(a.route.hostname, b.route.hostname)).map((c) => c.route);
}
