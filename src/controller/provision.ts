// [issue 14] What the controller provisions for each accepted Gateway of its classes (docs/gateway-api-design.md):
// a ServiceAccount, a Deployment of proxies (`wsgate controller --gateway NAMESPACE/NAME`), a Service in front of
// them, and, when a proxy ClusterRole is named, a ClusterRoleBinding giving the ServiceAccount its read access.
// Pure: Gateways in, desired objects out; and, the other way, what the controller observes of them (the Service's
// address, the Deployment's readiness) → GatewayInfrastructure, which makes a Gateway Programmed.
//
// The zero-drop rule: the Deployment's pod template depends on the wsgate image and the flags below only, never on
// listeners or routes, so that no route or listener change restarts a proxy. Listener ports reach the proxies
// through the API (each proxy watches its Gateway and binds its ports in place); only the Service's ports follow them.
import { createHash } from 'node:crypto';
import type { KubernetesObject, V1ClusterRoleBinding, V1Deployment, V1Service, V1ServiceAccount } from '@kubernetes/client-node';
import type { Gateway } from '../api/gateway-api.ts';
import { GATEWAY_API_VERSION } from '../api/gateway-api.ts';
import type { GatewayInfrastructure } from '../translate/gateway-listeners.ts';
import { MANAGED_BY, MANAGED_BY_LABEL } from './kinds.ts';

export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
/** On the cluster-scoped ClusterRoleBinding, which cannot be owned by a namespaced Gateway: whose it is. */
export const GATEWAY_NAMESPACE_LABEL = 'wsgate.io/gateway-namespace';
/** The hash of what was applied, so that an unchanged object is not applied again. */
export const DESIRED_HASH_ANNOTATION = 'wsgate.io/desired-hash';
/** The proxies' admin port (/readyz, /metrics). */
export const PROXY_ADMIN_PORT = 9090;

export interface ProvisionOptions {
  /** The proxies' image (`--proxy-image`). */
  readonly image: string;
  /** [replicas=1] Proxies per Gateway. */
  readonly replicas?: number;
  /** [serviceType='LoadBalancer'] The provisioned Service's type. */
  readonly serviceType?: 'LoadBalancer' | 'ClusterIP' | 'NodePort';
  /** [workers=1] `--workers` of each proxy: Gateways scale by replicas, each proxy stays small. */
  readonly workers?: number;
  /** The ClusterRole to bind each proxy ServiceAccount to (`--proxy-cluster-role`); undefined = no binding. */
  readonly clusterRole?: string;
  /** [drainSeconds=60] Each proxy's --drain-timeout, and the pods' grace period (plus 10 s). */
  readonly drainSeconds?: number;
}

export interface DesiredObjects {
  readonly serviceAccount: V1ServiceAccount;
  readonly deployment: V1Deployment;
  readonly service: V1Service;
  readonly clusterRoleBinding?: V1ClusterRoleBinding;
}

/** `wsgate-<name>`, cut to 63 characters with a hash of the whole when longer (a DNS label). */
export function proxyName(gatewayName: string): string {
  const name = `wsgate-${gatewayName}`;
  if (name.length <= 63) return name;
  return `${name.slice(0, 54).replace(/[-.]+$/, '')}-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
}

/** The ClusterRoleBinding of a Gateway's proxies (cluster-scoped: namespace and name in it, hashed when long). */
export function bindingName(namespace: string, gatewayName: string): string {
  const name = `wsgate-gateway-${namespace}-${gatewayName}`;
  if (name.length <= 253) return name;
  return `${name.slice(0, 240)}-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
}

/** The labels that select a Gateway's proxy pods. */
export function selectorLabels(gatewayName: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'wsgate-gateway', [MANAGED_BY_LABEL]: MANAGED_BY, [GATEWAY_NAME_LABEL]: gatewayName };
}

export function hashOf(obj: unknown): string {
  return createHash('sha256').update(JSON.stringify(obj)).digest('hex').slice(0, 16);
}

function withHash<T extends KubernetesObject>(obj: T): T {
  const hash = hashOf(obj);
  return { ...obj, metadata: { ...obj.metadata, annotations: { ...obj.metadata?.annotations, [DESIRED_HASH_ANNOTATION]: hash } } };
}

