// The kinds the controller watches, and how each is listed and watched. Lists use the generated API clients; watches
// use the same paths with `?watch=true` (client-node's Watch). Secrets are listed and watched with the field selector
// `type=kubernetes.io/tls`: wsgate never sees any other Secret.
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  NetworkingV1Api,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { GROUP, VERSION } from '../api/types.ts';
import { TLS_SECRET_TYPE } from '../translate/certificates.ts';

export type WatchedKind = 'IngressClass' | 'Ingress' | 'WebSocketRoute' | 'TCPTunnel' | 'Service' | 'EndpointSlice' | 'Secret';

/** In the order the informers start. */
export const WATCHED_KINDS: readonly WatchedKind[] = [
  'IngressClass',
  'Ingress',
  'WebSocketRoute',
  'TCPTunnel',
  'Service',
  'EndpointSlice',
  'Secret',
];

export interface ObjectList {
  readonly items: KubernetesObject[];
  readonly metadata?: { resourceVersion?: string };
}

export interface KindSource {
  readonly kind: WatchedKind;
  /** The collection's path, for watches (`/apis/networking.k8s.io/v1/ingresses`). */
  readonly path: string;
  readonly fieldSelector?: string;
  list(): Promise<ObjectList>;
}

export const SECRET_FIELD_SELECTOR = `type=${TLS_SECRET_TYPE}`;

/**
 * One source per watched kind. [namespace] watches one namespace; undefined = all. IngressClass is
 * cluster-scoped and always watched cluster-wide.
 */
export function kindSources(kc: KubeConfig, namespace: string | undefined): KindSource[] {
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
  return [
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
}

/** `namespace/name` (`name` alone for cluster-scoped objects); translate's default namespace is `default`. */
export function keyOf(obj: KubernetesObject | undefined): string {
  const m = obj?.metadata;
  return m?.namespace ? `${m.namespace}/${m.name ?? ''}` : (m?.name ?? '');
}
