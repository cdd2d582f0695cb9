// `wsgate migrate`: for each Ingress written for ingress-nginx, what each of its nginx.ingress.kubernetes.io/*
// annotations becomes (honoured, approximated with the difference, unsupported, or a bad value) and the equivalent
// WebSocketRoutes. Pure: the CLI (src/cli/migrate-command.ts) reads the files or the cluster and prints.
//
// The equivalent is what wsgate would serve for the Ingress (ingress-nginx.ts, then annotations.ts), written as
// WebSocketRoute policy: one WebSocketRoute per rule host (an Ingress's paths are per host, a WebSocketRoute's rules
// share its hostnames), one more for the rules without a host and spec.defaultBackend, TLS from spec.tls. The
// policy lists only what differs from a WebSocketRoute's defaults; the HTTPS redirect is written out, since an
// Ingress redirects hosts with TLS by default and a WebSocketRoute does not.
import { API_VERSION, type BackendRef, type Ingress, type PolicySpec, type WebSocketRoute, type WebSocketRouteRule } from '../api/types.ts';
import { DEFAULT_POLICY, type Policy } from '../model/table.ts';
import { policyFromAnnotations } from './annotations.ts';
import { ingressNginxPolicy, type AnnotationOutcome } from './ingress-nginx.ts';
import { DEFAULT_COOKIE } from './policy.ts';

export interface Migration {
  /** `namespace/name`. */
  readonly ingress: string;
  readonly annotations: readonly AnnotationOutcome[];
  /** wsgate.io/* annotations with bad values. */
  readonly problems: readonly string[];
  readonly routes: readonly WebSocketRoute[];
  /** What the routes cannot say (ssl-passthrough, resource backends, ...). */
  readonly notes: readonly string[];
  /** Something in use is unsupported or has a bad value: the command exits non-zero. */
  readonly blocked: boolean;
}

export function migrateIngress(ing: Ingress): Migration {
  const namespace = ing.metadata?.namespace || 'default';
  const name = ing.metadata?.name ?? '';
  const annotations = ing.metadata?.annotations ?? {};
  const nginx = ingressNginxPolicy(annotations, namespace);
  const { policy, problems } = policyFromAnnotations(annotations, nginx.policy);
  const notes: string[] = [];
  const spec = policySpecOf(policy);

  // The rules, by host (in the order written), and the host-less ones with the default backend.
  const byHost = new Map<string, WebSocketRouteRule[]>();
  const add = (host: string, rule: WebSocketRouteRule): void => {
    const list = byHost.get(host) ?? [];
    list.push(rule);
    byHost.set(host, list);
  };
  for (const rule of ing.spec?.rules ?? []) {
    for (const p of rule.http?.paths ?? []) {
      const backend = backendOf(p.backend, notes);
      if (backend === undefined) continue;
      const type = p.pathType === 'Exact' ? 'Exact' : 'Prefix';
      if (p.pathType === 'ImplementationSpecific' || p.pathType === undefined) {
        notes.push(`path ${p.path ?? '/'} of ${rule.host ?? 'any host'}: ImplementationSpecific is served as Prefix (by path element), not as an nginx location`);
      }
      add(rule.host ?? '', { path: { type, value: p.path || '/' }, backends: [backend] });
    }
  }
  const fallback = ing.spec?.defaultBackend === undefined ? undefined : backendOf(ing.spec.defaultBackend, notes);
  if (fallback !== undefined) add('', { name: 'default-backend', path: { type: 'Prefix', value: '/' }, backends: [fallback] });

  const tlsFor = (host: string): string | undefined => {
    for (const t of ing.spec?.tls ?? []) {
      const hosts = t.hosts ?? [];
      if (t.secretName && (hosts.includes(host) || (hosts.length === 0 && host !== ''))) return t.secretName;
    }
    return undefined;
  };
  const routes: WebSocketRoute[] = [];
  const many = byHost.size > 1;
  for (const [host, rules] of byHost) {
    const routeName = !many ? name : host === '' ? `${name}-any-host` : `${name}-${host.replace(/^\*\./, 'wildcard.').replace(/[^a-z0-9-]/g, '-')}`;
    const secretName = host === '' ? undefined : tlsFor(host);
    routes.push({
      apiVersion: API_VERSION,
      kind: 'WebSocketRoute',
      metadata: { name: routeName.slice(0, 253), namespace },
      spec: {
        ...(host === '' ? {} : { hostnames: [host] }),
        ...(secretName !== undefined ? { tls: { secretName } } : {}),
        ...(Object.keys(spec).length > 0 ? { policy: spec } : {}),
        rules,
      },
    });
  }
  if (nginx.passthrough) {
    notes.push(
      'ssl-passthrough has no WebSocketRoute equivalent: keep this Ingress (served with --enable-ssl-passthrough), or use a TCPTunnel with sniHostnames on a port of its own',
    );
  }
  const blocked = problems.length > 0 || nginx.outcomes.some((o) => o.status === 'unsupported' || o.status === 'invalid');
  return { ingress: `${namespace}/${name}`, annotations: nginx.outcomes, problems, routes, notes, blocked };
}

