// `wsgate controller`: the data plane fed from a Kubernetes API server. The numbered steps:
//  1. Start the Gateway (listeners, admin). Readiness is false until step 4 has run once.
//  2. Start one supervised informer per kind (informers.ts); each list and watch event updates the store.
//  3. Each change the store reports is judged (relevance.ts) and counted; a relevant one triggers the debouncer.
//  4. Once every informer has listed, and then after each burst of relevant changes: snapshot → translate (pure) →
//     gateway.apply (atomic; open connections keep what they were given). Secrets routes now reference are fetched
//     (the store holds unreferenced TLS Secrets without their data), which triggers one more sync.
//  5. The leader (leader.ts) then queues status and Events where they differ (status-writer.ts); the queue
//     (status-queue.ts) writes them off this path, the latest per object, retried with backoff: a slow API server
//     delays status, never the next table.
// The API server going away touches none of this: the informers retry with backoff, the last table keeps serving,
// and the relist when it returns reports whatever changed meanwhile.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { CoreV1Api, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Gateway, HTTPRoute } from '../api/gateway-api.ts';
import type { Ingress, TCPTunnel, WebSocketRoute } from '../api/types.ts';
import type { GatewayInfrastructure } from '../translate/gateway-listeners.ts';
import { createDataPlane, type PlaneOptions } from '../cluster/plane.ts';
import type { DataPlane } from '../dataplane.ts';
import { selectIngresses } from '../translate/ingress.ts';
import { needsAttention } from '../translate/conditions.ts';
import type { TranslateResult } from '../translate/snapshot.ts';
import { translate } from '../translate/translate.ts';
import { Debouncer } from './debounce.ts';
import { describeError, SupervisedInformer, type BackoffOptions } from './informers.ts';
import { kindSources, watchedKinds, type WatchedKind } from './kinds.ts';
import { GatewayWriter } from './gateway-writer.ts';
import { observedInfrastructure, type ProvisionOptions } from './provision.ts';
import { LeaderElector } from './leader.ts';
import { isRelevant, referencesOf, type References } from './relevance.ts';
import { StatusWriter } from './status-writer.ts';
import { ObjectStore, type StoreEvent } from './store.ts';

export interface ControllerOptions extends Omit<PlaneOptions, 'sourceNotReady'> {
  readonly kc: KubeConfig;
  /** Watch one namespace; undefined = all. */
  readonly namespace?: string;
  /** The IngressClass served (`--ingress-class`). */
  readonly ingressClass: string;
  /** [watchIngressWithoutClass=false] `--watch-ingress-without-class`: Ingresses naming no class are served too. */
  readonly watchIngressWithoutClass?: boolean;
  readonly publishService?: { readonly namespace: string; readonly name: string };
  readonly publishAddresses?: readonly string[];
  readonly leaderElection: {
    readonly namespace: string;
    /** The Lease's name (`--leader-election-id`). */
    readonly name: string;
    /** [identity=`<hostname>_<random>`] */
    readonly identity?: string;
    readonly leaseDurationMs?: number;
    readonly renewDeadlineMs?: number;
    readonly retryPeriodMs?: number;
  };
  /** [debounceMs=100] Quiet time after a relevant change before a sync (ms). */
  readonly debounceMs?: number;
  /** [maxDebounceMs=1000] Longest a relevant change waits for its sync (ms). */
  readonly maxDebounceMs?: number;
  /** [resyncMs=300000] A sync (and status pass) at this period even without changes; 0 = never. */
  readonly resyncMs?: number;
  /** Informer supervision: restart backoff and watchdog (informers.ts). */
  readonly informers?: { readonly backoff?: BackoffOptions; readonly watchdogMs?: number };
  /**
   * [issue 14] The Gateway API. `classes`: this controller manages these GatewayClasses (of controllerName
   * wsgate.io/gateway-controller; an empty list = every one): it writes their status and the status of their
   * Gateways and routes, and provisions each accepted Gateway's proxies (`provision`); it serves no Gateway itself.
   * `gateway`: this process is one Gateway's proxy: it serves that Gateway's listeners and writes nothing.
   */
  readonly gatewayAPI?:
    | { readonly mode: 'gateway-class'; readonly classes: readonly string[]; readonly provision?: ProvisionOptions }
    | { readonly mode: 'gateway'; readonly namespace: string; readonly name: string };
}

