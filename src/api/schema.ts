// The OpenAPI v3 structural schemas of wsgate's own kinds (wsgate.io/v1alpha1 WebSocketRoute and TCPTunnel).
// One source for two consumers: the CustomResourceDefinitions in ./crds.ts (the API server validates with them)
// and ./validate.ts (`wsgate serve --config` validates with them), so a file that loads also applies, and back.
//
// Each object's `properties` is typed by `PropsOf<T>` over the TypeScript type in ./types.ts: adding, removing
// or renaming a field there without doing the same here fails the typecheck. Enums come from the same constants.
//
// Structural (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
// #specifying-a-structural-schema): every node has a `type` (or `x-kubernetes-int-or-string`), no anyOf/oneOf, no
// `default`s. Defaults live in one place, the translator, so that files mode and the cluster behave the same.
// Patterns are written in the common subset of RE2 (the API server) and ECMAScript (the validator): no lookaround.
import {
  LOAD_BALANCING_POLICIES,
  REDIRECT_MODES,
  SAME_SITE_VALUES,
  WEBSOCKET_REDIRECTS,
  type AffinityCookieSpec,
  type BackendTLSSpec,
  type CorsSpec,
  type ExternalAuthSpec,
  type HstsSpec,
  type HttpsRedirectSpec,
  type RateLimitSpec,
  ON_EXCEED_ACTIONS,
  PATH_TYPES,
  PROXY_PROTOCOL_VERSIONS,
  REMOVAL_ACTIONS,
  type BackendRef,
  type Condition,
  type HashOnSpec,
  type KeepaliveSpec,
  type LoadBalancingSpec,
  type OnRemovalSpec,
  type PolicySpec,
  type RebalanceSpec,
  type RouteStatus,
  type TCPTunnelSpec,
  type WebSocketRouteRule,
  type WebSocketRouteSpec,
} from './types.ts';

export type SchemaType = 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps that wsgate's schemas use (and the validator knows). */
export interface SchemaNode {
  type?: SchemaType;
  description?: string;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  items?: SchemaNode;
  enum?: string[];
  minimum?: number;
  maximum?: number;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  format?: 'date-time';
  /** Accepts an integer or a string; numeric keywords apply to integers, string keywords to strings. */
  'x-kubernetes-int-or-string'?: true;
}

/** Every key a SchemaNode may carry; the structural test rejects any other key found in a schema. */
export const SCHEMA_KEYS: readonly (keyof SchemaNode)[] = [
  'type',
  'description',
  'properties',
  'required',
  'items',
  'enum',
  'minimum',
  'maximum',
  'pattern',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
  'format',
  'x-kubernetes-int-or-string',
];

/** One schema per field of T, no more and no less: keeps the schema aligned with ./types.ts at compile time. */
type PropsOf<T> = { [K in keyof Required<T>]: SchemaNode };

/** DNS-1123 subdomain (RFC 1123 labels joined by dots), as Kubernetes validates object and host names. */
export const DNS1123_SUBDOMAIN = '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*';
/** A route hostname: an exact DNS-1123 subdomain, or `*.` followed by one (a wildcard for one or more labels). */
export const HOSTNAME_PATTERN = `^(\\*\\.)?${DNS1123_SUBDOMAIN}$`;
/** An absolute request path: starts with `/`, no whitespace, no query or fragment. */
export const PATH_PATTERN = '^/[^\\s?#]*$';
/** A Service name: a DNS-1035 label. */
export const SERVICE_NAME_PATTERN = '^[a-z]([-a-z0-9]*[a-z0-9])?$';
/** A Service port name (IANA_SVC_NAME): lowercase alphanumerics and single inner hyphens, at least one letter. */
export const PORT_NAME_PATTERN = '^([a-z0-9]+-)*[a-z0-9]*[a-z][a-z0-9]*(-[a-z0-9]+)*$';
/** An HTTP token (RFC 9110 §5.6.2): header names, cookie names, subprotocols. */
/** A rule name: a DNS-1123 label (lower-case alphanumerics and '-'). */
export const RULE_NAME_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
export const TOKEN_PATTERN = "^[-!#$%&'*+.^_`|~0-9A-Za-z]+$";
/** A CIDR or a single address, IPv4 or IPv6 (the translator checks the numbers). */
export const CIDR_PATTERN = '^[0-9a-fA-F:.]+(/[0-9]{1,3})?$';
/** An http:// or https:// URL, or "" (none). */
export const AUTH_URL_PATTERN = '^(https?://[^\\s/?#]+[^\\s]*)?$';
/** An HTTP method token in upper case. */
export const METHOD_PATTERN = '^[A-Z]+$';
/** A DNS name (the server name sent to a TLS backend): the subdomain pattern, grouped so that it reads apart. */
export const SERVER_NAME_PATTERN = `^(${DNS1123_SUBDOMAIN})$`;

