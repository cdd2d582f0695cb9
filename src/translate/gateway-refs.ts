// [issue 14] References across Gateway API objects: ReferenceGrants, and backendRefs → Backends.
//
// A reference into another namespace is allowed only by a ReferenceGrant in the target's namespace whose `from`
// names the referring kind and namespace and whose `to` names the target's kind (and its name, when `to.name` is
// set). A Gateway's certificateRefs to Secrets and a route's backendRefs to Services both go through here.
//
// A backendRef becomes a Backend (backends.ts reads its Service, port and ready endpoints) or, when it cannot be
// used, an invalid Backend: the spec asks that the share of requests going to it get 500, and the reason goes on
// the route's ResolvedRefs condition, checked in this order: InvalidKind (only core Services are backends),
// RefNotPermitted (another namespace without a ReferenceGrant), BackendNotFound (no such Service or port),
// UnsupportedProtocol (a port whose appProtocol wsgate does not speak, e.g. kubernetes.io/h2c).
import type { BackendObjectReference, ReferenceGrant } from '../api/gateway-api.ts';
import { GATEWAY_GROUP } from '../api/gateway-api.ts';
import type { Backend } from '../model/table.ts';
import { resolveBackends } from './backends.ts';
import { ObjectReport } from './conditions.ts';
import type { Lookup } from './lookup.ts';

/**
 * A list from an object as read: the list, or none when the field is absent or not a list (a file may hold
 * anything; the API server's schemas keep a cluster's objects in shape).
 */
export function listOf<T>(v: readonly T[] | null | undefined): readonly T[] {
  return Array.isArray(v) ? (v as readonly T[]) : [];
}

/** Reasons of a route's ResolvedRefs=False, as the Gateway API names them. */
export type RouteRefReason = 'InvalidKind' | 'RefNotPermitted' | 'BackendNotFound' | 'UnsupportedProtocol';

/** appProtocols of a Service port that wsgate's HTTP routes can speak to (plain HTTP/1.1, WebSocket over it). */
const HTTP_APP_PROTOCOLS = new Set(['', 'http', 'kubernetes.io/ws', 'kubernetes.io/http']);

export class ReferenceGrants {
  readonly #grants: readonly ReferenceGrant[];

  constructor(grants: readonly ReferenceGrant[]) {
    this.#grants = grants;
  }

  /**
   * Whether an object of `fromKind` (group `fromGroup`) in `fromNamespace` may refer to the `toKind` (core group when
   * `toGroup` is '') named `toName` in `toNamespace`. The same namespace needs no grant.
   */
  allows(from: { group: string; kind: string; namespace: string }, to: { group: string; kind: string; namespace: string; name: string }): boolean {
    if (from.namespace === to.namespace) return true;
    return this.#grants.some((g) => {
      if ((g.metadata?.namespace || 'default') !== to.namespace) return false;
      const fromOk = listOf(g.spec?.from).some((f) => (f?.group ?? '') === from.group && f?.kind === from.kind && f?.namespace === from.namespace);
      if (!fromOk) return false;
      return listOf(g.spec?.to).some(
        (t) => (t?.group ?? '') === to.group && t?.kind === to.kind && (t?.name === undefined || t.name === '' || t.name === to.name),
      );
    });
  }
}

/** What a route's backendRefs resolve to, and the first problem found (for ResolvedRefs). */
export interface ResolvedBackends {
  readonly backends: Backend[];
  readonly problems: { readonly reason: RouteRefReason; readonly message: string }[];
}

/**
 * Resolves one rule's backendRefs. `kind` is the referring route's kind (for ReferenceGrants); `field` the rule's
 * field path. `http`: the route speaks HTTP, so the Service port's appProtocol must be one wsgate speaks.
 */
export function resolveGatewayBackends(
  refs: readonly BackendObjectReference[] | undefined,
  field: string,
  route: { kind: string; namespace: string },
  lookup: Lookup,
  grants: ReferenceGrants,
  http: boolean,
): ResolvedBackends {
  const backends: Backend[] = [];
  const problems: { reason: RouteRefReason; message: string }[] = [];
  listOf(refs).forEach((ref, i) => {
    const at = `${field}.backendRefs[${i}]`;
    const weight = typeof ref?.weight === 'number' && Number.isInteger(ref.weight) && ref.weight >= 0 ? ref.weight : 1;
    const namespace = ref?.namespace || route.namespace;
    const name = typeof ref?.name === 'string' ? ref.name : '';
    const invalid = (reason: RouteRefReason, message: string): void => {
      problems.push({ reason, message: `${at}: ${message}` });
      backends.push({ name: `${namespace}/${name}:${ref?.port ?? ''}`, weight, endpoints: [], invalid: true });
    };
    const group = ref?.group ?? '';
    const kind = ref?.kind ?? 'Service';
    if (group !== '' || kind !== 'Service') {
      return invalid('InvalidKind', `${group === '' ? 'core' : group} ${kind} is not a kind of backend wsgate supports (only Service)`);
    }
    if (!grants.allows({ group: GATEWAY_GROUP, kind: route.kind, namespace: route.namespace }, { group: '', kind: 'Service', namespace, name })) {
      return invalid('RefNotPermitted', `Service ${namespace}/${name} is in another namespace and no ReferenceGrant there allows it`);
    }
    const port = ref?.port;
    if (typeof port !== 'number') return invalid('BackendNotFound', 'port is required for a Service');
    const service = lookup.service(namespace, name);
    if (service === undefined) return invalid('BackendNotFound', `Service ${namespace}/${name} not found`);
    const servicePort = (service.spec?.ports ?? []).find((p) => p.port === port);
    if (servicePort === undefined) return invalid('BackendNotFound', `Service ${namespace}/${name} has no port ${port}`);
    if (http && !HTTP_APP_PROTOCOLS.has(servicePort.appProtocol ?? '')) {
      return invalid('UnsupportedProtocol', `port ${port} of Service ${namespace}/${name} speaks ${servicePort.appProtocol}, which wsgate does not`);
    }
    // backends.ts reads the port's endpoints; its own problems cannot arise here (the Service and port exist), so
    // they go to a throwaway report.
    const scratch = new ObjectReport('WebSocketRoute', { namespace, name: '' });
    const [resolved] = resolveBackends([{ ref: { service: name, port, weight }, fields: { service: at, port: at } }], namespace, lookup, scratch);
    if (resolved === undefined) return invalid('BackendNotFound', `port ${port} of Service ${namespace}/${name} is not TCP`);
    backends.push(resolved);
  });
  return { backends: mergeBackends(backends), problems };
}

/** One Backend per name, weights summed (the balancer must see each backend once). */
function mergeBackends(list: readonly Backend[]): Backend[] {
  const byName = new Map<string, Backend>();
  for (const b of list) {
    const seen = byName.get(b.name);
    byName.set(b.name, seen === undefined ? b : { ...seen, weight: seen.weight + b.weight });
  }
  return [...byName.values()];
}
