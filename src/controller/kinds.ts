// The kinds the controller watches, and how each is listed and watched. Lists use the generated API clients; watches
// use the same paths with `?watch=true` (client-node's Watch). Secrets are listed and watched with the field selector
// `type=kubernetes.io/tls`: wsgate never sees any other Secret.
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  NetworkingV1Api,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { GATEWAY_GROUP } from '../api/gateway-api.ts';
import { GROUP, VERSION } from '../api/types.ts';
import { TLS_SECRET_TYPE } from '../translate/certificates.ts';

/** [issue 14] The Gateway API kinds, and what they need besides: Namespaces (their labels) and provisioned Deployments. */
export type GatewayWatchedKind = 'GatewayClass' | 'Gateway' | 'HTTPRoute' | 'TLSRoute' | 'TCPRoute' | 'ReferenceGrant' | 'Namespace' | 'Deployment';

export type WatchedKind = 'IngressClass' | 'Ingress' | 'WebSocketRoute' | 'TCPTunnel' | 'Service' | 'EndpointSlice' | 'Secret' | GatewayWatchedKind;

/** In the order the informers start: what `wsgate controller` watches without Gateway API flags. */
export const WATCHED_KINDS: readonly WatchedKind[] = [
  'IngressClass',
  'Ingress',
  'WebSocketRoute',
  'TCPTunnel',
  'Service',
  'EndpointSlice',
  'Secret',
];

const GATEWAY_KINDS: readonly WatchedKind[] = ['GatewayClass', 'Gateway', 'HTTPRoute', 'TLSRoute', 'TCPRoute', 'ReferenceGrant', 'Namespace'];

/** Every kind a store may hold. */
export const ALL_KINDS: readonly WatchedKind[] = [...WATCHED_KINDS, ...GATEWAY_KINDS, 'Deployment'];

/**
 * [issue 14] What a controller watches:
 *  - `ingress`: the kinds above (no Gateway API flag);
 *  - `gateway-class`: those, the Gateway API kinds, and the Deployments it provisions (their readiness makes
 *    Programmed) — the controller that writes status and provisions proxies;
 *  - `gateway`: a provisioned proxy, serving one Gateway: the Gateway API kinds and what routes reference
 *    (Services, EndpointSlices, TLS Secrets), nothing of Ingress (its RBAC has none).
 */
export type WatchMode = 'ingress' | 'gateway-class' | 'gateway';

export function watchedKinds(mode: WatchMode): readonly WatchedKind[] {
  switch (mode) {
    case 'ingress':
      return WATCHED_KINDS;
    case 'gateway-class':
      return [...WATCHED_KINDS, ...GATEWAY_KINDS, 'Deployment'];
    case 'gateway':
      return [...GATEWAY_KINDS, 'Service', 'EndpointSlice', 'Secret'];
  }
}

/** The label every object wsgate provisions carries (and the Deployment informer selects on). */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'wsgate';

export interface ObjectList {
  readonly items: KubernetesObject[];
  readonly metadata?: { resourceVersion?: string };
}

export interface KindSource {
  readonly kind: WatchedKind;
  /** The collection's path, for watches (`/apis/networking.k8s.io/v1/ingresses`). */
  readonly path: string;
  readonly fieldSelector?: string;
  readonly labelSelector?: string;
  list(): Promise<ObjectList>;
}

export const SECRET_FIELD_SELECTOR = `type=${TLS_SECRET_TYPE}`;

/**
 * One source per watched kind. [namespace] watches one namespace; undefined = all. IngressClass is
 * cluster-scoped and always watched cluster-wide.
 */
export function kindSources(kc: KubeConfig, namespace: string | undefined, kinds: readonly WatchedKind[] = WATCHED_KINDS): KindSource[] {
  const core = kc.makeApiClient(CoreV1Api);
  const networking = kc.makeApiClient(NetworkingV1Api);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const ns = namespace === undefined ? '' : `/namespaces/${encodeURIComponent(namespace)}`;
  const crd = (kind: WatchedKind, plural: string): KindSource => ({
    kind,
    path: `/apis/${GROUP}/${VERSION}${ns}/${plural}`,
    list: async () =>
      (namespace === undefined
        ? await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural })
        : await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural })) as ObjectList,
  });
  const apps = kc.makeApiClient(AppsV1Api);
  // [issue 14] Gateway API kinds at v1 (the standard channel serves every kind wsgate reads there).
  const gatewayKind = (kind: WatchedKind, plural: string, clusterScoped = false): KindSource => ({
    kind,
    path: `/apis/${GATEWAY_GROUP}/v1${clusterScoped ? '' : ns}/${plural}`,
    list: async () =>
      (namespace === undefined || clusterScoped
        ? await custom.listClusterCustomObject({ group: GATEWAY_GROUP, version: 'v1', plural })
        : await custom.listNamespacedCustomObject({ group: GATEWAY_GROUP, version: 'v1', namespace, plural })) as ObjectList,
  });
  const managed = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;
  const all: KindSource[] = [
    gatewayKind('GatewayClass', 'gatewayclasses', true),
    gatewayKind('Gateway', 'gateways'),
    gatewayKind('HTTPRoute', 'httproutes'),
    gatewayKind('TLSRoute', 'tlsroutes'),
    gatewayKind('TCPRoute', 'tcproutes'),
    gatewayKind('ReferenceGrant', 'referencegrants'),
    { kind: 'Namespace', path: '/api/v1/namespaces', list: () => core.listNamespace() },
    {
      kind: 'Deployment',
      path: `/apis/apps/v1${ns}/deployments`,
      labelSelector: managed,
      list: () =>
        namespace === undefined
          ? apps.listDeploymentForAllNamespaces({ labelSelector: managed })
          : apps.listNamespacedDeployment({ namespace, labelSelector: managed }),
    },
    {
      kind: 'IngressClass',
      path: '/apis/networking.k8s.io/v1/ingressclasses',
      list: () => networking.listIngressClass(),
    },
    {
      kind: 'Ingress',
      path: `/apis/networking.k8s.io/v1${ns}/ingresses`,
      list: () =>
        namespace === undefined ? networking.listIngressForAllNamespaces() : networking.listNamespacedIngress({ namespace }),
    },
    crd('WebSocketRoute', 'websocketroutes'),
    crd('TCPTunnel', 'tcptunnels'),
    {
      kind: 'Service',
      path: `/api/v1${ns}/services`,
      list: () => (namespace === undefined ? core.listServiceForAllNamespaces() : core.listNamespacedService({ namespace })),
    },
    {
      kind: 'EndpointSlice',
      path: `/apis/discovery.k8s.io/v1${ns}/endpointslices`,
      list: () =>
        namespace === undefined
          ? discovery.listEndpointSliceForAllNamespaces()
          : discovery.listNamespacedEndpointSlice({ namespace }),
    },
    {
      kind: 'Secret',
      path: `/api/v1${ns}/secrets`,
      fieldSelector: SECRET_FIELD_SELECTOR,
      list: () =>
        namespace === undefined
          ? core.listSecretForAllNamespaces({ fieldSelector: SECRET_FIELD_SELECTOR })
          : core.listNamespacedSecret({ namespace, fieldSelector: SECRET_FIELD_SELECTOR }),
    },
  ];
  return kinds.map((k) => all.find((s) => s.kind === k)!);
}

/** `namespace/name` (`name` alone for cluster-scoped objects); translate's default namespace is `default`. */
export function keyOf(obj: KubernetesObject | undefined): string {
  const m = obj?.metadata;
  return m?.namespace ? `${m.namespace}/${m.name ?? ''}` : (m?.name ?? '');
}
