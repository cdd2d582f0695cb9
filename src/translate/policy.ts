// The effective policy of a rule: each knob from the rule's policy, else the route's, else DEFAULT_POLICY
// (src/model/table.ts). Lists replace, they do not add up: a rule's `allowedOrigins: []` means any Origin again.
// `loadBalancing.policy` and `loadBalancing.hashOn` are knobs of their own, so a rule may change only the hash key.
// Ingress has no policy field; its `wsgate.io/*` annotations set the same knobs for every path of the Ingress.
import { ANNOTATION_PREFIX, LOAD_BALANCING_POLICIES, type LoadBalancingPolicy } from '../api/types.ts';
import { DEFAULT_POLICY, type HashOn, type LoadBalancing, type Policy } from '../model/table.ts';

// RFC 9110 token: what a header name, a cookie name and a WebSocket subprotocol are made of.
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// scheme://host[:port], as browsers send Origin; compared case-insensitively, so kept lower-cased.
export const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/[^\s/?#]+$/;

export type PolicyResult = { readonly policy: Policy; readonly errors?: undefined } | { readonly errors: string[] };

/** Checks a PolicySpec written at `field` and lays it over `base`; errors name the field path. */
export function applyPolicySpec(base: Policy, spec: unknown, field: string): PolicyResult {
  if (spec === undefined || spec === null) return { policy: base };
  if (typeof spec !== 'object' || Array.isArray(spec)) return { errors: [`${field}: must be an object`] };
  const p = spec as Record<string, unknown>;
  const errors: string[] = [];
  const seconds = (key: string, fallback: number): number => {
    const v = p[key];
    if (v === undefined) return fallback;
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
    errors.push(`${field}.${key}: must be a number of seconds >= 0`);
    return fallback;
  };
  const count = (key: string, fallback: number): number => {
    const v = p[key];
    if (v === undefined) return fallback;
    if (Number.isInteger(v) && (v as number) >= 0) return v as number;
    errors.push(`${field}.${key}: must be an integer >= 0`);
    return fallback;
  };
  const list = (key: string, fallback: readonly string[], check: RegExp, lower: boolean, what: string): readonly string[] => {
    const v = p[key];
    if (v === undefined) return fallback;
    if (!Array.isArray(v)) {
      errors.push(`${field}.${key}: must be a list`);
      return fallback;
    }
    v.forEach((item, i) => {
      if (typeof item !== 'string' || !check.test(lower ? item.toLowerCase() : item)) {
        errors.push(`${field}.${key}[${i}]: ${JSON.stringify(item)} is not ${what}`);
      }
    });
    return v.map((item) => (lower ? String(item).toLowerCase() : String(item)));
  };
  const policy: Omit<Policy, 'loadBalancing'> = {
    idleTimeoutSeconds: seconds('idleTimeoutSeconds', base.idleTimeoutSeconds),
    connectTimeoutSeconds: seconds('connectTimeoutSeconds', base.connectTimeoutSeconds),
    responseHeaderTimeoutSeconds: seconds('responseHeaderTimeoutSeconds', base.responseHeaderTimeoutSeconds),
    maxConnections: count('maxConnections', base.maxConnections),
    maxConnectionsPerClient: count('maxConnectionsPerClient', base.maxConnectionsPerClient),
    allowedOrigins: list('allowedOrigins', base.allowedOrigins, ORIGIN, true, 'an origin like scheme://host[:port]'),
    subprotocols: list('subprotocols', base.subprotocols, TOKEN, false, 'a subprotocol token'),
  };
  const loadBalancing = applyLoadBalancing(base.loadBalancing, p['loadBalancing'], `${field}.loadBalancing`, errors);
  if (errors.length > 0 || loadBalancing === undefined) return { errors };
  return { policy: { ...policy, loadBalancing } };
}

function applyLoadBalancing(
  base: LoadBalancing,
  spec: unknown,
  field: string,
  errors: string[],
): LoadBalancing | undefined {
  if (spec === undefined || spec === null) return base;
  if (typeof spec !== 'object' || Array.isArray(spec)) {
    errors.push(`${field}: must be an object`);
    return undefined;
  }
  const lb = spec as Record<string, unknown>;
  let policy: LoadBalancingPolicy = base.policy;
  if (lb['policy'] !== undefined) {
    if (!LOAD_BALANCING_POLICIES.includes(lb['policy'] as LoadBalancingPolicy)) {
      errors.push(`${field}.policy: must be one of ${LOAD_BALANCING_POLICIES.join(', ')}`);
      return undefined;
    }
    policy = lb['policy'] as LoadBalancingPolicy;
  }
  let hashOn: HashOn | undefined = base.policy === 'ConsistentHash' ? base.hashOn : undefined;
  if (lb['hashOn'] !== undefined) {
    const parsed = parseHashOnSpec(lb['hashOn']);
    if (typeof parsed === 'string') {
      errors.push(`${field}.hashOn: ${parsed}`);
      return undefined;
    }
    hashOn = parsed;
  }
  if (policy !== 'ConsistentHash') return { policy };
  if (hashOn === undefined) {
    errors.push(`${field}.hashOn: ConsistentHash needs exactly one of clientIP, header, cookie`);
    return undefined;
  }
  return { policy, hashOn };
}

/** A HashOnSpec, or an error message when it does not set exactly one valid member. */
function parseHashOnSpec(spec: unknown): HashOn | string {
  const exactlyOne = 'must set exactly one of clientIP, header, cookie';
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) return exactlyOne;
  const { clientIP, header, cookie } = spec as Record<string, unknown>;
  const set = [clientIP === true, header !== undefined, cookie !== undefined].filter(Boolean).length;
  if (set !== 1) return exactlyOne;
  if (clientIP === true) return { kind: 'clientIP' };
  if (header !== undefined) {
    if (typeof header !== 'string' || !TOKEN.test(header)) return `header: ${JSON.stringify(header)} is not a header name`;
    return { kind: 'header', name: header.toLowerCase() };
  }
  if (typeof cookie !== 'string' || !TOKEN.test(cookie)) return `cookie: ${JSON.stringify(cookie)} is not a cookie name`;
  return { kind: 'cookie', name: cookie };
}

