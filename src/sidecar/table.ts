// The routing table of a sidecar: one implicit route, every host and path, to the one app in the pod. Pure: the
// same data plane as the controller's, fed with a table built from flags instead of Kubernetes objects.
import { DEFAULT_POLICY, freezeTable, type Endpoint, type Policy, type RoutingTable } from '../model/table.ts';

export interface SidecarRoute {
  /** The metric and log label of the route (`--name`). */
  readonly name: string;
  /** Where the app listens, normally 127.0.0.1:PORT inside the pod. */
  readonly upstream: Endpoint;
  /** [policy=DEFAULT_POLICY] Origin allow-list, limits, timeouts. Load balancing is moot with one endpoint. */
  readonly policy?: Policy;
}

/** The id of the sidecar's only route; it keys the connection limits, which so carry across table swaps. */
export const SIDECAR_ROUTE_ID = 'Sidecar/app#0';

export function sidecarTable(r: SidecarRoute): RoutingTable {
  return freezeTable({
    virtualHosts: [
      {
        hostname: '*',
        routes: [
          {
            id: SIDECAR_ROUTE_ID,
            route: r.name,
            pathType: 'Prefix',
            path: '/',
            backends: [{ name: `app ${r.upstream.address}:${r.upstream.port}`, weight: 1, endpoints: [r.upstream] }],
            policy: r.policy ?? DEFAULT_POLICY,
          },
        ],
      },
    ],
    certificates: [],
    tunnels: [],
  });
}
