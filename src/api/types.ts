// The object model wsgate reads: its own kinds (group wsgate.io, version v1alpha1) and the Kubernetes kinds
// it consumes. The Kubernetes kinds are the types of @kubernetes/client-node, so that the controller (which gets
// them from the API server) and `wsgate serve` (which reads them from YAML) share one translator.
// The OpenAPI schema in ./schema.ts describes the same wsgate.io kinds for the API server; a test keeps them aligned.
import type {
  V1EndpointSlice,
  V1Ingress,
  V1IngressClass,
  V1ObjectMeta,
  V1Secret,
  V1Service,
} from '@kubernetes/client-node';

export type Ingress = V1Ingress;
export type IngressClass = V1IngressClass;
export type Service = V1Service;
export type EndpointSlice = V1EndpointSlice;
export type Secret = V1Secret;
export type ObjectMeta = V1ObjectMeta;

export const GROUP = 'wsgate.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
/** The controller name an IngressClass must carry in spec.controller for wsgate to own it. */
export const CONTROLLER_NAME = 'wsgate.io/ingress-controller';
/** Ingress annotation prefix for policy knobs (`wsgate.io/idle-timeout-seconds`, ...). */
export const ANNOTATION_PREFIX = 'wsgate.io/';

export type PathType = 'Exact' | 'Prefix';
export const PATH_TYPES: readonly PathType[] = ['Exact', 'Prefix'];

export type LoadBalancingPolicy = 'LeastConnections' | 'RoundRobin' | 'ConsistentHash' | 'Cookie';
export const LOAD_BALANCING_POLICIES: readonly LoadBalancingPolicy[] = ['LeastConnections', 'RoundRobin', 'ConsistentHash', 'Cookie'];

export type SameSite = 'Strict' | 'Lax' | 'None';
export const SAME_SITE_VALUES: readonly SameSite[] = ['Strict', 'Lax', 'None'];

/** Never; IfTLS: when the host has a certificate on the TLS listener (the ingress-nginx default); Always. */
export type RedirectMode = 'Never' | 'IfTLS' | 'Always';
export const REDIRECT_MODES: readonly RedirectMode[] = ['Never', 'IfTLS', 'Always'];
export type RedirectStatus = 301 | 302 | 307 | 308;
export const REDIRECT_STATUSES: readonly RedirectStatus[] = [301, 302, 307, 308];
/** A WebSocket handshake on a redirecting route: Reject answers 426, Redirect answers the redirect status. */
export type WebSocketRedirect = 'Reject' | 'Redirect';
export const WEBSOCKET_REDIRECTS: readonly WebSocketRedirect[] = ['Reject', 'Redirect'];
/** What a client gets when the external auth service fails. */
export type AuthFailureStatus = 500 | 503;
export const AUTH_FAILURE_STATUSES: readonly AuthFailureStatus[] = [500, 503];

export type ProxyProtocolVersion = 'None' | 'V1' | 'V2';
export const PROXY_PROTOCOL_VERSIONS: readonly ProxyProtocolVersion[] = ['None', 'V1', 'V2'];

/** Over maxMessagesPerSecond: Throttle pauses reads from the client (nothing dropped), Close closes with 1008. */
export type OnExceedAction = 'Throttle' | 'Close';
export const ON_EXCEED_ACTIONS: readonly OnExceedAction[] = ['Throttle', 'Close'];

/** A removed route's tunnels: Keep leaves them until they end, Close closes them spread over graceSeconds. */
export type RemovalAction = 'Keep' | 'Close';
export const REMOVAL_ACTIONS: readonly RemovalAction[] = ['Keep', 'Close'];

/** What a consistent hash is computed from; exactly one member is set. */
export interface HashOnSpec {
  clientIP?: boolean;
  header?: string;
  cookie?: string;
  /** A query parameter of the request-target. */
  query?: string;
}

/** The affinity cookie wsgate issues with policy Cookie. */
export interface AffinityCookieSpec {
  /** Default wsgate-affinity. */
  name?: string;
  /** Max-Age in seconds; 0 = a session cookie. Default 0. */
  maxAgeSeconds?: number;
  /** Default: the rule's path. */
  path?: string;
  /** Default: none sent. */
  sameSite?: SameSite;
  /** Always send Secure; default false = only on requests that came over TLS. */
  secure?: boolean;
}

export interface LoadBalancingSpec {
  /** Default LeastConnections: WebSocket connections live long, so connect-time round robin leaves backends uneven. */
  policy?: LoadBalancingPolicy;
  hashOn?: HashOnSpec;
  /** Policy Cookie: the cookie's attributes. */
  cookie?: AffinityCookieSpec;
}

