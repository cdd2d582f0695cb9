// [issue 14] The Gateway API part of translate(): GatewayClasses, Gateways, HTTPRoutes, TLSRoutes, TCPRoutes and
// ReferenceGrants → the table's listener ports and tunnels, and every object's status. Pure, like the rest of
// translate(): the same snapshot gives the same result, whatever order its objects are listed in.
//
//  1. Our GatewayClasses and their Gateways, each listener checked on its own (gateway-listeners.ts). When this
//     translation serves every Gateway (`serve`), two Gateways on one port share it only with the same protocol
//     (HTTP and HTTPS ports merge, TLS ports merge by SNI); the younger Gateway's listener is otherwise Conflicted.
//  2. Routes, oldest first: attached to their parents (gateway-attach.ts), HTTPRoute rules turned into HttpRoutes
//     (gateway-httproute.ts), TLSRoutes and TCPRoutes into tunnels; attachedRoutes counted.
//  3. The served Gateways' attachments become the table: per HTTP(S) port, virtual hosts of the intersected
//     hostnames, routes in Gateway API precedence order (Exact path before PathPrefix, longer path, a method, more
//     headers, more query parameters, then the older route, namespace/name, rule and match order); per TLS port,
//     SNI tunnels, the oldest route keeping a hostname two routes share; per TCP port, the oldest route's tunnel
//     (the others stay Accepted and attached, as the spec says, and get no traffic).
//  4. Statuses: GatewayClasses (Accepted, supportedFeatures), Gateways (Accepted, Programmed, addresses, listeners
//     with their four conditions and attachedRoutes), routes (one entry per parentRef of ours: Accepted,
//     ResolvedRefs, PartiallyInvalid when some rules answer 500), observedGeneration everywhere.
import type { GatewayCondition, GatewayRouteKind, Namespace, ParentReference, RouteParentStatus } from '../api/gateway-api.ts';
import { GATEWAY_CONTROLLER_NAME } from '../api/gateway-api.ts';
import {
  DEFAULT_POLICY,
  type Backend,
  type Certificate,
  type HttpRoute,
  type ListenerPort,
  type Policy,
  type TunnelRoute,
  type VirtualHost,
} from '../model/table.ts';
import { ANNOTATIONS, CONNECTION_ANNOTATIONS, DRAIN_ANNOTATIONS, FRAME_ANNOTATIONS, policyFromAnnotations } from './annotations.ts';
import type { LoadedCertificate } from './certificates.ts';
import { attachRoute, type ParentResult } from './gateway-attach.ts';
import { SUPPORTED_FEATURES } from './gateway-features.ts';
import { translateHttpRules, type HttpRuleEntry } from './gateway-httproute.ts';
import {
  gatewayStatus,
  ourGatewayClasses,
  gatewayIdentity,
  readGateway,
  served,
  timestampMillis,
  type GatewayView,
  type ListenerView,
} from './gateway-listeners.ts';
import { listOf, ReferenceGrants, resolveGatewayBackends, type RouteRefReason } from './gateway-refs.ts';
import { ANY_HOST, compareHostnames, compareStrings, normalizeHostname } from './hostnames.ts';
import type { Lookup } from './lookup.ts';
import type { GatewayAPIStatuses, Snapshot } from './snapshot.ts';

export interface GatewayAPIResult {
  readonly listeners: ListenerPort[];
  readonly tunnels: TunnelRoute[];
  readonly statuses: GatewayAPIStatuses;
}

/** Whether the snapshot holds anything of the Gateway API (else translate() leaves it out of the result). */
export function hasGatewayAPI(s: Snapshot): boolean {
  return (s.gatewayClasses?.length ?? 0) + (s.gateways?.length ?? 0) + (s.httpRoutes?.length ?? 0) + (s.tlsRoutes?.length ?? 0) + (s.tcpRoutes?.length ?? 0) > 0;
}

interface RouteMeta {
  readonly kind: GatewayRouteKind;
  readonly namespace: string;
  readonly name: string;
  readonly key: string;
  readonly generation: number;
  readonly created: number;
}

interface HttpClaim {
  readonly port: number;
  readonly hostname: string;
  readonly owner: RouteMeta;
  readonly entry: HttpRuleEntry;
}