/** The objects of one Gateway's proxies; `ports` are its served listeners' ports. */
export function desiredObjects(gw: Gateway, ports: readonly number[], o: ProvisionOptions): DesiredObjects {
  const namespace = gw.metadata?.namespace || 'default';
  const gatewayName = gw.metadata?.name ?? '';
  const name = proxyName(gatewayName);
  const infra = gw.spec?.infrastructure;
  const labels = { ...(infra?.labels ?? {}), ...selectorLabels(gatewayName) };
  const annotations = { ...(infra?.annotations ?? {}) };
  const ownerReferences = [{ apiVersion: GATEWAY_API_VERSION, kind: 'Gateway', name: gatewayName, uid: gw.metadata?.uid ?? '', controller: true }];
  const meta = { name, namespace, labels, ...(Object.keys(annotations).length > 0 ? { annotations } : {}), ownerReferences };
  const drainSeconds = o.drainSeconds ?? 60;
  const serviceAccount: V1ServiceAccount = withHash({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { ...meta } });
  const deployment: V1Deployment = withHash({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { ...meta },
    spec: {
      replicas: o.replicas ?? 1,
      selector: { matchLabels: selectorLabels(gatewayName) },
      // One new proxy up before an old one goes: its listeners are bound before traffic moves (spread drains).
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels, ...(Object.keys(annotations).length > 0 ? { annotations } : {}) },
        spec: {
          serviceAccountName: name,
          terminationGracePeriodSeconds: drainSeconds + 10,
          // Listener ports below 1024 without root: a safe sysctl (allowed by the default PodSecurity levels).
          securityContext: { runAsNonRoot: true, runAsUser: 10001, sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }] },
          containers: [
            {
              name: 'wsgate',
              image: o.image,
              args: [
                'controller',
                `--gateway=${namespace}/${gatewayName}`,
                `--admin-addr=0.0.0.0:${PROXY_ADMIN_PORT}`,
                // Only the Gateway's listeners: not the Ingress listeners a controller binds by default.
                '--http-addr=off',
                '--https-addr=off',
                `--workers=${o.workers ?? 1}`,
                `--drain-timeout=${drainSeconds}s`,
              ],
              ports: [{ name: 'admin', containerPort: PROXY_ADMIN_PORT, protocol: 'TCP' }],
              env: [
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              ],
              readinessProbe: { httpGet: { path: '/readyz', port: PROXY_ADMIN_PORT }, periodSeconds: 2, failureThreshold: 2 },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
            },
          ],
        },
      },
    },
  });
  const service: V1Service = withHash({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { ...meta },
    spec: {
      type: o.serviceType ?? 'LoadBalancer',
      selector: selectorLabels(gatewayName),
      ports: [...new Set(ports)].sort((a, b) => a - b).map((port) => ({ name: `tcp-${port}`, port, targetPort: port, protocol: 'TCP' })),
    },
  });
  const clusterRoleBinding: V1ClusterRoleBinding | undefined =
    o.clusterRole === undefined
      ? undefined
      : withHash({
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name: bindingName(namespace, gatewayName), labels: { ...selectorLabels(gatewayName), [GATEWAY_NAMESPACE_LABEL]: namespace } },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: o.clusterRole },
          subjects: [{ kind: 'ServiceAccount', name, namespace }],
        });
  return { serviceAccount, deployment, service, ...(clusterRoleBinding ? { clusterRoleBinding } : {}) };
}

/**
 * What the controller sees of a Gateway's proxies: the Service's load-balancer addresses (for ClusterIP and
 * NodePort Services, the cluster IPs), and whether a proxy is available. No Service or no Deployment: absent.
 */
export function observedInfrastructure(gw: Gateway, services: (namespace: string, name: string) => V1Service | undefined, deployments: (namespace: string, name: string) => V1Deployment | undefined): GatewayInfrastructure | undefined {
  const namespace = gw.metadata?.namespace || 'default';
  const name = proxyName(gw.metadata?.name ?? '');
  const svc = services(namespace, name);
  const dep = deployments(namespace, name);
  if (svc === undefined || dep === undefined) return undefined;
  const ip = (v: string): 'IPAddress' | 'Hostname' => (/^[0-9.]+$/.test(v) || v.includes(':') ? 'IPAddress' : 'Hostname');
  const addresses: { type: 'IPAddress' | 'Hostname'; value: string }[] = [];
  if ((svc.spec?.type ?? 'ClusterIP') === 'LoadBalancer') {
    for (const i of svc.status?.loadBalancer?.ingress ?? []) {
      if (i.ip) addresses.push({ type: 'IPAddress', value: i.ip });
      else if (i.hostname) addresses.push({ type: 'Hostname', value: i.hostname });
    }
  } else {
    for (const a of svc.spec?.clusterIPs ?? (svc.spec?.clusterIP ? [svc.spec.clusterIP] : [])) if (a !== 'None') addresses.push({ type: ip(a), value: a });
  }
  return { addresses, ready: (dep.status?.availableReplicas ?? 0) >= 1 };
}
