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
import type { RoutingTable } from '../model/table.ts';

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

export interface TranslateResult {
  readonly table: RoutingTable;
  /** Sorted by kind, namespace, name. */
  readonly statuses: readonly ObjectStatus[];
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