interface TunnelClaim {
  readonly owner: RouteMeta;
  readonly tunnel: TunnelRoute;
}

function metaOf(kind: GatewayRouteKind, o: { metadata?: { namespace?: string; name?: string; generation?: number; creationTimestamp?: unknown } }): RouteMeta {
  const namespace = o.metadata?.namespace || 'default';
  const name = o.metadata?.name ?? '';
  return {
    kind,
    namespace,
    name,
    key: `${namespace}/${name}`,
    generation: typeof o.metadata?.generation === 'number' ? o.metadata.generation : 0,
    created: timestampMillis(o.metadata?.creationTimestamp),
  };
}

function olderFirst(a: { created: number; key: string }, b: { created: number; key: string }): number {
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  return compareStrings(a.key, b.key);
}

function isServed(s: Snapshot, g: GatewayView): boolean {
  const which = s.gatewayServed ?? 'all';
  if (which === 'all') return true;
  if (which === 'none') return false;
  return which.namespace === g.namespace && which.name === g.name;
}

export function translateGatewayAPI(s: Snapshot, lookup: Lookup, certificates: Map<string, LoadedCertificate>): GatewayAPIResult {
  const classes = ourGatewayClasses(s.gatewayClasses ?? [], s.gatewayControllerName ?? GATEWAY_CONTROLLER_NAME, s.gatewayClassNames);
  const grants = new ReferenceGrants(s.referenceGrants ?? []);
  const namespaceLabels = new Map<string, Readonly<Record<string, string>>>(
    (s.namespaces ?? []).map((n: Namespace) => [n.metadata?.name ?? '', n.metadata?.labels ?? {}]),
  );

  // 1. Gateways of our classes, oldest first.
  const views: GatewayView[] = [];
  for (const gw of s.gateways ?? []) {
    const cls = classes.get(gw.spec?.gatewayClassName ?? '');
    if (cls === undefined) continue;
    views.push(readGatewaySafely(gw, cls.accepted, lookup, grants, certificates));
  }
  views.sort(olderFirst);
  const gateways = new Map(views.map((v) => [v.key, v]));
  if ((s.gatewayServed ?? 'all') === 'all') sharePorts(views);

  // 2. Routes.
  const httpClaims: HttpClaim[] = [];
  const tlsClaims: TunnelClaim[] = [];
  const tcpClaims: TunnelClaim[] = [];
  const routeStatuses: GatewayAPIStatuses['routes'][number][] = [];
  const routes = [
    ...(s.httpRoutes ?? []).map((r) => ({ meta: metaOf('HTTPRoute', r), obj: r })),
    ...(s.tlsRoutes ?? []).map((r) => ({ meta: metaOf('TLSRoute', r), obj: r })),
    ...(s.tcpRoutes ?? []).map((r) => ({ meta: metaOf('TCPRoute', r), obj: r })),
  ].sort((a, b) => olderFirst(a.meta, b.meta) || compareStrings(a.meta.kind, b.meta.kind));
  for (const { meta, obj } of routes) {
    // One bad route never takes the others down: what it had claimed is dropped, and it is told.
    const claimed = [httpClaims.length, tlsClaims.length, tcpClaims.length] as const;
    const attached = new Map<ListenerView, number>();
    try {
      translateRoute(meta, obj, attached);
    } catch (err) {
      httpClaims.length = claimed[0];
      tlsClaims.length = claimed[1];
      tcpClaims.length = claimed[2];
      for (const [l, n] of attached) l.attachedRoutes -= n;
      const message = `could not be translated: ${err instanceof Error ? err.message : String(err)}`;
      const parents = safeAttach(meta, obj, gateways, namespaceLabels).map((p) => ({
        parentRef: p.ref,
        controllerName: GATEWAY_CONTROLLER_NAME,
        conditions: [{ type: 'Accepted', status: 'False', reason: 'UnsupportedValue', message, observedGeneration: meta.generation } satisfies GatewayCondition],
      }));
      if (parents.length > 0) routeStatuses.push({ kind: meta.kind, namespace: meta.namespace, name: meta.name, generation: meta.generation, parents });
    }
  }

  function translateRoute(meta: RouteMeta, obj: { spec?: unknown; metadata?: { annotations?: Record<string, unknown> } }, attached: Map<ListenerView, number>): void {
    const spec = obj.spec as { parentRefs?: []; hostnames?: unknown; rules?: { backendRefs?: [] }[] } | undefined;
    const hostnameList = Array.isArray(spec?.hostnames) ? (spec.hostnames as unknown[]) : [];
    const hostnames = hostnameList.map(normalizeHostname).filter((h): h is string => h !== undefined);
    const parents = attachRoute({ kind: meta.kind, namespace: meta.namespace, parentRefs: spec?.parentRefs, hostnames }, gateways, namespaceLabels);
    if (parents.length === 0) return;
    const annotated = routePolicy(meta.kind, obj.metadata?.annotations);

    let refProblems: { reason: RouteRefReason; message: string }[];
    let invalid: { rules: readonly string[]; all: boolean } = { rules: [], all: false };
    if (meta.kind === 'HTTPRoute') {
      const rules = translateHttpRules(obj as Parameters<typeof translateHttpRules>[0], meta.namespace, meta.key, lookup, grants, annotated.policy);
      refProblems = rules.refProblems;
      invalid = { rules: rules.invalidRules, all: rules.invalidRuleCount > 0 && rules.invalidRuleCount === rules.ruleCount };
      for (const p of parents) {
        for (const a of p.attachments) {
          if (!isServed(s, a.gateway) || !served(a.listener)) continue;
          for (const hostname of a.hostnames) {
            for (const entry of rules.entries) httpClaims.push({ port: a.listener.port, hostname, owner: meta, entry });
          }
        }
      }
    } else {
      // TLSRoute and TCPRoute: every rule's backendRefs together make the tunnel's backends.
      const refs = listOf(spec?.rules).flatMap((r) => (Array.isArray(r?.backendRefs) ? r.backendRefs : []));
      const resolved = resolveGatewayBackends(refs, 'spec.rules', { kind: meta.kind, namespace: meta.namespace }, lookup, grants, false);
      refProblems = resolved.problems;
      for (const p of parents) {
        for (const a of p.attachments) {
          if (!isServed(s, a.gateway) || !served(a.listener)) continue;
          const tunnel = tunnelOf(meta, a.listener, a.hostnames, resolved.backends, annotated.policy);
          (meta.kind === 'TLSRoute' ? tlsClaims : tcpClaims).push({ owner: meta, tunnel });
        }
      }
    }
    // A route whose every rule is invalid is not accepted (its rules still answer 500); it attaches nowhere.
    if (!invalid.all) {
      for (const p of parents) {
        for (const a of p.attachments) {
          a.listener.attachedRoutes++;
          attached.set(a.listener, (attached.get(a.listener) ?? 0) + 1);
        }
      }
    }
    routeStatuses.push({
      kind: meta.kind,
      namespace: meta.namespace,
      name: meta.name,
      generation: meta.generation,
      parents: parents.map((p) => parentStatus(p, meta.generation, refProblems, invalid, annotated.problems)),
    });
  }

  // 3. The table.
  const listeners = buildListenerPorts(httpClaims, views.filter((v) => isServed(s, v)));
  const tunnels = [...resolveTlsTunnels(tlsClaims), ...resolveTcpTunnels(tcpClaims)].sort(
    (a, b) => a.port - b.port || Number(a.sniHostnames.length === 0) - Number(b.sniHostnames.length === 0) || compareStrings(a.id, b.id),
  );

  // 4. Statuses.
  const gatewayClasses = [...classes.values()]
    .map(({ cls, accepted }) => {
      const generation = typeof cls.metadata?.generation === 'number' ? cls.metadata.generation : 0;
      return {
        name: cls.metadata.name ?? '',
        generation,
        conditions: [
          { type: 'Accepted', status: accepted.ok ? 'True' : 'False', reason: accepted.reason, message: accepted.message, observedGeneration: generation },
        ] satisfies GatewayCondition[],
        supportedFeatures: accepted.ok ? [...SUPPORTED_FEATURES] : [],
      };
    })
    .sort((a, b) => compareStrings(a.name, b.name));
  const gatewayStatuses = views
    .map((v) => ({ namespace: v.namespace, name: v.name, generation: v.generation, status: gatewayStatus(v, s.gatewayInfrastructure) }))
    .sort((a, b) => compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name));
  routeStatuses.sort((a, b) => compareStrings(a.kind, b.kind) || compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name));
  return { listeners, tunnels, statuses: { gatewayClasses, gateways: gatewayStatuses, routes: routeStatuses } };
}

