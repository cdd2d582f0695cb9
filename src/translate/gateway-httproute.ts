// [issue 14] An HTTPRoute's rules → HttpRoutes of the routing table, one per rule and match (a rule without matches
// has one: PathPrefix /). What the table keeps of a match: the path (Exact or PathPrefix, as Ingress's Exact and
// Prefix: PathPrefix matches whole path elements), and in `match` the method, the headers and the query parameters
// (Exact values; RegularExpression is not supported). Filters become RouteFilters: RequestHeaderModifier,
// ResponseHeaderModifier, RequestRedirect, URLRewrite. Another filter (or a timeout that does not parse) makes the
// rule answer 500, as the spec asks of what an implementation does not support: the request is never served as if
// the unsupported part were not there. A match wsgate cannot evaluate (a regular expression) matches nothing. Either
// is said on the route: PartiallyInvalid, or Accepted=False when no rule is left.
//
// Every HTTPRoute rule is a WebSocket route: a handshake on it is upgraded like any other wsgate route, whatever
// the Service port's appProtocol (kubernetes.io/ws included). Backends are shares per backendRef
// (HttpRoute.weightPerBackend); an invalid backendRef takes its share as 500s, and a rule whose backendRefs are all
// invalid, all weight 0, or absent answers 500 (RouteFilters.directStatus). timeouts.request bounds a plain HTTP
// exchange (never a tunnel), timeouts.backendRequest the wait for a backend's response head.
import type { HTTPHeaderFilter, HTTPPathModifier, HTTPRoute, HTTPRouteFilter, HTTPRouteMatch } from '../api/gateway-api.ts';
import {
  DEFAULT_POLICY,
  type HeaderModifier,
  type HttpRoute,
  type PathModifier,
  type Policy,
  type RequestMatch,
  type RouteFilters,
  type ValueMatch,
} from '../model/table.ts';
import { listOf, resolveGatewayBackends, type ReferenceGrants, type RouteRefReason } from './gateway-refs.ts';
import { normalizeHostname } from './hostnames.ts';
import type { Lookup } from './lookup.ts';
import { checkPath, normalizePath } from './paths.ts';

/** One HttpRoute of a rule, with what Gateway API precedence sorts it by (besides the route's age and name). */
export interface HttpRuleEntry {
  readonly route: HttpRoute;
  readonly rule: number;
  readonly match: number;
}

export interface HttpRouteRules {
  readonly entries: HttpRuleEntry[];
  /** Problems of backendRefs: the route's ResolvedRefs. */
  readonly refProblems: { reason: RouteRefReason; message: string }[];
  /** What makes rules answer 500: something unsupported or invalid in them, one message each. */
  readonly invalidRules: string[];
  /** How many rules answer 500 for such a problem, of ruleCount. */
  readonly invalidRuleCount: number;
  readonly ruleCount: number;
}