export interface Controller {
  /** The data plane: one Gateway in this process, or a pool of workers (`workers` > 1). */
  readonly gateway: DataPlane;
  readonly identity: string;
  readonly isLeader: boolean;
  /** Syncs completed (translate + apply). */
  readonly syncs: number;
  /** A sync is scheduled or in progress. */
  readonly syncPending: boolean;
  /** Status writes (WebSocketRoute, TCPTunnel, Ingress) this replica has made. */
  readonly statusWrites: number;
  /** Resolves once every status write queued so far has been made (or is waiting out a retry); for tests. */
  statusIdle(): Promise<void>;
  /** The last translation applied. */
  readonly lastResult: TranslateResult | undefined;
  /** Runs a sync now (after one in progress); for tests and diagnostics. */
  resync(): Promise<void>;
  /** Stops watching, releases the leader Lease, then drains the data plane (`graceMs`, default 0). */
  stop(graceMs?: number): Promise<void>;
  /**
   * For tests only: simulates a crash of this replica. Leader election stops at once without releasing the Lease
   * (the others take over when it expires; a renewal in flight is let settle first), then the informers, syncs and data plane stop as in stop(0). A sync
   * in progress may still finish, but no status is written after this returns, as `isLeader` is false.
   */
  abandon(): Promise<void>;
}

/** Kinds whose objects decide what Services and Secrets are referenced. */
const ROUTE_KINDS: ReadonlySet<WatchedKind> = new Set<WatchedKind>(['Ingress', 'WebSocketRoute', 'TCPTunnel', 'IngressClass', 'Gateway', 'HTTPRoute', 'TLSRoute', 'TCPRoute']);