/** readGateway, with a Gateway that cannot be read at all made a Gateway with no listener, Accepted=False. */
function readGatewaySafely(...args: Parameters<typeof readGateway>): GatewayView {
  try {
    return readGateway(...args);
  } catch (err) {
    return {
      ...gatewayIdentity(args[0]),
      classProblem: { ok: false, reason: 'Invalid', message: `could not be translated: ${err instanceof Error ? err.message : String(err)}` },
      listeners: [],
    };
  }
}

/** The parents of a route that could not be translated, as far as they can be found. */
function safeAttach(
  meta: RouteMeta,
  obj: { spec?: unknown },
  gateways: ReadonlyMap<string, GatewayView>,
  namespaceLabels: ReadonlyMap<string, Readonly<Record<string, string>>>,
): ParentResult[] {
  try {
    const parentRefs = (obj.spec as { parentRefs?: ParentReference[] } | undefined)?.parentRefs;
    return attachRoute({ kind: meta.kind, namespace: meta.namespace, parentRefs, hostnames: [] }, gateways, namespaceLabels);
  } catch {
    return [];
  }
}

/**
 * Step 1, serving every Gateway in one process: a port belongs to the oldest Gateway listening on it; a younger one
 * shares it only with the same protocol (and not for TCP, whose port takes every connection).
 */
