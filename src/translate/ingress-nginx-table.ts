// The table of ingress-nginx's annotations wsgate reads: each with its support (honoured, or approximated with the
// difference) and the WebSocketRoute policy field it sets. ingress-nginx.ts reads them; `wsgate migrate` prints the
// differences; docs/migrating-from-ingress-nginx.md has a row per entry (test/translate/ingress-nginx.test.ts keeps
// them aligned). Any annotation under the prefix that is not here is unsupported.

export const NGINX_PREFIX = 'nginx.ingress.kubernetes.io/';

export type Support = 'honoured' | 'approximated';

export interface NginxAnnotation {
  /** The name after the prefix. */
  readonly name: string;
  readonly support: Support;
  /** The WebSocketRoute policy field it sets. */
  readonly field: string;
  /** What differs from ingress-nginx (approximated), or what is worth knowing (honoured). */
  readonly difference?: string;
}

/** Every annotation wsgate reads, in the order of the documentation's table. */
export const NGINX_ANNOTATIONS: readonly NginxAnnotation[] = [
  {
    name: 'proxy-read-timeout',
    support: 'honoured',
    field: 'idleTimeoutSeconds, responseHeaderTimeoutSeconds',
    difference:
      'with proxy-send-timeout, the larger of the two is the tunnel idle timeout: a WebSocket is idle only when neither side sends',
  },
  { name: 'proxy-send-timeout', support: 'honoured', field: 'idleTimeoutSeconds', difference: 'see proxy-read-timeout' },
  { name: 'proxy-connect-timeout', support: 'honoured', field: 'connectTimeoutSeconds' },
  { name: 'affinity', support: 'honoured', field: 'loadBalancing.policy: Cookie', difference: 'only "cookie" exists' },
  {
    name: 'affinity-mode',
    support: 'approximated',
    field: 'loadBalancing.cookie',
    difference: 'balanced and persistent both keep a client on its endpoint while it is ready; a scale-out moves no session',
  },
  { name: 'session-cookie-name', support: 'honoured', field: 'loadBalancing.cookie.name', difference: 'default INGRESSCOOKIE' },
  { name: 'session-cookie-max-age', support: 'honoured', field: 'loadBalancing.cookie.maxAgeSeconds' },
  {
    name: 'session-cookie-expires',
    support: 'approximated',
    field: 'loadBalancing.cookie.maxAgeSeconds',
    difference: 'sent as Max-Age, not Expires (browsers treat them alike; Max-Age wins when both are set)',
  },
  { name: 'session-cookie-path', support: 'honoured', field: 'loadBalancing.cookie.path', difference: "default the Ingress path" },
  { name: 'session-cookie-samesite', support: 'honoured', field: 'loadBalancing.cookie.sameSite' },
  { name: 'session-cookie-secure', support: 'honoured', field: 'loadBalancing.cookie.secure' },
  {
    name: 'session-cookie-change-on-failure',
    support: 'approximated',
    field: 'loadBalancing.cookie',
    difference: 'always true: a client whose endpoint is gone or refuses is re-pinned and gets a new cookie',
  },
  {
    name: 'upstream-hash-by',
    support: 'honoured',
    field: 'loadBalancing.hashOn',
    difference: '$remote_addr, $binary_remote_addr, $http_NAME, $cookie_NAME and $arg_NAME; any other value is unsupported',
  },
  {
    name: 'load-balance',
    support: 'approximated',
    field: 'loadBalancing.policy',
    difference: 'round_robin is RoundRobin; ewma is LeastConnections (live connections, not response times)',
  },
  { name: 'whitelist-source-range', support: 'honoured', field: 'allowedSourceRanges' },
  { name: 'allowlist-source-range', support: 'honoured', field: 'allowedSourceRanges' },
  { name: 'denylist-source-range', support: 'honoured', field: 'deniedSourceRanges' },
  {
    name: 'limit-connections',
    support: 'honoured',
    field: 'maxConnectionsPerClient',
    difference: 'per wsgate pod, as per nginx instance; over it: 429 with Retry-After (ingress-nginx: 503 by default)',
  },
  {
    name: 'limit-rps',
    support: 'honoured',
    field: 'rateLimit.requestsPerSecond, rateLimit.burst',
    difference: 'burst = limit-rps × limit-burst-multiplier; over it: 429 with Retry-After (ingress-nginx: 503 by default)',
  },
  {
    name: 'limit-rpm',
    support: 'approximated',
    field: 'rateLimit',
    difference: 'a rate of limit-rpm/60 per second; with limit-rps, limit-rps wins',
  },
  { name: 'limit-burst-multiplier', support: 'honoured', field: 'rateLimit.burst' },
  { name: 'ssl-redirect', support: 'honoured', field: 'httpsRedirect.mode', difference: 'WebSocket handshakes get 426 (wsgate.io/websocket-redirect: Redirect gives 308)' },
  { name: 'force-ssl-redirect', support: 'honoured', field: 'httpsRedirect.mode: Always' },
  {
    name: 'backend-protocol',
    support: 'honoured',
    field: 'backendTLS',
    difference: 'HTTP and HTTPS only; HTTPS does not verify the backend certificate unless proxy-ssl-verify is on, as in ingress-nginx',
  },
  { name: 'proxy-ssl-verify', support: 'honoured', field: 'backendTLS.insecureSkipVerify' },
  { name: 'proxy-ssl-secret', support: 'honoured', field: 'backendTLS.caSecret', difference: "the Secret must be in the Ingress's namespace; its ca.crt is used" },
  { name: 'proxy-ssl-name', support: 'honoured', field: 'backendTLS.sni' },
  { name: 'proxy-ssl-server-name', support: 'approximated', field: 'backendTLS.sni', difference: 'wsgate always sends SNI to a TLS backend' },
  { name: 'ssl-passthrough', support: 'honoured', field: 'TCPTunnel sniHostnames', difference: 'needs --enable-ssl-passthrough, as ingress-nginx does' },
  {
    name: 'auth-url',
    support: 'honoured',
    field: 'externalAuth.url',
    difference: 'sends Authorization, Cookie and X-Original-*/X-Forwarded-* (not every client header), never Upgrade or Connection; nginx variables in the URL are not expanded',
  },
  { name: 'auth-method', support: 'honoured', field: 'externalAuth.method' },
  { name: 'auth-response-headers', support: 'honoured', field: 'externalAuth.responseHeaders' },
  {
    name: 'proxy-body-size',
    support: 'honoured',
    field: 'maxRequestBodyBytes',
    difference: 'without the annotation there is no limit (ingress-nginx: 1m)',
  },
  { name: 'enable-cors', support: 'honoured', field: 'cors' },
  { name: 'cors-allow-origin', support: 'honoured', field: 'cors.allowOrigins' },
  { name: 'cors-allow-methods', support: 'honoured', field: 'cors.allowMethods' },
  { name: 'cors-allow-headers', support: 'honoured', field: 'cors.allowHeaders' },
  { name: 'cors-expose-headers', support: 'honoured', field: 'cors.exposeHeaders' },
  { name: 'cors-allow-credentials', support: 'honoured', field: 'cors.allowCredentials' },
  { name: 'cors-max-age', support: 'honoured', field: 'cors.maxAgeSeconds' },
  // Settings WebSocket recipes add that describe what wsgate always does: honoured when they ask for it.
  { name: 'proxy-http-version', support: 'honoured', field: '(always 1.1)', difference: 'only "1.1" is honoured' },
  { name: 'proxy-buffering', support: 'approximated', field: '(never buffers)', difference: 'wsgate streams responses whatever the value' },
  { name: 'proxy-request-buffering', support: 'approximated', field: '(never buffers)', difference: 'wsgate streams request bodies whatever the value' },
];

