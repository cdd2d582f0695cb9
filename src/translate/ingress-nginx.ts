// ingress-nginx's annotations (`nginx.ingress.kubernetes.io/*`) on the Ingresses wsgate serves, mapped onto the same
// policy fields a WebSocketRoute sets (src/model/table.ts Policy), so that an Ingress written for ingress-nginx
// moves unchanged. Pure: value in, value out; the table below is also what `wsgate migrate` prints and what
// docs/migrating-from-ingress-nginx.md lists (a test keeps them aligned).
//
// Every annotation under the prefix ends up in exactly one of three places:
//   1. honoured: its value sets a policy field, with ingress-nginx's meaning;
//   2. approximated: it sets a policy field, with a documented difference (NGINX_ANNOTATIONS[].difference);
//   3. unsupported: any other name, or a value of a supported one that wsgate cannot give (upstream-hash-by
//      `$request_uri`). It is ignored, and said: an Accepted condition with reason UnsupportedAnnotation naming
//      each one, an Event and a log line (conditions.ts). Nothing is ever silently ignored.
// A bad value of a supported annotation (`proxy-read-timeout: "ten"`) is a problem (Accepted=False,
// InvalidAnnotation) and that knob keeps what it had, as a bad wsgate.io/* annotation does; the Ingress still serves.
//
// Order: ingress-nginx's annotations are read first, over the Ingress defaults (DEFAULT_POLICY with an IfTLS
// redirect); wsgate.io/* annotations (annotations.ts) are then laid over them, knob by knob.
import { DEFAULT_POLICY, type AffinityCookie, type HashOn, type LoadBalancing, type Policy } from '../model/table.ts';
import { isHttpUrl, normalizeCidr } from './edge-policy.ts';
import { NGINX_ANNOTATIONS, NGINX_PREFIX, type Support } from './ingress-nginx-table.ts';

export { NGINX_ANNOTATIONS, NGINX_PREFIX, type NginxAnnotation, type Support } from './ingress-nginx-table.ts';

const KNOWN = new Map(NGINX_ANNOTATIONS.map((a) => [a.name, a]));

/** What one annotation of one Ingress became. */
export interface AnnotationOutcome {
  /** The full name, with the prefix. */
  readonly annotation: string;
  readonly value: string;
  /** `invalid`: a bad value of a supported annotation (a problem); `unsupported`: ignored (a warning). */
  readonly status: Support | 'unsupported' | 'invalid';
  /** What it set, or why it was not used. */
  readonly detail: string;
}

export interface NginxPolicy {
  readonly policy: Policy;
  /** Bad values of supported annotations, each naming the annotation: Accepted=False, InvalidAnnotation. */
  readonly problems: readonly string[];
  /** Ignored annotations (and values), each naming the annotation: Accepted=True, UnsupportedAnnotation. */
  readonly unsupported: readonly string[];
  /** Every annotation under the prefix, sorted by name. */
  readonly outcomes: readonly AnnotationOutcome[];
  /** ssl-passthrough: "true". */
  readonly passthrough: boolean;
}

/** The defaults of an Ingress: DEFAULT_POLICY, but hosts with TLS redirect plain HTTP to HTTPS, as ingress-nginx does. */
export const INGRESS_BASE_POLICY: Policy = Object.freeze({
  ...DEFAULT_POLICY,
  httpsRedirect: Object.freeze({ ...DEFAULT_POLICY.httpsRedirect, mode: 'IfTLS' as const }),
});