/** The Ingress annotations wsgate reads, each a policy knob. Others under `wsgate.io/` are left alone. */
export const ANNOTATIONS = {
  idleTimeoutSeconds: `${ANNOTATION_PREFIX}idle-timeout-seconds`,
  connectTimeoutSeconds: `${ANNOTATION_PREFIX}connect-timeout-seconds`,
  responseHeaderTimeoutSeconds: `${ANNOTATION_PREFIX}response-header-timeout-seconds`,
  maxConnections: `${ANNOTATION_PREFIX}max-connections`,
  maxConnectionsPerClient: `${ANNOTATION_PREFIX}max-connections-per-client`,
  allowedOrigins: `${ANNOTATION_PREFIX}allowed-origins`,
  subprotocols: `${ANNOTATION_PREFIX}subprotocols`,
  loadBalancing: `${ANNOTATION_PREFIX}load-balancing`,
  hashOn: `${ANNOTATION_PREFIX}hash-on`,
} as const;

/**
 * The policy an Ingress's annotations give. A bad value is reported (the message names the annotation) and that
 * knob keeps its default, so the Ingress still serves. `wsgate.io/hash-on` is `clientIP`, `header:NAME` or
 * `cookie:NAME`, and only read when `wsgate.io/load-balancing` is ConsistentHash; ConsistentHash without a valid
 * hash-on falls back to the default policy.
 */
