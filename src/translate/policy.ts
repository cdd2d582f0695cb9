// The effective policy of a rule: each knob from the rule's policy, else the route's, else DEFAULT_POLICY
// (src/model/table.ts).
//   - Lists replace, they do not add up: a rule's `allowedOrigins: []` means any Origin again.
//   - Nested objects merge member by member: a rule's `keepalive: { toBackend: true }` keeps the route's interval and
//     timeout, and the same holds for `onRemoval`, `rebalance` and `loadBalancing` (whose `policy` and `hashOn` are
//     knobs of their own, so a rule may change only the hash key).
//   - `inspectFrames: false` (a plain byte pipe) and a knob that needs frames — a message size or rate limit, or a
//     keepalive other than the default or off — cannot both hold. That is checked on the effective policy, so a rule
//     that turns inspection off under a route with limits must turn those limits off too; the error says which.
// Ingress has no policy field; its `wsgate.io/*` annotations set the same knobs for every path (./annotations.ts),
// over what its ingress-nginx annotations set (./ingress-nginx.ts). The edge-policy knobs of issue 12 are read by
// ./edge-policy.ts.
import { LOAD_BALANCING_POLICIES, ON_EXCEED_ACTIONS, REMOVAL_ACTIONS, SAME_SITE_VALUES, type LoadBalancingPolicy } from '../api/types.ts';
import {
  DEFAULT_POLICY,
  type AffinityCookie,
  type HashOn,
  type Keepalive,
  type LoadBalancing,
  type OnRemoval,
  type Policy,
  type Rebalance,
} from '../model/table.ts';
import { applyEdgePolicy } from './edge-policy.ts';

// RFC 9110 token: what a header name, a cookie name and a WebSocket subprotocol are made of.
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// scheme://host[:port], as browsers send Origin; compared case-insensitively, so kept lower-cased.
export const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/[^\s/?#]+$/;

export type PolicyResult = { readonly policy: Policy; readonly errors?: undefined } | { readonly errors: string[] };

/**
 * Reads the optional members of one object written at `field`. A member that is absent keeps its fallback; a bad
 * one keeps it too and adds an error naming its path, so every problem of an object is reported at once.
 */
export class SpecReader {
  readonly #obj: Record<string, unknown>;
  readonly field: string;
  readonly errors: string[];

  constructor(obj: Record<string, unknown>, field: string, errors: string[]) {
    this.#obj = obj;
    this.field = field;
    this.errors = errors;
  }

  /** A reader of the object at `key`; undefined (and an error if it is not an object) when it is absent or bad. */
  static of(value: unknown, field: string, errors: string[]): SpecReader | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'object' || Array.isArray(value)) {
      errors.push(`${field}: must be an object`);
      return undefined;
    }
    return new SpecReader(value as Record<string, unknown>, field, errors);
  }

  get(key: string): unknown {
    const v = this.#obj[key];
    return v === null ? undefined : v;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  nested(key: string): SpecReader | undefined {
    return SpecReader.of(this.get(key), `${this.field}.${key}`, this.errors);
  }

  fail(key: string, message: string): void {
    this.errors.push(`${this.field}.${key}: ${message}`);
  }

  /** Seconds, fractions allowed (the HTTP and idle timeouts). */
  seconds(key: string, fallback: number): number {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
    this.fail(key, 'must be a number of seconds >= 0');
    return fallback;
  }

  /** Whole seconds >= min. */
  wholeSeconds(key: string, fallback: number, min = 0): number {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (Number.isSafeInteger(v) && (v as number) >= min) return v as number;
    this.fail(key, `must be a whole number of seconds >= ${min}`);
    return fallback;
  }

  /** An integer in [min, max]. */
  integer(key: string, fallback: number, min = 0, max?: number): number {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (Number.isSafeInteger(v) && (v as number) >= min && (max === undefined || (v as number) <= max)) return v as number;
    this.fail(key, max === undefined ? `must be an integer >= ${min}` : `must be an integer from ${min} to ${max}`);
    return fallback;
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (typeof v === 'boolean') return v;
    this.fail(key, 'must be true or false');
    return fallback;
  }

  oneOf<T extends string>(key: string, fallback: T, values: readonly T[]): T {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (values.includes(v as T)) return v as T;
    this.fail(key, `must be one of ${values.join(', ')}`);
    return fallback;
  }

  list(key: string, fallback: readonly string[], check: RegExp, lower: boolean, what: string): readonly string[] {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (!Array.isArray(v)) {
      this.fail(key, 'must be a list');
      return fallback;
    }
    v.forEach((item, i) => {
      if (typeof item !== 'string' || !check.test(lower ? item.toLowerCase() : item)) {
        this.errors.push(`${this.field}.${key}[${i}]: ${JSON.stringify(item)} is not ${what}`);
      }
    });
    return v.map((item) => (lower ? String(item).toLowerCase() : String(item)));
  }

  /** A list whose items `parse` normalises (undefined = bad item: an error naming its index; the fallback is kept). */
  items(key: string, fallback: readonly string[], parse: (item: unknown) => string | undefined, what: string): readonly string[] {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (!Array.isArray(v)) {
      this.fail(key, 'must be a list');
      return fallback;
    }
    const out: string[] = [];
    let bad = false;
    v.forEach((item, i) => {
      const parsed = parse(item);
      if (parsed === undefined) {
        bad = true;
        this.errors.push(`${this.field}.${key}[${i}]: ${JSON.stringify(item)} is not ${what}`);
      } else if (!out.includes(parsed)) {
        out.push(parsed);
      }
    });
    return bad ? fallback : out;
  }

  /** A number that must be one of `values` (status codes). */
  numberOneOf<T extends number>(key: string, fallback: T, values: readonly T[]): T {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (values.includes(v as T)) return v as T;
    this.fail(key, `must be one of ${values.join(', ')}`);
    return fallback;
  }

  /** A string that `pattern` accepts. */
  matching(key: string, fallback: string, pattern: RegExp, what: string): string {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (typeof v === 'string' && pattern.test(v)) return v;
    this.fail(key, `${JSON.stringify(v)} is not ${what}`);
    return fallback;
  }
}

