// The routing table: the one thing the data plane reads. translate() builds it from a snapshot of objects; the
// proxy swaps it atomically. Everything here is plain data, frozen, and sorted so that lookups need no tie-breaks.
import type { ProxyProtocolVersion } from '../api/types.ts';

export type Layer = 'l7' | 'l4';

/** A ready address of a backend Service, with the target port resolved. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** A Service port as a route uses it: `namespace/service:port`, its weight, and its ready endpoints. */
export interface Backend {
  readonly name: string;
  readonly weight: number;
  readonly endpoints: readonly Endpoint[];
}

export type HashOn =
  | { readonly kind: 'clientIP' }
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string };

export type LoadBalancing =
  | { readonly policy: 'LeastConnections' }
  | { readonly policy: 'RoundRobin' }
  | { readonly policy: 'ConsistentHash'; readonly hashOn: HashOn };

/** The effective policy of one route rule (rule policy over route policy over defaults). */
export interface Policy {
  /** Seconds without traffic before a tunnel is closed; 0 = never. */
  readonly idleTimeoutSeconds: number;
  /** Seconds to wait for a backend's TCP connect. */
  readonly connectTimeoutSeconds: number;
  /** Plain HTTP: seconds from the request sent to the backend's response head, else 504; 0 = no limit. */
  readonly responseHeaderTimeoutSeconds: number;
  /** 0 = unlimited. */
  readonly maxConnections: number;
  /** 0 = unlimited. */
  readonly maxConnectionsPerClient: number;
  /** Empty = any Origin. Compared case-insensitively, exactly (scheme://host[:port]). */
  readonly allowedOrigins: readonly string[];
  /** Empty = pass through whatever the client offers. */
  readonly subprotocols: readonly string[];
  readonly loadBalancing: LoadBalancing;
}

export const DEFAULT_POLICY: Policy = Object.freeze({
  idleTimeoutSeconds: 0,
  connectTimeoutSeconds: 5,
  responseHeaderTimeoutSeconds: 60,
  maxConnections: 0,
  maxConnectionsPerClient: 0,
  allowedOrigins: Object.freeze([]),
  subprotocols: Object.freeze([]),
  loadBalancing: Object.freeze({ policy: 'LeastConnections' }),
});

/**
 * One path rule of one host. `route` is the metric and log label (`namespace/name` of the object);
 * `id` is unique in the table (`Kind/namespace/name#rule`), and keys per-route counters such as connection limits,
 * so that limits carry across table swaps as long as the rule keeps its id.
 */
export interface HttpRoute {
  readonly id: string;
  readonly route: string;
  readonly pathType: 'Exact' | 'Prefix';
  /** Normalised: starts with '/', no trailing '/' for Prefix (except the root '/'). */
  readonly path: string;
  readonly backends: readonly Backend[];
  readonly policy: Policy;
}

/**
 * The routes of one hostname. `hostname` is an exact name (lower case), a wildcard `*.example.com`
 * (matches exactly one label before the suffix, as Ingress does), or `*` for any host.
 * `routes` are sorted by precedence: Exact before Prefix, longer prefix (in path elements) first, then older object,
 * then namespace/name.
 */
export interface VirtualHost {
  readonly hostname: string;
  readonly routes: readonly HttpRoute[];
}

/** A certificate the TLS listener serves for the hostnames given (exact or `*.` wildcard). */
export interface Certificate {
  /** `namespace/name` of the Secret. */
  readonly secret: string;
  readonly hostnames: readonly string[];
  readonly certPem: string;
  readonly keyPem: string;
}

/** One L4 tunnel: a listening port, optionally an SNI name set (TLS passthrough), and where to send bytes. */
export interface TunnelRoute {
  readonly id: string;
  readonly route: string;
  readonly port: number;
  /** Empty = plain TCP: every connection on the port. Otherwise lower-case exact or `*.` wildcard names. */
  readonly sniHostnames: readonly string[];
  readonly backends: readonly Backend[];
  readonly proxyProtocol: ProxyProtocolVersion;
  readonly idleTimeoutSeconds: number;
  readonly connectTimeoutSeconds: number;
  readonly maxConnections: number;
}

export interface RoutingTable {
  /** Exact hostnames first (sorted), then wildcards (longest suffix first), then `*`. */
  readonly virtualHosts: readonly VirtualHost[];
  readonly certificates: readonly Certificate[];
  /** Sorted by port, then SNI-less last within a port. */
  readonly tunnels: readonly TunnelRoute[];
}

export const EMPTY_TABLE: RoutingTable = Object.freeze({
  virtualHosts: Object.freeze([]),
  certificates: Object.freeze([]),
  tunnels: Object.freeze([]),
});

/** Deep-freezes a table so a data-plane bug cannot mutate what other connections read. */
export function freezeTable<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) freezeTable(v);
  }
  return value;
}
