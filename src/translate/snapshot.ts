// The translator's input and output. A Snapshot is an immutable view of the objects wsgate cares about, built by a
// source (files or Kubernetes informers); TranslateResult is the routing table plus what to say about each object.
import type {
  EndpointSlice,
  Ingress,
  IngressClass,
  Secret,
  Service,
  TCPTunnel,
  WebSocketRoute,
  Condition,
} from '../api/types.ts';
import type {
  GatewayClass,
  GatewayCondition,
  Gateway,
  GatewayRouteKind,
  GatewayStatus,
  HTTPRoute,
  Namespace,
  ReferenceGrant,
  RouteParentStatus,
  TCPRoute,
  TLSRoute,
} from '../api/gateway-api.ts';
import type { RoutingTable } from '../model/table.ts';
import type { GatewayInfrastructure } from './gateway-listeners.ts';

export interface Snapshot {
  /** The IngressClass name wsgate serves (`--ingress-class`, default `wsgate`). */
  readonly ingressClassName: string;
  /** `--watch-ingress-without-class`: Ingresses naming no class are served too (default false). */
  readonly watchIngressWithoutClass?: boolean;
  readonly ingressClasses: readonly IngressClass[];
  readonly ingresses: readonly Ingress[];
  readonly webSocketRoutes: readonly WebSocketRoute[];
  readonly tcpTunnels: readonly TCPTunnel[];
  readonly services: readonly Service[];
  readonly endpointSlices: readonly EndpointSlice[];
  readonly secrets: readonly Secret[];
  // [issue 14] Gateway API. All optional: a snapshot without them translates as before.
  readonly gatewayClasses?: readonly GatewayClass[];
  readonly gateways?: readonly Gateway[];
  readonly httpRoutes?: readonly HTTPRoute[];
  readonly tlsRoutes?: readonly TLSRoute[];
  readonly tcpRoutes?: readonly TCPRoute[];
  readonly referenceGrants?: readonly ReferenceGrant[];
  /** Namespaces with their labels, for allowedRoutes.namespaces.selector. */
  readonly namespaces?: readonly Namespace[];
  /** [gatewayControllerName='wsgate.io/gateway-controller'] The GatewayClass controllerName wsgate owns. */
  readonly gatewayControllerName?: string;
  /**
   * `--gateway-class`: the GatewayClasses (of that controllerName) this wsgate manages; absent = every one. Several
   * wsgate installs in one cluster split classes this way.
   */
  readonly gatewayClassNames?: readonly string[];
  /**
   * Whose listeners go into the table: 'all' (default: `serve` and `translate` serve every Gateway of wsgate's
   * classes, merging ports), one Gateway (a provisioned proxy, `controller --gateway`), or 'none' (the controller
   * that provisions proxies and writes status serves no Gateway itself).
   */
  readonly gatewayServed?: 'all' | 'none' | { readonly namespace: string; readonly name: string };
  /**
   * What the controller observes of each Gateway's provisioned proxies, by `namespace/name`: their addresses and
   * readiness make Programmed. Absent (files): a Gateway this translation serves is Programmed.
   */
  readonly gatewayInfrastructure?: ReadonlyMap<string, GatewayInfrastructure>;
}

export type StatusKind = 'WebSocketRoute' | 'TCPTunnel' | 'Ingress';

/**
 * What translation says about one object: conditions (Accepted, ResolvedRefs) for wsgate's kinds; for an Ingress
 * the same conditions, which the controller turns into Events and log lines since Ingress has no conditions.
 */
export interface ObjectStatus {
  readonly kind: StatusKind;
  readonly namespace: string;
  readonly name: string;
  readonly observedGeneration: number;
  readonly conditions: readonly Condition[];
}

/** [issue 14] The status of each Gateway API object wsgate answers for; conditions carry no lastTransitionTime. */
export interface GatewayAPIStatuses {
  /** Sorted by name. */
  readonly gatewayClasses: readonly {
    readonly name: string;
    readonly generation: number;
    readonly conditions: readonly GatewayCondition[];
    /** GEP-2162: the features wsgate supports, sorted; the conformance suite reads them. */
    readonly supportedFeatures: readonly string[];
  }[];
  /** Sorted by namespace, name. */
  readonly gateways: readonly { readonly namespace: string; readonly name: string; readonly generation: number; readonly status: Required<GatewayStatus> }[];
  /** Sorted by kind, namespace, name; `parents` only those wsgate answers for, in parentRefs order. */
  readonly routes: readonly {
    readonly kind: GatewayRouteKind;
    readonly namespace: string;
    readonly name: string;
    readonly generation: number;
    readonly parents: readonly RouteParentStatus[];
  }[];
}

export interface TranslateResult {
  readonly table: RoutingTable;
  /** Sorted by kind, namespace, name. */
  readonly statuses: readonly ObjectStatus[];
  /** [issue 14] Present when the snapshot holds Gateway API objects. */
  readonly gatewayAPI?: GatewayAPIStatuses;
}

export function emptySnapshot(ingressClassName = 'wsgate'): Snapshot {
  return {
    ingressClassName,
    ingressClasses: [],
    ingresses: [],
    webSocketRoutes: [],
    tcpTunnels: [],
    services: [],
    endpointSlices: [],
    secrets: [],
  };
}