/** Checks a PolicySpec written at `field` and lays it over `base`; errors name the field path. */
export function applyPolicySpec(base: Policy, spec: unknown, field: string): PolicyResult {
  if (spec === undefined || spec === null) return { policy: base };
  const errors: string[] = [];
  const r = SpecReader.of(spec, field, errors);
  if (r === undefined) return { errors };
  const policy: Omit<Policy, 'loadBalancing'> = {
    idleTimeoutSeconds: r.seconds('idleTimeoutSeconds', base.idleTimeoutSeconds),
    connectTimeoutSeconds: r.seconds('connectTimeoutSeconds', base.connectTimeoutSeconds),
    responseHeaderTimeoutSeconds: r.seconds('responseHeaderTimeoutSeconds', base.responseHeaderTimeoutSeconds),
    maxConnections: r.integer('maxConnections', base.maxConnections),
    maxConnectionsPerClient: r.integer('maxConnectionsPerClient', base.maxConnectionsPerClient),
    allowedOrigins: r.list('allowedOrigins', base.allowedOrigins, ORIGIN, true, 'an origin like scheme://host[:port]'),
    subprotocols: r.list('subprotocols', base.subprotocols, TOKEN, false, 'a subprotocol token'),
    inspectFrames: r.boolean('inspectFrames', base.inspectFrames),
    keepalive: applyKeepalive(base.keepalive, r.nested('keepalive')),
    maxMessageBytes: r.integer('maxMessageBytes', base.maxMessageBytes),
    maxBackendMessageBytes: r.integer('maxBackendMessageBytes', base.maxBackendMessageBytes),
    maxMessagesPerSecond: r.integer('maxMessagesPerSecond', base.maxMessagesPerSecond),
    onExceed: r.oneOf('onExceed', base.onExceed, ON_EXCEED_ACTIONS),
    strict: r.boolean('strict', base.strict),
    endpointDrainSeconds: r.wholeSeconds('endpointDrainSeconds', base.endpointDrainSeconds),
    onRemoval: applyOnRemoval(base.onRemoval, r.nested('onRemoval')),
    rebalance: applyRebalance(base.rebalance, r.nested('rebalance')),
    ...applyEdgePolicy(base, r),
  };
  const loadBalancing = applyLoadBalancing(base.loadBalancing, r.get('loadBalancing'), `${field}.loadBalancing`, errors);
  if (errors.length > 0 || loadBalancing === undefined) return { errors };
  const effective: Policy = { ...policy, loadBalancing };
  errors.push(...frameConflicts(effective, r));
  if (errors.length > 0) return { errors };
  return { policy: effective };
}

