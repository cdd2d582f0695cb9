// Plain objects (from YAML files, or fixtures in tests) → a Snapshot. Objects are grouped by kind; `List`
// objects are opened; anything else wsgate does not read (other kinds, other API versions of a kind, values that
// are not objects) is left out. Shape is not checked here: that is the schema validator's job, and translate()
// copes with what gets past it.
import {
  KIND_API_VERSIONS,
  type EndpointSlice,
  type Ingress,
  type IngressClass,
  type Secret,
  type Service,
  type TCPTunnel,
  type WebSocketRoute,
} from '../api/types.ts';
import {
  GATEWAY_API_VERSIONS,
  type Gateway,
  type GatewayAPIKind,
  type GatewayClass,
  type HTTPRoute,
  type Namespace,
  type ReferenceGrant,
  type TCPRoute,
  type TLSRoute,
} from '../api/gateway-api.ts';
import type { Snapshot } from './snapshot.ts';

/** The apiVersion each kind must have (or omit) to be read. */
const API_VERSIONS: Readonly<Record<string, string>> = KIND_API_VERSIONS;

/**
 * [ingressClassName='wsgate'] The IngressClass name wsgate serves. [watchIngressWithoutClass=false] Serve Ingresses
 * that name no class too.
 */
export function snapshotFromObjects(objects: readonly unknown[], ingressClassName = 'wsgate', watchIngressWithoutClass = false): Snapshot {
  const s = {
    ingressClassName,
    ...(watchIngressWithoutClass ? { watchIngressWithoutClass } : {}),
    ingressClasses: [] as IngressClass[],
    ingresses: [] as Ingress[],
    webSocketRoutes: [] as WebSocketRoute[],
    tcpTunnels: [] as TCPTunnel[],
    services: [] as Service[],
    endpointSlices: [] as EndpointSlice[],
    secrets: [] as Secret[],
    // [issue 14]
    gatewayClasses: [] as GatewayClass[],
    gateways: [] as Gateway[],
    httpRoutes: [] as HTTPRoute[],
    tlsRoutes: [] as TLSRoute[],
    tcpRoutes: [] as TCPRoute[],
    referenceGrants: [] as ReferenceGrant[],
    namespaces: [] as Namespace[],
  };
  const add = (value: unknown): void => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
    const o = value as { kind?: unknown; apiVersion?: unknown; items?: unknown };
    if (o.kind === 'List' && Array.isArray(o.items)) {
      for (const item of o.items) add(item);
      return;
    }
    if (typeof o.kind !== 'string') return;
    // [issue 14] Gateway API kinds, at any version the standard channel serves; and Namespaces, for their labels.
    const gatewayVersions = Object.hasOwn(GATEWAY_API_VERSIONS, o.kind) ? GATEWAY_API_VERSIONS[o.kind as GatewayAPIKind] : undefined;
    if (gatewayVersions !== undefined) {
      if (o.apiVersion !== undefined && !gatewayVersions.includes(o.apiVersion as string)) return;
      const lists: Record<GatewayAPIKind, unknown[]> = {
        GatewayClass: s.gatewayClasses,
        Gateway: s.gateways,
        HTTPRoute: s.httpRoutes,
        TLSRoute: s.tlsRoutes,
        TCPRoute: s.tcpRoutes,
        ReferenceGrant: s.referenceGrants,
      };
      lists[o.kind as GatewayAPIKind].push(o);
      return;
    }
    if (o.kind === 'Namespace') {
      if (o.apiVersion === undefined || o.apiVersion === 'v1') s.namespaces.push(o as Namespace);
      return;
    }
    const apiVersion = API_VERSIONS[o.kind];
    if (apiVersion === undefined || (o.apiVersion !== undefined && o.apiVersion !== apiVersion)) return;
    switch (o.kind) {
      case 'Ingress':
        s.ingresses.push(o as Ingress);
        break;
      case 'IngressClass':
        s.ingressClasses.push(o as IngressClass);
        break;
      case 'Service':
        s.services.push(o as Service);
        break;
      case 'EndpointSlice':
        s.endpointSlices.push(o as EndpointSlice);
        break;
      case 'Secret':
        s.secrets.push(o as Secret);
        break;
      case 'WebSocketRoute':
        s.webSocketRoutes.push(o as WebSocketRoute);
        break;
      case 'TCPTunnel':
        s.tcpTunnels.push(o as TCPTunnel);
        break;
    }
  };
  for (const o of objects) add(o);
  // [issue 14] Gateway API lists only when something was read: a snapshot without them is as it always was.
  const { gatewayClasses, gateways, httpRoutes, tlsRoutes, tcpRoutes, referenceGrants, namespaces, ...rest } = s;
  const gatewayLists = { gatewayClasses, gateways, httpRoutes, tlsRoutes, tcpRoutes, referenceGrants, namespaces };
  const present = Object.fromEntries(Object.entries(gatewayLists).filter(([, list]) => list.length > 0));
  return { ...rest, ...present };
}
