// Fixture builders for translator tests: each returns a plain object as it would come from YAML or the API server,
// with only what the test cares about spelled out at the call site.
import type { BackendRef, EndpointSlice, Ingress, Service, TCPTunnel, WebSocketRoute, WebSocketRouteRule } from '../../src/api/types.ts';

export function webSocketRoute(
  name: string,
  spec: { hostnames?: string[]; rules?: WebSocketRouteRule[] } = {},
  meta: { namespace?: string; creationTimestamp?: Date | string } = {},
): WebSocketRoute {
  return {
    apiVersion: 'wsgate.io/v1alpha1',
    kind: 'WebSocketRoute',
    metadata: { name, namespace: meta.namespace ?? 'default', creationTimestamp: meta.creationTimestamp as Date | undefined },
    spec: { ...(spec.hostnames ? { hostnames: spec.hostnames } : {}), rules: spec.rules ?? [rule('/')] },
  };
}

export function rule(path: string, backends: BackendRef[] = [{ service: 'chat', port: 80 }]): WebSocketRouteRule {
  return { path: { type: 'Prefix', value: path }, backends };
}

export function tcpTunnel(name: string, port: number, sniHostnames?: string[]): TCPTunnel {
  return {
    apiVersion: 'wsgate.io/v1alpha1',
    kind: 'TCPTunnel',
    metadata: { name, namespace: 'default' },
    spec: { port, ...(sniHostnames ? { sniHostnames } : {}), backends: [{ service: 'chat', port: 80 }] },
  };
}

export function service(name: string, port = 80, targetPort = 8080): Service & { kind: 'Service' } {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: { ports: [{ port, targetPort }] },
  };
}

export function endpointSlice(service: string, port: number, addresses: string[]): EndpointSlice & { kind: 'EndpointSlice' } {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${service}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    ports: [{ port }],
    endpoints: addresses.map((a) => ({ addresses: [a] })),
  };
}

export function ingress(name: string, spec: Ingress['spec']): Ingress & { kind: 'Ingress' } {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name, namespace: 'default' }, spec };
}