function applyKeepalive(base: Keepalive, r: SpecReader | undefined): Keepalive {
  if (r === undefined) return base;
  return {
    intervalSeconds: r.wholeSeconds('intervalSeconds', base.intervalSeconds),
    timeoutSeconds: r.wholeSeconds('timeoutSeconds', base.timeoutSeconds, 1),
    toBackend: r.boolean('toBackend', base.toBackend),
  };
}

/** `onRemoval` over `base`, member by member; shared with TCPTunnel. */
export function applyOnRemoval(base: OnRemoval, r: SpecReader | undefined): OnRemoval {
  if (r === undefined) return base;
  return {
    action: r.oneOf('action', base.action, REMOVAL_ACTIONS),
    graceSeconds: r.wholeSeconds('graceSeconds', base.graceSeconds),
  };
}

function applyRebalance(base: Rebalance, r: SpecReader | undefined): Rebalance {
  if (r === undefined) return base;
  return {
    enabled: r.boolean('enabled', base.enabled),
    tolerancePercent: r.integer('tolerancePercent', base.tolerancePercent, 1, 100),
    maxClosesPerSecond: r.integer('maxClosesPerSecond', base.maxClosesPerSecond, 1),
  };
}

/** The knobs of a policy that need frame inspection, by their Policy key, in a fixed order. */
export type FrameKnob = 'maxMessageBytes' | 'maxBackendMessageBytes' | 'maxMessagesPerSecond' | 'keepalive';

/**
 * What in `p` asks for frame inspection: the message limits when set, and keepalive when it is on and not the
 * default. The default keepalive, keepalive off, `strict` and `onExceed` ask for nothing a byte pipe cannot give
 * (a byte pipe pings nobody and passes every frame), so they are never in conflict with `inspectFrames: false`.
 */
export function framesNeededBy(p: Policy): FrameKnob[] {
  const out: FrameKnob[] = [];
  if (p.maxMessageBytes > 0) out.push('maxMessageBytes');
  if (p.maxBackendMessageBytes > 0) out.push('maxBackendMessageBytes');
  if (p.maxMessagesPerSecond > 0) out.push('maxMessagesPerSecond');
  const k = p.keepalive;
  const d = DEFAULT_POLICY.keepalive;
  const isDefault = k.intervalSeconds === d.intervalSeconds && k.timeoutSeconds === d.timeoutSeconds && k.toBackend === d.toBackend;
  if (k.intervalSeconds > 0 && !isDefault) out.push('keepalive');
  return out;
}

/** A frame knob's value as a message shows it: `1048576`, `{intervalSeconds: 10, timeoutSeconds: 30, toBackend: false}`. */
function frameKnobValue(p: Policy, knob: FrameKnob): string {
  if (knob !== 'keepalive') return String(p[knob]);
  const k = p.keepalive;
  return `{intervalSeconds: ${k.intervalSeconds}, timeoutSeconds: ${k.timeoutSeconds}, toBackend: ${k.toBackend}}`;
}

/**
 * Errors for an effective policy whose inspectFrames is false while knobs need frames, each naming a field this
 * layer (`r`) wrote: every such knob set here, and inspectFrames for those that came from the route's policy.
 */
