// Builders for routing-table fixtures: proxy tests start from a table, not from Kubernetes objects.
import {
  DEFAULT_POLICY,
  freezeTable,
  type Backend,
  type Certificate,
  type HttpRoute,
  type Policy,
  type RoutingTable,
  type TunnelRoute,
  type VirtualHost,
} from '../../src/model/table.ts';


export function backend(name: string, ...ports: number[]): Backend {
  return { name, weight: 1, endpoints: ports.map((port) => ({ address: '127.0.0.1', port })) };
}

export function httpRoute(o: {
  route?: string;
  path?: string;
  pathType?: 'Exact' | 'Prefix';
  backends: Backend[];
  policy?: Partial<Policy>;
  id?: string;
}): HttpRoute {
  const route = o.route ?? 'default/test';
  return {
    // Stable across tables, like translate's ids: re-applying a table must not look like removing its routes.
    id: o.id ?? `WebSocketRoute/${route}#${o.pathType ?? 'Prefix'}:${o.path ?? '/'}`,
    route,
    pathType: o.pathType ?? 'Prefix',
    path: o.path ?? '/',
    backends: o.backends,
    policy: { ...DEFAULT_POLICY, ...o.policy },
  };
}

export function vhost(hostname: string, ...routes: HttpRoute[]): VirtualHost {
  return { hostname, routes };
}

export function tunnelRoute(o: Partial<TunnelRoute> & { port: number; backends: Backend[] }): TunnelRoute {
  const route = o.route ?? 'default/tunnel';
  return {
    id: o.id ?? `TCPTunnel/${route}`,
    route,
    sniHostnames: [],
    proxyProtocol: 'None',
    idleTimeoutSeconds: 0,
    connectTimeoutSeconds: 5,
    maxConnections: 0,
    endpointDrainSeconds: DEFAULT_POLICY.endpointDrainSeconds,
    onRemoval: DEFAULT_POLICY.onRemoval,
    ...o,
  };
}

export function table(o: { virtualHosts?: VirtualHost[]; certificates?: Certificate[]; tunnels?: TunnelRoute[] }): RoutingTable {
  return freezeTable({ virtualHosts: o.virtualHosts ?? [], certificates: o.certificates ?? [], tunnels: o.tunnels ?? [] });
}

/** A table with one route for every host and path to the given backend ports. */
export function catchAll(ports: number[], policy?: Partial<Policy>, route = 'default/test'): RoutingTable {
  return table({
    virtualHosts: [vhost('*', httpRoute({ route, backends: [backend(`default/backend:80`, ...ports)], ...(policy ? { policy } : {}) }))],
  });
}