function hostnames(description: string): SchemaNode {
  return {
    type: 'array',
    description,
    maxItems: 16,
    items: { type: 'string', pattern: HOSTNAME_PATTERN, maxLength: 253 },
  };
}

function nonNegativeInteger(description: string, maximum?: number): SchemaNode {
  const node: SchemaNode = { type: 'integer', description, minimum: 0 };
  if (maximum !== undefined) node.maximum = maximum;
  return node;
}

function connectTimeout(): SchemaNode {
  return {
    type: 'integer',
    description: 'Seconds to wait for a TCP connection to a backend endpoint. Default 5.',
    minimum: 1,
    maximum: 3600,
  };
}

function idleTimeout(): SchemaNode {
  return nonNegativeInteger('Seconds without a byte in either direction before a tunnel is closed; 0 = never. Default 0.');
}

function maxConnections(): SchemaNode {
  return nonNegativeInteger('Live connections allowed (per wsgate pod: all its worker processes together); 0 = unlimited. Default 0.');
}

function endpointDrain(closes: string): SchemaNode {
  return nonNegativeInteger(
    `Seconds over which tunnels on an endpoint that turns terminating, not ready or disappears are closed (${closes}); 0 = leave them. Default 10.`,
  );
}

const onRemovalProps: PropsOf<OnRemovalSpec> = {
  action: {
    type: 'string',
    description: 'Keep leaves the tunnels until they end; Close closes them, spread over graceSeconds. Default Close.',
    enum: [...REMOVAL_ACTIONS],
  },
  graceSeconds: nonNegativeInteger('Close: seconds over which the closes are spread. Default 60.'),
};

function onRemoval(closes: string): SchemaNode {
  return {
    type: 'object',
    description: `What happens to open tunnels when the route, or the backend they use, is removed (closes: ${closes}). Routes that stay or change keep every connection.`,
    properties: onRemovalProps,
  };
}

const keepaliveProps: PropsOf<KeepaliveSpec> = {
  intervalSeconds: nonNegativeInteger('Seconds a side may send nothing before wsgate pings it; 0 = no keepalive. Default 30.'),
  timeoutSeconds: {
    type: 'integer',
    description: 'Seconds a pinged side has to send anything before it is closed as dead. Default 30.',
    minimum: 1,
  },
  toBackend: { type: 'boolean', description: 'Ping backends too, not only clients. Default false.' },
};

const rebalanceProps: PropsOf<RebalanceSpec> = {
  enabled: { type: 'boolean', description: 'Default false.' },
  tolerancePercent: {
    type: 'integer',
    description: 'How far above an even share (percent) an endpoint may be before tunnels are moved off it. Default 20.',
    minimum: 1,
    maximum: 100,
  },
  maxClosesPerSecond: {
    type: 'integer',
    description: 'The most tunnels closed per second for rebalancing, per route and wsgate process. Default 5.',
    minimum: 1,
  },
};

