// The injection as a pure function: a Pod (as the API server sends it in an AdmissionReview) and the injector's
// options in, a JSONPatch and the reason out. No I/O, no logger, no clock: the server (server.ts) logs and counts
// what this returns, and table tests pin it (test/webhook/mutate.test.ts).
//
// A Pod annotated `wsgate.io/inject: "true"` gets wsgate as a native sidecar: an init container with
// `restartPolicy: Always`, so that the kubelet starts it before the app containers and stops it after them. Anything
// else (no annotation, a bad value, a pod that already has the sidecar) leaves the Pod unchanged: the answer says
// why, and the admission is still allowed.
import { ANNOTATION_PREFIX } from '../api/types.ts';
import { DEFAULT_POLICY, type Policy } from '../model/table.ts';
import { CONNECTION_ANNOTATIONS, DRAIN_ANNOTATIONS, FRAME_ANNOTATIONS, policyFromAnnotations } from '../translate/annotations.ts';

/**
 * The Pod annotations the injector reads. The policy ones are the Ingress annotations (README), but for the drain
 * ones (endpoint drain, removal, rebalance): a sidecar has one fixed upstream and one route that is never removed, so
 * those are neither checked nor passed on (IGNORED_ANNOTATIONS). Refusing them would leave the pod without its sidecar.
 */
export const SIDECAR_ANNOTATIONS = {
  /** "true" injects; absent or "false" does not. */
  inject: `${ANNOTATION_PREFIX}inject`,
  /** The app's port: a number, or the name of a container port of the Pod. Required. */
  upstreamPort: `${ANNOTATION_PREFIX}upstream-port`,
  /** The sidecar's listening port, the container port named `wsgate` (default InjectOptions.listenPort). */
  listenPort: `${ANNOTATION_PREFIX}listen-port`,
  /** The sidecar's admin port (/metrics, /readyz), named `wsgate-admin` (default InjectOptions.adminPort). */
  adminPort: `${ANNOTATION_PREFIX}admin-port`,
  /** The route label in metrics and logs (default: the pod's name). */
  routeName: `${ANNOTATION_PREFIX}route-name`,
  /** Seconds between SIGTERM and the listener closing (the sidecar's --drain-delay, default 5). */
  drainDelaySeconds: `${ANNOTATION_PREFIX}drain-delay-seconds`,
  /** Seconds open tunnels then get before they are closed (the sidecar's --drain-timeout, default 30). */
  drainTimeoutSeconds: `${ANNOTATION_PREFIX}drain-timeout-seconds`,
  ...CONNECTION_ANNOTATIONS,
  ...FRAME_ANNOTATIONS,
} as const;

const IGNORED_ANNOTATIONS: ReadonlySet<string> = new Set(Object.values(DRAIN_ANNOTATIONS));

/** The name of the injected container; a Pod with a container of this name is not injected again. */
export const SIDECAR_CONTAINER = 'wsgate';
export const SIDECAR_PORT_NAME = 'wsgate';
export const SIDECAR_ADMIN_PORT_NAME = 'wsgate-admin';

export interface InjectOptions {
  /** The wsgate image the sidecar runs (its entrypoint is `wsgate`). */
  readonly image: string;
  /** [imagePullPolicy='IfNotPresent'] */
  readonly imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** [listenPort=8800] The sidecar's port when the Pod does not say `wsgate.io/listen-port`. */
  readonly listenPort?: number;
  /** [adminPort=9800] The admin port when the Pod does not say `wsgate.io/admin-port`. */
  readonly adminPort?: number;
  /** Resource requests (and limits) of the sidecar, Kubernetes quantities: `{ requests: { cpu: '50m' } }`. */
  readonly resources: {
    readonly requests: Readonly<Record<string, string>>;
    readonly limits?: Readonly<Record<string, string>>;
  };
  /** [runAsUser=65532] The non-root user (and group) the sidecar runs as: the chart's controller's. */
  readonly runAsUser?: number;
}

export const INJECT_DEFAULTS = { listenPort: 8800, adminPort: 9800, runAsUser: 65532 } as const;

/**
 * What the sidecar's drain takes, for the pod's grace period: its --drain-delay and --drain-timeout defaults
 * (src/sidecar/cli.ts, seconds), and the close handshakes it waits for after the timeout before it cuts them
 * (ws-session.ts CLOSE_HANDSHAKE_TIMEOUT_MS). Tests keep them in step; not imported, to keep the proxy out of the
 * injector.
 */