function sharePorts(views: readonly GatewayView[]): void {
  const owner = new Map<number, { gateway: GatewayView; listener: ListenerView }>();
  for (const g of views) {
    for (const l of g.listeners) {
      if (!l.accepted.ok || l.conflicted !== undefined) continue;
      const held = owner.get(l.port);
      if (held === undefined) {
        owner.set(l.port, { gateway: g, listener: l });
        continue;
      }
      if (held.gateway === g) continue;
      if (held.listener.protocol !== l.protocol || l.protocol === 'TCP') {
        l.conflicted = { ok: false, reason: 'ProtocolConflict', message: `port ${l.port} is already served for Gateway ${held.gateway.key} (${held.listener.protocol})` };
      }
    }
  }
}

/**
 * One parent's entry: Accepted (from the attachment; False with UnsupportedValue when every rule is invalid),
 * ResolvedRefs (the first backendRef problem's reason, every problem in the message), and PartiallyInvalid when some
 * rules, not all, answer 500 for what they ask that wsgate does not support.
 */
function parentStatus(
  p: ParentResult,
  generation: number,
  refProblems: readonly { reason: RouteRefReason; message: string }[],
  invalid: { readonly rules: readonly string[]; readonly all: boolean },
  policyProblems: readonly string[] = [],
): RouteParentStatus {
  const cond = (type: string, ok: boolean, reason: string, message: string): GatewayCondition => ({
    type,
    status: ok ? 'True' : 'False',
    reason,
    message,
    observedGeneration: generation,
  });
  const accepted =
    p.accepted.ok && invalid.all
      ? cond('Accepted', false, 'UnsupportedValue', `no rule is served (each answers 500): ${invalid.rules.join('; ')}`)
      : cond('Accepted', p.accepted.ok, p.accepted.reason, p.accepted.message);
  const first = refProblems[0];
  const conditions = [
    accepted,
    first === undefined
      ? cond('ResolvedRefs', true, 'ResolvedRefs', 'all references are resolved')
      : cond('ResolvedRefs', false, first.reason, refProblems.map((x) => x.message).join('; ')),
  ];
  if (invalid.rules.length > 0 && !invalid.all) {
    conditions.push(cond('PartiallyInvalid', true, 'UnsupportedValue', `rules not served as written (they answer 500, or their match matches nothing): ${invalid.rules.join('; ')}`));
  }
  if (policyProblems.length > 0) {
    // An implementation-specific condition (a domain-prefixed type, as the spec allows): the route is served, with
    // the default of each knob whose annotation is bad.
    conditions.push(cond(POLICY_CONDITION, false, 'InvalidAnnotation', policyProblems.join('; ')));
  }
  return { parentRef: p.ref, controllerName: GATEWAY_CONTROLLER_NAME, conditions };
}

