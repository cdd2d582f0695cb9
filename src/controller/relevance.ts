// Does a change matter? Pure: a store event and what the routes currently reference in, a yes or no out. A change
// that cannot alter the routing table or a status triggers nothing (it is still counted, relevant="false"):
//
//   - IngressClass: ours by name (--ingress-class) or by controller (wsgate.io/ingress-controller), before or after.
//   - Ingress: ours before or after (selectIngresses: class field, legacy annotation, or our default class); an
//     update only when its spec, annotations or generation changed (not its status, which wsgate writes itself).
//   - WebSocketRoute, TCPTunnel: always ours; an update only when spec, annotations or generation changed.
//   - Service: referenced by a route, or the --publish-service.
//   - EndpointSlice: its kubernetes.io/service-name label names a referenced Service of its namespace.
//   - Secret: referenced by a route's TLS (or [issue 14] a Gateway listener's certificateRefs).
//   - [issue 14] Gateway API kinds: any change of spec, annotations or generation (not status: wsgate writes it);
//     Namespaces: their labels (allowedRoutes selectors); provisioned Deployments: their readiness; provisioned
//     Services (managed-by wsgate): always, their address is their Gateway's.
import { isDeepStrictEqual } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Gateway, HTTPRoute, TCPRoute, TLSRoute } from '../api/gateway-api.ts';
import { CONTROLLER_NAME, type Ingress, type IngressClass, type TCPTunnel, type WebSocketRoute } from '../api/types.ts';
import { listOf } from '../translate/gateway-refs.ts';
import { MANAGED_BY, MANAGED_BY_LABEL } from './kinds.ts';
import { selectIngresses } from '../translate/ingress.ts';
import { NGINX_PREFIX } from '../translate/ingress-nginx.ts';
import { SERVICE_NAME_LABEL } from '../translate/lookup.ts';
import { emptySnapshot } from '../translate/snapshot.ts';
import type { StoreEvent } from './store.ts';

/** What routes refer to, as `namespace/name` keys. */
export interface References {
  readonly services: ReadonlySet<string>;
  readonly secrets: ReadonlySet<string>;
}

export interface RelevanceView extends References {
  readonly ingressClassName: string;
  /** --watch-ingress-without-class. */
  readonly watchIngressWithoutClass?: boolean;
  readonly ingressClasses: readonly IngressClass[];
  /** `namespace/name` of --publish-service, if any. */
  readonly publishService?: string;
}

const DEFAULT_NAMESPACE = 'default';

function nsOf(obj: KubernetesObject | undefined): string {
  return obj?.metadata?.namespace || DEFAULT_NAMESPACE;
}

/** The Services and Secrets referenced by the given routes (Ingresses: only those that are ours). */
export function referencesOf(routes: {
  readonly ingresses: readonly Ingress[];
  readonly webSocketRoutes: readonly WebSocketRoute[];
  readonly tcpTunnels: readonly TCPTunnel[];
  // [issue 14]
  readonly gateways?: readonly Gateway[];
  readonly gatewayRoutes?: readonly (HTTPRoute | TLSRoute | TCPRoute)[];
}): References {
  const services = new Set<string>();
  const secrets = new Set<string>();
  const addService = (ns: string, name: unknown): void => {
    if (typeof name === 'string' && name !== '') services.add(`${ns}/${name}`);
  };
  const addSecret = (ns: string, name: unknown): void => {
    if (typeof name === 'string' && name !== '') secrets.add(`${ns}/${name}`);
  };
  for (const ing of routes.ingresses) {
    const ns = nsOf(ing);
    addService(ns, ing.spec?.defaultBackend?.service?.name);
    for (const rule of ing.spec?.rules ?? []) {
      for (const p of rule?.http?.paths ?? []) addService(ns, p?.backend?.service?.name);
    }
    for (const tls of ing.spec?.tls ?? []) addSecret(ns, tls?.secretName);
    // [issue 12] The backend CA of nginx.ingress.kubernetes.io/proxy-ssl-secret (NAME or NAMESPACE/NAME).
    const caSecret = ing.metadata?.annotations?.[`${NGINX_PREFIX}proxy-ssl-secret`];
    if (typeof caSecret === 'string') addSecret(ns, caSecret.includes('/') ? caSecret.split('/')[1] : caSecret);
  }
  for (const r of routes.webSocketRoutes) {
    const ns = nsOf(r);
    for (const rule of r.spec?.rules ?? []) {
      for (const b of rule?.backends ?? []) addService(ns, b?.service);
      addSecret(ns, rule?.policy?.backendTLS?.caSecret);
    }
    addSecret(ns, r.spec?.tls?.secretName);
    addSecret(ns, r.spec?.policy?.backendTLS?.caSecret);
  }
  for (const t of routes.tcpTunnels) {
    const ns = nsOf(t);
    for (const b of t.spec?.backends ?? []) addService(ns, b?.service);
  }
  // [issue 14] Gateway listeners' certificates, and routes' backendRefs (which may name another namespace).
  for (const g of routes.gateways ?? []) {
    const ns = nsOf(g);
    for (const l of listOf(g.spec?.listeners)) {
      for (const ref of listOf(l?.tls?.certificateRefs)) {
        if ((ref?.group ?? '') === '' && (ref?.kind ?? 'Secret') === 'Secret') addSecret(ref.namespace || ns, ref.name);
      }
    }
  }
  for (const r of routes.gatewayRoutes ?? []) {
    const ns = nsOf(r);
    for (const rule of listOf(r.spec?.rules)) {
      for (const b of listOf(rule?.backendRefs)) {
        if ((b?.group ?? '') === '' && (b?.kind ?? 'Service') === 'Service') addService(b.namespace || ns, b.name);
      }
    }
  }
  return { services, secrets };
}

