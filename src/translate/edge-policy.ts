// The edge-policy knobs of a PolicySpec (issue 12): source ranges, the HTTPS redirect and HSTS, the request rate,
// external auth, TLS to backends, the request body limit and CORS. Read the way policy.ts reads the rest: each nested
// object merges member by member over the layer below (rule over route over defaults), lists replace, and a bad
// member keeps its fallback and adds an error naming its field path.
//
// backendTLS.caSecret is only named here; the Secret is read by the kind translator (resolveBackendTLS), which has
// the lookup, and a Secret that does not resolve is said on the object (ResolvedRefs=False) while the rule serves
// (its TLS handshakes then fail with 502: a missing CA never means "trust anything").
import net from 'node:net';
import {
  AUTH_FAILURE_STATUSES,
  REDIRECT_MODES,
  REDIRECT_STATUSES,
  WEBSOCKET_REDIRECTS,
  type AuthFailureStatus,
  type RedirectStatus,
} from '../api/types.ts';
import type { BackendTLS, Cors, ExternalAuth, Hsts, HttpsRedirect, Policy, RateLimit } from '../model/table.ts';
import type { ObjectReport } from './conditions.ts';
import type { Lookup } from './lookup.ts';
import type { SpecReader } from './policy.ts';

// RFC 9110 token, as policy.ts's (not imported: policy.ts imports this file).
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const METHOD = /^[A-Z]+$/;
const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/[^\s/?#]+$/;
const DNS_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECRET_NAME = DNS_NAME;

/**
 * A CIDR in canonical text (`10.0.0.0/8`, `2001:db8::/32`; a bare address gets /32 or /128), or undefined when it
 * is not one. IPv4-mapped IPv6 (`::ffff:10.0.0.0/104`) is kept as IPv6; the data plane compares IPv4 clients with
 * IPv4 ranges, since it strips the mapping from client addresses.
 */
export function normalizeCidr(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  const slash = text.indexOf('/');
  const address = (slash < 0 ? text : text.slice(0, slash)).toLowerCase();
  const family = net.isIPv4(address) ? 4 : net.isIPv6(address) ? 6 : 0;
  if (family === 0) return undefined;
  const max = family === 4 ? 32 : 128;
  if (slash < 0) return `${address}/${max}`;
  const prefix = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return undefined;
  return `${address}/${Number(prefix)}`;
}

/** The edge-policy members of `r` laid over `base`'s. */
export function applyEdgePolicy(base: Policy, r: SpecReader): Pick<
  Policy,
  'allowedSourceRanges' | 'deniedSourceRanges' | 'httpsRedirect' | 'hsts' | 'rateLimit' | 'externalAuth' | 'backendTLS' | 'maxRequestBodyBytes' | 'cors'
> {
  return {
    allowedSourceRanges: cidrList(r, 'allowedSourceRanges', base.allowedSourceRanges),
    deniedSourceRanges: cidrList(r, 'deniedSourceRanges', base.deniedSourceRanges),
    httpsRedirect: applyHttpsRedirect(base.httpsRedirect, r.nested('httpsRedirect')),
    hsts: applyHsts(base.hsts, r.nested('hsts')),
    rateLimit: applyRateLimit(base.rateLimit, r.nested('rateLimit')),
    externalAuth: applyExternalAuth(base.externalAuth, r.nested('externalAuth')),
    backendTLS: applyBackendTLS(base.backendTLS, r.nested('backendTLS')),
    maxRequestBodyBytes: r.integer('maxRequestBodyBytes', base.maxRequestBodyBytes),
    cors: applyCors(base.cors, r.nested('cors')),
  };
}

/** A list of CIDRs at `key`, normalised; a bad item is an error naming its index, and the fallback is kept. */
export function cidrList(r: SpecReader, key: string, fallback: readonly string[]): readonly string[] {
  return r.items(key, fallback, normalizeCidr, 'a CIDR or an address, IPv4 or IPv6 (e.g. 10.0.0.0/8, 2001:db8::/32)');
}

function applyHttpsRedirect(base: HttpsRedirect, r: SpecReader | undefined): HttpsRedirect {
  if (r === undefined) return base;
  return {
    mode: r.oneOf('mode', base.mode, REDIRECT_MODES),
    statusCode: r.numberOneOf<RedirectStatus>('statusCode', base.statusCode, REDIRECT_STATUSES),
    webSocket: r.oneOf('webSocket', base.webSocket, WEBSOCKET_REDIRECTS),
  };
}

function applyHsts(base: Hsts, r: SpecReader | undefined): Hsts {
  if (r === undefined) return base;
  return {
    maxAgeSeconds: r.wholeSeconds('maxAgeSeconds', base.maxAgeSeconds),
    includeSubDomains: r.boolean('includeSubDomains', base.includeSubDomains),
    preload: r.boolean('preload', base.preload),
  };
}

function applyRateLimit(base: RateLimit, r: SpecReader | undefined): RateLimit {
  if (r === undefined) return base;
  const requestsPerSecond = r.integer('requestsPerSecond', base.requestsPerSecond);
  // A burst left unset follows the rate (one second's worth), unless a layer below set one.
  const burst = r.has('burst') ? r.integer('burst', base.burst, 1) : base.burst > 0 ? base.burst : Math.ceil(requestsPerSecond);
  return { requestsPerSecond, burst: requestsPerSecond > 0 ? Math.max(1, burst) : burst };
}

function applyExternalAuth(base: ExternalAuth, r: SpecReader | undefined): ExternalAuth {
  if (r === undefined) return base;
  let url = base.url;
  if (r.has('url')) {
    const v = r.get('url');
    if (v === '' || (typeof v === 'string' && isHttpUrl(v))) url = v;
    else r.fail('url', `${JSON.stringify(v)} is not an http:// or https:// URL`);
  }
  return {
    url,
    method: r.matching('method', base.method, METHOD, 'an HTTP method in upper case, e.g. GET'),
    requestHeaders: r.list('requestHeaders', base.requestHeaders, TOKEN, true, 'a header name'),
    responseHeaders: r.list('responseHeaders', base.responseHeaders, TOKEN, true, 'a header name'),
    timeoutSeconds: r.integer('timeoutSeconds', base.timeoutSeconds, 1, 300),
    failureStatus: r.numberOneOf<AuthFailureStatus>('failureStatus', base.failureStatus, AUTH_FAILURE_STATUSES),
    cacheSeconds: r.wholeSeconds('cacheSeconds', base.cacheSeconds),
  };
}

/** An absolute http(s) URL with a host, as the auth sub-request needs. */
export function isHttpUrl(v: string): boolean {
  try {
    const u = new URL(v);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' && !/\s/.test(v);
  } catch {
    return false;
  }
}

function applyBackendTLS(base: BackendTLS, r: SpecReader | undefined): BackendTLS {
  if (r === undefined) return base;
  const caSecret = r.matching('caSecret', base.caSecret, SECRET_NAME, 'the name of a Secret in the same namespace');
  return {
    // Writing backendTLS at all asks for TLS, unless it says enabled: false.
    enabled: r.boolean('enabled', true),
    sni: r.matching('sni', base.sni, DNS_NAME, 'a DNS name in lower case'),
    caSecret,
    // Read by resolveBackendTLS; a rule naming another Secret must not keep the route's CA.
    caPem: caSecret === base.caSecret ? base.caPem : '',
    insecureSkipVerify: r.boolean('insecureSkipVerify', base.insecureSkipVerify),
  };
}

function applyCors(base: Cors, r: SpecReader | undefined): Cors {
  if (r === undefined) return base;
  const origins = r.get('allowOrigins');
  const allowOrigins =
    Array.isArray(origins) && origins.length === 1 && origins[0] === '*'
      ? ['*']
      : r.list('allowOrigins', base.allowOrigins, ORIGIN, true, 'an origin like scheme://host[:port], or "*"');
  return {
    allowOrigins,
    allowMethods: r.list('allowMethods', base.allowMethods, METHOD, false, 'an HTTP method in upper case'),
    allowHeaders: r.list('allowHeaders', base.allowHeaders, TOKEN, false, 'a header name'),
    exposeHeaders: r.list('exposeHeaders', base.exposeHeaders, TOKEN, false, 'a header name'),
    allowCredentials: r.boolean('allowCredentials', base.allowCredentials),
    maxAgeSeconds: r.wholeSeconds('maxAgeSeconds', base.maxAgeSeconds),
  };
}

/**
 * Reads backendTLS.caSecret (a Secret in `namespace` with a PEM `ca.crt`, as cert-manager and ingress-nginx's
 * proxy-ssl-secret write it) into caPem. A Secret that does not resolve is said on the report; the policy keeps an
 * empty caPem, which the data plane refuses to connect with (502), never falling back to another trust store.
 */
export function resolveBackendTLS(policy: Policy, namespace: string, lookup: Lookup, report: ObjectReport, where: string): Policy {
  const tls = policy.backendTLS;
  if (!tls.enabled || tls.caSecret === '' || tls.caPem !== '') return policy;
  const secret = lookup.secret(namespace, tls.caSecret);
  const key = `${namespace}/${tls.caSecret}`;
  if (secret === undefined) {
    report.unresolved('SecretNotFound', `${where}: Secret ${key} not found (TLS connections to the backend fail with 502)`);
    return { ...policy, backendTLS: { ...tls, caSecret: key } };
  }
  const plain = secret.stringData?.['ca.crt'];
  const encoded = secret.data?.['ca.crt'];
  const pem = typeof plain === 'string' ? plain : typeof encoded === 'string' ? Buffer.from(encoded.replace(/\s+/g, ''), 'base64').toString('utf8') : '';
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    report.unresolved('InvalidCertificate', `${where}: Secret ${key} has no PEM certificate in ca.crt (TLS connections to the backend fail with 502)`);
    return { ...policy, backendTLS: { ...tls, caSecret: key } };
  }
  return { ...policy, backendTLS: { ...tls, caSecret: key, caPem: pem } };
}
