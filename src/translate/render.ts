// A TranslateResult as stable YAML: for golden files and `wsgate translate`. Keys come in a fixed order and every
// list is already sorted by translate(), so equal results render to equal text. Certificates are shown by Secret,
// hostnames and the SHA-256 fingerprint of the leaf certificate, never by PEM (keys must not land in a terminal or a
// diff). Endpoints are `address:port` (`[v6]:port`). A route's policy shows only the knobs that differ from
// DEFAULT_POLICY (src/model/table.ts), so `policy: {}` is the default policy; a nested knob (keepalive, onRemoval,
// rebalance) that differs in any member is shown whole, as the data plane reads it. A tunnel shows its other fields
// always, and endpointDrainSeconds and onRemoval only when they differ from the defaults. Lists of plain values print
// on one line.
import { X509Certificate } from 'node:crypto';
import { Document, isScalar, visit } from 'yaml';
import {
  DEFAULT_POLICY,
  type Backend,
  type Certificate,
  type HeaderModifier,
  type HttpRoute,
  type ListenerPort,
  type RequestMatch,
  type RouteFilters,
  type ValueMatch,
  type LoadBalancing,
  type PassthroughRoute,
  type Policy,
  type TunnelRoute,
} from '../model/table.ts';
import type { GatewayCondition } from '../api/gateway-api.ts';
import type { GatewayAPIStatuses, ObjectStatus, TranslateResult } from './snapshot.ts';

export function renderResult(result: TranslateResult): string {
  const doc = {
    virtualHosts: result.table.virtualHosts.map((vh) => ({ hostname: vh.hostname, routes: vh.routes.map(renderRoute) })),
    certificates: result.table.certificates.map(renderCertificate),
    tunnels: result.table.tunnels.map(renderTunnel),
    // Only when there is one: tables without ssl-passthrough render as before.
    ...((result.table.passthrough ?? []).length > 0 ? { passthrough: (result.table.passthrough ?? []).map(renderPassthrough) } : {}),
    // [issue 14] Only when there are Gateway API objects.
    ...(result.table.listeners !== undefined ? { listeners: result.table.listeners.map(renderListenerPort) } : {}),
    statuses: result.statuses.map(renderStatus),
    ...(result.gatewayAPI !== undefined ? { gatewayAPI: renderGatewayAPI(result.gatewayAPI) } : {}),
  };
  const yaml = new Document(doc);
  visit(yaml, {
    Seq(_, node) {
      if (node.items.every((item) => isScalar(item))) node.flow = true;
    },
  });
  return yaml.toString({ lineWidth: 0, flowCollectionPadding: false });
}

function renderRoute(r: HttpRoute): object {
  return {
    id: r.id,
    route: r.route,
    pathType: r.pathType,
    path: r.path,
    // [issue 14] The Gateway API's additions, when present.
    ...(r.match !== undefined ? { match: renderMatch(r.match) } : {}),
    ...(r.filters !== undefined ? { filters: renderFilters(r.filters) } : {}),
    ...(r.requestTimeoutSeconds !== undefined ? { requestTimeoutSeconds: r.requestTimeoutSeconds } : {}),
    ...(r.weightPerBackend === true ? { weightPerBackend: true } : {}),
    backends: r.backends.map(renderBackend),
    policy: renderPolicy(r.policy),
  };
}