export interface HttpsRedirectSpec {
  /** Default Never (an Ingress: IfTLS). */
  mode?: RedirectMode;
  /** Default 308. */
  statusCode?: RedirectStatus;
  /** Default Reject (426). */
  webSocket?: WebSocketRedirect;
}

export interface HstsSpec {
  /** 0 = no Strict-Transport-Security header. Default 0. */
  maxAgeSeconds?: number;
  includeSubDomains?: boolean;
  preload?: boolean;
}

export interface RateLimitSpec {
  /** Handshakes and plain HTTP requests per second per client IP; 0 = no limit. Default 0. */
  requestsPerSecond?: number;
  /** The most at once (bucket size). Default requestsPerSecond (rounded up). */
  burst?: number;
}

export interface BackendTLSSpec {
  /** Default true when backendTLS is given. */
  enabled?: boolean;
  /** Server name sent and verified. Default the Service's DNS name, service.namespace.svc. */
  sni?: string;
  /** A Secret in the route's namespace whose ca.crt verifies the backend. Default: the system's CAs. */
  caSecret?: string;
  /** Do not verify the backend's certificate. Default false. */
  insecureSkipVerify?: boolean;
}

export interface ExternalAuthSpec {
  /** http:// or https:// URL of the auth service; "" = none. */
  url?: string;
  /** Default GET. */
  method?: string;
  /** Request headers sent to the auth service besides Authorization and Cookie. */
  requestHeaders?: string[];
  /** Headers of a 2xx answer copied to the upstream request. */
  responseHeaders?: string[];
  /** Default 5. */
  timeoutSeconds?: number;
  /** 500 or 503 (default) when the auth service fails, times out, or answers other than 2xx/401/403. */
  failureStatus?: AuthFailureStatus;
  /** Seconds an answer is reused for the same credentials; 0 (default) = not cached. */
  cacheSeconds?: number;
}

