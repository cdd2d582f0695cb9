// [issue 14] Writes what the leader owes the Gateway API: every status (GatewayClass, Gateway, HTTPRoute, TLSRoute,
// TCPRoute) and, with provisioning on, each accepted Gateway's proxies (provision.ts). Like the other status
// (status-writer.ts), write() only compares and enqueues: the StatusQueue writes off the rebuild path, one request
// at a time, the latest per object, retrying failures with backoff, and only while this replica leads.
//
//  1. GatewayClass and Gateway status: a merge patch of the status subresource (wsgate owns all of it).
//  2. Route status: its parents are shared with other controllers, so a write is computed when it runs from the
//     object as the store holds it then, and carries that resourceVersion: a conflict (409) is retried, by which
//     time the store has the newer object.
//  3. Provisioning: server-side apply (field manager `wsgate`) of the ServiceAccount, Deployment, Service and
//     ClusterRoleBinding; an object that already carries the hash of what would be applied is left alone. A
//     ClusterRoleBinding cannot be owned by its (namespaced) Gateway: the ones whose Gateway is gone are deleted
//     here. Everything else goes with its Gateway through ownerReferences.
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { Gateway, GatewayClass, GatewayRouteKind, RouteStatus } from '../api/gateway-api.ts';
import { GATEWAY_CONTROLLER_NAME, GATEWAY_GROUP } from '../api/gateway-api.ts';
import type { Logger } from '../log/logger.ts';
import type { GatewayAPIStatuses } from '../translate/snapshot.ts';
import { gatewayClassStatusUpdate, gatewayStatusUpdate, routeStatusUpdate } from './gateway-status.ts';
import { describeError } from './informers.ts';
import { MANAGED_BY, MANAGED_BY_LABEL } from './kinds.ts';
import { DESIRED_HASH_ANNOTATION, GATEWAY_NAMESPACE_LABEL, desiredObjects, type ProvisionOptions } from './provision.ts';
import type { StatusQueue } from './status-queue.ts';
import type { ObjectStore } from './store.ts';

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const APPLY = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
const FIELD_MANAGER = 'wsgate';
const ROUTE_PLURALS: Readonly<Record<GatewayRouteKind, string>> = { HTTPRoute: 'httproutes', TLSRoute: 'tlsroutes', TCPRoute: 'tcproutes' };

export interface GatewayWriterOptions {
  readonly kc: KubeConfig;
  readonly log: Logger;
  readonly queue: StatusQueue;
  /** Provision proxies for accepted Gateways (`controller --gateway-class`); undefined = status only. */
  readonly provision?: ProvisionOptions;
}

export class GatewayWriter {
  readonly #o: GatewayWriterOptions;
  readonly #custom: CustomObjectsApi;
  readonly #core: CoreV1Api;
  readonly #apps: AppsV1Api;
  readonly #rbac: RbacAuthorizationV1Api;
  /** Objects applied this leadership term, as `kind/key/hash`: the ones the store does not hold (ServiceAccounts, ClusterRoleBindings). */
  #applied = new Set<string>();
  /** ClusterRoleBindings of proxies, by name → `namespace/name` of their Gateway; undefined until listed once. */
  #bindings: Map<string, string> | undefined;
  /** Writes made since start (for tests). */
  writes = 0;

  constructor(o: GatewayWriterOptions) {
    this.#o = o;
    this.#custom = o.kc.makeApiClient(CustomObjectsApi);
    this.#core = o.kc.makeApiClient(CoreV1Api);
    this.#apps = o.kc.makeApiClient(AppsV1Api);
    this.#rbac = o.kc.makeApiClient(RbacAuthorizationV1Api);
  }

  /** Leadership lost: what this term applied is forgotten; the next term checks everything again. */
  reset(): void {
    this.#applied = new Set();
    this.#bindings = undefined;
  }

