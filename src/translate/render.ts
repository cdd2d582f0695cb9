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
import { DEFAULT_POLICY, type Backend, type Certificate, type HttpRoute, type LoadBalancing, type Policy, type TunnelRoute } from '../model/table.ts';
import type { ObjectStatus, TranslateResult } from './snapshot.ts';

export function renderResult(result: TranslateResult): string {
  const doc = {
    virtualHosts: result.table.virtualHosts.map((vh) => ({ hostname: vh.hostname, routes: vh.routes.map(renderRoute) })),
    certificates: result.table.certificates.map(renderCertificate),
    tunnels: result.table.tunnels.map(renderTunnel),
    statuses: result.statuses.map(renderStatus),
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
    backends: r.backends.map(renderBackend),
    policy: renderPolicy(r.policy),
  };
}

function renderBackend(b: Backend): object {
  return {
    name: b.name,
    weight: b.weight,
    endpoints: b.endpoints.map((e) => (e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`)),
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
  return out;
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
  return out;
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