export async function startController(o: ControllerOptions): Promise<Controller> {
  const log = o.log.child({ component: 'controller' });
  const identity = o.leaderElection.identity ?? `${hostname()}_${randomUUID().slice(0, 8)}`;
  // [issue 14] What is watched and served depends on the Gateway API mode (kinds.ts).
  const gw = o.gatewayAPI;
  const kinds = watchedKinds(gw?.mode ?? 'ingress');
  const isProxy = gw?.mode === 'gateway';
  const synced = new Set<WatchedKind>();
  let initialSyncDone = false;
  let syncs = 0;
  let lastResult: TranslateResult | undefined;
  let refs: References | undefined;
  let lastConditions = new Map<string, string>();

  const store = new ObjectStore({ secretWanted: (key) => references().secrets.has(key) });
  const ourIngresses = (): Ingress[] => selectIngresses(store.snapshot(o.ingressClass, o.watchIngressWithoutClass === true));
  const references = (): References => {
    refs ??= referencesOf({
      ingresses: ourIngresses(),
      webSocketRoutes: store.list('WebSocketRoute') as unknown as WebSocketRoute[],
      tcpTunnels: store.list('TCPTunnel') as unknown as TCPTunnel[],
      gateways: store.list('Gateway') as unknown as Gateway[],
      gatewayRoutes: [...store.list('HTTPRoute'), ...store.list('TLSRoute'), ...store.list('TCPRoute')] as unknown as HTTPRoute[],
    });
    return refs;
  };
  /** [issue 14] The Gateway API part of the snapshot: which Gateway is served, and what their proxies are. */
  const gatewaySnapshot = (): Parameters<ObjectStore['snapshot']>[2] => {
    if (gw === undefined) return undefined;
    if (gw.mode === 'gateway') return { gatewayServed: { namespace: gw.namespace, name: gw.name } };
    const infrastructure = new Map<string, GatewayInfrastructure>();
    for (const g of store.list('Gateway') as unknown as Gateway[]) {
      const observed = observedInfrastructure(
        g,
        (ns, name) => store.get('Service', `${ns}/${name}`),
        (ns, name) => store.get('Deployment', `${ns}/${name}`),
      );
      if (observed !== undefined) infrastructure.set(`${g.metadata?.namespace ?? 'default'}/${g.metadata?.name ?? ''}`, observed);
    }
    return { gatewayServed: 'none', gatewayInfrastructure: infrastructure, ...(gw.classes.length > 0 ? { gatewayClassNames: gw.classes } : {}) };
  };

  const gateway = createDataPlane({
    ...o,
    sourceNotReady: () => {
      const waiting = kinds.filter((k) => !synced.has(k));
      return waiting.length > 0 ? `informers not synced: ${waiting.join(', ')}` : undefined;
    },
  });
  await gateway.start();

  const core = o.kc.makeApiClient(CoreV1Api);
  const statusWriter = new StatusWriter({
    kc: o.kc,
    log: log.child({ component: 'status' }),
    identity,
    // `leader` is declared below; the queue asks only when it has something to write, after a sync.
    isLeader: () => leader?.isLeader === true,
    ...(o.publishService ? { publishService: o.publishService } : {}),
    ...(o.publishAddresses ? { publishAddresses: o.publishAddresses } : {}),
  });
  const gatewayWriter =
    gw?.mode === 'gateway-class'
      ? new GatewayWriter({ kc: o.kc, log: log.child({ component: 'gateway-status' }), queue: statusWriter.queue, ...(gw.provision ? { provision: gw.provision } : {}) })
      : undefined;

  const sync = async (): Promise<void> => {
    if (!initialSyncDone) return;
    const end = o.metrics.controllerSyncSeconds.startTimer();
    const snapshot = store.snapshot(o.ingressClass, o.watchIngressWithoutClass === true, gatewaySnapshot());
    const result = translate(snapshot);
    const { certificateErrors } = await gateway.apply(result.table);
    end();
    syncs++;
    lastResult = result;
    for (const e of certificateErrors) log.error(e, 'certificate not loaded');
    logChangedStatuses(result);
    log.debug({ virtualHosts: result.table.virtualHosts.length, tunnels: result.table.tunnels.length }, 'routing table applied');

    // Secrets routes reference now: keep those whole, drop the data of the others, fetch what is missing.
    const referenced = references().secrets;
    store.pruneSecrets(referenced);
    let fetched = false;
    for (const key of store.missingSecrets(referenced)) {
      const [namespace = '', name = ''] = key.split('/');
      try {
        const secret = await core.readNamespacedSecret({ namespace, name });
        if (store.upsert('Secret', secret) !== undefined) fetched = true;
      } catch (err) {
        log.warn({ secret: key, err: describeError(err) }, 'referenced secret not read');
      }
    }
    if (fetched) debouncer.trigger();

    // Queued, not awaited: the next sync does not wait for the API server to take them.
    if (leader?.isLeader === true) {
      statusWriter.write(result, store, selectIngresses(snapshot));
      if (gatewayWriter !== undefined && result.gatewayAPI !== undefined) gatewayWriter.write(result.gatewayAPI, store);
    }
  };

  /** One log line per object whose conditions changed and are not all True (or carry a warning). */
  const logChangedStatuses = (result: TranslateResult): void => {
    const now = new Map<string, string>();
    for (const s of result.statuses) {
      const key = `${s.kind}/${s.namespace}/${s.name}`;
      const text = JSON.stringify(s.conditions.map((c) => [c.status, c.reason, c.message]));
      now.set(key, text);
      if (lastConditions.get(key) === text) continue;
      for (const c of s.conditions) {
        if (!needsAttention(c)) continue;
        log.warn(
          { kind: s.kind, namespace: s.namespace, name: s.name, condition: c.type, reason: c.reason, message: c.message },
          c.status === 'True' ? 'object accepted with warnings' : 'object not fully accepted',
        );
      }
    }
    lastConditions = now;
  };

  const debouncer = new Debouncer({
    delayMs: o.debounceMs ?? 100,
    maxDelayMs: o.maxDebounceMs ?? 1000,
    run: sync,
    onError: (err) => log.error({ err: describeError(err) }, 'sync failed; the last table keeps serving'),
  });

  // A Gateway's proxy writes nothing, so it takes no part in leader election (nor needs a Lease).
  const leader = isProxy
    ? undefined
    : new LeaderElector({
    kc: o.kc,
    log,
    namespace: o.leaderElection.namespace,
    name: o.leaderElection.name,
    identity,
    ...(o.leaderElection.leaseDurationMs === undefined ? {} : { leaseDurationMs: o.leaderElection.leaseDurationMs }),
    ...(o.leaderElection.renewDeadlineMs === undefined ? {} : { renewDeadlineMs: o.leaderElection.renewDeadlineMs }),
    ...(o.leaderElection.retryPeriodMs === undefined ? {} : { retryPeriodMs: o.leaderElection.retryPeriodMs }),
    onChange: (isLeader) => {
      o.metrics.leader.set(isLeader ? 1 : 0);
      // A new leader writes every status that differs; a former one writes nothing more.
      if (isLeader) debouncer.trigger();
      else {
        statusWriter.reset();
        gatewayWriter?.reset();
      }
    },
  });

  const storeOnEvent = (e: StoreEvent): void => {
    if (ROUTE_KINDS.has(e.kind)) refs = undefined;
    const relevant = isRelevant(e, {
      ...references(),
      ingressClassName: o.ingressClass,
      ...(o.watchIngressWithoutClass === true ? { watchIngressWithoutClass: true } : {}),
      ingressClasses: store.list('IngressClass'),
      ...(o.publishService ? { publishService: `${o.publishService.namespace}/${o.publishService.name}` } : {}),
    });
    o.metrics.controllerEvents.inc({ kind: e.kind, relevant: relevant ? 'true' : 'false' });
    if (relevant && initialSyncDone) debouncer.trigger();
  };

  const informerOnList = (kind: WatchedKind, items: readonly KubernetesObject[]): void => {
    for (const e of store.replace(kind, items)) storeOnEvent(e);
    synced.add(kind);
    if (!initialSyncDone && synced.size === kinds.length) {
      initialSyncDone = true;
      log.info('every informer has listed; building the first routing table');
      void debouncer.flush();
    }
  };

  // Every watched kind has a watch-error series from the start, at 0: `increase()` and alerts on it see the first
  // error as a change, and a dashboard shows "no errors" rather than "no data" (Prometheus' advice for label sets
  // known up front).
  for (const kind of kinds) o.metrics.controllerWatchErrors.inc({ kind }, 0);

  const informers = kindSources(o.kc, o.namespace, kinds).map(
    (source) =>
      new SupervisedInformer({
        kc: o.kc,
        source,
        log,
        metrics: o.metrics,
        ...(o.informers?.backoff ? { backoff: o.informers.backoff } : {}),
        ...(o.informers?.watchdogMs === undefined ? {} : { watchdogMs: o.informers.watchdogMs }),
        handlers: {
          onList: (items) => informerOnList(source.kind, items),
          onUpsert: (obj) => {
            const e = store.upsert(source.kind, obj);
            if (e !== undefined) storeOnEvent(e);
          },
          onDelete: (obj) => {
            const e = store.delete(source.kind, obj);
            if (e !== undefined) storeOnEvent(e);
          },
        },
      }),
  );
  for (const i of informers) i.start();
  leader?.start();

  const resyncMs = o.resyncMs ?? 300_000;
  const resyncTimer = resyncMs > 0 ? setInterval(() => debouncer.trigger(), resyncMs) : undefined;
  resyncTimer?.unref();

  return {
    gateway,
    identity,
    get isLeader() {
      return leader?.isLeader === true;
    },
    get syncs() {
      return syncs;
    },
    get syncPending() {
      return debouncer.pending;
    },
    get statusWrites() {
      return statusWriter.writes + (gatewayWriter?.writes ?? 0);
    },
    get lastResult() {
      return lastResult;
    },
    statusIdle: () => statusWriter.idle(),
    resync: () => debouncer.flush(),
    async stop(graceMs = 0) {
      clearInterval(resyncTimer);
      await Promise.all(informers.map((i) => i.stop()));
      await debouncer.stop();
      await statusWriter.stop();
      await leader?.stop();
      o.metrics.leader.set(0);
      await gateway.stop(graceMs);
    },
    async abandon() {
      await leader?.abandon();
      clearInterval(resyncTimer);
      await Promise.all(informers.map((i) => i.stop()));
      await debouncer.stop();
      await statusWriter.stop();
      o.metrics.leader.set(0);
      await gateway.stop(0);
    },
  };
}