export const SIDECAR_DRAIN = { delaySeconds: 5, timeoutSeconds: 30, closeHandshakeSeconds: 5 } as const;
/** Seconds added to what the drain needs when the grace period is raised: the exit, the log's last lines. */
export const GRACE_MARGIN_SECONDS = 10;
/** The kubelet's grace period when a Pod gives none. */
const DEFAULT_GRACE_SECONDS = 30;

/** How an admission ended, as counted in wsgate_webhook_admissions_total{result}. */
export type InjectResult = 'injected' | 'not_annotated' | 'already_injected' | 'bad_annotation';

export interface JsonPatchOperation {
  /** `add` on a member that exists replaces it (RFC 6902 4.1). */
  readonly op: 'add';
  readonly path: string;
  readonly value: unknown;
}

export interface Mutation {
  readonly result: InjectResult;
  /** One sentence for the log: what was done, or why nothing was. */
  readonly reason: string;
  /** Empty unless result is `injected`. */
  readonly patch: readonly JsonPatchOperation[];
}

// The parts of a Pod the injector reads. Everything else passes through untouched.
export interface PodPort {
  readonly name?: string;
  readonly containerPort: number;
}
export interface PodContainer {
  readonly name: string;
  readonly ports?: readonly PodPort[];
  readonly restartPolicy?: string;
}
export interface Pod {
  readonly metadata?: { readonly name?: string; readonly generateName?: string; readonly annotations?: Readonly<Record<string, string>> };
  readonly spec?: {
    readonly containers?: readonly PodContainer[];
    readonly initContainers?: readonly PodContainer[];
    readonly terminationGracePeriodSeconds?: number;
  };
}

