// WebSocketRoute → route claims (one per rule and hostname) and a certificate claim.
//   - No hostnames: the rules apply to every host (virtual host `*`).
//   - An error in the route itself (hostnames, tls, route policy, no rules) rejects the whole object (Invalid);
//     an error in one rule (path, backends, rule policy) rejects that rule only, and the others serve.
//   - HttpRoute.id is `WebSocketRoute/namespace/name#` followed by the rule's name, or else by its match
//     (`Prefix:/chat`), never by its position: inserting or reordering rules must not move live connection counts
//     and limits onto another rule. Two unnamed rules with the same match get `~2`, `~3` after the second; two
//     rules with the same name are an error in the later one. A rule under several hostnames appears in each of
//     their virtual hosts with the same id, so its connection limits count all its hostnames together.
//   - A TLS Secret that does not resolve is said (ResolvedRefs=False); the rules still serve plain HTTP.
import { PATH_TYPES, type BackendRef, type PathType, type WebSocketRoute } from '../api/types.ts';
import { DEFAULT_POLICY, type HttpRoute, type Policy } from '../model/table.ts';
import { checkBackendRef, resolveBackends } from './backends.ts';
import { loadCertificate } from './certificates.ts';
import type { ObjectReport } from './conditions.ts';
import { emptyContribution, type Context, type Contribution } from './context.ts';
import { ANY_HOST, normalizeHostname } from './hostnames.ts';
import { checkPath, normalizePath } from './paths.ts';
import { resolveBackendTLS } from './edge-policy.ts';
import { applyPolicySpec } from './policy.ts';

// RULE_NAME_PATTERN of the schema (a DNS-1123 label).
const RULE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function translateWebSocketRoute(r: WebSocketRoute, report: ObjectReport, ctx: Context): Contribution {
  const out = emptyContribution();
  const spec = r.spec as unknown;
  if (spec === null || typeof spec !== 'object') {
    report.notAccepted('Invalid', 'spec: is required (the route is not served)');
    return out;
  }
  const { hostnames, errors } = checkHostnames(r.spec.hostnames);
  const tls = r.spec.tls as unknown;
  if (tls !== undefined && (tls === null || typeof tls !== 'object' || !isName((tls as { secretName?: unknown }).secretName))) {
    errors.push('spec.tls.secretName: must name a Secret');
  }
  const routePolicy = applyPolicySpec(DEFAULT_POLICY, r.spec.policy, 'spec.policy');
  if (routePolicy.errors) errors.push(...routePolicy.errors);
  const rules = r.spec.rules as unknown;
  if (!Array.isArray(rules) || rules.length === 0) errors.push('spec.rules: at least one rule is required');
  if (errors.length > 0 || routePolicy.errors || !Array.isArray(rules)) {
    for (const e of errors) report.notAccepted('Invalid', `${e} (the route is not served)`);
    return out;
  }

  if (r.spec.tls !== undefined) {
    const secretName = r.spec.tls.secretName;
    const loaded = loadCertificate(ctx.lookup, report.namespace, secretName, ctx.certificates);
    if (!loaded.ok) {
      report.unresolved(loaded.reason, `spec.tls.secretName: ${loaded.message} (the routes serve plain HTTP only)`);
    } else if (hostnames.length === 0) {
      report.notAccepted('Invalid', 'spec.tls: a certificate needs spec.hostnames to be served for (it is not served)');
    } else {
      out.certificates.push({
        owner: report,
        field: 'spec.tls',
        secret: `${report.namespace}/${secretName}`,
        hostnames,
        certPem: loaded.certPem,
        keyPem: loaded.keyPem,
      });
    }
  }

  let seq = 0;
  const ids = new Set<string>();
  const ruleId = (name: string | undefined, match: string): string => {
    const base = `WebSocketRoute/${report.key}#${name ?? match}`;
    let id = base;
    for (let n = 2; ids.has(id); n++) id = `${base}~${n}`;
    ids.add(id);
    return id;
  };
  const names = new Set<string>();
  rules.forEach((rule: unknown, i) => {
    const field = `spec.rules[${i}]`;
    const name = (rule as { name?: unknown } | null)?.name;
    if (name !== undefined) {
      if (typeof name !== 'string' || !RULE_NAME.test(name)) {
        report.notAccepted('Invalid', `${field}.name: ${JSON.stringify(name)} must be a DNS label, e.g. chat-v2 (${field} is not served)`);
        return;
      }
      if (names.has(name)) {
        report.notAccepted('Invalid', `${field}.name: ${JSON.stringify(name)} names an earlier rule too (${field} is not served)`);
        return;
      }
      names.add(name);
    }
    const route = translateRule(rule, field, (match) => ruleId(name, match), routePolicy.policy, report, ctx);
    if (route === undefined) return;
    for (const hostname of hostnames.length > 0 ? hostnames : [ANY_HOST]) {
      out.routes.push({ owner: report, field, hostname, fallback: false, seq: seq++, route });
    }
  });
  return out;
}