/** Gateway API Duration (GEP-2257): up to four `<n>h|m|s|ms` parts. Seconds, or undefined when malformed. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^([0-9]{1,5}(h|m|s|ms)){1,4}$/.test(value)) return undefined;
  let total = 0;
  for (const m of value.matchAll(/([0-9]{1,5})(ms|h|m|s)/g)) {
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3600 : m[2] === 'm' ? n * 60 : m[2] === 's' ? n : n / 1000;
  }
  return total;
}

export function translateHttpRules(r: HTTPRoute, namespace: string, key: string, lookup: Lookup, grants: ReferenceGrants, policy: Policy = DEFAULT_POLICY): HttpRouteRules {
  const entries: HttpRuleEntry[] = [];
  const refProblems: { reason: RouteRefReason; message: string }[] = [];
  const invalidRules: string[] = [];
  const invalidRuleIndexes = new Set<number>();
  const rules = Array.isArray(r.spec?.rules) ? r.spec.rules : [];
  rules.forEach((rule, i) => {
    const field = `spec.rules[${i}]`;
    const problems: string[] = [];
    const id = `HTTPRoute/${key}#${typeof rule?.name === 'string' && rule.name !== '' ? rule.name : String(i)}`;
    const resolved = resolveGatewayBackends(rule?.backendRefs, field, { kind: 'HTTPRoute', namespace }, lookup, grants, true);
    refProblems.push(...resolved.problems);
    listOf(rule?.backendRefs).forEach((b, j) => {
      if (Array.isArray(b?.filters) && b.filters.length > 0) problems.push(`${field}.backendRefs[${j}].filters: filters on a backendRef are not supported`);
    });
    const filters = translateFilters(rule?.filters, `${field}.filters`, problems);
    let rulePolicy = policy;
    const timeouts = rule?.timeouts;
    let requestTimeoutSeconds = 0;
    if (timeouts?.request !== undefined) {
      const s = parseDuration(timeouts.request);
      if (s === undefined) problems.push(`${field}.timeouts.request: ${JSON.stringify(timeouts.request)} is not a duration such as 10s or 500ms`);
      else requestTimeoutSeconds = s;
    }
    if (timeouts?.backendRequest !== undefined) {
      const s = parseDuration(timeouts.backendRequest);
      if (s === undefined) problems.push(`${field}.timeouts.backendRequest: ${JSON.stringify(timeouts.backendRequest)} is not a duration such as 10s or 500ms`);
      else rulePolicy = { ...rulePolicy, responseHeaderTimeoutSeconds: s };
    }
    const live = resolved.backends.filter((b) => b.weight > 0);
    const matches: (HTTPRouteMatch | undefined)[] = Array.isArray(rule?.matches) && rule.matches.length > 0 ? rule.matches : [undefined];
    matches.forEach((m, j) => {
      const mf = `${field}.matches[${j}]`;
      const matchProblems: string[] = [];
      const path = translatePath(m, mf, matchProblems);
      const match = translateMatch(m, mf, matchProblems);
      if (filters.redirect?.path?.type === 'ReplacePrefixMatch' || filters.rewrite?.path?.type === 'ReplacePrefixMatch') {
        if (path.pathType !== 'Prefix') matchProblems.push(`${mf}.path: ReplacePrefixMatch needs a PathPrefix match`);
      }
      if (matchProblems.length > 0) {
        // A match wsgate cannot evaluate matches nothing: it must not catch requests meant for other rules.
        for (const p of matchProblems) if (!invalidRules.includes(p)) invalidRules.push(p);
        invalidRuleIndexes.add(i);
        return;
      }
      let ruleFilters: RouteFilters | undefined = filters;
      if (problems.length > 0) {
        for (const p of problems) if (!invalidRules.includes(p)) invalidRules.push(p);
        invalidRuleIndexes.add(i);
        ruleFilters = { directStatus: 500 };
      } else if (filters.redirect === undefined && live.every((b) => b.invalid === true)) {
        // No backendRefs, all invalid, or all weight 0: 500 (the spec's answer), also when some weight 0 ones are valid.
        ruleFilters = { ...filters, directStatus: 500 };
      }
      const hasFilters = ruleFilters !== undefined && Object.keys(ruleFilters).length > 0;
      entries.push({
        rule: i,
        match: j,
        route: {
          id,
          route: key,
          pathType: path.pathType,
          path: path.path,
          backends: resolved.backends,
          policy: rulePolicy,
          ...(match !== undefined ? { match } : {}),
          ...(hasFilters ? { filters: ruleFilters } : {}),
          weightPerBackend: true,
          ...(requestTimeoutSeconds > 0 ? { requestTimeoutSeconds } : {}),
        },
      });
    });
  });
  return { entries, refProblems, invalidRules, invalidRuleCount: invalidRuleIndexes.size, ruleCount: rules.length };
}

function translatePath(m: HTTPRouteMatch | undefined, field: string, problems: string[]): { pathType: 'Exact' | 'Prefix'; path: string } {
  const type = m?.path?.type ?? 'PathPrefix';
  const value = m?.path?.value ?? '/';
  if (type !== 'Exact' && type !== 'PathPrefix') {
    problems.push(`${field}.path.type: ${JSON.stringify(type)} is not supported (Exact and PathPrefix are)`);
    return { pathType: 'Prefix', path: '/' };
  }
  const problem = checkPath(value);
  if (problem !== undefined) {
    problems.push(`${field}.path.value: ${problem}`);
    return { pathType: 'Prefix', path: '/' };
  }
  const pathType = type === 'Exact' ? 'Exact' : 'Prefix';
  return { pathType, path: normalizePath(pathType, value) };
}

function translateMatch(m: HTTPRouteMatch | undefined, field: string, problems: string[]): RequestMatch | undefined {
  if (m === undefined) return undefined;
  const values = (list: unknown, what: 'headers' | 'queryParams'): ValueMatch[] => {
    if (!Array.isArray(list)) return [];
    const out: ValueMatch[] = [];
    list.forEach((h: { type?: string; name?: string; value?: string } | null, i) => {
      const type = h?.type ?? 'Exact';
      if (type !== 'Exact') {
        problems.push(`${field}.${what}[${i}].type: ${JSON.stringify(type)} is not supported (Exact is)`);
        return;
      }
      if (typeof h?.name !== 'string' || h.name === '' || typeof h.value !== 'string') {
        problems.push(`${field}.${what}[${i}]: needs a name and a value`);
        return;
      }
      const name = what === 'headers' ? h.name.toLowerCase() : h.name;
      // The first match of a name counts, as the spec says of repeated names.
      if (!out.some((x) => x.name === name)) out.push({ name, type: 'Exact', value: h.value });
    });
    return out;
  };
  const headers = values(m.headers, 'headers');
  const queryParams = values(m.queryParams, 'queryParams');
  const method = typeof m.method === 'string' && m.method !== '' ? m.method.toUpperCase() : undefined;
  if (method === undefined && headers.length === 0 && queryParams.length === 0) return undefined;
  return { ...(method !== undefined ? { method } : {}), headers, queryParams };
}

const REDIRECT_CODES = new Set([301, 302, 303, 307, 308]);

function translateFilters(list: readonly HTTPRouteFilter[] | undefined, field: string, problems: string[]): RouteFilters {
  const out: { -readonly [K in keyof RouteFilters]: RouteFilters[K] } = {};
  listOf(list).forEach((f, i) => {
    const at = `${field}[${i}]`;
    switch (f?.type) {
      case 'RequestHeaderModifier':
        out.requestHeaders = headerModifier(f.requestHeaderModifier);
        break;
      case 'ResponseHeaderModifier':
        out.responseHeaders = headerModifier(f.responseHeaderModifier);
        break;
      case 'RequestRedirect': {
        const r = f.requestRedirect ?? {};
        const statusCode = r.statusCode ?? 302;
        if (!REDIRECT_CODES.has(statusCode)) {
          problems.push(`${at}.requestRedirect.statusCode: ${statusCode} is not a redirect status wsgate sends (301, 302, 303, 307, 308)`);
          break;
        }
        const scheme = r.scheme === undefined ? undefined : r.scheme.toLowerCase();
        if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') {
          problems.push(`${at}.requestRedirect.scheme: ${JSON.stringify(r.scheme)} is not http or https`);
          break;
        }
        const hostname = r.hostname === undefined ? undefined : normalizeHostname(r.hostname);
        if (r.hostname !== undefined && (hostname === undefined || hostname.startsWith('*.'))) {
          problems.push(`${at}.requestRedirect.hostname: ${JSON.stringify(r.hostname)} is not a DNS name`);
          break;
        }
        const path = pathModifier(r.path, `${at}.requestRedirect.path`, problems);
        out.redirect = {
          statusCode: statusCode as 301 | 302 | 303 | 307 | 308,
          ...(scheme !== undefined ? { scheme } : {}),
          ...(hostname !== undefined ? { hostname } : {}),
          ...(path !== undefined ? { path } : {}),
          ...(typeof r.port === 'number' ? { port: r.port } : {}),
        };
        break;
      }
      case 'URLRewrite': {
        const u = f.urlRewrite ?? {};
        const hostname = u.hostname === undefined ? undefined : normalizeHostname(u.hostname);
        if (u.hostname !== undefined && (hostname === undefined || hostname.startsWith('*.'))) {
          problems.push(`${at}.urlRewrite.hostname: ${JSON.stringify(u.hostname)} is not a DNS name`);
          break;
        }
        const path = pathModifier(u.path, `${at}.urlRewrite.path`, problems);
        out.rewrite = { ...(hostname !== undefined ? { hostname } : {}), ...(path !== undefined ? { path } : {}) };
        break;
      }
      default:
        problems.push(`${at}.type: filter ${JSON.stringify(f?.type)} is not supported (RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect and URLRewrite are)`);
    }
  });
  return out;
}

function headerModifier(h: HTTPHeaderFilter | undefined): HeaderModifier {
  const pairs = (list: HTTPHeaderFilter['set']): [string, string][] =>
    listOf(list).filter((x) => typeof x?.name === 'string' && x.name !== '').map((x) => [x.name!, x.value ?? '']);
  return {
    set: pairs(h?.set),
    add: pairs(h?.add),
    remove: listOf(h?.remove).filter((n): n is string => typeof n === 'string' && n !== '').map((n) => n.toLowerCase()),
  };
}

function pathModifier(p: HTTPPathModifier | undefined, field: string, problems: string[]): PathModifier | undefined {
  if (p === undefined) return undefined;
  if (p.type === 'ReplaceFullPath' && typeof p.replaceFullPath === 'string') return { type: 'ReplaceFullPath', value: p.replaceFullPath };
  if (p.type === 'ReplacePrefixMatch' && typeof p.replacePrefixMatch === 'string') return { type: 'ReplacePrefixMatch', value: p.replacePrefixMatch };
  problems.push(`${field}: needs type ReplaceFullPath with replaceFullPath, or ReplacePrefixMatch with replacePrefixMatch`);
  return undefined;
}