/** The sidecar container and the patch that adds it, or the reason the Pod stays as it is. */
export function mutatePod(pod: Pod, options: InjectOptions): Mutation {
  const annotations = pod.metadata?.annotations ?? {};
  const unchanged = (result: Exclude<InjectResult, 'injected'>, reason: string): Mutation => ({ result, reason, patch: [] });

  // 1. Asked for?
  const inject = annotations[SIDECAR_ANNOTATIONS.inject];
  if (inject === undefined) return unchanged('not_annotated', `no ${SIDECAR_ANNOTATIONS.inject} annotation`);
  if (inject === 'false') return unchanged('not_annotated', `${SIDECAR_ANNOTATIONS.inject} is "false"`);
  if (inject !== 'true') {
    return unchanged('bad_annotation', `${SIDECAR_ANNOTATIONS.inject}: ${JSON.stringify(inject)} is neither "true" nor "false"`);
  }

  // 2. Already there? (A reinvocation, or a Pod spec copied from one that was injected.)
  const containers = pod.spec?.containers ?? [];
  const initContainers = pod.spec?.initContainers ?? [];
  if ([...containers, ...initContainers].some((c) => c.name === SIDECAR_CONTAINER)) {
    return unchanged('already_injected', `the pod already has a container named ${SIDECAR_CONTAINER}`);
  }

  // 3. Every annotation checked; all problems reported at once.
  const problems: string[] = [];
  const declared = declaredPorts(containers, initContainers);
  const upstreamPort = resolveUpstreamPort(annotations[SIDECAR_ANNOTATIONS.upstreamPort], declared, problems);
  const listenPort = portAnnotation(annotations, SIDECAR_ANNOTATIONS.listenPort, options.listenPort ?? INJECT_DEFAULTS.listenPort, problems);
  const adminPort = portAnnotation(annotations, SIDECAR_ANNOTATIONS.adminPort, options.adminPort ?? INJECT_DEFAULTS.adminPort, problems);
  const drainDelay = secondsAnnotation(annotations, SIDECAR_ANNOTATIONS.drainDelaySeconds, problems);
  const drainTimeout = secondsAnnotation(annotations, SIDECAR_ANNOTATIONS.drainTimeoutSeconds, problems);
  const routeName = annotations[SIDECAR_ANNOTATIONS.routeName];
  if (routeName !== undefined && !/^[A-Za-z0-9]([-A-Za-z0-9_./]{0,251}[A-Za-z0-9])?$/.test(routeName)) {
    problems.push(`${SIDECAR_ANNOTATIONS.routeName}: ${JSON.stringify(routeName)} is not letters, digits and - _ . /`);
  }
  const { policy, problems: policyProblems } = policyFromAnnotations(
    Object.fromEntries(Object.entries(annotations).filter(([k]) => !IGNORED_ANNOTATIONS.has(k))),
  );
  // policyFromAnnotations says "using the default": an Ingress still serves, but a sidecar is not injected half-set.
  problems.push(...policyProblems.map((p) => p.replace(/ \(using the default [^)]*\)$/, '')));
  if (annotations[SIDECAR_ANNOTATIONS.connectTimeoutSeconds] !== undefined && policy.connectTimeoutSeconds <= 0) {
    problems.push(`${SIDECAR_ANNOTATIONS.connectTimeoutSeconds}: must be at least 1`);
  }

  // 4. Ports that clash with each other or with the app's.
  const mine: [string, number | undefined][] = [
    [SIDECAR_ANNOTATIONS.listenPort, listenPort],
    [SIDECAR_ANNOTATIONS.adminPort, adminPort],
  ];
  for (const [annotation, port] of mine) {
    if (port === undefined) continue;
    if (port === upstreamPort) problems.push(`${annotation}: ${port} is the upstream port; choose another`);
    const owner = declared.find((d) => d.containerPort === port);
    if (owner) problems.push(`${annotation}: ${port} is already a port of container ${owner.container}; choose another`);
  }
  if (listenPort !== undefined && listenPort === adminPort) {
    problems.push(`${SIDECAR_ANNOTATIONS.listenPort} and ${SIDECAR_ANNOTATIONS.adminPort} are both ${listenPort}`);
  }
  for (const name of [SIDECAR_PORT_NAME, SIDECAR_ADMIN_PORT_NAME]) {
    const owner = declared.find((d) => d.name === name);
    if (owner) problems.push(`container ${owner.container} already has a port named ${name}`);
  }
  if (problems.length > 0 || upstreamPort === undefined || listenPort === undefined || adminPort === undefined) {
    return unchanged('bad_annotation', problems.join('; '));
  }

  // 5. The sidecar's arguments: only what differs from its defaults, so the Pod spec reads as what was asked.
  const args = ['sidecar', `--upstream=127.0.0.1:${upstreamPort}`, `--listen=0.0.0.0:${listenPort}`, `--admin-addr=0.0.0.0:${adminPort}`];
  if (routeName !== undefined) args.push(`--name=${routeName}`);
  for (const o of policy.allowedOrigins) args.push(`--allowed-origin=${o}`);
  for (const p of policy.subprotocols) args.push(`--subprotocol=${p}`);
  if (policy.maxConnections > 0) args.push(`--max-connections=${policy.maxConnections}`);
  if (policy.maxConnectionsPerClient > 0) args.push(`--max-connections-per-client=${policy.maxConnectionsPerClient}`);
  if (policy.idleTimeoutSeconds > 0) args.push(`--idle-timeout=${policy.idleTimeoutSeconds}s`);
  if (policy.connectTimeoutSeconds !== DEFAULT_POLICY.connectTimeoutSeconds) args.push(`--connect-timeout=${policy.connectTimeoutSeconds}s`);
  args.push(...frameFlags(policy));
  if (drainDelay !== undefined) args.push(`--drain-delay=${drainDelay}s`);
  if (drainTimeout !== undefined) args.push(`--drain-timeout=${drainTimeout}s`);

  const container = sidecarContainer(options, args, listenPort, adminPort);
  const patch: JsonPatchOperation[] =
    pod.spec?.initContainers === undefined
      ? [{ op: 'add', path: '/spec/initContainers', value: [container] }]
      : // Last: the app's own init containers (migrations, ...) run first; the sidecar starts right before the app.
        [{ op: 'add', path: '/spec/initContainers/-', value: container }];
  let reason = `sidecar in front of port ${upstreamPort}, listening on ${listenPort}`;

  // 6. A grace period long enough for the sidecar's drain. The kubelet stops a native sidecar after the app
  //    containers, within the same grace period; a pod that leaves it at 30 s would have the sidecar killed in
  //    the middle of its default 5 + 30 + 5 s drain, its clients cut with no close frame. A longer grace period
  //    costs nothing when the containers stop sooner, so a shorter one is raised; the app's own shutdown, which
  //    comes first, is the pod author's to add (docs/sidecar.md).
  const needed = (drainDelay ?? SIDECAR_DRAIN.delaySeconds) + (drainTimeout ?? SIDECAR_DRAIN.timeoutSeconds) + SIDECAR_DRAIN.closeHandshakeSeconds;
  const grace = pod.spec?.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS;
  if (grace < needed) {
    patch.push({ op: 'add', path: '/spec/terminationGracePeriodSeconds', value: needed + GRACE_MARGIN_SECONDS });
    reason += `; terminationGracePeriodSeconds raised from ${grace} to ${needed + GRACE_MARGIN_SECONDS} for the sidecar's drain`;
  }
  return { result: 'injected', reason, patch };
}