const hashOnProps: PropsOf<HashOnSpec> = {
  clientIP: { type: 'boolean', description: 'Hash on the client IP address.' },
  header: { type: 'string', description: 'Hash on the value of this request header.', pattern: TOKEN_PATTERN, maxLength: 256 },
  cookie: { type: 'string', description: 'Hash on the value of this cookie.', pattern: TOKEN_PATTERN, maxLength: 256 },
  query: { type: 'string', description: 'Hash on the value of this query parameter.', pattern: TOKEN_PATTERN, maxLength: 256 },
};

const cookieProps: PropsOf<AffinityCookieSpec> = {
  name: { type: 'string', description: 'The cookie name. Default wsgate-affinity.', pattern: TOKEN_PATTERN, maxLength: 256 },
  maxAgeSeconds: nonNegativeInteger('Max-Age in seconds; 0 = a session cookie. Default 0.'),
  path: { type: 'string', description: "Path attribute. Default: the rule's path.", pattern: PATH_PATTERN, maxLength: 1024 },
  sameSite: { type: 'string', description: 'SameSite attribute. Default: none sent.', enum: [...SAME_SITE_VALUES] },
  secure: { type: 'boolean', description: 'Always send Secure. Default false: only on requests that came over TLS.' },
};

function stringList(description: string, pattern?: string): SchemaNode {
  return {
    type: 'array',
    description,
    maxItems: 64,
    items: pattern === undefined ? { type: 'string', minLength: 1, maxLength: 2048 } : { type: 'string', pattern, maxLength: 256 },
  };
}

function cidrList(description: string): SchemaNode {
  return { type: 'array', description, maxItems: 256, items: { type: 'string', pattern: CIDR_PATTERN, maxLength: 43 } };
}

const httpsRedirectProps: PropsOf<HttpsRedirectSpec> = {
  mode: {
    type: 'string',
    description: 'Never; IfTLS = when the host has a certificate on the TLS listener; Always. Default Never (an Ingress: IfTLS).',
    enum: [...REDIRECT_MODES],
  },
  statusCode: { type: 'integer', description: '301, 302, 307 or 308. Default 308.', minimum: 301, maximum: 308 },
  webSocket: {
    type: 'string',
    description: 'WebSocket handshakes on plain HTTP: Reject answers 426 naming the wss:// URL, Redirect answers statusCode. Default Reject.',
    enum: [...WEBSOCKET_REDIRECTS],
  },
};

const hstsProps: PropsOf<HstsSpec> = {
  maxAgeSeconds: nonNegativeInteger('Strict-Transport-Security max-age on responses over TLS; 0 = not sent. Default 0.'),
  includeSubDomains: { type: 'boolean', description: 'Default false.' },
  preload: { type: 'boolean', description: 'Default false.' },
};

const rateLimitProps: PropsOf<RateLimitSpec> = {
  requestsPerSecond: nonNegativeInteger('Handshakes and plain HTTP requests per second per client IP (per pod); 0 = no limit. Default 0.'),
  burst: nonNegativeInteger('The most at once (the bucket size). Default requestsPerSecond.'),
};

const backendTLSProps: PropsOf<BackendTLSSpec> = {
  enabled: { type: 'boolean', description: 'TLS to the backend (wss://, https://). Default true when backendTLS is given.' },
  sni: { type: 'string', description: "Server name sent and verified. Default the Service's DNS name, service.namespace.svc.", pattern: SERVER_NAME_PATTERN, maxLength: 253 },
  caSecret: {
    type: 'string',
    description: "A Secret in the route's namespace whose ca.crt verifies the backend. Default: the system's CAs.",
    pattern: `^${DNS1123_SUBDOMAIN}$`,
    maxLength: 253,
  },
  insecureSkipVerify: { type: 'boolean', description: "Do not verify the backend's certificate. Default false." },
};

