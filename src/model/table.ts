// The routing table: the one thing the data plane reads. translate() builds it from a snapshot of objects; the
// proxy swaps it atomically. Everything here is plain data, frozen, and sorted so that lookups need no tie-breaks.
import type {
  AuthFailureStatus,
  OnExceedAction,
  ProxyProtocolVersion,
  RedirectMode,
  RedirectStatus,
  RemovalAction,
  SameSite,
  WebSocketRedirect,
} from '../api/types.ts';

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
  /**
   * [issue 14] A Gateway API backendRef that did not resolve (no such Service, not permitted, an unsupported kind):
   * the share of requests that picks it gets 500, as the spec asks. Absent = a resolved backend.
   */
  readonly invalid?: true;
}

export type HashOn =
  | { readonly kind: 'clientIP' }
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string }
  /** A query parameter of the request-target (ingress-nginx `upstream-hash-by: $arg_NAME`). */
  | { readonly kind: 'query'; readonly name: string };

/** The cookie wsgate issues to pin a client to an endpoint (LoadBalancing policy Cookie; src/proxy/affinity.ts). */
export interface AffinityCookie {
  readonly name: string;
  /** Max-Age in seconds; 0 = a session cookie (no Max-Age). */
  readonly maxAgeSeconds: number;
  /** Path attribute; '' = the rule's path. */
  readonly path: string;
  /** SameSite attribute; '' = none sent. */
  readonly sameSite: SameSite | '';
  /** Secure attribute always; false = only on requests that came over TLS. */
  readonly secure: boolean;
}

export type LoadBalancing =
  | { readonly policy: 'LeastConnections' }
  | { readonly policy: 'RoundRobin' }
  | { readonly policy: 'ConsistentHash'; readonly hashOn: HashOn }
  /** A cookie naming the endpoint (HMAC), issued on the first response; without a valid one, least connections. */
  | { readonly policy: 'Cookie'; readonly cookie: AffinityCookie };

/** Pings toward idle peers, to find dead ones. Meaningful only with Policy.inspectFrames. */
export interface Keepalive {
  /** Seconds a side may send nothing before it is pinged; 0 = no keepalive (then the other two are unused). */
  readonly intervalSeconds: number;
  /** Seconds (>= 1) a pinged side has to send anything; then it is dead: 1001 to the live side, outcome peer_timeout. */
  readonly timeoutSeconds: number;
  /** false = only clients are pinged (unmasked, wsgate as server); true = backends too (masked, wsgate as client). */
  readonly toBackend: boolean;
}

/** What a table swap does to the live tunnels of a route (or of a backend of it) that the new table no longer has. */
export interface OnRemoval {
  /** Keep: leave them until they end. Close: 1001 close frames (L4: FIN), spread evenly over graceSeconds. */
  readonly action: RemovalAction;
  /** Close: the spreading window in seconds; 0 = all at once. */
  readonly graceSeconds: number;
}

/** Closing tunnels on endpoints above their even share, so reconnections land on the others. */
export interface Rebalance {
  readonly enabled: boolean;
  /** 1-100: an endpoint is over when it holds more than share × (1 + tolerancePercent/100). */
  readonly tolerancePercent: number;
  /** >= 1: the most rebalancing closes per second, per route and process. */
  readonly maxClosesPerSecond: number;
}

/** Plain-HTTP-listener requests of a route sent to HTTPS (src/proxy/redirect.ts). */
export interface HttpsRedirect {
  /** Never; IfTLS = when the request's host has a certificate on the TLS listener; Always. */
  readonly mode: RedirectMode;
  /** 301, 302, 307 or 308. */
  readonly statusCode: RedirectStatus;
  /** WebSocket handshakes: Reject = 426 naming the wss:// URL; Redirect = statusCode with Location, as plain HTTP. */
  readonly webSocket: WebSocketRedirect;
}

/** Strict-Transport-Security on responses over TLS; maxAgeSeconds 0 = not sent. */
export interface Hsts {
  readonly maxAgeSeconds: number;
  readonly includeSubDomains: boolean;
  readonly preload: boolean;
}

