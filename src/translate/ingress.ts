// Ingress (networking.k8s.io/v1) → route claims and certificate claims.
//
// Which Ingresses are ours (selectIngresses), in this order:
//   1. spec.ingressClassName set: ours when it equals the snapshot's class name;
//   2. else the legacy annotation kubernetes.io/ingress.class set: ours when it equals the class name;
//   3. else (no class at all): ours with --watch-ingress-without-class (as ingress-nginx's flag of that name), or when
//      the snapshot holds an IngressClass of that name, owned by wsgate.io/ingress-controller, annotated
//      ingressclass.kubernetes.io/is-default-class: "true".
// Others get no status: they belong to another controller. With --ingress-class nginx, wsgate takes over
// ingress-nginx's Ingresses during a migration (step 1 matches them by name; the IngressClass stays ingress-nginx's).
// Ingresses of every class wsgate serves read ingress-nginx's annotations (ingress-nginx.ts).
//
// Each path is a rule. Its id is `Ingress/namespace/name#pathType:host/path` (host `*` when the rule names none),
// unique because two paths of one Ingress on the same host, type and path conflict. pathType
// ImplementationSpecific (or none) is Prefix, and may omit the path (then `/`). spec.defaultBackend is a Prefix `/`
// route on `*` that sorts after every other route of that host (id `...#defaultBackend`).
// An invalid rule host rejects that rule's paths; an invalid path rejects that path; the rest serves.
// spec.tls[].hosts name the certificate's hostnames; an entry without hosts covers the hosts of the rules that no
// other entry names.
// Annotations set the policy of every path: ingress-nginx's (ingress-nginx.ts) over the Ingress defaults (hosts with
// TLS redirect plain HTTP, as ingress-nginx does), then wsgate.io/* (annotations.ts) over those; a bad value keeps
// what was below it. Unsupported ingress-nginx annotations are warnings on Accepted (UnsupportedAnnotation).
// nginx.ingress.kubernetes.io/ssl-passthrough: "true" also claims each rule host for TLS passthrough on the HTTPS
// listener, to the backend of the host's first path (the data plane serves it with --enable-ssl-passthrough).
import { CONTROLLER_NAME, type Ingress } from '../api/types.ts';
import type { HttpRoute, Policy } from '../model/table.ts';
import { resolveBackends } from './backends.ts';
import { loadCertificate } from './certificates.ts';
import type { ObjectReport } from './conditions.ts';
import { emptyContribution, type Context, type Contribution } from './context.ts';
import { ANY_HOST, normalizeHostname } from './hostnames.ts';
import { checkPath, normalizePath } from './paths.ts';
import { policyFromAnnotations } from './annotations.ts';
import { resolveBackendTLS } from './edge-policy.ts';
import { ingressNginxPolicy, NGINX_PREFIX } from './ingress-nginx.ts';
import type { Snapshot } from './snapshot.ts';

export const LEGACY_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';
export const DEFAULT_CLASS_ANNOTATION = 'ingressclass.kubernetes.io/is-default-class';

export function selectIngresses(s: Snapshot): Ingress[] {
  const name = s.ingressClassName;
  const weAreDefault = s.ingressClasses.some(
    (c) =>
      c.metadata?.name === name &&
      c.spec?.controller === CONTROLLER_NAME &&
      c.metadata?.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true',
  );
  return s.ingresses.filter((ing) => {
    const byField = ing.spec?.ingressClassName;
    if (typeof byField === 'string' && byField !== '') return byField === name;
    const byAnnotation = ing.metadata?.annotations?.[LEGACY_CLASS_ANNOTATION];
    if (typeof byAnnotation === 'string' && byAnnotation !== '') return byAnnotation === name;
    return weAreDefault || s.watchIngressWithoutClass === true;
  });
}

type IngressBackend = NonNullable<NonNullable<Ingress['spec']>['defaultBackend']>;