/** The condition a route's parent status carries when one of its `wsgate.io/*` policy annotations is bad. */
export const POLICY_CONDITION = 'wsgate.io/PolicyAccepted';

/**
 * The policy a route's `wsgate.io/*` annotations give (docs/gateway-api.md "Route policy"): the connection, frame
 * and drain knobs of an Ingress, read by the same code (annotations.ts). Only those: what the Gateway API says with
 * filters and matches (redirects, header changes) is said there, and the edge knobs of issue 12 stay Ingress-only.
 * TLSRoutes and TCPRoutes read the knobs a tunnel has (idle and connect timeouts, maxConnections, drain).
 */
function routePolicy(kind: GatewayRouteKind, annotations: Record<string, unknown> | undefined): { policy: Policy; problems: string[] } {
  if (annotations === undefined) return { policy: DEFAULT_POLICY, problems: [] };
  const readable = kind === 'HTTPRoute' ? HTTP_ROUTE_ANNOTATIONS : TUNNEL_ROUTE_ANNOTATIONS;
  const picked: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, value] of Object.entries(annotations)) {
    if (readable.has(name)) picked[name] = value;
    else if (KNOWN_ANNOTATIONS.has(name)) problems.push(`annotation ${name}: not read on a ${kind} (ignored)`);
  }
  const annotated = policyFromAnnotations(picked);
  return { policy: annotated.policy, problems: [...problems, ...annotated.problems] };
}

const HTTP_ROUTE_ANNOTATIONS: ReadonlySet<string> = new Set([
  ...Object.values(CONNECTION_ANNOTATIONS),
  ...Object.values(FRAME_ANNOTATIONS),
  ...Object.values(DRAIN_ANNOTATIONS),
]);
const TUNNEL_ROUTE_ANNOTATIONS: ReadonlySet<string> = new Set([
  CONNECTION_ANNOTATIONS.idleTimeoutSeconds,
  CONNECTION_ANNOTATIONS.connectTimeoutSeconds,
  CONNECTION_ANNOTATIONS.maxConnections,
  DRAIN_ANNOTATIONS.endpointDrainSeconds,
  DRAIN_ANNOTATIONS.onRemoval,
  DRAIN_ANNOTATIONS.removalGraceSeconds,
]);
const KNOWN_ANNOTATIONS: ReadonlySet<string> = new Set(Object.values(ANNOTATIONS));

function tunnelOf(owner: RouteMeta, l: ListenerView, hostnames: readonly string[], backends: readonly Backend[], policy: Policy = DEFAULT_POLICY): TunnelRoute {
  const sni = owner.kind === 'TLSRoute' ? hostnames.filter((h) => h !== ANY_HOST).sort(compareHostnames) : [];
  return {
    id: `${owner.kind}/${owner.key}`,
    route: owner.key,
    port: l.port,
    sniHostnames: sni,
    backends: [...backends],
    proxyProtocol: 'None',
    idleTimeoutSeconds: policy.idleTimeoutSeconds,
    connectTimeoutSeconds: policy.connectTimeoutSeconds,
    maxConnections: policy.maxConnections,
    endpointDrainSeconds: policy.endpointDrainSeconds,
    onRemoval: policy.onRemoval,
    ...(owner.kind === 'TLSRoute' ? { wildcardAnyDepth: true as const } : {}),
    weightPerBackend: true,
  };
}

/** TLS ports: the oldest route keeps each SNI name; a route left with none is not served there. */
function resolveTlsTunnels(claims: readonly TunnelClaim[]): TunnelRoute[] {
  const taken = new Map<string, Set<string>>(); // port → names ('' = the plain tunnel)
  const out: TunnelRoute[] = [];
  for (const c of [...claims].sort((a, b) => olderFirst(a.owner, b.owner) || a.tunnel.port - b.tunnel.port)) {
    const key = String(c.tunnel.port);
    const names = taken.get(key) ?? new Set<string>();
    taken.set(key, names);
    const wanted = c.tunnel.sniHostnames.length === 0 ? [''] : c.tunnel.sniHostnames;
    const free = wanted.filter((n) => !names.has(n));
    if (free.length === 0) continue;
    for (const n of free) names.add(n);
    const merged = out.find((t) => t.id === c.tunnel.id && t.port === c.tunnel.port);
    const sniHostnames = free.filter((n) => n !== '');
    if (merged !== undefined) {
      out[out.indexOf(merged)] = { ...merged, sniHostnames: [...merged.sniHostnames, ...sniHostnames].sort(compareHostnames) };
    } else out.push({ ...c.tunnel, sniHostnames });
  }
  return out;
}