const externalAuthProps: PropsOf<ExternalAuthSpec> = {
  url: { type: 'string', description: 'http:// or https:// URL of the auth service; "" = none.', pattern: AUTH_URL_PATTERN, maxLength: 2048 },
  method: { type: 'string', description: 'The sub-request method. Default GET.', pattern: METHOD_PATTERN, maxLength: 32 },
  requestHeaders: stringList('Request headers sent to the auth service besides Authorization and Cookie (never Upgrade or Connection).', TOKEN_PATTERN),
  responseHeaders: stringList('Headers of a 2xx answer copied to the upstream request.', TOKEN_PATTERN),
  timeoutSeconds: { type: 'integer', description: 'Seconds for the auth answer. Default 5.', minimum: 1, maximum: 300 },
  failureStatus: {
    type: 'integer',
    description: 'The status when the auth service fails, times out, or answers other than 2xx, 401 or 403: 500 or 503. Default 503.',
    minimum: 500,
    maximum: 503,
  },
  cacheSeconds: nonNegativeInteger('Seconds an answer is reused for the same credentials; 0 = not cached. Default 0.'),
};

const corsProps: PropsOf<CorsSpec> = {
  allowOrigins: stringList('Origins allowed (scheme://host[:port]), or "*"; empty = CORS off. Default empty.'),
  allowMethods: stringList('Default GET, PUT, POST, DELETE, PATCH, OPTIONS.', TOKEN_PATTERN),
  allowHeaders: stringList('Request headers a preflight may ask for. Default: those it asks for.', TOKEN_PATTERN),
  exposeHeaders: stringList('Response headers scripts may read.', TOKEN_PATTERN),
  allowCredentials: { type: 'boolean', description: 'Default false.' },
  maxAgeSeconds: nonNegativeInteger('How long a preflight answer may be cached. Default 1728000.'),
};

const loadBalancingProps: PropsOf<LoadBalancingSpec> = {
  policy: {
    type: 'string',
    description: 'How a new connection picks an endpoint. Default LeastConnections.',
    enum: [...LOAD_BALANCING_POLICIES],
  },
  hashOn: {
    type: 'object',
    description: 'What a ConsistentHash policy hashes; exactly one member is set.',
    properties: hashOnProps,
    minProperties: 1,
    maxProperties: 1,
  },
  cookie: {
    type: 'object',
    description: 'Policy Cookie: the cookie wsgate issues to keep a client on one endpoint (an HMAC of the endpoint).',
    properties: cookieProps,
  },
};

