// Writes what status.ts computes: WebSocketRoute/TCPTunnel status (merge patch on the status subresource), Ingress
// status.loadBalancer, and Warning Events for objects that are not fully accepted. Only the leader calls it.
// Each write is independent: a failure is logged and retried at the next sync (nothing is remembered as written
// until the object itself says so).
import { CoreV1Api, CustomObjectsApi, NetworkingV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { API_VERSION, GROUP, VERSION, type Ingress, type RouteStatus, type Service } from '../api/types.ts';
import type { Logger } from '../log/logger.ts';
import type { TranslateResult } from '../translate/snapshot.ts';
import { describeError } from './informers.ts';
import type { ObjectStore } from './store.ts';
import { ingressStatusUpdate, publishedAddresses, routeStatusUpdate, warningEvents } from './status.ts';

export interface StatusWriterOptions {
  readonly kc: KubeConfig;
  readonly log: Logger;
  /** `--publish-service NAMESPACE/NAME`. */
  readonly publishService?: { readonly namespace: string; readonly name: string };
  /** `--publish-address`: IPs or host names, in order. */
  readonly publishAddresses?: readonly string[];
  /** Names the writer in Events (reportingInstance), e.g. the pod name. */
  readonly identity: string;
}

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

const PLURALS = { WebSocketRoute: 'websocketroutes', TCPTunnel: 'tcptunnels' } as const;

export class StatusWriter {
  readonly #o: StatusWriterOptions;
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #networking: NetworkingV1Api;
  /** Keys of the Warning Events recorded (status.ts warningEvents), pruned to the problems that still exist. */
  #recorded = new Set<string>();
  /** Status writes made since start (for tests and logs). */
  writes = 0;

  constructor(o: StatusWriterOptions) {
    this.#o = o;
    this.#core = o.kc.makeApiClient(CoreV1Api);
    this.#custom = o.kc.makeApiClient(CustomObjectsApi);
    this.#networking = o.kc.makeApiClient(NetworkingV1Api);
  }

  /** Brings every status in line with `result`; `ingresses` are the Ingresses wsgate serves. */
  async write(result: TranslateResult, store: ObjectStore, ingresses: readonly Ingress[]): Promise<void> {
    const now = new Date();
    const log = this.#o.log;
    const recorded = new Set<string>();
    for (const s of result.statuses) {
      const key = `${s.namespace}/${s.name}`;
      const obj = store.get(s.kind, key);
      if (obj === undefined) continue;
      if (s.kind === 'WebSocketRoute' || s.kind === 'TCPTunnel') {
        const plural = PLURALS[s.kind];
        const update = routeStatusUpdate((obj as { status?: RouteStatus }).status, s, now);
        if (update !== undefined) {
          await this.#patch(s.kind, key, () =>
            this.#custom.patchNamespacedCustomObjectStatus(
              { group: GROUP, version: VERSION, namespace: s.namespace, plural, name: s.name, body: { status: update } },
              MERGE_PATCH,
            ),
          );
        }
      }
      for (const e of warningEvents(s, obj.metadata?.uid ?? '')) {
        recorded.add(e.key);
        if (this.#recorded.has(e.key)) continue;
        try {
          await this.#core.createNamespacedEvent({
            namespace: s.namespace,
            body: {
              metadata: { generateName: `${s.name}.`, namespace: s.namespace },
              involvedObject: {
                apiVersion: s.kind === 'Ingress' ? 'networking.k8s.io/v1' : API_VERSION,
                kind: s.kind,
                namespace: s.namespace,
                name: s.name,
                uid: obj.metadata?.uid ?? '',
                resourceVersion: obj.metadata?.resourceVersion ?? '',
              },
              type: 'Warning',
              reason: e.reason,
              message: e.message,
              source: { component: 'wsgate' },
              reportingComponent: 'wsgate.io/ingress-controller',
              reportingInstance: this.#o.identity,
              firstTimestamp: now,
              lastTimestamp: now,
              count: 1,
            },
          });
        } catch (err) {
          log.warn({ kind: s.kind, namespace: s.namespace, name: s.name, err: describeError(err) }, 'event not recorded');
          recorded.delete(e.key);
        }
      }
    }
    // Problems that went away are forgotten: if one comes back, it is reported again.
    this.#recorded = recorded;

    if (ingresses.length === 0) return;
    const addresses = publishedAddresses({
      ...(this.#o.publishAddresses ? { addresses: this.#o.publishAddresses } : {}),
      ...(await this.#publishService(store)),
    });
    for (const ing of ingresses) {
      const update = ingressStatusUpdate(ing.status, addresses);
      if (update === undefined) continue;
      const namespace = ing.metadata?.namespace ?? 'default';
      const name = ing.metadata?.name ?? '';
      await this.#patch('Ingress', `${namespace}/${name}`, () =>
        this.#networking.patchNamespacedIngressStatus({ namespace, name, body: { status: update } }, MERGE_PATCH),
      );
    }
  }

  /** The --publish-service: from the store when it is watched, else read from the API server. */
  async #publishService(store: ObjectStore): Promise<{ service?: Service }> {
    const p = this.#o.publishService;
    if (p === undefined || (this.#o.publishAddresses?.length ?? 0) > 0) return {};
    const held = store.get('Service', `${p.namespace}/${p.name}`);
    if (held !== undefined) return { service: held };
    try {
      return { service: await this.#core.readNamespacedService(p) };
    } catch (err) {
      this.#o.log.warn({ service: `${p.namespace}/${p.name}`, err: describeError(err) }, 'publish service not read');
      return {};
    }
  }

  async #patch(kind: string, key: string, write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
      this.writes++;
      this.#o.log.debug({ kind, object: key }, 'status written');
    } catch (err) {
      // 404: deleted since the snapshot; the next sync will not see it.
      if ((err as { code?: unknown }).code === 404) return;
      this.#o.log.warn({ kind, object: key, err: describeError(err) }, 'status not written');
    }
  }
}