export interface CorsSpec {
  /** Origins allowed, or "*"; empty (default) = CORS off. */
  allowOrigins?: string[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  allowCredentials?: boolean;
  maxAgeSeconds?: number;
}

/** Pings to find dead peers. Each member overrides the one below it on its own (rule over route over default). */
export interface KeepaliveSpec {
  /** Seconds a side may send nothing before wsgate pings it; 0 = no keepalive. Default 30. */
  intervalSeconds?: number;
  /** Seconds a pinged side has to send anything before it is dead (1001 to the other side). Default 30, >= 1. */
  timeoutSeconds?: number;
  /** Ping backends too, not only clients. Default false. */
  toBackend?: boolean;
}

/** What happens to live tunnels when their route, or the backend they use, leaves the routing table. */
export interface OnRemovalSpec {
  /** Default Close: a removed route stops serving its open connections too. */
  action?: RemovalAction;
  /** Close: seconds over which the 1001 closes (L4: FINs) are spread. Default 60. */
  graceSeconds?: number;
}

/** Moves tunnels off endpoints that hold more than their share, e.g. after a scale-out. */
export interface RebalanceSpec {
  /** Default false. */
  enabled?: boolean;
  /** How far (percent of the even share) an endpoint may be above it before tunnels are moved. 1-100, default 20. */
  tolerancePercent?: number;
  /** The most tunnels closed per second, per route and wsgate process. >= 1, default 5. */
  maxClosesPerSecond?: number;
}

export interface PolicySpec {
  /** Seconds without a byte in either direction before a tunnel is closed; 0 = never. Default 0. */
  idleTimeoutSeconds?: number;
  /** Seconds to wait for a TCP connection to a backend endpoint. Default 5. */
  connectTimeoutSeconds?: number;
  /**
   * Plain HTTP requests: seconds from the request sent to the backend's response head before wsgate answers 504;
   * 0 = no limit. Default 60 (nginx's proxy_read_timeout). Never applies to a WebSocket after its 101.
   */
  responseHeaderTimeoutSeconds?: number;
  /** Live connections allowed on the route (per wsgate pod: all its worker processes together); 0 = unlimited. Default 0. */
  maxConnections?: number;
  /** Live connections allowed per client IP on the route (per wsgate pod); 0 = unlimited. Default 0. */
  maxConnectionsPerClient?: number;
  /** Origin header values allowed for WebSocket handshakes; empty = any. */
  allowedOrigins?: string[];
  /** Sec-WebSocket-Protocol values allowed; empty = whatever the client offers passes through. */
  subprotocols?: string[];
  loadBalancing?: LoadBalancingSpec;
  /**
   * Track WebSocket frames after the 101. Default true. false = a plain byte pipe: no keepalive, no message limits
   * or metrics, no close frames from wsgate; keepalive and the message limits must then be left off.
   */
  inspectFrames?: boolean;
  keepalive?: KeepaliveSpec;
  /** Largest client→backend message, in bytes on the wire (compressed with permessage-deflate); 0 = no limit. Default 0. */
  maxMessageBytes?: number;
  /** Largest backend→client message, in bytes on the wire; 0 = no limit. Default 0. */
  maxBackendMessageBytes?: number;
  /** Client→backend messages per second per connection (a token bucket); 0 = no limit. Default 0. */
  maxMessagesPerSecond?: number;
  /** Default Throttle. */
  onExceed?: OnExceedAction;
  /** Protocol violations close with 1002 (and 1001 to the peer); false = count them and pass the frames. Default true. */
  strict?: boolean;
  /** Seconds over which tunnels on an endpoint that goes away are closed; 0 = leave them. Default 10. */
  endpointDrainSeconds?: number;
  onRemoval?: OnRemovalSpec;
  rebalance?: RebalanceSpec;
  /** CIDRs (IPv4, IPv6) the client address must be in; empty = any. Default empty. */
  allowedSourceRanges?: string[];
  /** CIDRs the client address must not be in; checked before allowedSourceRanges. Default empty. */
  deniedSourceRanges?: string[];
  httpsRedirect?: HttpsRedirectSpec;
  hsts?: HstsSpec;
  rateLimit?: RateLimitSpec;
  externalAuth?: ExternalAuthSpec;
  backendTLS?: BackendTLSSpec;
  /** Plain HTTP request bodies larger than this get 413; 0 = no limit. Default 0. */
  maxRequestBodyBytes?: number;
  cors?: CorsSpec;
}

export interface BackendRef {
  /** Service name, in the route's namespace. */
  service: string;
  /** Service port, by number or by name. */
  port: number | string;
  /** Relative share of new connections; default 1, 0 = none. */
  weight?: number;
}

export interface WebSocketRouteRule {
  /**
   * Names the rule: its connection limits and metrics follow the name when rules are inserted or reordered.
   * Default: the rule's match (path type and value).
   */
  name?: string;
  path?: { type?: PathType; value?: string };
  backends: BackendRef[];
  policy?: PolicySpec;
}

export interface WebSocketRouteSpec {
  hostnames?: string[];
  tls?: { secretName: string };
  rules: WebSocketRouteRule[];
  policy?: PolicySpec;
}

export interface Condition {
  type: 'Accepted' | 'ResolvedRefs';
  status: 'True' | 'False';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

export interface RouteStatus {
  observedGeneration?: number;
  conditions?: Condition[];
}

export interface WebSocketRoute {
  apiVersion: typeof API_VERSION;
  kind: 'WebSocketRoute';
  metadata: ObjectMeta;
  spec: WebSocketRouteSpec;
  status?: RouteStatus;
}

export interface TCPTunnelSpec {
  /** The proxy's listening port for this tunnel. */
  port: number;
  /** When set, TLS passthrough: routed by the ClientHello's SNI, never decrypted. */
  sniHostnames?: string[];
  backends: BackendRef[];
  proxyProtocol?: ProxyProtocolVersion;
  idleTimeoutSeconds?: number;
  connectTimeoutSeconds?: number;
  maxConnections?: number;
  /** Seconds over which tunnels on an endpoint that goes away are closed (FIN); 0 = leave them. Default 10. */
  endpointDrainSeconds?: number;
  onRemoval?: OnRemovalSpec;
  /** CIDRs the client address must be in; empty = any. A refused connection is closed at once. */
  allowedSourceRanges?: string[];
  /** CIDRs the client address must not be in (checked first). */
  deniedSourceRanges?: string[];
}

export interface TCPTunnel {
  apiVersion: typeof API_VERSION;
  kind: 'TCPTunnel';
  metadata: ObjectMeta;
  spec: TCPTunnelSpec;
  status?: RouteStatus;
}

/** The apiVersion of each kind wsgate reads; an object of another version is not read. */
export const KIND_API_VERSIONS: Readonly<Record<KubeObject['kind'], string>> = {
  Ingress: 'networking.k8s.io/v1',
  IngressClass: 'networking.k8s.io/v1',
  Service: 'v1',
  EndpointSlice: 'discovery.k8s.io/v1',
  Secret: 'v1',
  WebSocketRoute: API_VERSION,
  TCPTunnel: API_VERSION,
};

/** Every kind wsgate reads, as found in a YAML file or a watch. */
export type KubeObject =
  | (Ingress & { kind: 'Ingress' })
  | (IngressClass & { kind: 'IngressClass' })
  | (Service & { kind: 'Service' })
  | (EndpointSlice & { kind: 'EndpointSlice' })
  | (Secret & { kind: 'Secret' })
  | WebSocketRoute
  | TCPTunnel;