type IngressBackend = NonNullable<NonNullable<Ingress['spec']>['defaultBackend']>;

function backendOf(b: IngressBackend | undefined, notes: string[]): BackendRef | undefined {
  const svc = b?.service;
  if (svc === undefined || !svc.name) {
    notes.push('a resource backend (or one without a Service) has no WebSocketRoute equivalent: left out');
    return undefined;
  }
  const port = svc.port?.number ?? svc.port?.name;
  if (port === undefined) return undefined;
  return { service: svc.name, port };
}

/** The PolicySpec that gives `p` on a WebSocketRoute: only the members that differ from DEFAULT_POLICY. */
export function policySpecOf(p: Policy): PolicySpec {
  const d = DEFAULT_POLICY;
  const out: PolicySpec = {};
  if (p.idleTimeoutSeconds !== d.idleTimeoutSeconds) out.idleTimeoutSeconds = p.idleTimeoutSeconds;
  if (p.connectTimeoutSeconds !== d.connectTimeoutSeconds) out.connectTimeoutSeconds = p.connectTimeoutSeconds;
  if (p.responseHeaderTimeoutSeconds !== d.responseHeaderTimeoutSeconds) out.responseHeaderTimeoutSeconds = p.responseHeaderTimeoutSeconds;
  if (p.maxConnections !== d.maxConnections) out.maxConnections = p.maxConnections;
  if (p.maxConnectionsPerClient !== d.maxConnectionsPerClient) out.maxConnectionsPerClient = p.maxConnectionsPerClient;
  if (p.allowedOrigins.length > 0) out.allowedOrigins = [...p.allowedOrigins];
  if (p.subprotocols.length > 0) out.subprotocols = [...p.subprotocols];
  const lb = p.loadBalancing;
  if (lb.policy === 'Cookie') {
    const c = lb.cookie;
    const cookie = {
      ...(c.name !== DEFAULT_COOKIE.name ? { name: c.name } : {}),
      ...(c.maxAgeSeconds > 0 ? { maxAgeSeconds: c.maxAgeSeconds } : {}),
      ...(c.path !== '' ? { path: c.path } : {}),
      ...(c.sameSite !== '' ? { sameSite: c.sameSite } : {}),
      ...(c.secure ? { secure: true } : {}),
    };
    out.loadBalancing = { policy: 'Cookie', ...(Object.keys(cookie).length > 0 ? { cookie } : {}) };
  } else if (lb.policy === 'ConsistentHash') {
    const h = lb.hashOn;
    out.loadBalancing = { policy: 'ConsistentHash', hashOn: h.kind === 'clientIP' ? { clientIP: true } : { [h.kind]: h.name } };
  } else if (lb.policy !== d.loadBalancing.policy) {
    out.loadBalancing = { policy: lb.policy };
  }
  // The wsgate.io/* knobs an Ingress may carry too.
  if (p.inspectFrames !== d.inspectFrames) out.inspectFrames = p.inspectFrames;
  if (!same(p.keepalive, d.keepalive)) out.keepalive = { ...p.keepalive };
  if (p.maxMessageBytes !== d.maxMessageBytes) out.maxMessageBytes = p.maxMessageBytes;
  if (p.maxBackendMessageBytes !== d.maxBackendMessageBytes) out.maxBackendMessageBytes = p.maxBackendMessageBytes;
  if (p.maxMessagesPerSecond !== d.maxMessagesPerSecond) out.maxMessagesPerSecond = p.maxMessagesPerSecond;
  if (p.onExceed !== d.onExceed) out.onExceed = p.onExceed;
  if (p.strict !== d.strict) out.strict = p.strict;
  if (p.endpointDrainSeconds !== d.endpointDrainSeconds) out.endpointDrainSeconds = p.endpointDrainSeconds;
  if (!same(p.onRemoval, d.onRemoval)) out.onRemoval = { ...p.onRemoval };
  if (!same(p.rebalance, d.rebalance)) out.rebalance = { ...p.rebalance };
  if (p.allowedSourceRanges.length > 0) out.allowedSourceRanges = [...p.allowedSourceRanges];
  if (p.deniedSourceRanges.length > 0) out.deniedSourceRanges = [...p.deniedSourceRanges];
  const r = p.httpsRedirect;
  if (r.mode !== d.httpsRedirect.mode || r.statusCode !== d.httpsRedirect.statusCode || r.webSocket !== d.httpsRedirect.webSocket) {
    out.httpsRedirect = {
      mode: r.mode,
      ...(r.statusCode !== d.httpsRedirect.statusCode ? { statusCode: r.statusCode } : {}),
      ...(r.webSocket !== d.httpsRedirect.webSocket ? { webSocket: r.webSocket } : {}),
    };
  }
  if (p.hsts.maxAgeSeconds > 0) out.hsts = { ...p.hsts };
  if (p.rateLimit.requestsPerSecond > 0) {
    // The CRD takes whole requests per second: limit-rpm's fraction is rounded up, and said by the annotation table.
    out.rateLimit = { requestsPerSecond: Math.ceil(p.rateLimit.requestsPerSecond), burst: p.rateLimit.burst };
  }
  const a = p.externalAuth;
  if (a.url !== '') {
    out.externalAuth = {
      url: a.url,
      ...(a.method !== d.externalAuth.method ? { method: a.method } : {}),
      ...(a.requestHeaders.length > 0 ? { requestHeaders: [...a.requestHeaders] } : {}),
      ...(a.responseHeaders.length > 0 ? { responseHeaders: [...a.responseHeaders] } : {}),
      ...(a.timeoutSeconds !== d.externalAuth.timeoutSeconds ? { timeoutSeconds: a.timeoutSeconds } : {}),
      ...(a.failureStatus !== d.externalAuth.failureStatus ? { failureStatus: a.failureStatus } : {}),
      ...(a.cacheSeconds > 0 ? { cacheSeconds: a.cacheSeconds } : {}),
    };
  }
  const t = p.backendTLS;
  if (t.enabled) {
    const caSecret = t.caSecret.includes('/') ? t.caSecret.slice(t.caSecret.indexOf('/') + 1) : t.caSecret;
    out.backendTLS = {
      ...(t.sni !== '' ? { sni: t.sni } : {}),
      ...(caSecret !== '' ? { caSecret } : {}),
      ...(t.insecureSkipVerify ? { insecureSkipVerify: true } : {}),
    };
  }
  if (p.maxRequestBodyBytes > 0) out.maxRequestBodyBytes = p.maxRequestBodyBytes;
  const c = p.cors;
  if (c.allowOrigins.length > 0) {
    out.cors = {
      allowOrigins: [...c.allowOrigins],
      allowMethods: [...c.allowMethods],
      ...(c.allowHeaders.length > 0 ? { allowHeaders: [...c.allowHeaders] } : {}),
      ...(c.exposeHeaders.length > 0 ? { exposeHeaders: [...c.exposeHeaders] } : {}),
      allowCredentials: c.allowCredentials,
      maxAgeSeconds: c.maxAgeSeconds,
    };
  }
  return out;
}

function same<T extends object>(a: T, b: T): boolean {
  return (Object.keys(b) as (keyof T)[]).every((k) => a[k] === b[k]);
}