const policyProps: PropsOf<PolicySpec> = {
  idleTimeoutSeconds: idleTimeout(),
  connectTimeoutSeconds: connectTimeout(),
  responseHeaderTimeoutSeconds: nonNegativeInteger(
    'Plain HTTP: seconds from the request sent to the response head before a 504; 0 = no limit. Default 60.',
  ),
  maxConnections: maxConnections(),
  maxConnectionsPerClient: nonNegativeInteger('Live connections allowed per client IP (per wsgate pod); 0 = unlimited. Default 0.'),
  allowedOrigins: {
    type: 'array',
    description: 'Origin header values allowed for WebSocket handshakes; empty = any.',
    items: { type: 'string', minLength: 1, maxLength: 2048 },
  },
  subprotocols: {
    type: 'array',
    description: 'Sec-WebSocket-Protocol values allowed; empty = whatever the client offers passes through.',
    items: { type: 'string', pattern: TOKEN_PATTERN, maxLength: 256 },
  },
  loadBalancing: { type: 'object', description: 'Load balancing across endpoints.', properties: loadBalancingProps },
  inspectFrames: {
    type: 'boolean',
    description:
      'Track WebSocket frames after the handshake. Default true. false = a plain byte pipe (no keepalive, message limits, message metrics or close frames); keepalive and the message limits must then be left off.',
  },
  keepalive: {
    type: 'object',
    description: 'Pings to find dead peers; each member overrides on its own. Default: clients pinged every 30 s, 30 s to answer.',
    properties: keepaliveProps,
  },
  maxMessageBytes: nonNegativeInteger(
    'Largest client-to-backend message, in bytes on the wire (compressed with permessage-deflate); over it: close 1009. 0 = no limit (default); 1048576 is a common choice.',
  ),
  maxBackendMessageBytes: nonNegativeInteger(
    'Largest backend-to-client message, in bytes on the wire; 0 = no limit (default); 16777216 is a common choice.',
  ),
  maxMessagesPerSecond: nonNegativeInteger('Client-to-backend messages per second per connection; 0 = no limit. Default 0.'),
  onExceed: {
    type: 'string',
    description: 'Over maxMessagesPerSecond: Throttle pauses reading from the client (nothing dropped), Close closes with 1008. Default Throttle.',
    enum: [...ON_EXCEED_ACTIONS],
  },
  strict: {
    type: 'boolean',
    description: 'Protocol violations close the tunnel (1002 to the sender, 1001 to the peer); false = count them and pass the frames. Default true.',
  },
  endpointDrainSeconds: endpointDrain('1001 close frames'),
  onRemoval: onRemoval('1001 close frames'),
  rebalance: {
    type: 'object',
    description: 'Moves tunnels off endpoints holding more than their share, e.g. after a scale-out. Default off.',
    properties: rebalanceProps,
  },
  allowedSourceRanges: cidrList('CIDRs (IPv4, IPv6) the client address must be in; empty = any. Refused: 403.'),
  deniedSourceRanges: cidrList('CIDRs the client address must not be in; checked first. Refused: 403.'),
  httpsRedirect: { type: 'object', description: 'Requests on the plain HTTP listener sent to HTTPS.', properties: httpsRedirectProps },
  hsts: { type: 'object', description: 'Strict-Transport-Security on responses over TLS.', properties: hstsProps },
  rateLimit: { type: 'object', description: 'Handshakes and requests per client IP (a token bucket); over it: 429.', properties: rateLimitProps },
  externalAuth: { type: 'object', description: 'A sub-request to an auth service before a request goes upstream.', properties: externalAuthProps },
  backendTLS: { type: 'object', description: 'TLS to the backend endpoints (wss://, https://).', properties: backendTLSProps },
  maxRequestBodyBytes: nonNegativeInteger('Plain HTTP request bodies over this many bytes get 413; 0 = no limit. Default 0.'),
  cors: { type: 'object', description: 'CORS answered by wsgate: preflights, and Access-Control-* on responses.', properties: corsProps },
};

function policy(description: string): SchemaNode {
  return { type: 'object', description, properties: policyProps };
}

const backendRefProps: PropsOf<BackendRef> = {
  service: {
    type: 'string',
    description: "Service name, in the route's namespace.",
    pattern: SERVICE_NAME_PATTERN,
    minLength: 1,
    maxLength: 63,
  },
  port: {
    'x-kubernetes-int-or-string': true,
    description: 'Service port, by number (1-65535) or by name.',
    minimum: 1,
    maximum: 65535,
    pattern: PORT_NAME_PATTERN,
    maxLength: 15,
  },
  weight: nonNegativeInteger('Relative share of new connections; 0 = none. Default 1.', 1_000_000),
};

function backends(): SchemaNode {
  return {
    type: 'array',
    description: 'The Services that receive connections, weighted.',
    minItems: 1,
    maxItems: 16,
    items: { type: 'object', properties: backendRefProps, required: ['service', 'port'] },
  };
}

