// Ingress `wsgate.io/*` annotations: the policy knobs of an Ingress, which has no policy field. They set every path
// of the Ingress, over DEFAULT_POLICY. A bad value is reported (the message names the annotation) and that knob keeps
// its default, so the Ingress still serves. The sidecar injector reads the same annotations on a Pod (src/webhook).
import {
  ANNOTATION_PREFIX,
  LOAD_BALANCING_POLICIES,
  ON_EXCEED_ACTIONS,
  REMOVAL_ACTIONS,
  WEBSOCKET_REDIRECTS,
  type LoadBalancingPolicy,
} from '../api/types.ts';
import { DEFAULT_POLICY, type HashOn, type LoadBalancing, type Policy } from '../model/table.ts';
import { DEFAULT_COOKIE, framesNeededBy, ORIGIN, TOKEN, type FrameKnob } from './policy.ts';

/** The annotations of the connection and handshake knobs. */
export const CONNECTION_ANNOTATIONS = {
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

/** The annotations of the WebSocket frame knobs (issue 10): keepalive, message limits, strictness. */
export const FRAME_ANNOTATIONS = {
  inspectFrames: `${ANNOTATION_PREFIX}inspect-frames`,
  keepaliveIntervalSeconds: `${ANNOTATION_PREFIX}keepalive-interval-seconds`,
  keepaliveTimeoutSeconds: `${ANNOTATION_PREFIX}keepalive-timeout-seconds`,
  keepaliveToBackend: `${ANNOTATION_PREFIX}keepalive-to-backend`,
  maxMessageBytes: `${ANNOTATION_PREFIX}max-message-bytes`,
  maxBackendMessageBytes: `${ANNOTATION_PREFIX}max-backend-message-bytes`,
  maxMessagesPerSecond: `${ANNOTATION_PREFIX}max-messages-per-second`,
  onExceed: `${ANNOTATION_PREFIX}on-exceed`,
  strict: `${ANNOTATION_PREFIX}strict-frames`,
} as const;

/**
 * The annotations of the drain knobs (issue 11). They act on a route's endpoints and on its removal from the table,
 * so a sidecar (one fixed upstream, one route that is never removed) has no use for them.
 */
export const DRAIN_ANNOTATIONS = {
  endpointDrainSeconds: `${ANNOTATION_PREFIX}endpoint-drain-seconds`,
  onRemoval: `${ANNOTATION_PREFIX}on-removal`,
  removalGraceSeconds: `${ANNOTATION_PREFIX}removal-grace-seconds`,
  rebalance: `${ANNOTATION_PREFIX}rebalance`,
  rebalanceTolerancePercent: `${ANNOTATION_PREFIX}rebalance-tolerance-percent`,
  rebalanceMaxClosesPerSecond: `${ANNOTATION_PREFIX}rebalance-max-closes-per-second`,
} as const;

/**
 * The annotations of the edge knobs (issue 12) that ingress-nginx has no annotation for; the others are set with
 * ingress-nginx's names (ingress-nginx.ts).
 */
export const EDGE_ANNOTATIONS = {
  webSocketRedirect: `${ANNOTATION_PREFIX}websocket-redirect`,
} as const;

/** The Ingress annotations wsgate reads, each a policy knob. Others under `wsgate.io/` are left alone. */
export const ANNOTATIONS = { ...CONNECTION_ANNOTATIONS, ...FRAME_ANNOTATIONS, ...DRAIN_ANNOTATIONS, ...EDGE_ANNOTATIONS } as const;

/** The annotations behind each knob that needs frame inspection, for the message of a conflict. */
const FRAME_KNOB_ANNOTATIONS: Readonly<Record<FrameKnob, readonly string[]>> = {
  maxMessageBytes: [FRAME_ANNOTATIONS.maxMessageBytes],
  maxBackendMessageBytes: [FRAME_ANNOTATIONS.maxBackendMessageBytes],
  maxMessagesPerSecond: [FRAME_ANNOTATIONS.maxMessagesPerSecond],
  keepalive: [FRAME_ANNOTATIONS.keepaliveIntervalSeconds, FRAME_ANNOTATIONS.keepaliveTimeoutSeconds, FRAME_ANNOTATIONS.keepaliveToBackend],
};

/**
 * The policy an Ingress's annotations give. A bad value is reported (the message names the annotation) and that
 * knob keeps its default, so the Ingress still serves.
 *   - `wsgate.io/hash-on` is `clientIP`, `header:NAME` or `cookie:NAME`, and only read when
 *     `wsgate.io/load-balancing` is ConsistentHash; ConsistentHash without a valid hash-on falls back to the default.
 *   - Booleans are "true" or "false". Numbers are decimal; the HTTP and idle timeouts may have a fraction, every
 *     other number is a whole number.
 *   - `wsgate.io/inspect-frames: "false"` with annotations that need frames (a message limit, a keepalive other than
 *     the default or off) is the bad value: inspection stays on (its default) so the limits asked for still hold.
 */
export function policyFromAnnotations(
  annotations: Record<string, unknown> | undefined,
  /** [base=DEFAULT_POLICY] What an absent or bad annotation leaves (an Ingress: what its ingress-nginx annotations set). */
  base: Policy = DEFAULT_POLICY,
): {
  policy: Policy;
  problems: string[];
} {
  const a = annotations ?? {};
  const problems: string[] = [];
  const d = base;
  const bad = (name: string, value: unknown, what: string, fallback: string): void => {
    problems.push(`annotation ${name}: ${JSON.stringify(value)} is not ${what} (using the default ${fallback})`);
  };
  // Kubernetes stores annotations as strings; a YAML file may carry an unquoted number or boolean.
  const text = (name: string): string | undefined => {
    const raw = a[name];
    if (raw === undefined) return undefined;
    return typeof raw === 'number' || typeof raw === 'boolean' ? String(raw) : (raw as string);
  };
  const number = (name: string, fallback: number, integer: boolean): number => {
    const v = text(name);
    if (v === undefined) return fallback;
    const pattern = integer ? /^\d+$/ : /^\d+(\.\d+)?$/;
    if (typeof v === 'string' && pattern.test(v.trim())) return Number(v.trim());
    bad(name, v, integer ? 'an integer >= 0' : 'a number of seconds >= 0', String(fallback));
    return fallback;
  };
  const whole = (name: string, fallback: number, min: number, max: number | undefined, unit: string): number => {
    const v = text(name);
    if (v === undefined) return fallback;
    const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v.trim()) : Number.NaN;
    if (Number.isSafeInteger(n) && n >= min && (max === undefined || n <= max)) return n;
    bad(name, v, max === undefined ? `${unit} >= ${min}` : `${unit} from ${min} to ${max}`, String(fallback));
    return fallback;
  };
  const seconds = (name: string, fallback: number, min = 0): number => whole(name, fallback, min, undefined, 'a whole number of seconds');
  const integer = (name: string, fallback: number, min = 0, max?: number): number => whole(name, fallback, min, max, 'an integer');
  const boolean = (name: string, fallback: boolean): boolean => {
    const v = text(name);
    if (v === undefined) return fallback;
    if (v === 'true' || v === 'false') return v === 'true';
    bad(name, v, '"true" or "false"', String(fallback));
    return fallback;
  };
  const oneOf = <T extends string>(name: string, fallback: T, values: readonly T[]): T => {
    const v = text(name);
    if (v === undefined) return fallback;
    if (values.includes(v as T)) return v as T;
    bad(name, v, `one of ${values.join(', ')}`, fallback);
    return fallback;
  };
  const list = (name: string, fallback: readonly string[], check: RegExp, lower: boolean, what: string): readonly string[] => {
    const v = a[name];
    if (v === undefined) return fallback;
    const items = typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter((s) => s !== '') : undefined;
    const normalized = items?.map((s) => (lower ? s.toLowerCase() : s));
    if (normalized === undefined || !normalized.every((s) => check.test(s))) {
      bad(name, v, `a comma-separated list of ${what}`, 'empty list');
      return [];
    }
    return normalized;
  };
  const A = ANNOTATIONS;
  const policy: Policy = {
    // The edge-policy knobs (issue 12) have no wsgate.io annotation: an Ingress sets them with ingress-nginx's.
    ...d,
    idleTimeoutSeconds: number(A.idleTimeoutSeconds, d.idleTimeoutSeconds, false),
    connectTimeoutSeconds: number(A.connectTimeoutSeconds, d.connectTimeoutSeconds, false),
    responseHeaderTimeoutSeconds: number(A.responseHeaderTimeoutSeconds, d.responseHeaderTimeoutSeconds, false),
    maxConnections: number(A.maxConnections, d.maxConnections, true),
    maxConnectionsPerClient: number(A.maxConnectionsPerClient, d.maxConnectionsPerClient, true),
    allowedOrigins: list(A.allowedOrigins, d.allowedOrigins, ORIGIN, true, 'origins like scheme://host[:port]'),
    subprotocols: list(A.subprotocols, d.subprotocols, TOKEN, false, 'subprotocol tokens'),
    loadBalancing: annotationLoadBalancing(a, problems, d.loadBalancing),
    inspectFrames: boolean(A.inspectFrames, d.inspectFrames),
    keepalive: {
      intervalSeconds: seconds(A.keepaliveIntervalSeconds, d.keepalive.intervalSeconds),
      timeoutSeconds: seconds(A.keepaliveTimeoutSeconds, d.keepalive.timeoutSeconds, 1),
      toBackend: boolean(A.keepaliveToBackend, d.keepalive.toBackend),
    },
    maxMessageBytes: integer(A.maxMessageBytes, d.maxMessageBytes),
    maxBackendMessageBytes: integer(A.maxBackendMessageBytes, d.maxBackendMessageBytes),
    maxMessagesPerSecond: integer(A.maxMessagesPerSecond, d.maxMessagesPerSecond),
    onExceed: oneOf(A.onExceed, d.onExceed, ON_EXCEED_ACTIONS),
    strict: boolean(A.strict, d.strict),
    endpointDrainSeconds: seconds(A.endpointDrainSeconds, d.endpointDrainSeconds),
    onRemoval: {
      action: oneOf(A.onRemoval, d.onRemoval.action, REMOVAL_ACTIONS),
      graceSeconds: seconds(A.removalGraceSeconds, d.onRemoval.graceSeconds),
    },
    rebalance: {
      enabled: boolean(A.rebalance, d.rebalance.enabled),
      tolerancePercent: integer(A.rebalanceTolerancePercent, d.rebalance.tolerancePercent, 1, 100),
      maxClosesPerSecond: integer(A.rebalanceMaxClosesPerSecond, d.rebalance.maxClosesPerSecond, 1),
    },
    httpsRedirect: { ...d.httpsRedirect, webSocket: oneOf(A.webSocketRedirect, d.httpsRedirect.webSocket, WEBSOCKET_REDIRECTS) },
  };
  const needed = policy.inspectFrames ? [] : framesNeededBy(policy);
  if (needed.length === 0) return { policy, problems };
  const others = needed.flatMap((knob) => FRAME_KNOB_ANNOTATIONS[knob].filter((name) => a[name] !== undefined));
  problems.push(
    `annotation ${A.inspectFrames}: "false" (a plain byte pipe) conflicts with ${others.join(', ')}: ` +
      `${others.length === 1 ? 'it needs' : 'they need'} frame inspection; remove one or the other (using the default true)`,
  );
  return { policy: { ...policy, inspectFrames: true }, problems };
}

function annotationLoadBalancing(a: Record<string, unknown>, problems: string[], fallback: LoadBalancing): LoadBalancing {
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
  if (policy === 'Cookie') return { policy, cookie: fallback.policy === 'Cookie' ? fallback.cookie : DEFAULT_COOKIE };
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