  write(s: GatewayAPIStatuses, store: ObjectStore): void {
    const now = new Date();
    const q = this.#o.queue;
    // 1. GatewayClasses and Gateways.
    for (const c of s.gatewayClasses) {
      const obj = store.get('GatewayClass', c.name) as GatewayClass | undefined;
      if (obj === undefined) continue;
      const update = gatewayClassStatusUpdate(obj.status, c, now);
      if (update === undefined) continue;
      q.enqueue(`gwstatus/GatewayClass/${c.name}`, () =>
        this.#write('GatewayClass', c.name, () =>
          this.#custom.patchClusterCustomObjectStatus({ group: GATEWAY_GROUP, version: 'v1', plural: 'gatewayclasses', name: c.name, body: { status: update } }, MERGE_PATCH),
        ),
      );
    }
    for (const g of s.gateways) {
      const key = `${g.namespace}/${g.name}`;
      const obj = store.get('Gateway', key) as Gateway | undefined;
      if (obj === undefined) continue;
      const update = gatewayStatusUpdate(obj.status, g.status, now);
      if (update === undefined) continue;
      q.enqueue(`gwstatus/Gateway/${key}`, () =>
        this.#write('Gateway', key, () =>
          this.#custom.patchNamespacedCustomObjectStatus(
            { group: GATEWAY_GROUP, version: 'v1', namespace: g.namespace, plural: 'gateways', name: g.name, body: { status: update } },
            MERGE_PATCH,
          ),
        ),
      );
    }
    // 2. Routes: every route held, so that a route wsgate no longer answers for loses wsgate's entries.
    const ours = new Map(s.routes.map((r) => [`${r.kind}/${r.namespace}/${r.name}`, r.parents]));
    for (const kind of ['HTTPRoute', 'TLSRoute', 'TCPRoute'] as const) {
      for (const obj of store.list(kind)) {
        const namespace = obj.metadata?.namespace ?? 'default';
        const name = obj.metadata?.name ?? '';
        const key = `${namespace}/${name}`;
        const parents = ours.get(`${kind}/${key}`) ?? [];
        const status = (o: KubernetesObject | undefined): RouteStatus | undefined => (o as { status?: RouteStatus } | undefined)?.status;
        if (routeStatusUpdate(status(obj), parents, GATEWAY_CONTROLLER_NAME, namespace, now) === undefined) continue;
        // What the status will say against the route, said once per change in the log too (namespace/name, the
        // condition and its message, which names the field or annotation).
        for (const p of parents) {
          for (const c of p.conditions) {
            if (c.status === 'False' || (c.type === 'PartiallyInvalid' && c.status === 'True')) {
              this.#o.log.warn({ kind, object: key, parent: p.parentRef, condition: c.type, reason: c.reason, message: c.message }, 'route status: not as written');
            }
          }
        }
        q.enqueue(`gwstatus/${kind}/${key}`, async () => {
          // Computed from the object as held when the write runs, with its resourceVersion (a conflict is retried).
          const current = store.get(kind, key);
          if (current === undefined) return;
          const update = routeStatusUpdate(status(current), parents, GATEWAY_CONTROLLER_NAME, namespace, new Date());
          if (update === undefined) return;
          await this.#write(kind, key, () =>
            this.#custom.patchNamespacedCustomObjectStatus(
              {
                group: GATEWAY_GROUP,
                version: 'v1',
                namespace,
                plural: ROUTE_PLURALS[kind],
                name,
                body: { metadata: { resourceVersion: current.metadata?.resourceVersion }, status: update },
              },
              MERGE_PATCH,
            ),
          );
        });
      }
    }
    // 3. Provisioning.
    if (this.#o.provision !== undefined) this.#provision(s, store, this.#o.provision);
  }

  #provision(s: GatewayAPIStatuses, store: ObjectStore, o: ProvisionOptions): void {
    const q = this.#o.queue;
    const wanted = new Set<string>();
    for (const g of s.gateways) {
      if (g.status.conditions.find((c) => c.type === 'Accepted')?.status !== 'True') continue;
      const key = `${g.namespace}/${g.name}`;
      const gw = store.get('Gateway', key) as Gateway | undefined;
      if (gw === undefined) continue;
      wanted.add(key);
      // The ports of the listeners that are accepted and not conflicted.
      const ok = new Set(
        g.status.listeners
          .filter((l) => l.conditions.some((c) => c.type === 'Accepted' && c.status === 'True') && l.conditions.some((c) => c.type === 'Conflicted' && c.status === 'False'))
          .map((l) => l.name),
      );
      const ports = (gw.spec?.listeners ?? []).filter((l) => ok.has(l.name ?? '')).map((l) => l.port ?? 0);
      const d = desiredObjects(gw, ports, o);
      const hashOf = (x: KubernetesObject): string => x.metadata?.annotations?.[DESIRED_HASH_ANNOTATION] ?? '';
      const name = d.deployment.metadata?.name ?? '';
      const at = `${g.namespace}/${name}`;
      if (!this.#applied.has(`ServiceAccount/${at}/${hashOf(d.serviceAccount)}`)) {
        q.enqueue(`provision/ServiceAccount/${at}`, () =>
          this.#apply('ServiceAccount', at, hashOf(d.serviceAccount), () =>
            this.#core.patchNamespacedServiceAccount({ name, namespace: g.namespace, body: d.serviceAccount, fieldManager: FIELD_MANAGER, force: true }, APPLY),
          ),
        );
      }
      if (hashOf(store.get('Deployment', at) ?? {}) !== hashOf(d.deployment)) {
        q.enqueue(`provision/Deployment/${at}`, () =>
          this.#apply('Deployment', at, hashOf(d.deployment), () =>
            this.#apps.patchNamespacedDeployment({ name, namespace: g.namespace, body: d.deployment, fieldManager: FIELD_MANAGER, force: true }, APPLY),
          ),
        );
      }
      if (hashOf(store.get('Service', at) ?? {}) !== hashOf(d.service)) {
        q.enqueue(`provision/Service/${at}`, () =>
          this.#apply('Service', at, hashOf(d.service), () =>
            this.#core.patchNamespacedService({ name, namespace: g.namespace, body: d.service, fieldManager: FIELD_MANAGER, force: true }, APPLY),
          ),
        );
      }
      const crb = d.clusterRoleBinding;
      if (crb !== undefined) {
        const crbName = crb.metadata?.name ?? '';
        this.#bindings?.set(crbName, key);
        if (!this.#applied.has(`ClusterRoleBinding/${crbName}/${hashOf(crb)}`)) {
          q.enqueue(`provision/ClusterRoleBinding/${crbName}`, () =>
            this.#apply('ClusterRoleBinding', crbName, hashOf(crb), () =>
              this.#rbac.patchClusterRoleBinding({ name: crbName, body: crb, fieldManager: FIELD_MANAGER, force: true }, APPLY),
            ),
          );
        }
      }
    }
    if (o.clusterRole !== undefined) this.#pruneBindings(wanted);
  }

  /** ClusterRoleBindings whose Gateway is no longer provisioned are deleted (listed once per leadership term). */
  #pruneBindings(wanted: ReadonlySet<string>): void {
    const q = this.#o.queue;
    if (this.#bindings === undefined) {
      q.enqueue('provision/list-bindings', async () => {
        const list = await this.#rbac.listClusterRoleBinding({ labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY},${GATEWAY_NAMESPACE_LABEL}` });
        const found = new Map<string, string>();
        for (const b of list.items) {
          const gw = b.metadata?.labels?.['gateway.networking.k8s.io/gateway-name'];
          const ns = b.metadata?.labels?.[GATEWAY_NAMESPACE_LABEL];
          if (b.metadata?.name && gw && ns) found.set(b.metadata.name, `${ns}/${gw}`);
        }
        this.#bindings = found;
        this.#pruneBindings(wanted);
      });
      return;
    }
    for (const [name, gateway] of this.#bindings) {
      if (wanted.has(gateway)) continue;
      this.#bindings.delete(name);
      q.enqueue(`provision/delete-binding/${name}`, async () => {
        try {
          await this.#rbac.deleteClusterRoleBinding({ name });
          this.writes++;
          this.#o.log.info({ clusterRoleBinding: name, gateway }, 'proxy binding deleted');
        } catch (err) {
          if ((err as { code?: unknown }).code !== 404) throw err;
        }
      });
    }
  }

  async #apply(kind: string, key: string, hash: string, apply: () => Promise<unknown>): Promise<void> {
    await this.#write(kind, key, apply);
    this.#applied.add(`${kind}/${key}/${hash}`);
  }

  /** One write; a 404 (deleted since the snapshot) is nothing to write, anything else throws, to be retried. */
  async #write(kind: string, key: string, write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
      this.writes++;
      this.#o.log.debug({ kind, object: key }, 'gateway status or proxy written');
    } catch (err) {
      if ((err as { code?: unknown }).code === 404) return;
      this.#o.log.warn({ kind, object: key, err: describeError(err) }, 'gateway status or proxy not written');
      throw err;
    }
  }
}
