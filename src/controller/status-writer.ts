// Writes what status.ts computes: WebSocketRoute/TCPTunnel status (merge patch on the status subresource), Ingress
// status.loadBalancer, and Warning Events for objects that are not fully accepted. Only the leader calls it.
//
// write() only enqueues (status-queue.ts): it compares what each object says with what it should say, and queues one
// write per object that differs (the latest wins), plus one per new Event. The queue writes off the rebuild path and
// retries failures with backoff; nothing is remembered as written until the object itself says so, so the next
// sync after a lost write queues it again.
import { CoreV1Api, CustomObjectsApi, NetworkingV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { API_VERSION, GROUP, VERSION, type Ingress, type RouteStatus, type Service } from '../api/types.ts';
import type { Logger } from '../log/logger.ts';
import type { TranslateResult } from '../translate/snapshot.ts';
import { describeError } from './informers.ts';
import type { ObjectStore } from './store.ts';
import { StatusQueue } from './status-queue.ts';
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
  /** Writes happen only while this is true: this replica holds the leader Lease. */
  readonly isLeader: () => boolean;
  /** [backoff={ baseMs: 200, maxMs: 30000 }] Retry of a failed write (ms). */
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
}

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

const PLURALS = { WebSocketRoute: 'websocketroutes', TCPTunnel: 'tcptunnels' } as const;

export class StatusWriter {
  readonly #o: StatusWriterOptions;
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #networking: NetworkingV1Api;
  readonly #queue: StatusQueue;
  /** Keys of the Warning Events queued or recorded (status.ts warningEvents), pruned to the problems that still exist. */
  #recorded = new Set<string>();
  /** Status writes made since start (for tests and logs). */
  writes = 0;

  constructor(o: StatusWriterOptions) {
    this.#o = o;
    this.#core = o.kc.makeApiClient(CoreV1Api);
    this.#custom = o.kc.makeApiClient(CustomObjectsApi);
    this.#networking = o.kc.makeApiClient(NetworkingV1Api);
    this.#queue = new StatusQueue({ log: o.log, active: o.isLeader, ...(o.backoff ? { backoff: o.backoff } : {}) });
  }

  /** The queue every leader write goes through ([issue 14] the Gateway API's too: gateway-writer.ts). */
  get queue(): StatusQueue {
    return this.#queue;
  }

  /** Writes queued and not yet made. */
  get pending(): number {
    return this.#queue.size;
  }

  /** Leadership lost: nothing pending is written, and Events are recorded anew by the next leader term. */
  reset(): void {
    this.#queue.clear();
    this.#recorded = new Set();
  }

  /** Resolves once no write is queued or in flight (but for writes waiting out a retry backoff). */
  idle(): Promise<void> {
    return this.#queue.idle();
  }

  /** Nothing more is written; a write in flight is waited for. */
  stop(): Promise<void> {
    return this.#queue.stop();
  }

  /** Queues what brings every status in line with `result`; `ingresses` are the Ingresses wsgate serves. */
  write(result: TranslateResult, store: ObjectStore, ingresses: readonly Ingress[]): void {
    const now = new Date();
    const recorded = new Set<string>();
    for (const s of result.statuses) {
      const key = `${s.namespace}/${s.name}`;
      const obj = store.get(s.kind, key);
      if (obj === undefined) continue;
      if (s.kind === 'WebSocketRoute' || s.kind === 'TCPTunnel') {
        const plural = PLURALS[s.kind];
        const update = routeStatusUpdate((obj as { status?: RouteStatus }).status, s, now);
        if (update !== undefined) {
          this.#queue.enqueue(`status/${s.kind}/${key}`, () =>
            this.#patch(s.kind, key, () =>
              this.#custom.patchNamespacedCustomObjectStatus(
                { group: GROUP, version: VERSION, namespace: s.namespace, plural, name: s.name, body: { status: update } },
                MERGE_PATCH,
              ),
            ),
          );
        }
      }
      for (const e of warningEvents(s, obj.metadata?.uid ?? '')) {
        recorded.add(e.key);
        if (this.#recorded.has(e.key)) continue;
        const body = {
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
        };
        this.#queue.enqueue(`event/${e.key}`, async () => {
          await this.#core.createNamespacedEvent({ namespace: s.namespace, body });
        });
      }
    }
    // Problems that went away are forgotten (and their Events not written): if one comes back, it is reported again.
    for (const key of this.#recorded) if (!recorded.has(key)) this.#queue.cancel(`event/${key}`);
    this.#recorded = recorded;

    // Without --publish-service or --publish-address there is no address to publish: an Ingress's status is left as
    // it is (during a cut-over from ingress-nginx, ingress-nginx keeps writing it: issue 12).
    if (ingresses.length === 0 || (this.#o.publishService === undefined && (this.#o.publishAddresses?.length ?? 0) === 0)) return;
    // The addresses, when known without a request (flags, or the publish Service in the store): only Ingresses whose
    // status differs are queued. Otherwise each write reads the Service when it runs.
    const held = this.#heldPublishService(store);
    const addresses = async (): Promise<ReturnType<typeof publishedAddresses>> =>
      publishedAddresses({
        ...(this.#o.publishAddresses ? { addresses: this.#o.publishAddresses } : {}),
        ...(held ?? (await this.#readPublishService())),
      });
    const known = held === undefined ? undefined : publishedAddresses({ ...(this.#o.publishAddresses ? { addresses: this.#o.publishAddresses } : {}), ...held });
    for (const ing of ingresses) {
      const namespace = ing.metadata?.namespace ?? 'default';
      const name = ing.metadata?.name ?? '';
      const current = ing.status;
      if (known !== undefined && ingressStatusUpdate(current, known) === undefined) continue;
      this.#queue.enqueue(`status/Ingress/${namespace}/${name}`, async () => {
        const update = ingressStatusUpdate(current, await addresses());
        if (update === undefined) return;
        await this.#patch('Ingress', `${namespace}/${name}`, () =>
          this.#networking.patchNamespacedIngressStatus({ namespace, name, body: { status: update } }, MERGE_PATCH),
        );
      });
    }
  }

  /** The --publish-service as far as it is known without a request: not needed, or held in the store. */
  #heldPublishService(store: ObjectStore): { service?: Service } | undefined {
    const p = this.#o.publishService;
    if (p === undefined || (this.#o.publishAddresses?.length ?? 0) > 0) return {};
    const held = store.get('Service', `${p.namespace}/${p.name}`);
    return held === undefined ? undefined : { service: held };
  }

  /** The --publish-service read from the API server (not watched, or not there yet). */
  async #readPublishService(): Promise<{ service?: Service }> {
    const p = this.#o.publishService;
    if (p === undefined) return {};
    try {
      return { service: await this.#core.readNamespacedService(p) };
    } catch (err) {
      this.#o.log.warn({ service: `${p.namespace}/${p.name}`, err: describeError(err) }, 'publish service not read');
      return {};
    }
  }

  /** One status write; a failure other than 404 (deleted since the snapshot: nothing to write) throws, to be retried. */
  async #patch(kind: string, key: string, write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
      this.writes++;
      this.#o.log.debug({ kind, object: key }, 'status written');
    } catch (err) {
      // 404: deleted since the snapshot; the next sync will not see it.
      if ((err as { code?: unknown }).code === 404) return;
      // Named here, where kind and object are known; the queue retries it with a backoff.
      this.#o.log.warn({ kind, object: key, err: describeError(err) }, 'status not written');
      throw err;
    }
  }
}