/** The sidecar flags of the frame knobs that differ from the defaults, in the order of `wsgate sidecar --help`. */
function frameFlags(policy: Policy): string[] {
  const d = DEFAULT_POLICY;
  const out: string[] = [];
  if (!policy.inspectFrames) out.push('--no-inspect-frames');
  if (policy.keepalive.intervalSeconds !== d.keepalive.intervalSeconds) out.push(`--keepalive-interval=${policy.keepalive.intervalSeconds}s`);
  if (policy.keepalive.timeoutSeconds !== d.keepalive.timeoutSeconds) out.push(`--keepalive-timeout=${policy.keepalive.timeoutSeconds}s`);
  if (policy.keepalive.toBackend) out.push('--keepalive-to-backend');
  if (policy.maxMessageBytes > 0) out.push(`--max-message-bytes=${policy.maxMessageBytes}`);
  if (policy.maxBackendMessageBytes > 0) out.push(`--max-backend-message-bytes=${policy.maxBackendMessageBytes}`);
  if (policy.maxMessagesPerSecond > 0) out.push(`--max-messages-per-second=${policy.maxMessagesPerSecond}`);
  if (policy.onExceed !== d.onExceed) out.push(`--on-exceed=${policy.onExceed}`);
  if (!policy.strict) out.push('--no-strict');
  return out;
}

/** The native sidecar: restartPolicy Always in initContainers. Security context as the chart's controller. */
export function sidecarContainer(options: InjectOptions, args: readonly string[], listenPort: number, adminPort: number): Record<string, unknown> {
  const runAsUser = options.runAsUser ?? INJECT_DEFAULTS.runAsUser;
  return {
    name: SIDECAR_CONTAINER,
    image: options.image,
    imagePullPolicy: options.imagePullPolicy ?? 'IfNotPresent',
    restartPolicy: 'Always',
    args: [...args],
    env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
    ports: [
      { name: SIDECAR_PORT_NAME, containerPort: listenPort, protocol: 'TCP' },
      { name: SIDECAR_ADMIN_PORT_NAME, containerPort: adminPort, protocol: 'TCP' },
    ],
    // Ready while the app's port accepts connections and the sidecar is not draining (the sidecar's /readyz).
    readinessProbe: { httpGet: { path: '/readyz', port: SIDECAR_ADMIN_PORT_NAME }, periodSeconds: 2, failureThreshold: 1 },
    livenessProbe: { httpGet: { path: '/healthz', port: SIDECAR_ADMIN_PORT_NAME }, periodSeconds: 10, failureThreshold: 3 },
    resources: {
      requests: { ...options.resources.requests },
      ...(options.resources.limits ? { limits: { ...options.resources.limits } } : {}),
    },
    securityContext: {
      runAsNonRoot: true,
      runAsUser,
      runAsGroup: runAsUser,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
}

interface DeclaredPort {
  readonly container: string;
  readonly name: string | undefined;
  readonly containerPort: number;
}

/** Ports of the app containers and of the native sidecars already there (both share the pod's network). */
function declaredPorts(containers: readonly PodContainer[], initContainers: readonly PodContainer[]): DeclaredPort[] {
  const running = [...containers, ...initContainers.filter((c) => c.restartPolicy === 'Always')];
  return running.flatMap((c) => (c.ports ?? []).map((p) => ({ container: c.name, name: p.name, containerPort: p.containerPort })));
}

function resolveUpstreamPort(value: string | undefined, declared: readonly DeclaredPort[], problems: string[]): number | undefined {
  const name = SIDECAR_ANNOTATIONS.upstreamPort;
  if (value === undefined) {
    problems.push(`${name} is required: the port the app listens on (a number, or a container port's name)`);
    return undefined;
  }
  if (/^\d+$/.test(value)) {
    const n = Number(value);
    if (n >= 1 && n <= 65535) return n;
    problems.push(`${name}: ${value} is not a port from 1 to 65535`);
    return undefined;
  }
  const byName = declared.find((d) => d.name === value);
  if (byName) return byName.containerPort;
  problems.push(`${name}: ${JSON.stringify(value)} is neither a port number nor the name of a container port of the pod`);
  return undefined;
}

function portAnnotation(a: Readonly<Record<string, string>>, name: string, fallback: number, problems: string[]): number | undefined {
  const v = a[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (/^\d+$/.test(v) && n >= 1 && n <= 65535) return n;
  problems.push(`${name}: ${JSON.stringify(v)} is not a port from 1 to 65535`);
  return undefined;
}

function secondsAnnotation(a: Readonly<Record<string, string>>, name: string, problems: string[]): number | undefined {
  const v = a[name];
  if (v === undefined) return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  problems.push(`${name}: ${JSON.stringify(v)} is not a whole number of seconds >= 0`);
  return undefined;
}