export function translateIngress(ing: Ingress, report: ObjectReport, ctx: Context): Contribution {
  const out = emptyContribution();
  const nginx = ingressNginxPolicy(ing.metadata?.annotations, report.namespace);
  for (const p of nginx.problems) report.notAccepted('InvalidAnnotation', p);
  for (const u of nginx.unsupported) report.warn('UnsupportedAnnotation', u);
  const annotated = policyFromAnnotations(ing.metadata?.annotations, nginx.policy);
  for (const p of annotated.problems) report.notAccepted('InvalidAnnotation', p);
  const policy = resolveBackendTLS(annotated.policy, report.namespace, ctx.lookup, report, `annotation ${NGINX_PREFIX}proxy-ssl-secret`);
  const spec = ing.spec ?? {};
  const rules = Array.isArray(spec.rules) ? spec.rules : [];
  let seq = 0;

  // Hosts of the rules, for TLS entries that name none.
  const ruleHosts: string[] = [];
  for (const rule of rules) {
    const host = rule.host ? normalizeHostname(rule.host) : undefined;
    if (host !== undefined && !ruleHosts.includes(host)) ruleHosts.push(host);
  }

  const tlsEntries = Array.isArray(spec.tls) ? spec.tls : [];
  // Hosts some TLS entry names: an entry without hosts covers only the other hosts of the rules.
  const namedTlsHosts = new Set<string>();
  for (const tls of tlsEntries) {
    for (const h of Array.isArray(tls?.hosts) ? tls.hosts : []) {
      const name = normalizeHostname(h);
      if (name !== undefined) namedTlsHosts.add(name);
    }
  }

  tlsEntries.forEach((tls, i) => {
    const field = `spec.tls[${i}]`;
    if (typeof tls?.secretName !== 'string' || tls.secretName === '') {
      report.notAccepted('Invalid', `${field}.secretName: must name a Secret (this TLS entry is not served)`);
      return;
    }
    const hostnames: string[] = [];
    (Array.isArray(tls.hosts) ? tls.hosts : []).forEach((h, j) => {
      const name = normalizeHostname(h);
      if (name === undefined) report.notAccepted('Invalid', `${field}.hosts[${j}]: ${JSON.stringify(h)} is not a DNS name or *. wildcard`);
      else if (!hostnames.includes(name)) hostnames.push(name);
    });
    const loaded = loadCertificate(ctx.lookup, report.namespace, tls.secretName, ctx.certificates);
    if (!loaded.ok) {
      report.unresolved(loaded.reason, `${field}.secretName: ${loaded.message} (its hosts serve plain HTTP only)`);
      return;
    }
    const covered =
      Array.isArray(tls.hosts) && tls.hosts.length > 0 ? hostnames : ruleHosts.filter((h) => !namedTlsHosts.has(h));
    if (covered.length === 0) return;
    out.certificates.push({
      owner: report,
      field,
      secret: `${report.namespace}/${tls.secretName}`,
      hostnames: covered,
      certPem: loaded.certPem,
      keyPem: loaded.keyPem,
    });
  });

  rules.forEach((rule, i) => {
    const field = `spec.rules[${i}]`;
    let host = ANY_HOST;
    if (rule.host !== undefined && rule.host !== '') {
      const name = normalizeHostname(rule.host);
      if (name === undefined) {
        report.notAccepted(
          'Invalid',
          `${field}.host: ${JSON.stringify(rule.host)} is not a DNS name or *. wildcard (its paths are not served)`,
        );
        return;
      }
      host = name;
    }
    const paths = Array.isArray(rule.http?.paths) ? rule.http.paths : [];
    let first: HttpRoute | undefined;
    paths.forEach((p, j) => {
      const pathField = `${field}.http.paths[${j}]`;
      const route = translatePath(p, pathField, host, policy, report, ctx);
      if (route !== undefined) out.routes.push({ owner: report, field: pathField, hostname: host, fallback: false, seq: seq++, route });
      first ??= route;
    });
    if (nginx.passthrough) {
      if (host === ANY_HOST) report.notAccepted('InvalidAnnotation', `${field}: ssl-passthrough needs a host (this rule is not passed through)`);
      else if (first !== undefined) {
        out.passthrough.push({
          owner: report,
          field,
          route: {
            id: `Ingress/${report.key}#passthrough:${host}`,
            route: report.key,
            hostname: host,
            backends: first.backends,
            connectTimeoutSeconds: policy.connectTimeoutSeconds,
            idleTimeoutSeconds: policy.idleTimeoutSeconds,
            allowedSourceRanges: policy.allowedSourceRanges,
            deniedSourceRanges: policy.deniedSourceRanges,
          },
        });
      }
    }
  });

  if (spec.defaultBackend !== undefined) {
    const field = 'spec.defaultBackend';
    const route = toRoute(spec.defaultBackend, field, `Ingress/${report.key}#defaultBackend`, 'Prefix', '/', policy, report, ctx);
    if (route !== undefined) out.routes.push({ owner: report, field, hostname: ANY_HOST, fallback: true, seq: seq++, route });
  }
  return out;
}

