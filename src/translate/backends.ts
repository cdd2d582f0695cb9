// Backend references → Backends with ready endpoints:
//   1. the Service of that name in the route's namespace;
//   2. its port, by number (`port`) or by name (`name`), TCP only;
//   3. the port's targetPort: a number is the endpoint port; a name is resolved per EndpointSlice, by the slice
//      port that has the Service port's name (or is unnamed when the Service port is), as kube-proxy does;
//      no targetPort means the same number as the Service port;
//   4. the addresses of every endpoint of the Service's EndpointSlices (label kubernetes.io/service-name) whose
//      conditions.ready is not false and conditions.terminating is not true (EndpointSlice v1: a terminating pod
//      may still be `serving`, and with publishNotReadyAddresses even `ready`, but it is on its way out: it takes
//      no new connection, and the tunnels it holds are drained over the route's endpointDrainSeconds).
// A reference that cannot be resolved is left out of the route and said on the object (ResolvedRefs=False,
// BackendNotFound); a Service with no ready endpoint is kept with none, and the proxy answers 503.
import type { BackendRef, Service } from '../api/types.ts';
import type { Backend, Endpoint } from '../model/table.ts';
import type { ObjectReport } from './conditions.ts';
import type { Lookup } from './lookup.ts';
import { compareStrings } from './hostnames.ts';

/** Where a reference was written, for messages: the field paths of its service name and its port. */
export interface RefFields {
  readonly service: string;
  readonly port: string;
}

/** Semantic checks of one reference (the schema validator checks shapes); messages name the field. */
export function checkBackendRef(ref: unknown, field: string): string[] {
  if (ref === null || typeof ref !== 'object') return [`${field}: must be an object with service and port`];
  const { service, port, weight } = ref as Record<string, unknown>;
  const errors: string[] = [];
  if (typeof service !== 'string' || service === '') errors.push(`${field}.service: must name a Service`);
  if (!isPortRef(port)) errors.push(`${field}.port: must be a port number 1-65535 or a port name`);
  if (weight !== undefined && !(Number.isInteger(weight) && (weight as number) >= 0)) {
    errors.push(`${field}.weight: must be an integer >= 0`);
  }
  return errors;
}

function isPortRef(port: unknown): port is number | string {
  return isPortNumber(port) || (typeof port === 'string' && port !== '');
}

export function isPortNumber(port: unknown): port is number {
  return Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535;
}

/**
 * Resolves checked references in the order written. A Service port listed twice becomes one Backend whose weight
 * is the sum, so that the balancer sees each backend once.
 */
export function resolveBackends(
  refs: readonly { ref: BackendRef; fields: RefFields }[],
  namespace: string,
  lookup: Lookup,
  report: ObjectReport,
): Backend[] {
  const byName = new Map<string, { name: string; weight: number; endpoints: readonly Endpoint[] }>();
  for (const { ref, fields } of refs) {
    const backend = resolveBackend(ref, namespace, fields, lookup, report);
    if (backend === undefined) continue;
    const seen = byName.get(backend.name);
    if (seen === undefined) byName.set(backend.name, { ...backend });
    else seen.weight += backend.weight;
  }
  return [...byName.values()];
}

function resolveBackend(
  ref: BackendRef,
  namespace: string,
  fields: RefFields,
  lookup: Lookup,
  report: ObjectReport,
): Backend | undefined {
  const service = lookup.service(namespace, ref.service);
  if (service === undefined) {
    report.unresolved('BackendNotFound', `${fields.service}: Service ${namespace}/${ref.service} not found`);
    return undefined;
  }
  const ports = Array.isArray(service.spec?.ports) ? service.spec.ports : [];
  const port = ports.find((p) => (typeof ref.port === 'number' ? p.port === ref.port : p.name === ref.port));
  if (port === undefined) {
    report.unresolved('BackendNotFound', `${fields.port}: Service ${namespace}/${ref.service} has no port ${ref.port}`);
    return undefined;
  }
  if (port.protocol !== undefined && port.protocol !== 'TCP') {
    report.unresolved(
      'BackendNotFound',
      `${fields.port}: port ${ref.port} of Service ${namespace}/${ref.service} is ${port.protocol}, not TCP`,
    );
    return undefined;
  }
  return {
    name: `${namespace}/${ref.service}:${port.port}`,
    weight: ref.weight ?? 1,
    endpoints: readyEndpoints(port, namespace, ref.service, lookup),
  };
}

type ServicePort = NonNullable<NonNullable<Service['spec']>['ports']>[number];

function readyEndpoints(
  port: ServicePort,
  namespace: string,
  serviceName: string,
  lookup: Lookup,
): Endpoint[] {
  const target = port.targetPort ?? port.port;
  const found = new Map<string, Endpoint>();
  for (const slice of lookup.endpointSlices(namespace, serviceName)) {
    let endpointPort: number | undefined;
    if (isPortNumber(target)) {
      endpointPort = target;
    } else {
      const slicePorts = Array.isArray(slice.ports) ? slice.ports : [];
      endpointPort = slicePorts.find((p) => (p.name ?? '') === (port.name ?? ''))?.port;
    }
    if (!isPortNumber(endpointPort)) continue;
    for (const endpoint of Array.isArray(slice.endpoints) ? slice.endpoints : []) {
      if (endpoint.conditions?.ready === false || endpoint.conditions?.terminating === true) continue;
      for (const address of Array.isArray(endpoint.addresses) ? endpoint.addresses : []) {
        if (typeof address !== 'string' || address === '') continue;
        // The same address may sit in two slices while the endpoint controller moves it: count it once.
        found.set(`${address} ${endpointPort}`, { address, port: endpointPort });
      }
    }
  }
  return [...found.values()].sort((a, b) => compareStrings(a.address, b.address) || a.port - b.port);
}