/** Whether this Ingress is served by wsgate, given the IngressClasses known. */
export function isOurIngress(ing: Ingress, v: Pick<RelevanceView, 'ingressClassName' | 'ingressClasses' | 'watchIngressWithoutClass'>): boolean {
  const snapshot = { ...emptySnapshot(v.ingressClassName), ingressClasses: v.ingressClasses, ingresses: [ing] };
  return selectIngresses(v.watchIngressWithoutClass === true ? { ...snapshot, watchIngressWithoutClass: true } : snapshot).length > 0;
}

function isOurClass(c: KubernetesObject | undefined, name: string): boolean {
  if (c === undefined) return false;
  return c.metadata?.name === name || (c as IngressClass).spec?.controller === CONTROLLER_NAME;
}

/** An update that changes what translation reads (not just status or bookkeeping). */
function specChanged(e: StoreEvent): boolean {
  if (e.type !== 'updated') return true;
  const a = e.old as { spec?: unknown; metadata?: { generation?: number; annotations?: unknown } } | undefined;
  const b = e.new as typeof a;
  return (
    a?.metadata?.generation !== b?.metadata?.generation ||
    !isDeepStrictEqual(plain(a?.spec), plain(b?.spec)) ||
    !isDeepStrictEqual(plain(a?.metadata?.annotations ?? {}), plain(b?.metadata?.annotations ?? {}))
  );
}

/** Values as JSON would carry them (class instances and undefined members from generated clients compare equal). */
function plain(v: unknown): unknown {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

function keyIn(set: ReadonlySet<string>, obj: KubernetesObject | undefined): boolean {
  return obj !== undefined && set.has(`${nsOf(obj)}/${obj.metadata?.name ?? ''}`);
}

export function isRelevant(e: StoreEvent, v: RelevanceView): boolean {
  switch (e.kind) {
    // [issue 14] Gateway API objects: any change of what translation reads (their status is wsgate's own writing).
    case 'GatewayClass':
    case 'Gateway':
    case 'HTTPRoute':
    case 'TLSRoute':
    case 'TCPRoute':
    case 'ReferenceGrant':
      return specChanged(e);
    case 'Namespace':
      // allowedRoutes selectors read Namespace labels.
      return e.type !== 'updated' || !isDeepStrictEqual(plain(e.old?.metadata?.labels ?? {}), plain(e.new?.metadata?.labels ?? {}));
    case 'Deployment': {
      // A provisioned proxy Deployment: its readiness makes its Gateway Programmed.
      const ready = (o: KubernetesObject | undefined): unknown => (o as { status?: { availableReplicas?: number; readyReplicas?: number } } | undefined)?.status;
      return e.type !== 'updated' || !isDeepStrictEqual(plain(ready(e.old)), plain(ready(e.new))) || specChanged(e);
    }
    case 'IngressClass':
      return isOurClass(e.old, v.ingressClassName) || isOurClass(e.new, v.ingressClassName);
    case 'Ingress': {
      const ours = (o: KubernetesObject | undefined): boolean => o !== undefined && isOurIngress(o, v);
      return (ours(e.old) || ours(e.new)) && specChanged(e);
    }
    case 'WebSocketRoute':
    case 'TCPTunnel':
      return specChanged(e);
    case 'Service': {
      const obj = e.new ?? e.old;
      if (obj !== undefined && v.publishService === `${nsOf(obj)}/${obj.metadata?.name ?? ''}`) return true;
      // [issue 14] A Service wsgate provisioned for a Gateway: its load-balancer address is the Gateway's.
      if (obj?.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY) return true;
      return keyIn(v.services, e.old) || keyIn(v.services, e.new);
    }
    case 'EndpointSlice': {
      const serviceOf = (o: KubernetesObject | undefined): string | undefined => {
        const name = o?.metadata?.labels?.[SERVICE_NAME_LABEL];
        return name === undefined ? undefined : `${nsOf(o)}/${name}`;
      };
      const a = serviceOf(e.old);
      const b = serviceOf(e.new);
      return (a !== undefined && v.services.has(a)) || (b !== undefined && v.services.has(b));
    }
    case 'Secret':
      return keyIn(v.secrets, e.old) || keyIn(v.secrets, e.new);
  }
}