function isName(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}

function checkHostnames(value: unknown): { hostnames: string[]; errors: string[] } {
  if (value === undefined) return { hostnames: [], errors: [] };
  if (!Array.isArray(value)) return { hostnames: [], errors: ['spec.hostnames: must be a list'] };
  const errors: string[] = [];
  const hostnames: string[] = [];
  value.forEach((h: unknown, i) => {
    const name = normalizeHostname(h);
    if (name === undefined) errors.push(`spec.hostnames[${i}]: ${JSON.stringify(h)} is not a DNS name or *. wildcard`);
    else if (!hostnames.includes(name)) hostnames.push(name);
  });
  return { hostnames, errors };
}

function translateRule(
  rule: unknown,
  field: string,
  idFor: (match: string) => string,
  routePolicy: Policy,
  report: ObjectReport,
  ctx: Context,
): HttpRoute | undefined {
  if (rule === null || typeof rule !== 'object') {
    report.notAccepted('Invalid', `${field}: must be an object (this rule is not served)`);
    return undefined;
  }
  const { path, backends, policy } = rule as Record<string, unknown>;
  const errors: string[] = [];
  let pathType: PathType = 'Prefix';
  let pathValue = '/';
  if (path !== undefined && (path === null || typeof path !== 'object')) {
    errors.push(`${field}.path: must be an object with type and value`);
  } else if (path !== undefined) {
    const { type, value } = path as { type?: unknown; value?: unknown };
    if (type !== undefined && !PATH_TYPES.includes(type as PathType)) {
      errors.push(`${field}.path.type: must be one of ${PATH_TYPES.join(', ')}`);
    } else if (type !== undefined) {
      pathType = type as PathType;
    }
    if (value !== undefined) {
      const problem = checkPath(value);
      if (problem !== undefined) errors.push(`${field}.path.value: ${problem}`);
      else pathValue = value as string;
    }
  }
  if (!Array.isArray(backends) || backends.length === 0) {
    errors.push(`${field}.backends: at least one backend is required`);
  } else {
    backends.forEach((b: unknown, j) => errors.push(...checkBackendRef(b, `${field}.backends[${j}]`)));
  }
  const effective = applyPolicySpec(routePolicy, policy, `${field}.policy`);
  if (effective.errors) errors.push(...effective.errors);
  if (errors.length > 0 || effective.errors || !Array.isArray(backends)) {
    for (const e of errors) report.notAccepted('Invalid', `${e} (${field} is not served)`);
    return undefined;
  }
  const where = `${(policy as { backendTLS?: unknown } | undefined)?.backendTLS !== undefined ? `${field}.policy` : 'spec.policy'}.backendTLS.caSecret`;
  const refs = (backends as BackendRef[]).map((ref, j) => ({
    ref,
    fields: { service: `${field}.backends[${j}].service`, port: `${field}.backends[${j}].port` },
  }));
  const normalized = normalizePath(pathType, pathValue);
  return {
    id: idFor(`${pathType}:${normalized}`),
    route: report.key,
    pathType,
    path: normalized,
    backends: resolveBackends(refs, report.namespace, ctx.lookup, report),
    policy: resolveBackendTLS(effective.policy, report.namespace, ctx.lookup, report, where),
  };
}