/** Handshakes and plain HTTP requests per client IP on the rule (a token bucket; src/proxy/rate.ts). */
export interface RateLimit {
  /** Tokens added per second (a fraction from ingress-nginx's limit-rpm); 0 = no limit. */
  readonly requestsPerSecond: number;
  /** Bucket size (the most requests at once); >= 1 when requestsPerSecond > 0. */
  readonly burst: number;
}

/** TLS to the backend endpoints (wss://, https://; src/proxy/backend-tls.ts). */
export interface BackendTLS {
  readonly enabled: boolean;
  /** Server name sent and verified; '' = the Service's DNS name (`service.namespace.svc`). */
  readonly sni: string;
  /** `namespace/name` of the Secret the CA came from ('' = the system's CAs), for log lines. */
  readonly caSecret: string;
  /** The CA bundle (PEM) read from caSecret's `ca.crt`; '' with caSecret set = it did not resolve (502s). */
  readonly caPem: string;
  readonly insecureSkipVerify: boolean;
}

/** A sub-request to an auth service before a request goes upstream (src/proxy/auth.ts). */
export interface ExternalAuth {
  /** http:// or https:// URL; '' = no external auth. */
  readonly url: string;
  /** The sub-request's method. */
  readonly method: string;
  /** Request headers copied to the sub-request besides Authorization and Cookie (lower case). */
  readonly requestHeaders: readonly string[];
  /** Headers of a 2xx answer copied to the upstream request (lower case). */
  readonly responseHeaders: readonly string[];
  readonly timeoutSeconds: number;
  /** What the client gets when the auth service fails, times out, or answers other than 2xx/401/403. */
  readonly failureStatus: AuthFailureStatus;
  /** Seconds a 2xx/401/403 answer is reused for the same credentials; 0 = never (each request asks). */
  readonly cacheSeconds: number;
}

/** CORS answered by wsgate (src/proxy/cors.ts); empty allowOrigins = off. */
export interface Cors {
  /** Origins allowed (`*` = any), compared case-insensitively. */
  readonly allowOrigins: readonly string[];
  readonly allowMethods: readonly string[];
  readonly allowHeaders: readonly string[];
  readonly exposeHeaders: readonly string[];
  readonly allowCredentials: boolean;
  readonly maxAgeSeconds: number;
}