export function policyFromAnnotations(annotations: Record<string, unknown> | undefined): {
  policy: Policy;
  problems: string[];
} {
  const a = annotations ?? {};
  const problems: string[] = [];
  const bad = (name: string, value: unknown, what: string, fallback: string): void => {
    problems.push(`annotation ${name}: ${JSON.stringify(value)} is not ${what} (using the default ${fallback})`);
  };
  const number = (name: string, fallback: number, integer: boolean): number => {
    const raw = a[name];
    if (raw === undefined) return fallback;
    // Kubernetes stores annotations as strings; a YAML file may carry an unquoted number.
    const v = typeof raw === 'number' ? String(raw) : raw;
    const pattern = integer ? /^\d+$/ : /^\d+(\.\d+)?$/;
    if (typeof v === 'string' && pattern.test(v.trim())) return Number(v.trim());
    bad(name, v, integer ? 'an integer >= 0' : 'a number of seconds >= 0', String(fallback));
    return fallback;
  };
  const list = (name: string, check: RegExp, lower: boolean, what: string): readonly string[] => {
    const v = a[name];
    if (v === undefined) return [];
    const items = typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter((s) => s !== '') : undefined;
    const normalized = items?.map((s) => (lower ? s.toLowerCase() : s));
    if (normalized === undefined || !normalized.every((s) => check.test(s))) {
      bad(name, v, `a comma-separated list of ${what}`, 'empty list');
      return [];
    }
    return normalized;
  };
  const policy: Policy = {
    idleTimeoutSeconds: number(ANNOTATIONS.idleTimeoutSeconds, DEFAULT_POLICY.idleTimeoutSeconds, false),
    connectTimeoutSeconds: number(ANNOTATIONS.connectTimeoutSeconds, DEFAULT_POLICY.connectTimeoutSeconds, false),
    responseHeaderTimeoutSeconds: number(
      ANNOTATIONS.responseHeaderTimeoutSeconds,
      DEFAULT_POLICY.responseHeaderTimeoutSeconds,
      false,
    ),
    maxConnections: number(ANNOTATIONS.maxConnections, DEFAULT_POLICY.maxConnections, true),
    maxConnectionsPerClient: number(ANNOTATIONS.maxConnectionsPerClient, DEFAULT_POLICY.maxConnectionsPerClient, true),
    allowedOrigins: list(ANNOTATIONS.allowedOrigins, ORIGIN, true, 'origins like scheme://host[:port]'),
    subprotocols: list(ANNOTATIONS.subprotocols, TOKEN, false, 'subprotocol tokens'),
    loadBalancing: annotationLoadBalancing(a, problems),
  };
  return { policy, problems };
}

function annotationLoadBalancing(a: Record<string, unknown>, problems: string[]): LoadBalancing {
  const fallback = DEFAULT_POLICY.loadBalancing;
  const value = a[ANNOTATIONS.loadBalancing];
  if (value === undefined) return fallback;
  if (!LOAD_BALANCING_POLICIES.includes(value as LoadBalancingPolicy)) {
    problems.push(
      `annotation ${ANNOTATIONS.loadBalancing}: ${JSON.stringify(value)} is not one of ` +
        `${LOAD_BALANCING_POLICIES.join(', ')} (using the default ${fallback.policy})`,
    );
    return fallback;
  }
  const policy = value as LoadBalancingPolicy;
  if (policy !== 'ConsistentHash') return { policy };
  const hashOn = parseHashOnAnnotation(a[ANNOTATIONS.hashOn]);
  if (hashOn === undefined) {
    problems.push(
      `annotation ${ANNOTATIONS.hashOn}: ${JSON.stringify(a[ANNOTATIONS.hashOn] ?? null)} is not clientIP, ` +
        `header:NAME or cookie:NAME, which ConsistentHash needs (using the default ${fallback.policy})`,
    );
    return fallback;
  }
  return { policy, hashOn };
}

function parseHashOnAnnotation(value: unknown): HashOn | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  if (v === 'clientIP') return { kind: 'clientIP' };
  const colon = v.indexOf(':');
  const kind = v.slice(0, colon);
  const name = v.slice(colon + 1);
  if (colon < 0 || !TOKEN.test(name)) return undefined;
  if (kind === 'header') return { kind: 'header', name: name.toLowerCase() };
  if (kind === 'cookie') return { kind: 'cookie', name };
  return undefined;
}
