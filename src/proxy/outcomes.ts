// The one vocabulary of how connections end and why they are refused. Metric labels
// (wsgate_connections_total{outcome}, wsgate_handshake_rejections_total{reason}, ...), log fields and
// docs/errors.md use these names and nothing else; a new name is added here first.

/**
 * How an accepted connection ended: wsgate_connections_total{outcome} and the `outcome` field of `tunnel closed`
 * and `request` log lines. A connection has exactly one outcome; the first cause wins.
 */
export const OUTCOMES = [
  /** Both sides closed cleanly (FIN both ways, or a WebSocket close handshake followed by FIN). */
  'completed',
  /** The client reset, errored or hung up before the exchange completed (logged as status 499 for HTTP). */
  'client_abort',
  /** The backend reset, errored or hung up before the exchange completed. */
  'upstream_error',
  /** No byte either way for the route's idleTimeoutSeconds. */
  'idle_timeout',
  /** Keepalive: a side did not answer wsgate's ping within timeoutSeconds. */
  'peer_timeout',
  /** A message was larger than the route allows, or the message rate was exceeded with onExceed: Close. */
  'limit_exceeded',
  /** A side broke RFC 6455 framing (unmasked client frame, reserved opcode, ...). */
  'protocol_error',
  /** wsgate closed it while shutting down. */
  'shutdown',
  /** Its backend endpoint became terminating, not ready, or disappeared. */
  'endpoint_draining',
  /** Its route (or the backend it uses) left the routing table, with onRemoval: Close. */
  'route_removed',
  /** Moved to even out live connections across endpoints after a scale-out. */
  'rebalance',
  /** Never became a tunnel or a proxied exchange: see wsgate_handshake_rejections_total{reason} for why. */
  'rejected',
] as const;

export type Outcome = (typeof OUTCOMES)[number];

/**
 * Why a connection or handshake was refused before it became a tunnel: wsgate_handshake_rejections_total{reason}
 * and the `reason` field of `handshake rejected` log lines. L7 reasons answer with an HTTP status
 * (src/proxy/handshake.ts); L4 reasons close the connection.
 */
export const REJECT_REASONS = [
  // L7: the request itself (RFC 6455 §4.2.1), in the order they are checked.
  'method_not_allowed',
  'bad_upgrade',
  'bad_connection',
  'bad_key',
  'bad_version',
  'unsupported_version',
  /** Malformed, ambiguous or non-normalisable request (Node's strict parser, or the request-target rules). */
  'bad_request',
  /** The request head did not arrive within --handshake-timeout (408). */
  'handshake_timeout',
  // L7 and L4: the route.
  'no_route',
  'origin_not_allowed',
  'subprotocol_not_allowed',
  'over_limit',
  'no_endpoint',
  'upstream_refused',
  'upstream_timeout',
  'upstream_bad_response',
  /** The backend's TLS (backendTLS: wss://, https://) failed: a certificate not trusted or not for the name, or no TLS (502). */
  'upstream_tls_error',
  /** The backend answered a handshake with something other than 101; its answer is relayed to the client. */
  'backend_refused_upgrade',
  // Edge policy (issue 12: src/proxy/edge-policy.ts), L7 and (source_denied) L4.
  /** The client address is in deniedSourceRanges, or not in allowedSourceRanges (403; L4: closed at once). */
  'source_denied',
  /** A request on the plain HTTP listener for a route that redirects to HTTPS: answered 301/302/307/308 with Location. */
  'https_redirect',
  /** A WebSocket handshake on the plain HTTP listener for a route that redirects, with webSocket: Reject (426). */
  'https_required',
  /** The client IP's request rate on the route is over rateLimit (429 with Retry-After). */
  'rate_limited',
  /** The external auth service answered 401 or 403; that status goes to the client. */
  'auth_denied',
  /** The external auth service failed, timed out or answered something other than 2xx/401/403 (500 or 503, by policy). */
  'auth_unavailable',
  /** A plain HTTP request body over maxRequestBodyBytes (413). */
  'body_too_large',
  // Gateway API (issue 14), L7.
  /** An HTTPRoute rule's RequestRedirect: answered with its status (301, 302, 303, 307, 308) and Location. */
  'route_redirect',
  /** An HTTPRoute rule with no usable backend, or a backendRef that did not resolve taking its share (500). */
  'invalid_backend',
  // Connection level, every listener with --proxy-protocol (closed, never answered).
  /** The connection did not start with a valid PROXY protocol v1/v2 header in time. */
  'bad_proxy_header',
  /** The connection came from an address outside --trusted-proxies, on a listener that expects a PROXY header. */
  'proxy_not_trusted',
  // L4 only.
  'hello_timeout',
  'bad_client_hello',
] as const;

export type RejectReason = (typeof REJECT_REASONS)[number];

/** Why a backend connection failed: wsgate_upstream_connect_errors_total{reason} (`tls`: the backend's TLS handshake failed). */
export const CONNECT_FAILURES = ['refused', 'reset', 'timeout', 'unreachable', 'tls', 'other'] as const;

export type ConnectFailure = (typeof CONNECT_FAILURES)[number];

/** Which wait of a plain HTTP exchange ran out: wsgate_http_upstream_timeouts_total{phase}. */
export const HTTP_TIMEOUT_PHASES = [
  /** The backend sent no response head within responseHeaderTimeoutSeconds (504). */
  'response_header',
  /** No byte either way for idleTimeoutSeconds while the exchange was in progress. */
  'idle',
  /** [issue 14] The whole exchange took longer than its HTTPRoute rule's timeouts.request (504; never a tunnel). */
  'request',
] as const;

export type HttpTimeoutPhase = (typeof HTTP_TIMEOUT_PHASES)[number];

/**
 * The status an access log line gives to an exchange the client abandoned before wsgate could answer: nginx's 499
 * ("client closed request"). Never sent on the wire, never a metric label.
 */
export const CLIENT_CLOSED_REQUEST = 499;