/**
 * The effective policy of one route rule (rule policy over route policy over defaults; nested objects member by
 * member). Whole numbers throughout, except idleTimeoutSeconds, connectTimeoutSeconds and
 * responseHeaderTimeoutSeconds, which may be fractional.
 */
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
  /**
   * WebSocket tunnels (L7, after the 101): true = frames are tracked per direction. false = a plain byte pipe:
   * keepalive, strict, onExceed and the message limits are not applied (translation guarantees the limits are 0 and
   * keepalive is its default or off), no message metrics, no close frames injected (idle timeout, drains: TCP close).
   */
  readonly inspectFrames: boolean;
  readonly keepalive: Keepalive;
  /**
   * Client→backend message limit in bytes on the wire (the sum of its fragments' payloads, compressed as sent);
   * 0 = none. Over: 1009 to the client, 1001 to the backend.
   */
  readonly maxMessageBytes: number;
  /** Backend→client message limit in bytes on the wire; 0 = none. Over: 1009 to the backend, 1001 to the client. */
  readonly maxBackendMessageBytes: number;
  /** Client→backend messages per second per connection (token bucket); 0 = none. */
  readonly maxMessagesPerSecond: number;
  /** Over maxMessagesPerSecond: Throttle = stop reading from the client until tokens return; Close = 1008. */
  readonly onExceed: OnExceedAction;
  /** Protocol violations: true = 1002 to the sender and 1001 to the peer; false = count and pass on. */
  readonly strict: boolean;
  /** Tunnels on an endpoint that turns terminating, not ready or disappears: 1001s spread over this; 0 = left alone. */
  readonly endpointDrainSeconds: number;
  readonly onRemoval: OnRemoval;
  readonly rebalance: Rebalance;
  // Edge policy (issue 12), checked in the fixed order of src/proxy/upgrade.ts and l7.ts.
  /** CIDRs (normalised, IPv4 and IPv6) the client address must be in; empty = any. */
  readonly allowedSourceRanges: readonly string[];
  /** CIDRs the client address must not be in (checked first). */
  readonly deniedSourceRanges: readonly string[];
  readonly httpsRedirect: HttpsRedirect;
  readonly hsts: Hsts;
  readonly rateLimit: RateLimit;
  readonly externalAuth: ExternalAuth;
  readonly backendTLS: BackendTLS;
  /** Plain HTTP request bodies over this many bytes get 413; 0 = no limit. */
  readonly maxRequestBodyBytes: number;
  readonly cors: Cors;
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
  inspectFrames: true,
  // On toward clients: browsers and NATs drop idle TCP silently, and a dead client otherwise holds its backend forever.
  keepalive: Object.freeze({ intervalSeconds: 30, timeoutSeconds: 30, toBackend: false }),
  maxMessageBytes: 0,
  maxBackendMessageBytes: 0,
  maxMessagesPerSecond: 0,
  onExceed: 'Throttle',
  strict: true,
  endpointDrainSeconds: 10,
  // Close: removing a route to cut access must cut it (traefik #9455, #9077); README explains.
  onRemoval: Object.freeze({ action: 'Close', graceSeconds: 60 }),
  rebalance: Object.freeze({ enabled: false, tolerancePercent: 20, maxClosesPerSecond: 5 }),
  allowedSourceRanges: Object.freeze([]),
  deniedSourceRanges: Object.freeze([]),
  // Never for a WebSocketRoute; an Ingress starts from IfTLS, the ingress-nginx default (src/translate/ingress.ts).
  httpsRedirect: Object.freeze({ mode: 'Never', statusCode: 308, webSocket: 'Reject' }),
  hsts: Object.freeze({ maxAgeSeconds: 0, includeSubDomains: false, preload: false }),
  rateLimit: Object.freeze({ requestsPerSecond: 0, burst: 0 }),
  externalAuth: Object.freeze({
    url: '',
    method: 'GET',
    requestHeaders: Object.freeze([]),
    responseHeaders: Object.freeze([]),
    timeoutSeconds: 5,
    failureStatus: 503,
    cacheSeconds: 0,
  }),
  backendTLS: Object.freeze({ enabled: false, sni: '', caSecret: '', caPem: '', insecureSkipVerify: false }),
  maxRequestBodyBytes: 0,
  cors: Object.freeze({
    allowOrigins: Object.freeze([]),
    allowMethods: Object.freeze(['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS']),
    allowHeaders: Object.freeze([]),
    exposeHeaders: Object.freeze([]),
    allowCredentials: false,
    maxAgeSeconds: 1728000,
  }),
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
  // [issue 14] What Gateway API HTTPRoutes add; absent on the routes of every other kind.
  /** What a request must also have (method, headers, query parameters), all of it; absent = nothing more. */
  readonly match?: RequestMatch;
  /** What the rule does to a request and its response (src/proxy/filters.ts); absent = nothing. */
  readonly filters?: RouteFilters;
  /**
   * Weights are shares of requests per backend (Gateway API backendRefs): a backend is chosen first (smooth weighted
   * round robin), then an endpoint of it by the policy. Absent: each endpoint carries its backend's weight.
   */
  readonly weightPerBackend?: true;
  /** Plain HTTP: seconds for the whole exchange, else 504 (HTTPRoute timeouts.request); 0 or absent = none. Never a tunnel's. */
  readonly requestTimeoutSeconds?: number;
}

/** [issue 14] A header or query parameter a request must carry. */
export interface ValueMatch {
  /** Header names lower case (they are case-insensitive); query parameter names as written (they are not). */
  readonly name: string;
  readonly type: 'Exact' | 'RegularExpression';
  readonly value: string;
}

/** [issue 14] A Gateway API HTTPRouteMatch beyond its path. */
export interface RequestMatch {
  /** Upper case; absent = any method. */
  readonly method?: string;
  readonly headers: readonly ValueMatch[];
  readonly queryParams: readonly ValueMatch[];
}

/** [issue 14] Headers set (replacing), added (appended) and removed. Names as written; `remove` lower case. */
export interface HeaderModifier {
  readonly set: readonly (readonly [string, string])[];
  readonly add: readonly (readonly [string, string])[];
  readonly remove: readonly string[];
}