/** ingress-nginx's defaults for its CORS annotations (docs: annotations, "Enable CORS"). */
const CORS_DEFAULT_HEADERS = ['DNT', 'Keep-Alive', 'User-Agent', 'X-Requested-With', 'If-Modified-Since', 'Cache-Control', 'Content-Type', 'Range', 'Authorization'];

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const SECRET_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Reads every nginx.ingress.kubernetes.io/* annotation over `base` (default INGRESS_BASE_POLICY). */
export function ingressNginxPolicy(
  annotations: Readonly<Record<string, unknown>> | undefined,
  namespace: string,
  base: Policy = INGRESS_BASE_POLICY,
): NginxPolicy {
  const values = new Map<string, string>();
  for (const [k, v] of Object.entries(annotations ?? {})) {
    if (!k.startsWith(NGINX_PREFIX)) continue;
    // Kubernetes stores strings; a YAML file may carry an unquoted number or boolean.
    values.set(k.slice(NGINX_PREFIX.length), typeof v === 'string' ? v : String(v));
  }
  const outcomes = new Map<string, AnnotationOutcome>();
  const problems: string[] = [];
  const unsupported: string[] = [];
  const full = (name: string): string => `${NGINX_PREFIX}${name}`;
  const used = (name: string, detail: string): void => {
    const info = KNOWN.get(name);
    outcomes.set(name, { annotation: full(name), value: values.get(name) ?? '', status: info?.support ?? 'honoured', detail });
  };
  const invalid = (name: string, what: string): void => {
    const value = values.get(name) ?? '';
    problems.push(`annotation ${full(name)}: ${JSON.stringify(value)} is not ${what} (ignored)`);
    outcomes.set(name, { annotation: full(name), value, status: 'invalid', detail: `not ${what}` });
  };
  const unsupportedValue = (name: string, why: string): void => {
    const value = values.get(name) ?? '';
    unsupported.push(`annotation ${full(name)}: ${JSON.stringify(value)} ${why}`);
    outcomes.set(name, { annotation: full(name), value, status: 'unsupported', detail: why });
  };
  const get = (name: string): string | undefined => values.get(name)?.trim();
  const seconds = (name: string, min: number): number | undefined => {
    const v = get(name);
    if (v === undefined) return undefined;
    if (/^\d+$/.test(v) && Number(v) >= min) return Number(v);
    invalid(name, `a whole number of seconds >= ${min}`);
    return undefined;
  };
  const bool = (name: string): boolean | undefined => {
    const v = get(name);
    if (v === undefined) return undefined;
    // Go's strconv.ParseBool, which ingress-nginx uses.
    if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
    if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
    invalid(name, '"true" or "false"');
    return undefined;
  };
  const list = (name: string): string[] | undefined => {
    const v = get(name);
    return v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  };

  let p: Policy = base;

  // Timeouts. nginx's proxy_read_timeout bounds the wait between two reads from the backend, proxy_send_timeout
  // between two writes to it. On a tunnel that carries traffic both ways, the honest single knob is "no byte either
  // way for this long": the larger value, so that neither of nginx's timers would have fired sooner.
  const read = seconds('proxy-read-timeout', 1);
  const send = seconds('proxy-send-timeout', 1);
  if (read !== undefined || send !== undefined) {
    const idle = Math.max(read ?? 0, send ?? 0);
    p = { ...p, idleTimeoutSeconds: idle, ...(read !== undefined ? { responseHeaderTimeoutSeconds: read } : {}) };
    if (read !== undefined) used('proxy-read-timeout', `idleTimeoutSeconds: ${idle}, responseHeaderTimeoutSeconds: ${read}`);
    if (send !== undefined) used('proxy-send-timeout', `idleTimeoutSeconds: ${idle}`);
  }
  const connect = seconds('proxy-connect-timeout', 1);
  if (connect !== undefined) {
    p = { ...p, connectTimeoutSeconds: connect };
    used('proxy-connect-timeout', `connectTimeoutSeconds: ${connect}`);
  }

  p = { ...p, loadBalancing: loadBalancing(p.loadBalancing) };

  // Source ranges.
  const ranges = (name: string): string[] | undefined => {
    const items = list(name);
    if (items === undefined) return undefined;
    const cidrs = items.map(normalizeCidr);
    if (cidrs.some((c) => c === undefined)) {
      invalid(name, 'a comma-separated list of CIDRs, IPv4 or IPv6');
      return undefined;
    }
    used(name, `${(cidrs as string[]).join(', ')}`);
    return cidrs as string[];
  };
  const allowed = ranges('whitelist-source-range') ?? ranges('allowlist-source-range');
  if (allowed !== undefined) p = { ...p, allowedSourceRanges: allowed };
  if (values.has('whitelist-source-range') && values.has('allowlist-source-range') && allowed !== undefined) {
    unsupportedValue('allowlist-source-range', 'is ignored: whitelist-source-range is set too, and wins (as in ingress-nginx)');
  }
  const denied = ranges('denylist-source-range');
  if (denied !== undefined) p = { ...p, deniedSourceRanges: denied };

  // Limits.
  const conns = get('limit-connections');
  if (conns !== undefined) {
    if (/^\d+$/.test(conns)) {
      p = { ...p, maxConnectionsPerClient: Number(conns) };
      used('limit-connections', `maxConnectionsPerClient: ${conns}`);
    } else invalid('limit-connections', 'a whole number');
  }
  const rate = (name: string): number | undefined => {
    const v = get(name);
    if (v === undefined) return undefined;
    if (/^\d+$/.test(v)) return Number(v);
    invalid(name, 'a whole number');
    return undefined;
  };
  const rps = rate('limit-rps');
  const rpm = rate('limit-rpm');
  const multiplierText = get('limit-burst-multiplier');
  let multiplier = 5;
  if (multiplierText !== undefined) {
    if (/^\d+$/.test(multiplierText) && Number(multiplierText) >= 1) multiplier = Number(multiplierText);
    else invalid('limit-burst-multiplier', 'a whole number >= 1');
  }
  if (rps !== undefined && rps > 0) {
    p = { ...p, rateLimit: { requestsPerSecond: rps, burst: rps * multiplier } };
    used('limit-rps', `rateLimit: {requestsPerSecond: ${rps}, burst: ${rps * multiplier}}`);
    if (rpm !== undefined) unsupportedValue('limit-rpm', 'is ignored: limit-rps is set too, and wsgate keeps one rate per route');
  } else if (rpm !== undefined && rpm > 0) {
    p = { ...p, rateLimit: { requestsPerSecond: rpm / 60, burst: Math.max(1, rpm * multiplier) } };
    used('limit-rpm', `rateLimit: {requestsPerSecond: ${rpm}/60, burst: ${Math.max(1, rpm * multiplier)}}`);
  } else {
    if (rps !== undefined) used('limit-rps', 'no limit (0)');
    if (rpm !== undefined) used('limit-rpm', 'no limit (0)');
  }
  if (multiplierText !== undefined && !outcomes.has('limit-burst-multiplier')) {
    used('limit-burst-multiplier', rps || rpm ? `burst multiplier ${multiplier}` : 'unused: no limit-rps or limit-rpm');
  }

  // The HTTPS redirect. ssl-redirect defaults to true (for hosts with TLS); force-ssl-redirect redirects any host.
  const force = bool('force-ssl-redirect');
  const ssl = bool('ssl-redirect');
  if (force === true) p = { ...p, httpsRedirect: { ...p.httpsRedirect, mode: 'Always' } };
  else if (ssl === false) p = { ...p, httpsRedirect: { ...p.httpsRedirect, mode: 'Never' } };
  else if (ssl === true) p = { ...p, httpsRedirect: { ...p.httpsRedirect, mode: 'IfTLS' } };
  if (force !== undefined) used('force-ssl-redirect', `httpsRedirect.mode: ${p.httpsRedirect.mode}`);
  if (ssl !== undefined) used('ssl-redirect', `httpsRedirect.mode: ${p.httpsRedirect.mode}`);

  p = backendProtocol(p);

  // ssl-passthrough.
  const passthrough = bool('ssl-passthrough') === true;
  if (values.has('ssl-passthrough') && !outcomes.has('ssl-passthrough')) {
    used('ssl-passthrough', passthrough ? 'TLS for its hosts is passed to the backend by SNI on the HTTPS listener' : 'off');
  }

  // External auth.
  const authUrl = get('auth-url');
  if (authUrl !== undefined) {
    if (authUrl.includes('$')) {
      unsupportedValue('auth-url', 'names nginx variables, which wsgate does not expand: no external auth');
    } else if (!isHttpUrl(authUrl)) {
      invalid('auth-url', 'an http:// or https:// URL');
    } else {
      // ingress-nginx answers 500 when the auth service fails.
      p = { ...p, externalAuth: { ...p.externalAuth, url: authUrl, failureStatus: 500 } };
      used('auth-url', `externalAuth.url: ${authUrl}`);
    }
  }
  const method = get('auth-method');
  if (method !== undefined) {
    if (/^[A-Za-z]+$/.test(method)) {
      p = { ...p, externalAuth: { ...p.externalAuth, method: method.toUpperCase() } };
      used('auth-method', `externalAuth.method: ${method.toUpperCase()}`);
    } else invalid('auth-method', 'an HTTP method');
  }
  const authHeaders = list('auth-response-headers');
  if (authHeaders !== undefined) {
    if (authHeaders.every((h) => TOKEN.test(h))) {
      p = { ...p, externalAuth: { ...p.externalAuth, responseHeaders: authHeaders.map((h) => h.toLowerCase()) } };
      used('auth-response-headers', `externalAuth.responseHeaders: ${authHeaders.join(', ')}`);
    } else invalid('auth-response-headers', 'a comma-separated list of header names');
  }

  // Body size: nginx's size syntax; 0 = no limit.
  const body = get('proxy-body-size');
  if (body !== undefined) {
    const m = /^(\d+)([kKmMgG]?)$/.exec(body);
    if (m) {
      const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
      p = { ...p, maxRequestBodyBytes: Number(m[1]) * unit };
      used('proxy-body-size', `maxRequestBodyBytes: ${p.maxRequestBodyBytes}`);
    } else invalid('proxy-body-size', 'a size such as 8m, 512k or 0 (no limit)');
  }

  p = cors(p);

  // No-op settings: what wsgate always does.
  const version = get('proxy-http-version');
  if (version !== undefined) {
    if (version === '1.1') used('proxy-http-version', 'HTTP/1.1 to backends, as always');
    else unsupportedValue('proxy-http-version', 'is not supported: wsgate speaks HTTP/1.1 to backends');
  }
  for (const name of ['proxy-buffering', 'proxy-request-buffering']) {
    const v = get(name);
    if (v === undefined) continue;
    if (v === 'on' || v === 'off') used(name, 'wsgate streams bodies, never buffers them');
    else invalid(name, '"on" or "off"');
  }

  // Everything else under the prefix: unsupported, named one by one.
  for (const [name, value] of values) {
    if (outcomes.has(name)) continue;
    if (KNOWN.has(name)) {
      // Read only together with another one that is absent or off (session-cookie-* without affinity, ...).
      outcomes.set(name, { annotation: full(name), value, status: KNOWN.get(name)!.support, detail: 'no effect here: see the annotation it goes with' });
      continue;
    }
    unsupported.push(`annotation ${full(name)} is not supported by wsgate (ignored)`);
    outcomes.set(name, { annotation: full(name), value, status: 'unsupported', detail: 'not supported by wsgate: ignored' });
  }
  return {
    policy: p,
    problems,
    unsupported,
    outcomes: [...outcomes.values()].sort((a, b) => (a.annotation < b.annotation ? -1 : a.annotation > b.annotation ? 1 : 0)),
    passthrough,
  };

  // --- the knobs with several annotations each -----------------------------------------------------------------

  /** affinity + session-cookie-*, then upstream-hash-by, then load-balance: cookie affinity wins, as in ingress-nginx. */
  function loadBalancing(fallback: LoadBalancing): LoadBalancing {
    const affinity = get('affinity');
    if (affinity !== undefined && affinity !== 'cookie') invalid('affinity', '"cookie"');
    if (affinity === 'cookie') {
      const cookie: { -readonly [K in keyof AffinityCookie]: AffinityCookie[K] } = {
        name: 'INGRESSCOOKIE',
        maxAgeSeconds: 0,
        path: '',
        sameSite: '',
        secure: false,
      };
      const name = get('session-cookie-name');
      if (name !== undefined) {
        if (TOKEN.test(name)) {
          cookie.name = name;
          used('session-cookie-name', `cookie.name: ${name}`);
        } else invalid('session-cookie-name', 'a cookie name');
      }
      const expires = seconds('session-cookie-expires', 0);
      const maxAge = seconds('session-cookie-max-age', 0);
      if (expires !== undefined) {
        cookie.maxAgeSeconds = expires;
        used('session-cookie-expires', `cookie.maxAgeSeconds: ${expires}${maxAge !== undefined ? ' (session-cookie-max-age wins)' : ''}`);
      }
      if (maxAge !== undefined) {
        cookie.maxAgeSeconds = maxAge;
        used('session-cookie-max-age', `cookie.maxAgeSeconds: ${maxAge}`);
      }
      const path = get('session-cookie-path');
      if (path !== undefined) {
        if (/^\/[^\s;]*$/.test(path)) {
          cookie.path = path;
          used('session-cookie-path', `cookie.path: ${path}`);
        } else invalid('session-cookie-path', 'an absolute path without ";"');
      }
      const sameSite = get('session-cookie-samesite');
      if (sameSite !== undefined) {
        const canonical = ['Strict', 'Lax', 'None'].find((s) => s.toLowerCase() === sameSite.toLowerCase());
        if (canonical !== undefined) {
          cookie.sameSite = canonical as AffinityCookie['sameSite'];
          used('session-cookie-samesite', `cookie.sameSite: ${canonical}`);
        } else invalid('session-cookie-samesite', 'Strict, Lax or None');
      }
      const secure = bool('session-cookie-secure');
      if (secure !== undefined) {
        cookie.secure = secure;
        used('session-cookie-secure', `cookie.secure: ${secure}`);
      }
      const mode = get('affinity-mode');
      if (mode !== undefined) {
        if (mode === 'balanced' || mode === 'persistent') used('affinity-mode', `${mode}: kept on the endpoint while it is ready`);
        else invalid('affinity-mode', '"balanced" or "persistent"');
      }
      if (bool('session-cookie-change-on-failure') !== undefined) used('session-cookie-change-on-failure', 're-pinned when the endpoint fails, always');
      used('affinity', `loadBalancing: Cookie (${cookie.name})`);
      if (values.has('upstream-hash-by')) unsupportedValue('upstream-hash-by', 'is ignored: affinity: cookie is set too, and wins (as in ingress-nginx)');
      if (values.has('load-balance')) unsupportedValue('load-balance', 'is ignored: affinity: cookie is set too, and wins (as in ingress-nginx)');
      return { policy: 'Cookie', cookie };
    }
    const hashBy = get('upstream-hash-by');
    if (hashBy !== undefined) {
      const hashOn = parseHashBy(hashBy);
      if (hashOn === undefined) {
        unsupportedValue('upstream-hash-by', 'is not supported: only $remote_addr, $binary_remote_addr, $http_NAME, $cookie_NAME and $arg_NAME');
      } else {
        used('upstream-hash-by', `loadBalancing: ConsistentHash on ${hashOn.kind === 'clientIP' ? 'clientIP' : `${hashOn.kind}:${hashOn.name}`}`);
        if (values.has('load-balance')) unsupportedValue('load-balance', 'is ignored: upstream-hash-by is set too, and wins (as in ingress-nginx)');
        return { policy: 'ConsistentHash', hashOn };
      }
    }
    const lb = get('load-balance');
    if (lb !== undefined && !outcomes.has('load-balance')) {
      if (lb === 'round_robin') {
        used('load-balance', 'loadBalancing: RoundRobin');
        return { policy: 'RoundRobin' };
      }
      if (lb === 'ewma') {
        used('load-balance', 'loadBalancing: LeastConnections (ewma approximated)');
        return { policy: 'LeastConnections' };
      }
      invalid('load-balance', 'round_robin or ewma');
    }
    return fallback;
  }

  /** backend-protocol and proxy-ssl-*. */
  function backendProtocol(q: Policy): Policy {
    const proto = get('backend-protocol');
    let tls = q.backendTLS;
    if (proto !== undefined) {
      const upper = proto.toUpperCase();
      if (upper === 'HTTP') {
        tls = { ...tls, enabled: false };
        used('backend-protocol', 'plain HTTP to the backend');
      } else if (upper === 'HTTPS') {
        // ingress-nginx does not verify a backend's certificate unless proxy-ssl-verify is on.
        tls = { ...tls, enabled: true, insecureSkipVerify: true };
        used('backend-protocol', 'backendTLS (certificate not verified unless proxy-ssl-verify is on)');
      } else if (['GRPC', 'GRPCS', 'AJP', 'FCGI', 'AUTO_HTTP'].includes(upper)) {
        unsupportedValue('backend-protocol', 'is not supported: HTTP and HTTPS only (plain HTTP is used)');
      } else invalid('backend-protocol', 'HTTP or HTTPS');
    }
    const verify = get('proxy-ssl-verify');
    if (verify !== undefined) {
      if (verify === 'on' || verify === 'off') {
        tls = { ...tls, insecureSkipVerify: verify === 'off' };
        used('proxy-ssl-verify', `backendTLS.insecureSkipVerify: ${verify === 'off'}`);
      } else invalid('proxy-ssl-verify', '"on" or "off"');
    }
    const secret = get('proxy-ssl-secret');
    if (secret !== undefined) {
      const [ns, name, ...rest] = secret.includes('/') ? secret.split('/') : [namespace, secret];
      if (rest.length > 0 || name === undefined || !SECRET_NAME.test(name)) invalid('proxy-ssl-secret', 'NAMESPACE/NAME of a Secret');
      else if (ns !== namespace) unsupportedValue('proxy-ssl-secret', `is not supported: the Secret must be in the Ingress's namespace (${namespace})`);
      else {
        tls = { ...tls, caSecret: name, caPem: '' };
        used('proxy-ssl-secret', `backendTLS.caSecret: ${name}`);
      }
    }
    const sni = get('proxy-ssl-name');
    if (sni !== undefined) {
      if (/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(sni.toLowerCase())) {
        tls = { ...tls, sni: sni.toLowerCase() };
        used('proxy-ssl-name', `backendTLS.sni: ${sni.toLowerCase()}`);
      } else invalid('proxy-ssl-name', 'a DNS name');
    }
    if (get('proxy-ssl-server-name') !== undefined) used('proxy-ssl-server-name', 'SNI is always sent');
    return tls === q.backendTLS ? q : { ...q, backendTLS: tls };
  }

  /** enable-cors and cors-*, with ingress-nginx's defaults for the ones not given. */
  function cors(q: Policy): Policy {
    const enabled = bool('enable-cors');
    if (enabled === undefined) return q;
    used('enable-cors', enabled ? 'cors' : 'off');
    if (!enabled) return q;
    const origins = list('cors-allow-origin') ?? ['*'];
    const okOrigins = origins.every((o) => o === '*' || /^[a-z][a-z0-9+.-]*:\/\/[^\s/?#]+$/i.test(o));
    // A list that does not parse leaves CORS off rather than open to every origin.
    if (!okOrigins) {
      invalid('cors-allow-origin', 'a comma-separated list of origins, or * (CORS stays off)');
      return q;
    }
    if (values.has('cors-allow-origin')) used('cors-allow-origin', `cors.allowOrigins: ${origins.join(', ')}`);
    const tokens = (name: string, fallback: readonly string[], upper: boolean): readonly string[] => {
      const items = list(name);
      if (items === undefined) return fallback;
      if (!items.every((h) => TOKEN.test(h))) {
        invalid(name, 'a comma-separated list of tokens');
        return fallback;
      }
      used(name, `${items.join(', ')}`);
      return upper ? items.map((m) => m.toUpperCase()) : items;
    };
    const credentials = bool('cors-allow-credentials');
    if (credentials !== undefined) used('cors-allow-credentials', `cors.allowCredentials: ${credentials}`);
    const maxAge = seconds('cors-max-age', 0);
    if (maxAge !== undefined) used('cors-max-age', `cors.maxAgeSeconds: ${maxAge}`);
    return {
      ...q,
      cors: {
        allowOrigins: origins.includes('*') ? ['*'] : origins.map((o) => o.toLowerCase()),
        allowMethods: tokens('cors-allow-methods', DEFAULT_POLICY.cors.allowMethods, true),
        allowHeaders: tokens('cors-allow-headers', CORS_DEFAULT_HEADERS, false),
        exposeHeaders: tokens('cors-expose-headers', [], false),
        allowCredentials: credentials ?? true,
        maxAgeSeconds: maxAge ?? 1728000,
      },
    };
  }
}

/** `$remote_addr`, `$binary_remote_addr`, `$http_x_user_id`, `$cookie_session`, `$arg_room`; undefined otherwise. */
export function parseHashBy(value: string): HashOn | undefined {
  const v = value.trim();
  if (v === '$remote_addr' || v === '$binary_remote_addr') return { kind: 'clientIP' };
  const m = /^\$(http|cookie|arg)_([A-Za-z0-9_-]+)$/.exec(v);
  if (!m) return undefined;
  const [, kind, name] = m;
  // nginx's $http_NAME is the header NAME with '-' written as '_', lower case.
  if (kind === 'http') return { kind: 'header', name: name!.toLowerCase().replace(/_/g, '-') };
  if (kind === 'cookie') return { kind: 'cookie', name: name! };
  return { kind: 'query', name: name! };
}