function frameConflicts(p: Policy, r: SpecReader): string[] {
  if (p.inspectFrames) return [];
  const needed = framesNeededBy(p);
  const errors: string[] = [];
  const why = r.has('inspectFrames') ? 'inspectFrames is false' : "inspectFrames is false in the route's policy";
  for (const knob of needed.filter((k) => r.has(k))) {
    errors.push(
      `${r.field}.${knob}: ${frameKnobValue(p, knob)} needs frame inspection, but ${why} (a plain byte pipe): ` +
        'remove it, or set inspectFrames to true',
    );
  }
  const inherited = needed.filter((k) => !r.has(k));
  if (inherited.length > 0) {
    const list = inherited.map((k) => `${k} ${frameKnobValue(p, k)}`).join(', ');
    const off = inherited.map((k) => (k === 'keepalive' ? 'keepalive.intervalSeconds' : k)).join(', ');
    errors.push(
      `${r.field}.inspectFrames: false (a plain byte pipe) cannot apply what the route's policy sets, which needs ` +
        `frame inspection: ${list}; set ${off} to 0 here too, or leave inspectFrames true`,
    );
  }
  return errors;
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
  if (policy === 'Cookie') {
    const before = errors.length;
    const cookie = applyCookie(base.policy === 'Cookie' ? base.cookie : DEFAULT_COOKIE, SpecReader.of(lb['cookie'], `${field}.cookie`, errors));
    return errors.length > before ? undefined : { policy, cookie };
  }
  if (lb['cookie'] !== undefined && lb['cookie'] !== null) {
    errors.push(`${field}.cookie: is only read with policy Cookie (the policy is ${policy})`);
    return undefined;
  }
  if (policy !== 'ConsistentHash') return { policy };
  if (hashOn === undefined) {
    errors.push(`${field}.hashOn: ConsistentHash needs exactly one of clientIP, header, cookie`);
    return undefined;
  }
  return { policy, hashOn };
}

/** The affinity cookie of a WebSocketRoute that names none of its attributes. */
export const DEFAULT_COOKIE: AffinityCookie = Object.freeze({ name: 'wsgate-affinity', maxAgeSeconds: 0, path: '', sameSite: '', secure: false });

// PATH_PATTERN of the schema: an absolute path without whitespace, query or fragment (and no `;`, which ends a cookie attribute).
const COOKIE_PATH = /^\/[^\s?#;]*$/;

function applyCookie(base: AffinityCookie, r: SpecReader | undefined): AffinityCookie {
  if (r === undefined) return base;
  return {
    name: r.matching('name', base.name, TOKEN, 'a cookie name'),
    maxAgeSeconds: r.wholeSeconds('maxAgeSeconds', base.maxAgeSeconds),
    path: r.matching('path', base.path, COOKIE_PATH, 'an absolute path without ";", e.g. /socket.io'),
    sameSite: r.oneOf<AffinityCookie['sameSite']>('sameSite', base.sameSite, SAME_SITE_VALUES),
    secure: r.boolean('secure', base.secure),
  };
}

/** A HashOnSpec, or an error message when it does not set exactly one valid member. */
function parseHashOnSpec(spec: unknown): HashOn | string {
  const exactlyOne = 'must set exactly one of clientIP, header, cookie, query';
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) return exactlyOne;
  const { clientIP, header, cookie, query } = spec as Record<string, unknown>;
  const set = [clientIP === true, header !== undefined, cookie !== undefined, query !== undefined].filter(Boolean).length;
  if (set !== 1) return exactlyOne;
  if (clientIP === true) return { kind: 'clientIP' };
  if (header !== undefined) {
    if (typeof header !== 'string' || !TOKEN.test(header)) return `header: ${JSON.stringify(header)} is not a header name`;
    return { kind: 'header', name: header.toLowerCase() };
  }
  if (query !== undefined) {
    if (typeof query !== 'string' || !TOKEN.test(query)) return `query: ${JSON.stringify(query)} is not a query parameter name`;
    return { kind: 'query', name: query };
  }
  if (typeof cookie !== 'string' || !TOKEN.test(cookie)) return `cookie: ${JSON.stringify(cookie)} is not a cookie name`;
  return { kind: 'cookie', name: cookie };
}