/** [issue 14] How a redirect or a rewrite changes the path: all of it, or the part the rule's prefix matched. */
export type PathModifier =
  | { readonly type: 'ReplaceFullPath'; readonly value: string }
  | { readonly type: 'ReplacePrefixMatch'; readonly value: string };

/** [issue 14] An HTTPRoute RequestRedirect: absent members keep the request's own. */
export interface RequestRedirect {
  readonly scheme?: 'http' | 'https';
  readonly hostname?: string;
  readonly path?: PathModifier;
  /** Absent: the request's port unless the scheme changes (then the scheme's default, left out of Location). */
  readonly port?: number;
  readonly statusCode: 301 | 302 | 303 | 307 | 308;
}

/** [issue 14] An HTTPRoute URLRewrite. */
export interface UrlRewrite {
  readonly hostname?: string;
  readonly path?: PathModifier;
}

/** [issue 14] An HTTPRoute rule's filters. A redirect answers the request itself; the others change what passes. */
export interface RouteFilters {
  readonly requestHeaders?: HeaderModifier;
  readonly responseHeaders?: HeaderModifier;
  readonly redirect?: RequestRedirect;
  readonly rewrite?: UrlRewrite;
  /** Every request gets this status and no backend is tried (500: a rule whose backends are all invalid). */
  readonly directStatus?: number;
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
  /** As Policy.endpointDrainSeconds; tunnels are closed with a FIN. Default DEFAULT_POLICY's. */
  readonly endpointDrainSeconds: number;
  /** As Policy.onRemoval; closes are FINs. Default DEFAULT_POLICY's. */
  readonly onRemoval: OnRemoval;
  /** As Policy's: a refused connection is closed at once. Default empty (optional for tables built elsewhere). */
  readonly allowedSourceRanges?: readonly string[];
  readonly deniedSourceRanges?: readonly string[];
  /**
   * [issue 14] `*.` wildcards in sniHostnames match any number of labels, the most specific first (Gateway API
   * TLSRoute); absent = exactly one label (TCPTunnel, ingress-nginx ssl-passthrough).
   */
  readonly wildcardAnyDepth?: true;
  /** [issue 14] As HttpRoute.weightPerBackend (TCPRoute, TLSRoute backendRefs). */
  readonly weightPerBackend?: true;
}

/**
 * A host whose TLS connections on the HTTPS listener are not terminated but passed to backends by SNI
 * (ingress-nginx `ssl-passthrough`; needs --enable-ssl-passthrough).
 */
export interface PassthroughRoute {
  readonly id: string;
  readonly route: string;
  /** Lower-case exact name or `*.` wildcard. */
  readonly hostname: string;
  readonly backends: readonly Backend[];
  readonly connectTimeoutSeconds: number;
  readonly idleTimeoutSeconds: number;
  readonly allowedSourceRanges: readonly string[];
  readonly deniedSourceRanges: readonly string[];
}

/**
 * [issue 14] One port of the Gateway API listeners wsgate serves: HTTP, or HTTPS terminated with its own certificates.
 * Its virtual hosts are the listeners' hostnames intersected with their routes'; `*.` wildcards match any number of
 * labels, the most specific first. (TLS passthrough and TCP listeners are tunnels, in RoutingTable.tunnels.)
 */
export interface ListenerPort {
  readonly port: number;
  readonly protocol: 'HTTP' | 'HTTPS';
  /** Sorted as RoutingTable.virtualHosts; routes within each in Gateway API precedence order. */
  readonly virtualHosts: readonly VirtualHost[];
  /** HTTPS: the listeners' certificates, chosen by SNI (an exact name, then the longest wildcard); the first is the default. */
  readonly certificates: readonly Certificate[];
}

export interface RoutingTable {
  /** Exact hostnames first (sorted), then wildcards (longest suffix first), then `*`. */
  readonly virtualHosts: readonly VirtualHost[];
  readonly certificates: readonly Certificate[];
  /** Sorted by port, then SNI-less last within a port. */
  readonly tunnels: readonly TunnelRoute[];
  /** Sorted by hostname, as virtual hosts; absent = none. */
  readonly passthrough?: readonly PassthroughRoute[];
  /** [issue 14] Gateway API HTTP and HTTPS listener ports, sorted by port; absent = none. */
  readonly listeners?: readonly ListenerPort[];
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