function renderBackend(b: Backend): object {
  return {
    name: b.name,
    weight: b.weight,
    ...(b.invalid === true ? { invalid: true } : {}),
    endpoints: b.endpoints.map((e) => (e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`)),
  };
}

/** [issue 14] `name=value` (regular expressions as `name~value`) on one line each. */
function renderMatch(m: RequestMatch): object {
  const values = (list: readonly ValueMatch[]): string[] => list.map((v) => `${v.name}${v.type === 'Exact' ? '=' : '~'}${v.value}`);
  return {
    ...(m.method !== undefined ? { method: m.method } : {}),
    ...(m.headers.length > 0 ? { headers: values(m.headers) } : {}),
    ...(m.queryParams.length > 0 ? { queryParams: values(m.queryParams) } : {}),
  };
}

function renderFilters(f: RouteFilters): object {
  const mod = (h: HeaderModifier): object => ({
    ...(h.set.length > 0 ? { set: h.set.map(([n, v]) => `${n}: ${v}`) } : {}),
    ...(h.add.length > 0 ? { add: h.add.map(([n, v]) => `${n}: ${v}`) } : {}),
    ...(h.remove.length > 0 ? { remove: [...h.remove] } : {}),
  });
  return {
    ...(f.directStatus !== undefined ? { directStatus: f.directStatus } : {}),
    ...(f.requestHeaders !== undefined ? { requestHeaders: mod(f.requestHeaders) } : {}),
    ...(f.responseHeaders !== undefined ? { responseHeaders: mod(f.responseHeaders) } : {}),
    ...(f.redirect !== undefined ? { redirect: { ...f.redirect, ...(f.redirect.path ? { path: { ...f.redirect.path } } : {}) } } : {}),
    ...(f.rewrite !== undefined ? { rewrite: { ...f.rewrite, ...(f.rewrite.path ? { path: { ...f.rewrite.path } } : {}) } } : {}),
  };
}

function renderListenerPort(l: ListenerPort): object {
  return {
    port: l.port,
    protocol: l.protocol,
    ...(l.certificates.length > 0 ? { certificates: l.certificates.map(renderCertificate) } : {}),
    virtualHosts: l.virtualHosts.map((vh) => ({ hostname: vh.hostname, routes: vh.routes.map(renderRoute) })),
  };
}

/** Conditions as type, status, reason, message (observedGeneration once, on the object). */
function renderConditions(list: readonly GatewayCondition[]): object[] {
  return list.map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message }));
}

function renderGatewayAPI(g: GatewayAPIStatuses): object {
  return {
    gatewayClasses: g.gatewayClasses.map((c) => ({
      name: c.name,
      observedGeneration: c.generation,
      conditions: renderConditions(c.conditions),
      supportedFeatures: [...c.supportedFeatures],
    })),
    gateways: g.gateways.map((gw) => ({
      namespace: gw.namespace,
      name: gw.name,
      observedGeneration: gw.generation,
      addresses: gw.status.addresses.map((a) => `${a.type}:${a.value}`),
      conditions: renderConditions(gw.status.conditions),
      listeners: gw.status.listeners.map((l) => ({
        name: l.name,
        supportedKinds: l.supportedKinds.map((k) => k.kind),
        attachedRoutes: l.attachedRoutes,
        conditions: renderConditions(l.conditions),
      })),
    })),
    routes: g.routes.map((r) => ({
      kind: r.kind,
      namespace: r.namespace,
      name: r.name,
      observedGeneration: r.generation,
      parents: r.parents.map((p) => ({
        parentRef: `${p.parentRef.namespace}/${p.parentRef.name}${p.parentRef.sectionName !== undefined ? `#${p.parentRef.sectionName}` : ''}${p.parentRef.port !== undefined ? `:${p.parentRef.port}` : ''}`,
        conditions: renderConditions(p.conditions),
      })),
    })),
  };
}

function renderPolicy(p: Policy): object {
  const out: Record<string, unknown> = {};
  const d = DEFAULT_POLICY;
  if (p.idleTimeoutSeconds !== d.idleTimeoutSeconds) out['idleTimeoutSeconds'] = p.idleTimeoutSeconds;
  if (p.connectTimeoutSeconds !== d.connectTimeoutSeconds) out['connectTimeoutSeconds'] = p.connectTimeoutSeconds;
  if (p.responseHeaderTimeoutSeconds !== d.responseHeaderTimeoutSeconds) {
    out['responseHeaderTimeoutSeconds'] = p.responseHeaderTimeoutSeconds;
  }
  if (p.maxConnections !== d.maxConnections) out['maxConnections'] = p.maxConnections;
  if (p.maxConnectionsPerClient !== d.maxConnectionsPerClient) out['maxConnectionsPerClient'] = p.maxConnectionsPerClient;
  if (p.allowedOrigins.length > 0) out['allowedOrigins'] = [...p.allowedOrigins];
  if (p.subprotocols.length > 0) out['subprotocols'] = [...p.subprotocols];
  if (p.loadBalancing.policy !== d.loadBalancing.policy) out['loadBalancing'] = renderLoadBalancing(p.loadBalancing);
  if (p.inspectFrames !== d.inspectFrames) out['inspectFrames'] = p.inspectFrames;
  if (!sameMembers(p.keepalive, d.keepalive)) out['keepalive'] = { ...p.keepalive };
  if (p.maxMessageBytes !== d.maxMessageBytes) out['maxMessageBytes'] = p.maxMessageBytes;
  if (p.maxBackendMessageBytes !== d.maxBackendMessageBytes) out['maxBackendMessageBytes'] = p.maxBackendMessageBytes;
  if (p.maxMessagesPerSecond !== d.maxMessagesPerSecond) out['maxMessagesPerSecond'] = p.maxMessagesPerSecond;
  if (p.onExceed !== d.onExceed) out['onExceed'] = p.onExceed;
  if (p.strict !== d.strict) out['strict'] = p.strict;
  renderDrain(p, out);
  if (!sameMembers(p.rebalance, d.rebalance)) out['rebalance'] = { ...p.rebalance };
  renderEdge(p, out);
  return out;
}

/** The edge-policy knobs (issue 12), when they differ from the defaults. A CA is shown by its Secret, never as PEM. */
function renderEdge(p: Policy, out: Record<string, unknown>): void {
  const d = DEFAULT_POLICY;
  if (p.allowedSourceRanges.length > 0) out['allowedSourceRanges'] = [...p.allowedSourceRanges];
  if (p.deniedSourceRanges.length > 0) out['deniedSourceRanges'] = [...p.deniedSourceRanges];
  if (!sameMembers(p.httpsRedirect, d.httpsRedirect)) out['httpsRedirect'] = { ...p.httpsRedirect };
  if (!sameMembers(p.hsts, d.hsts)) out['hsts'] = { ...p.hsts };
  if (!sameMembers(p.rateLimit, d.rateLimit)) out['rateLimit'] = { ...p.rateLimit };
  const a = p.externalAuth;
  if (a.url !== '') {
    out['externalAuth'] = {
      url: a.url,
      method: a.method,
      ...(a.requestHeaders.length > 0 ? { requestHeaders: [...a.requestHeaders] } : {}),
      ...(a.responseHeaders.length > 0 ? { responseHeaders: [...a.responseHeaders] } : {}),
      timeoutSeconds: a.timeoutSeconds,
      failureStatus: a.failureStatus,
      cacheSeconds: a.cacheSeconds,
    };
  }
  const t = p.backendTLS;
  if (t.enabled) {
    out['backendTLS'] = {
      ...(t.sni !== '' ? { sni: t.sni } : {}),
      ...(t.caSecret !== '' ? { caSecret: t.caSecret, caLoaded: t.caPem !== '' } : {}),
      insecureSkipVerify: t.insecureSkipVerify,
    };
  }
  if (p.maxRequestBodyBytes !== d.maxRequestBodyBytes) out['maxRequestBodyBytes'] = p.maxRequestBodyBytes;
  const c = p.cors;
  if (c.allowOrigins.length > 0) {
    out['cors'] = {
      allowOrigins: [...c.allowOrigins],
      allowMethods: [...c.allowMethods],
      ...(c.allowHeaders.length > 0 ? { allowHeaders: [...c.allowHeaders] } : {}),
      ...(c.exposeHeaders.length > 0 ? { exposeHeaders: [...c.exposeHeaders] } : {}),
      allowCredentials: c.allowCredentials,
      maxAgeSeconds: c.maxAgeSeconds,
    };
  }
}

/** endpointDrainSeconds and onRemoval, when they differ from the defaults: the knobs L7 and L4 share. */
function renderDrain(p: Pick<Policy, 'endpointDrainSeconds' | 'onRemoval'>, out: Record<string, unknown>): void {
  const d = DEFAULT_POLICY;
  if (p.endpointDrainSeconds !== d.endpointDrainSeconds) out['endpointDrainSeconds'] = p.endpointDrainSeconds;
  if (!sameMembers(p.onRemoval, d.onRemoval)) out['onRemoval'] = { ...p.onRemoval };
}

/** Equal members, for the flat objects of a Policy (keepalive, onRemoval, rebalance). */
function sameMembers<T extends object>(a: T, b: T): boolean {
  return (Object.keys(b) as (keyof T)[]).every((k) => a[k] === b[k]);
}

function renderLoadBalancing(lb: LoadBalancing): object {
  if (lb.policy === 'Cookie') {
    const c = lb.cookie;
    return {
      policy: lb.policy,
      cookie: {
        name: c.name,
        ...(c.maxAgeSeconds > 0 ? { maxAgeSeconds: c.maxAgeSeconds } : {}),
        ...(c.path !== '' ? { path: c.path } : {}),
        ...(c.sameSite !== '' ? { sameSite: c.sameSite } : {}),
        secure: c.secure,
      },
    };
  }
  if (lb.policy !== 'ConsistentHash') return { policy: lb.policy };
  const h = lb.hashOn;
  return { policy: lb.policy, hashOn: h.kind === 'clientIP' ? 'clientIP' : `${h.kind}:${h.name}` };
}

function renderCertificate(c: Certificate): object {
  let sha256: string;
  try {
    sha256 = new X509Certificate(c.certPem).fingerprint256;
  } catch {
    sha256 = '(unparseable)';
  }
  return { secret: c.secret, hostnames: [...c.hostnames], sha256 };
}

function renderTunnel(t: TunnelRoute): object {
  const out: Record<string, unknown> = {
    id: t.id,
    route: t.route,
    port: t.port,
    sniHostnames: [...t.sniHostnames],
    backends: t.backends.map(renderBackend),
    proxyProtocol: t.proxyProtocol,
    idleTimeoutSeconds: t.idleTimeoutSeconds,
    connectTimeoutSeconds: t.connectTimeoutSeconds,
    maxConnections: t.maxConnections,
  };
  renderDrain(t, out);
  if (t.wildcardAnyDepth === true) out['wildcardAnyDepth'] = true;
  if (t.weightPerBackend === true) out['weightPerBackend'] = true;
  if ((t.allowedSourceRanges ?? []).length > 0) out['allowedSourceRanges'] = [...(t.allowedSourceRanges ?? [])];
  if ((t.deniedSourceRanges ?? []).length > 0) out['deniedSourceRanges'] = [...(t.deniedSourceRanges ?? [])];
  return out;
}

function renderPassthrough(p: PassthroughRoute): object {
  return {
    id: p.id,
    route: p.route,
    hostname: p.hostname,
    backends: p.backends.map(renderBackend),
    connectTimeoutSeconds: p.connectTimeoutSeconds,
    idleTimeoutSeconds: p.idleTimeoutSeconds,
    ...(p.allowedSourceRanges.length > 0 ? { allowedSourceRanges: [...p.allowedSourceRanges] } : {}),
    ...(p.deniedSourceRanges.length > 0 ? { deniedSourceRanges: [...p.deniedSourceRanges] } : {}),
  };
}

function renderStatus(s: ObjectStatus): object {
  return {
    kind: s.kind,
    namespace: s.namespace,
    name: s.name,
    observedGeneration: s.observedGeneration,
    conditions: s.conditions.map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message })),
  };
}