const ruleProps: PropsOf<WebSocketRouteRule> = {
  name: {
    type: 'string',
    description: "Names the rule (unique in the route): its limits and metrics follow it. Default: the rule's match.",
    pattern: RULE_NAME_PATTERN,
    maxLength: 63,
  },
  path: {
    type: 'object',
    description: 'The request path this rule matches. Default: Prefix /.',
    properties: {
      type: { type: 'string', description: 'Exact, or Prefix (by path element). Default Prefix.', enum: [...PATH_TYPES] },
      value: { type: 'string', description: 'An absolute path. Default /.', pattern: PATH_PATTERN, maxLength: 1024 },
    },
  },
  backends: backends(),
  policy: policy("Overrides the route's policy, field by field, for this rule."),
};

const webSocketRouteSpecProps: PropsOf<WebSocketRouteSpec> = {
  hostnames: hostnames('Host header values this route serves; empty = any host. A leading "*." matches subdomains.'),
  tls: {
    type: 'object',
    description: 'Terminates TLS for the hostnames with a kubernetes.io/tls Secret in the same namespace.',
    properties: { secretName: { type: 'string', pattern: `^${DNS1123_SUBDOMAIN}$`, maxLength: 253 } },
    required: ['secretName'],
  },
  rules: {
    type: 'array',
    description: 'Path matches and where they go.',
    minItems: 1,
    maxItems: 64,
    items: { type: 'object', properties: ruleProps, required: ['backends'] },
  },
  policy: policy('Policy for every rule of the route.'),
};

const tcpTunnelSpecProps: PropsOf<TCPTunnelSpec> = {
  port: { type: 'integer', description: "The proxy's listening port for this tunnel.", minimum: 1, maximum: 65535 },
  sniHostnames: hostnames("When set, TLS passthrough: routed by the ClientHello's SNI, never decrypted."),
  backends: backends(),
  proxyProtocol: {
    type: 'string',
    description: 'PROXY protocol header sent to the backend. Default None.',
    enum: [...PROXY_PROTOCOL_VERSIONS],
  },
  idleTimeoutSeconds: idleTimeout(),
  connectTimeoutSeconds: connectTimeout(),
  maxConnections: maxConnections(),
  endpointDrainSeconds: endpointDrain('FIN'),
  onRemoval: onRemoval('FIN'),
  allowedSourceRanges: cidrList('CIDRs (IPv4, IPv6) the client address must be in; empty = any. Refused: closed at once.'),
  deniedSourceRanges: cidrList('CIDRs the client address must not be in; checked first. Refused: closed at once.'),
};

const conditionProps: PropsOf<Condition> = {
  type: { type: 'string', enum: ['Accepted', 'ResolvedRefs'] },
  status: { type: 'string', enum: ['True', 'False'] },
  reason: { type: 'string', minLength: 1, maxLength: 1024 },
  message: { type: 'string', maxLength: 32768 },
  observedGeneration: { type: 'integer', minimum: 0 },
  lastTransitionTime: { type: 'string', format: 'date-time' },
};

const statusProps: PropsOf<RouteStatus> = {
  observedGeneration: { type: 'integer', description: 'The generation the status describes.', minimum: 0 },
  conditions: {
    type: 'array',
    maxItems: 8,
    items: { type: 'object', properties: conditionProps, required: ['type', 'status', 'reason', 'message'] },
  },
};

function root(description: string, specProps: Record<string, SchemaNode>, specRequired: string[]): SchemaNode {
  return {
    type: 'object',
    description,
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: { type: 'object', properties: specProps, required: specRequired },
      status: { type: 'object', properties: statusProps },
    },
    required: ['spec'],
  };
}

/** A fresh copy on every call, so no caller can change what another sees. */
export function webSocketRouteSchema(): SchemaNode {
  return structuredClone(
    root('Routes WebSocket handshakes by host and path to Services.', webSocketRouteSpecProps, ['rules']),
  );
}

/** A fresh copy on every call, so no caller can change what another sees. */
export function tcpTunnelSchema(): SchemaNode {
  return structuredClone(
    root('Forwards raw TCP (or TLS by SNI) from a proxy port to Services.', tcpTunnelSpecProps, ['port', 'backends']),
  );
}