type IngressPath = NonNullable<NonNullable<NonNullable<Ingress['spec']>['rules']>[number]['http']>['paths'][number];

function translatePath(
  p: IngressPath,
  field: string,
  host: string,
  policy: Policy,
  report: ObjectReport,
  ctx: Context,
): HttpRoute | undefined {
  if (p === null || typeof p !== 'object') {
    report.notAccepted('Invalid', `${field}: must be an object with path, pathType and backend (not served)`);
    return undefined;
  }
  const pathType = p.pathType ?? 'ImplementationSpecific';
  if (pathType !== 'Exact' && pathType !== 'Prefix' && pathType !== 'ImplementationSpecific') {
    report.notAccepted(
      'Invalid',
      `${field}.pathType: ${JSON.stringify(pathType)} is not Exact, Prefix or ImplementationSpecific (this path is not served)`,
    );
    return undefined;
  }
  const type = pathType === 'Exact' ? 'Exact' : 'Prefix';
  let value = p.path;
  if (value === undefined || value === '') {
    if (pathType !== 'ImplementationSpecific') {
      report.notAccepted('Invalid', `${field}.path: is required with pathType ${pathType} (this path is not served)`);
      return undefined;
    }
    value = '/';
  }
  const problem = checkPath(value);
  if (problem !== undefined) {
    report.notAccepted('Invalid', `${field}.path: ${problem} (this path is not served)`);
    return undefined;
  }
  const path = normalizePath(type, value);
  return toRoute(p.backend, `${field}.backend`, `Ingress/${report.key}#${type}:${host}${path}`, type, path, policy, report, ctx);
}

function toRoute(
  backend: IngressBackend | undefined,
  field: string,
  id: string,
  pathType: 'Exact' | 'Prefix',
  path: string,
  policy: Policy,
  report: ObjectReport,
  ctx: Context,
): HttpRoute | undefined {
  const service = backend?.service;
  if (service === undefined) {
    const why = backend?.resource !== undefined ? 'resource backends are not supported' : 'service is required';
    report.notAccepted('Invalid', `${field}: ${why} (not served)`);
    return undefined;
  }
  const byNumber = service.port?.number;
  const byName = service.port?.name;
  const port = typeof byNumber === 'number' ? byNumber : byName;
  if (typeof service.name !== 'string' || service.name === '' || port === undefined || port === '') {
    report.notAccepted('Invalid', `${field}.service: needs a name and a port number or name (not served)`);
    return undefined;
  }
  const portField = `${field}.service.port.${typeof byNumber === 'number' ? 'number' : 'name'}`;
  const backends = resolveBackends(
    [{ ref: { service: service.name, port }, fields: { service: `${field}.service.name`, port: portField } }],
    report.namespace,
    ctx.lookup,
    report,
  );
  return { id, route: report.key, pathType, path, backends, policy };
}