/** TCP ports: the oldest route's tunnel. */
function resolveTcpTunnels(claims: readonly TunnelClaim[]): TunnelRoute[] {
  const byPort = new Map<number, TunnelRoute>();
  for (const c of [...claims].sort((a, b) => olderFirst(a.owner, b.owner))) if (!byPort.has(c.tunnel.port)) byPort.set(c.tunnel.port, c.tunnel);
  return [...byPort.values()];
}

function compareHttpClaims(a: HttpClaim, b: HttpClaim): number {
  const ra = a.entry.route;
  const rb = b.entry.route;
  if (ra.pathType !== rb.pathType) return ra.pathType === 'Exact' ? -1 : 1;
  return (
    rb.path.length - ra.path.length ||
    Number(rb.match?.method !== undefined) - Number(ra.match?.method !== undefined) ||
    (rb.match?.headers.length ?? 0) - (ra.match?.headers.length ?? 0) ||
    (rb.match?.queryParams.length ?? 0) - (ra.match?.queryParams.length ?? 0) ||
    olderFirst(a.owner, b.owner) ||
    a.entry.rule - b.entry.rule ||
    a.entry.match - b.entry.match
  );
}

/** Step 3: the HTTP and HTTPS ports of the served Gateways, with their virtual hosts and certificates. */
function buildListenerPorts(claims: readonly HttpClaim[], servedGateways: readonly GatewayView[]): ListenerPort[] {
  const ports = new Map<number, { protocol: 'HTTP' | 'HTTPS'; certificates: Map<string, Certificate & { hostnames: string[] }> }>();
  for (const g of servedGateways) {
    for (const l of g.listeners) {
      if (!served(l) || (l.protocol !== 'HTTP' && l.protocol !== 'HTTPS')) continue;
      const port = ports.get(l.port) ?? { protocol: l.protocol, certificates: new Map<string, Certificate & { hostnames: string[] }>() };
      ports.set(l.port, port);
      if (l.certificate !== undefined) {
        const c = port.certificates.get(l.certificate.secret) ?? { ...l.certificate, hostnames: [] };
        const h = l.hostname ?? ANY_HOST;
        if (!c.hostnames.includes(h)) c.hostnames.push(h);
        port.certificates.set(l.certificate.secret, c);
      }
    }
  }
  const byPortHost = new Map<number, Map<string, HttpClaim[]>>();
  for (const c of claims) {
    if (!ports.has(c.port)) continue;
    const hosts = byPortHost.get(c.port) ?? new Map<string, HttpClaim[]>();
    byPortHost.set(c.port, hosts);
    const list = hosts.get(c.hostname) ?? [];
    // A route attached through two listeners of one port to the same hostname is there once.
    if (!list.some((x) => x.entry === c.entry)) list.push(c);
    hosts.set(c.hostname, list);
  }
  return [...ports.entries()]
    .sort(([a], [b]) => a - b)
    .map(([port, p]): ListenerPort => {
      const hosts = byPortHost.get(port) ?? new Map<string, HttpClaim[]>();
      const virtualHosts: VirtualHost[] = [...hosts.entries()]
        .sort(([a], [b]) => compareHostnames(a, b))
        .map(([hostname, list]) => ({ hostname, routes: list.sort(compareHttpClaims).map((c): HttpRoute => c.entry.route) }));
      // The certificate for any host (a listener without hostname) first: it is the port's default.
      const certificates = [...p.certificates.values()]
        .map((c) => ({ ...c, hostnames: c.hostnames.sort(compareHostnames) }))
        .sort((a, b) => Number(b.hostnames.includes(ANY_HOST)) - Number(a.hostnames.includes(ANY_HOST)) || compareStrings(a.secret, b.secret));
      return { port, protocol: p.protocol, virtualHosts, certificates };
    });
}
